/* Linux system calls picolibc has no header for (RV32 numbers), for the picolibc
 * guest programs: mmap and friends, uname, riscv_flush_icache, getrandom. */
#ifndef LINUX_H
#define LINUX_H

#include <stddef.h>
#include <stdint.h>

long __syscall6(long n, long a0, long a1, long a2, long a3, long a4, long a5);

#define SYS_set_tid_address 96
#define SYS_uname 160
#define SYS_munmap 215
#define SYS_mmap 222
#define SYS_mprotect 226
#define SYS_riscv_flush_icache 259
#define SYS_getrandom 278

#define PROT_NONE 0
#define PROT_READ 1
#define PROT_WRITE 2
#define PROT_EXEC 4
#define MAP_PRIVATE 0x02
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MAP_FAILED ((void *)-1)

static inline void *sys_mmap(void *addr, size_t len, int prot, int flags)
{
	long r = __syscall6(SYS_mmap, (long)addr, (long)len, prot, flags, -1, 0);
	return r < 0 && r > -4096 ? MAP_FAILED : (void *)r;
}

static inline int sys_munmap(void *addr, size_t len)
{
	return (int)__syscall6(SYS_munmap, (long)addr, (long)len, 0, 0, 0, 0);
}

static inline int sys_mprotect(void *addr, size_t len, int prot)
{
	return (int)__syscall6(SYS_mprotect, (long)addr, (long)len, prot, 0, 0, 0);
}

static inline int sys_riscv_flush_icache(void *start, void *end)
{
	return (int)__syscall6(SYS_riscv_flush_icache, (long)start, (long)end, 0, 0, 0, 0);
}

struct utsname {
	char sysname[65];
	char nodename[65];
	char release[65];
	char version[65];
	char machine[65];
	char domainname[65];
};

static inline int sys_uname(struct utsname *u)
{
	return (int)__syscall6(SYS_uname, (long)u, 0, 0, 0, 0, 0);
}

#endif
