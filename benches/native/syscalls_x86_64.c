/* The guest runtime's system calls for a native x86-64 build: the same functions as
 * guest-programs/runtime/syscalls.c, with the RISC-V syscall numbers of runtime.h
 * translated to x86-64 ones. */
#include "runtime.h"

static long x86_number(long n)
{
	switch (n) {
	case SYS_read: return 0;
	case SYS_write: return 1;
	case SYS_close: return 3;
	case SYS_fstat: return 5;
	case SYS_brk: return 12;
	case SYS_exit: return 60;
	case SYS_gettimeofday: return 96;
	case SYS_clock_gettime: return 228;
	case SYS_exit_group: return 231;
	default: return -1;
	}
}

long syscall6(long n, long a0, long a1, long a2, long a3, long a4, long a5)
{
	long nr = x86_number(n), ret;
	if (nr < 0)
		return -ENOSYS;
	register long r10 __asm__("r10") = a3;
	register long r8 __asm__("r8") = a4;
	register long r9 __asm__("r9") = a5;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

long syscall3(long n, long a0, long a1, long a2) { return syscall6(n, a0, a1, a2, 0, 0, 0); }
long syscall1(long n, long a0) { return syscall6(n, a0, 0, 0, 0, 0, 0); }
long syscall0(long n) { return syscall6(n, 0, 0, 0, 0, 0, 0); }

long sys_read(int fd, void *buf, size_t len) { return syscall3(SYS_read, fd, (long)buf, (long)len); }
long sys_write(int fd, const void *buf, size_t len) { return syscall3(SYS_write, fd, (long)buf, (long)len); }
long sys_close(int fd) { return syscall1(SYS_close, fd); }
long sys_fstat(int fd, void *statbuf) { return syscall3(SYS_fstat, fd, (long)statbuf, 0); }
long sys_clock_gettime(int clk, void *ts) { return syscall3(SYS_clock_gettime, clk, (long)ts, 0); }
long sys_gettimeofday(void *tv, void *tz) { return syscall3(SYS_gettimeofday, (long)tv, (long)tz, 0); }
long sys_brk(uintptr_t addr) { return syscall1(SYS_brk, (long)addr); }

void sys_exit(int code)
{
	for (;;)
		syscall1(SYS_exit, code);
}

void exit(int code)
{
	fflush_stdout();
	sys_exit(code);
}

void abort(void)
{
	fflush_stdout();
	eputs("abort\n");
	sys_exit(134);
}
