#include "runtime.h"

#if defined(__x86_64__)
/* Native x86-64 builds of the benchmarks (benches/compare.py): the RISC-V syscall
 * numbers of runtime.h translated to x86-64 ones. */
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
#else
/* RV32: ecall with a7 = number, a0..a5 = arguments, result in a0. */
long syscall6(long n, long a0, long a1, long a2, long a3, long a4, long a5)
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

long syscall3(long n, long a0, long a1, long a2)
{
	register long r_a0 __asm__("a0") = a0;
	register long r_a1 __asm__("a1") = a1;
	register long r_a2 __asm__("a2") = a2;
	register long r_a7 __asm__("a7") = n;
	__asm__ volatile("ecall" : "+r"(r_a0) : "r"(r_a1), "r"(r_a2), "r"(r_a7) : "memory");
	return r_a0;
}

long syscall1(long n, long a0)
{
	register long r_a0 __asm__("a0") = a0;
	register long r_a7 __asm__("a7") = n;
	__asm__ volatile("ecall" : "+r"(r_a0) : "r"(r_a7) : "memory");
	return r_a0;
}

long syscall0(long n)
{
	register long r_a0 __asm__("a0");
	register long r_a7 __asm__("a7") = n;
	__asm__ volatile("ecall" : "=r"(r_a0) : "r"(r_a7) : "memory");
	return r_a0;
}
#endif

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
