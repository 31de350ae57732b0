/* The Linux system interface picolibc needs, over RV32 ecalls: the standard streams
 * (stdout and stderr buffered by line, flushed at exit), read/write/open/close/lseek,
 * _exit (exit_group), sbrk (over brk, for malloc) and getentropy (getrandom).
 * picolibc itself knows no operating system; qemu-riscv32 and rvdbt provide these
 * calls. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SYS_close 57
#define SYS_lseek 62
#define SYS_read 63
#define SYS_write 64
#define SYS_exit_group 94
#define SYS_brk 214
#define SYS_getrandom 278

long __syscall6(long n, long a0, long a1, long a2, long a3, long a4, long a5)
{
	register long r_a0 __asm__("a0") = a0;
	register long r_a1 __asm__("a1") = a1;
	register long r_a2 __asm__("a2") = a2;
	register long r_a3 __asm__("a3") = a3;
	register long r_a4 __asm__("a4") = a4;
	register long r_a5 __asm__("a5") = a5;
	register long r_a7 __asm__("a7") = n;
	__asm__ volatile("ecall"
			 : "+r"(r_a0)
			 : "r"(r_a1), "r"(r_a2), "r"(r_a3), "r"(r_a4), "r"(r_a5), "r"(r_a7)
			 : "memory");
	return r_a0;
}

/* A Linux result: -errno in [-4095, -1] sets errno and gives -1. */
static long result(long r)
{
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

ssize_t write(int fd, const void *buf, size_t len)
{
	return result(__syscall6(SYS_write, fd, (long)buf, (long)len, 0, 0, 0));
}

ssize_t read(int fd, void *buf, size_t len)
{
	return result(__syscall6(SYS_read, fd, (long)buf, (long)len, 0, 0, 0));
}

int close(int fd)
{
	return (int)result(__syscall6(SYS_close, fd, 0, 0, 0, 0, 0));
}

off_t lseek(int fd, off_t offset, int whence)
{
	/* _llseek(fd, high, low, &result, whence) */
	int64_t pos;
	long r = result(__syscall6(SYS_lseek, fd, (long)((int64_t)offset >> 32), (long)offset, (long)&pos, whence, 0));
	return r < 0 ? -1 : (off_t)pos;
}

int open(const char *path, int flags, ...)
{
	(void)path;
	(void)flags;
	errno = EACCES;
	return -1;
}

/* Line-buffered output streams. */
struct out {
	FILE file;
	int fd;
	unsigned len;
	char buf[256];
};

static int out_flush(FILE *f)
{
	struct out *o = (struct out *)f;
	unsigned done = 0;
	while (done < o->len) {
		ssize_t n = write(o->fd, o->buf + done, o->len - done);
		if (n <= 0)
			break;
		done += (unsigned)n;
	}
	o->len = 0;
	return 0;
}

static int out_put(char c, FILE *f)
{
	struct out *o = (struct out *)f;
	o->buf[o->len++] = c;
	if (c == '\n' || o->len == sizeof o->buf)
		out_flush(f);
	return (unsigned char)c;
}

static int in_get(FILE *f)
{
	unsigned char c;
	(void)f;
	return read(0, &c, 1) == 1 ? c : EOF;
}

static struct out out_stdout = { FDEV_SETUP_STREAM(out_put, NULL, out_flush, _FDEV_SETUP_WRITE), 1, 0, { 0 } };
static struct out out_stderr = { FDEV_SETUP_STREAM(out_put, NULL, out_flush, _FDEV_SETUP_WRITE), 2, 0, { 0 } };
static FILE in_stdin = FDEV_SETUP_STREAM(NULL, in_get, NULL, _FDEV_SETUP_READ);

FILE *const stdin = &in_stdin;
FILE *const stdout = &out_stdout.file;
FILE *const stderr = &out_stderr.file;

void _exit(int status)
{
	out_flush(stdout);
	out_flush(stderr);
	for (;;)
		__syscall6(SYS_exit_group, status, 0, 0, 0, 0, 0);
}

/* The program break, for malloc. */
void *sbrk(ptrdiff_t incr)
{
	static uintptr_t brk;
	if (brk == 0)
		brk = (uintptr_t)__syscall6(SYS_brk, 0, 0, 0, 0, 0, 0);
	uintptr_t old = brk, want = old + (uintptr_t)incr;
	if ((uintptr_t)__syscall6(SYS_brk, (long)want, 0, 0, 0, 0, 0) != want) {
		errno = ENOMEM;
		return (void *)-1;
	}
	brk = want;
	return (void *)old;
}

int getentropy(void *buf, size_t len)
{
	char *p = buf;
	if (len > 256) {
		errno = EIO;
		return -1;
	}
	while (len > 0) {
		long n = result(__syscall6(SYS_getrandom, (long)p, (long)len, 0, 0, 0, 0));
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
