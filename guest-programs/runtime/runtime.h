/* Tiny freestanding runtime for rvdbt guest programs (RV32IM, ilp32, Linux syscall ABI). */
#ifndef RVDBT_RUNTIME_H
#define RVDBT_RUNTIME_H

#include <stdarg.h>
#include <stddef.h>

/* Own fixed-width types (the toolchain's <stdint.h> makes uint32_t a `long`, which would make
 * every "%u"/"%x" a -Wformat error): int is 32 bits on ilp32. */
typedef signed char int8_t;
typedef unsigned char uint8_t;
typedef short int16_t;
typedef unsigned short uint16_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef long long int64_t;
typedef unsigned long long uint64_t;
#if defined(__x86_64__)
/* Native x86-64 builds of the benchmarks (benches/compare.py): pointers are 64 bits. */
typedef long intptr_t;
typedef unsigned long uintptr_t;
#else
typedef int intptr_t;
typedef unsigned int uintptr_t;
#endif
#define INT32_MIN (-2147483647 - 1)
#define INT32_MAX 2147483647
#define UINT32_MAX 0xffffffffu

/* Linux RISC-V syscall numbers used by the runtime. */
#define SYS_close 57
#define SYS_read 63
#define SYS_write 64
#define SYS_fstat 80
#define SYS_exit 93
#define SYS_exit_group 94
#define SYS_clock_gettime 113
#define SYS_gettimeofday 169
#define SYS_brk 214

#define ENOSYS 38
#define EBADF 9

/* Raw system calls: return the kernel's value (negative errno on failure). */
long syscall0(long n);
long syscall1(long n, long a0);
long syscall3(long n, long a0, long a1, long a2);
long syscall6(long n, long a0, long a1, long a2, long a3, long a4, long a5);

long sys_read(int fd, void *buf, size_t len);
long sys_write(int fd, const void *buf, size_t len);
long sys_close(int fd);
long sys_fstat(int fd, void *statbuf);
long sys_clock_gettime(int clk, void *ts);
long sys_gettimeofday(void *tv, void *tz);
long sys_brk(uintptr_t addr);
void sys_exit(int code) __attribute__((noreturn));

/* Process exit: flushes stdout first. */
void exit(int code) __attribute__((noreturn));
void abort(void) __attribute__((noreturn));

/* Output (stdout is buffered; flushed at '\n', when full, and at exit). */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int putchar(int c);
int puts(const char *s);
void fflush_stdout(void);
/* Unbuffered write of a string to stderr. */
void eputs(const char *s);

/* Heap over brk. */
void *malloc(size_t n);
void free(void *p);
void *calloc(size_t n, size_t m);
void *realloc(void *p, size_t n);
void *sbrk(intptr_t inc);

/* Strings. */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* The count argument of a benchmark program: argv[1] as a decimal number in [min, max],
 * or def without an argument; anything else prints the usage line of program `name`
 * and exits with status 2. */
uint32_t parse_count(int argc, char **argv, const char *name, uint32_t def, uint32_t min, uint32_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
char *strrchr(const char *s, int c);
char *strcpy(char *dst, const char *src);

#endif
