/* jit-loop: a JIT inside the guest. N rounds (argument; default 2000): generate a small
 * function f(x) = ((x + a) * m ^ k) + round into an RWX area (the .smc segment, as the smc
 * program has), make it visible with fence.i, call it 200 times and fold the results into
 * a checksum. Each round overwrites the code the previous round ran hot, so a translator
 * that keeps stale code, or drops every translation at each fence.i, shows here.
 * Prints the checksum and a few sample values; every result is checked against the same
 * function in C (exit 1 on a mismatch). */
#include "runtime.h"

#define DEFAULT_ROUNDS 2000u
#define CALLS 200u

__asm__(".pushsection .smc,\"awx\",@progbits\n"
	".p2align 2\n"
	".globl jit_code\n"
	"jit_code:\n"
	"	.space 4 * 32\n"
	".popsection\n");

extern uint32_t jit_code[32];
typedef uint32_t (*fn1)(uint32_t);

#define A0 10u
#define A1 11u
#define RET 0x00008067u /* jalr x0, 0(ra) */

static uint32_t i_type(uint32_t op, int32_t imm, uint32_t rs1, uint32_t f3, uint32_t rd)
{
	return ((uint32_t)imm & 0xFFFu) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op;
}
static uint32_t r_type(uint32_t f7, uint32_t rs2, uint32_t rs1, uint32_t f3, uint32_t rd)
{
	return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | 0x33u;
}

/* a0 = ((a0 + a) * m ^ k) + r, with a, m, k, r small immediates (12 bits, signed) */
static void generate(int32_t a, int32_t m, int32_t k, int32_t r)
{
	unsigned n = 0;
	jit_code[n++] = i_type(0x13, a, A0, 0, A0);          /* addi a0, a0, a */
	jit_code[n++] = i_type(0x13, m, 0, 0, A1);           /* li a1, m */
	jit_code[n++] = r_type(1, A1, A0, 0, A0);            /* mul a0, a0, a1 */
	jit_code[n++] = i_type(0x13, k, A0, 4, A0);          /* xori a0, a0, k */
	jit_code[n++] = i_type(0x13, r, A0, 0, A0);          /* addi a0, a0, r */
	jit_code[n++] = RET;
	__asm__ volatile(".option push\n.option arch, +zifencei\nfence.i\n.option pop" ::: "memory");
}

static uint32_t reference(uint32_t x, int32_t a, int32_t m, int32_t k, int32_t r)
{
	return ((x + (uint32_t)a) * (uint32_t)m ^ (uint32_t)k) + (uint32_t)r;
}

int main(int argc, char **argv)
{
	uint32_t rounds = parse_count(argc, argv, "rounds", DEFAULT_ROUNDS, 1, 100000000);
	fn1 f = (fn1)(void *)jit_code;
	uint32_t round, i, sum = 0, bad = 0;

	for (round = 0; round < rounds; round++) {
		int32_t a = (int32_t)(round % 2000) - 1000, m = (int32_t)(round * 7 % 1000) + 3;
		int32_t k = (int32_t)(round * 13 % 2047), r = (int32_t)(round % 5);
		generate(a, m, k, r);
		for (i = 0; i < CALLS; i++) {
			uint32_t v = f(i);
			bad += v != reference(i, a, m, k, r);
			sum = (sum ^ v) * 16777619u;
		}
		if (round % (rounds / 4 + 1) == 0)
			printf("round %u: f(7) = %u\n", round, f(7));
	}
	printf("%u rounds, %u calls each: checksum %08x, %u mismatches\n", rounds, CALLS, sum, bad);
	return bad != 0;
}
