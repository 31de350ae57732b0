/* imac-jit: code built at run time. f(x) = ((x * m + a) ^ k) >> s, as RISC-V code
 * (compressed and 32-bit instructions) written into an anonymous mapping, published
 * with mprotect(PROT_READ | PROT_EXEC) and riscv_flush_icache, and called; then
 * rewritten with other constants (mprotect back to writable), patched in place in an
 * RWX mapping (flushed each time, once with fence.i), and built again in a fresh
 * mapping after munmap. Every result is checked against the same function in C. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "linux.h"

typedef uint32_t (*fn)(uint32_t);

struct spec {
	int32_t m, a, k;
	int s;
};

/* Little-endian code emitter. */
struct code {
	uint8_t *p;
	size_t n;
};

static void emit16(struct code *c, uint16_t h)
{
	c->p[c->n++] = (uint8_t)h;
	c->p[c->n++] = (uint8_t)(h >> 8);
}

static void emit32(struct code *c, uint32_t w)
{
	emit16(c, (uint16_t)w);
	emit16(c, (uint16_t)(w >> 16));
}

#define A0 10
#define A1 11
#define A5 15

static uint32_t i_type(uint32_t op, uint32_t f3, int rd, int rs1, int32_t imm)
{
	return op | (uint32_t)rd << 7 | f3 << 12 | (uint32_t)rs1 << 15 | ((uint32_t)imm & 0xfff) << 20;
}
static uint32_t r_type(uint32_t f7, int rs2, int rs1, uint32_t f3, int rd)
{
	return 0x33 | (uint32_t)rd << 7 | f3 << 12 | (uint32_t)rs1 << 15 | (uint32_t)rs2 << 20 | f7 << 25;
}

/* li rd, v: lui + addi (32-bit), or c.li when it fits 6 bits. */
static void li(struct code *c, int rd, int32_t v)
{
	if (v >= -32 && v < 32) {
		emit16(c, (uint16_t)(0x4001 | ((v & 0x20) << 7) | rd << 7 | (v & 0x1f) << 2)); /* c.li */
		return;
	}
	int32_t lo = (int32_t)((uint32_t)v << 20) >> 20;
	uint32_t hi = ((uint32_t)v - (uint32_t)lo) & 0xfffff000u;
	emit32(c, 0x37 | (uint32_t)rd << 7 | hi);   /* lui */
	emit32(c, i_type(0x13, 0, rd, rd, lo));     /* addi */
}

/* f(x) = ((x * m + a) ^ k) >> s (arithmetic), into c. */
static void compile(struct code *c, const struct spec *sp)
{
	c->n = 0;
	li(c, A1, sp->m);
	emit32(c, r_type(1, A1, A0, 0, A0));              /* mul a0, a0, a1 */
	li(c, A5, sp->a);
	emit16(c, (uint16_t)(0x9002 | A0 << 7 | A5 << 2)); /* c.add a0, a5 */
	li(c, A1, sp->k);
	emit16(c, (uint16_t)(0x8c21 | (A0 - 8) << 7 | (A1 - 8) << 2)); /* c.xor a0, a1 */
	if (sp->s)
		emit16(c, (uint16_t)(0x8401 | (A0 - 8) << 7 | (sp->s & 0x1f) << 2)); /* c.srai a0, s */
	emit16(c, 0x8082); /* c.jr ra */
}

static uint32_t reference(uint32_t x, const struct spec *sp)
{
	uint32_t v = (x * (uint32_t)sp->m + (uint32_t)sp->a) ^ (uint32_t)sp->k;
	return (uint32_t)((int32_t)v >> sp->s);
}

/* Calls f for 2000 inputs; returns a hash, counting mismatches in *bad. */
static uint32_t run(fn f, const struct spec *sp, unsigned *bad)
{
	uint32_t h = 0, x;
	for (x = 0; x < 2000; x++) {
		uint32_t got = f(x * 2654435761u);
		if (got != reference(x * 2654435761u, sp))
			(*bad)++;
		h = h * 31 + got;
	}
	return h;
}

static void flush(void *p, size_t n)
{
	sys_riscv_flush_icache(p, (char *)p + n);
}

int main(void)
{
	static const struct spec specs[] = {
		{ 3, 7, 0, 0 }, { -5, 1000, 0x55, 3 }, { 65537, -12345, 0x7fffffff, 31 }, { 1, 0, -1, 1 },
	};
	unsigned bad = 0, i;
	struct code c;

	/* RW mapping; publish by mprotect(R|X) + flush; rewrite after mprotect(R|W). */
	c.p = sys_mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
	if (c.p == MAP_FAILED) {
		printf("mmap failed\n");
		return 1;
	}
	for (i = 0; i < 4; i++) {
		if (sys_mprotect(c.p, 8192, PROT_READ | PROT_WRITE) != 0)
			printf("mprotect rw failed\n");
		compile(&c, &specs[i]);
		if (sys_mprotect(c.p, 8192, PROT_READ | PROT_EXEC) != 0)
			printf("mprotect rx failed\n");
		flush(c.p, c.n);
		printf("spec %u (%zu bytes of code): %08lx\n", i, c.n, (unsigned long)run((fn)(void *)c.p, &specs[i], &bad));
	}
	sys_munmap(c.p, 8192);

	/* RWX mapping patched in place: the multiplier's c.li is rewritten each round. */
	c.p = sys_mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS);
	{
		struct spec sp = { 1, 5, 0x0f0f, 2 };
		compile(&c, &sp);
		for (i = 0; i < 8; i++) {
			sp.m = (int32_t)i * 4 - 13;
			emit16(&(struct code){ c.p, 0 }, (uint16_t)(0x4001 | ((sp.m & 0x20) << 7) | A1 << 7 | (sp.m & 0x1f) << 2));
			if (i == 5)
				__asm__ volatile(".option push\n.option arch, +zifencei\nfence.i\n.option pop" ::: "memory");
			else
				flush(c.p, 2);
			printf("patched m=%d: %08lx\n", (int)sp.m, (unsigned long)run((fn)(void *)c.p, &sp, &bad));
		}
	}
	sys_munmap(c.p, 4096);

	/* A fresh mapping (perhaps at the same address) with new code. */
	c.p = sys_mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
	compile(&c, &specs[1]);
	sys_mprotect(c.p, 4096, PROT_READ | PROT_EXEC);
	flush(c.p, c.n);
	printf("fresh mapping: %08lx\n", (unsigned long)run((fn)(void *)c.p, &specs[1], &bad));
	printf("%u mismatches\n", bad);
	return bad != 0;
}
