/* smc: self-modifying code. Functions live in an RWX section (.smc, its own PT_LOAD segment);
 * the program rewrites their instructions between rounds (store the new instruction word,
 * then fence.i) and calls them after each rewrite, many times, so a translator has the old
 * code translated and hot when it changes. Part 1 patches the single instruction of
 * `patched` (addi a0, a0, K and other ALU forms); part 2 writes whole functions of varying
 * length into `jit_area`. */
#include "runtime.h"

/* uint32_t patched(uint32_t x): one instruction, rewritten by the program, then ret. */
__asm__(".pushsection .smc,\"awx\",@progbits\n"
	".p2align 2\n"
	".globl patched\n"
	"patched:\n"
	"	addi a0, a0, 1\n"
	"	ret\n"
	".p2align 2\n"
	".globl jit_area\n"
	"jit_area:\n"
	"	li a0, -1\n"
	"	ret\n"
	"	.space 4 * 62\n"
	".popsection\n");

extern uint32_t patched(uint32_t x);
extern uint32_t jit_area[64];
typedef uint32_t (*fn1)(uint32_t);

#define A0 10u
#define OP_IMM 0x13u
#define OP 0x33u
#define RET 0x00008067u /* jalr x0, 0(ra) */

static uint32_t i_type(int32_t imm, uint32_t rs1, uint32_t f3, uint32_t rd)
{
	return ((uint32_t)imm & 0xFFFu) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | OP_IMM;
}
static uint32_t r_type(uint32_t f7, uint32_t rs2, uint32_t rs1, uint32_t f3, uint32_t rd)
{
	return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | OP;
}

static void sync_icache(void) { __asm__ volatile(".option push\n.option arch, +zifencei\nfence.i\n.option pop" ::: "memory"); }

static void patch(volatile uint32_t *where, uint32_t insn)
{
	*where = insn;
	sync_icache();
}

static uint32_t run(fn1 f, uint32_t n)
{
	uint32_t i, acc = 0;
	for (i = 0; i < n; i++)
		acc = acc * 3u + f(i);
	return acc;
}

int main(void)
{
	static const char *const names[] = {
		"addi a0, a0, 1",    "addi a0, a0, 100",   "addi a0, a0, -5",
		"addi a0, a0, 2047", "addi a0, a0, -2048", "slli a0, a0, 3",
		"xori a0, a0, 0x555", "mul a0, a0, a0",    "addi a0, a0, 1 (again)",
	};
	uint32_t insns[9];
	volatile uint32_t *code = (volatile uint32_t *)(void *)patched;
	fn1 f = patched, g = (fn1)(void *)jit_area;
	unsigned r, len;

	insns[0] = i_type(1, A0, 0, A0);
	insns[1] = i_type(100, A0, 0, A0);
	insns[2] = i_type(-5, A0, 0, A0);
	insns[3] = i_type(2047, A0, 0, A0);
	insns[4] = i_type(-2048, A0, 0, A0);
	insns[5] = i_type(3, A0, 1, A0);     /* slli */
	insns[6] = i_type(0x555, A0, 4, A0); /* xori */
	insns[7] = r_type(1, A0, A0, 0, A0); /* mul */
	insns[8] = i_type(1, A0, 0, A0);

	printf("part 1: one patched instruction\n");
	printf("initial word %08x, f(10) = %u\n", *code, f(10));
	for (r = 0; r < sizeof names / sizeof names[0]; r++) {
		patch(code, insns[r]);
		printf("round %u: %-24s word %08x f(10)=%d sum=%08x\n", r, names[r], *code, (int32_t)f(10),
		       run(f, 1000));
	}

	printf("part 2: generated functions of varying length\n");
	printf("initial jit_area(0) = %d\n", (int32_t)g(0));
	for (len = 1; len <= 40; len += 13) {
		/* a0 += 1; a0 += 2; ... a0 += len; ret */
		unsigned i;
		for (i = 0; i < len; i++)
			jit_area[i] = i_type((int32_t)(i + 1), A0, 0, A0);
		jit_area[len] = RET;
		sync_icache();
		printf("len %2u: g(0)=%u g(1000)=%u sum=%08x\n", len, g(0), g(1000), run(g, 500));
	}
	/* shrink back to a constant function; the old, longer code must not run any more */
	jit_area[0] = i_type(42, 0, 0, A0); /* li a0, 42 */
	jit_area[1] = RET;
	sync_icache();
	printf("constant: g(7)=%u sum=%08x\n", g(7), run(g, 100));
	return 0;
}
