/* muldiv: the eight M-extension instructions on edge-case operands (division by zero,
 * INT_MIN / -1, negative operands, large unsigned values), through inline asm so that the
 * compiler cannot fold them. Prints a table for selected pairs and a digest over all pairs. */
#include "runtime.h"

#define OP(name)                                                                  \
	static uint32_t op_##name(uint32_t a, uint32_t b)                             \
	{                                                                             \
		uint32_t r;                                                               \
		__asm__ volatile(#name " %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));         \
		return r;                                                                 \
	}
OP(mul)
OP(mulh)
OP(mulhsu)
OP(mulhu)
OP(div)
OP(divu)
OP(rem)
OP(remu)

static const uint32_t vals[] = {
	0, 1, 2, 3, 7, 0xFFFFFFFFu /* -1 */, 0xFFFFFFFEu /* -2 */, 0xFFFFFFF9u /* -7 */,
	0x80000000u /* INT_MIN */, 0x7FFFFFFFu /* INT_MAX */, 0x80000001u, 0x12345678u,
	0xDEADBEEFu, 0x0000FFFFu, 0x00010000u, 0xFFFF0000u,
};
#define NV (sizeof vals / sizeof vals[0])

static const struct {
	uint32_t a, b;
} pairs[] = {
	{7, 2},
	{0xFFFFFFF9u, 2},          /* -7 / 2 */
	{7, 0xFFFFFFFEu},          /* 7 / -2 */
	{0xFFFFFFF9u, 0xFFFFFFFEu}, /* -7 / -2 */
	{7, 0},                    /* division by zero */
	{0xFFFFFFF9u, 0},
	{0, 0},
	{0x80000000u, 0xFFFFFFFFu}, /* INT_MIN / -1: overflow */
	{0x80000000u, 1},
	{0x80000000u, 0x80000000u},
	{0xFFFFFFFFu, 0xFFFFFFFFu},
	{0x7FFFFFFFu, 0x7FFFFFFFu},
	{0x80000000u, 0x7FFFFFFFu},
	{0xFFFFFFFFu, 1},
	{0x12345678u, 0xDEADBEEFu},
	{0xDEADBEEFu, 0x12345678u},
	{0x0000FFFFu, 0x00010000u},
	{0xFFFF0000u, 0xFFFF0000u},
};

int main(void)
{
	uint32_t i, j, h = 2166136261u;
	printf("%-8s %-8s | %-8s %-8s %-8s %-8s | %-8s %-8s %-8s %-8s\n", "a", "b", "mul", "mulh",
	       "mulhsu", "mulhu", "div", "divu", "rem", "remu");
	for (i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		uint32_t a = pairs[i].a, b = pairs[i].b;
		printf("%08x %08x | %08x %08x %08x %08x | %08x %08x %08x %08x\n", a, b, op_mul(a, b),
		       op_mulh(a, b), op_mulhsu(a, b), op_mulhu(a, b), op_div(a, b), op_divu(a, b),
		       op_rem(a, b), op_remu(a, b));
	}
	printf("signed view: -7/2=%d -7%%2=%d 7/-2=%d 7%%-2=%d INT_MIN/-1=%d INT_MIN%%-1=%d x/0=%d x%%0=%d\n",
	       (int32_t)op_div(0xFFFFFFF9u, 2), (int32_t)op_rem(0xFFFFFFF9u, 2),
	       (int32_t)op_div(7, 0xFFFFFFFEu), (int32_t)op_rem(7, 0xFFFFFFFEu),
	       (int32_t)op_div(0x80000000u, 0xFFFFFFFFu), (int32_t)op_rem(0x80000000u, 0xFFFFFFFFu),
	       (int32_t)op_div(12345, 0), (int32_t)op_rem(12345, 0));
	for (i = 0; i < NV; i++)
		for (j = 0; j < NV; j++) {
			uint32_t a = vals[i], b = vals[j];
			uint32_t r[8] = {op_mul(a, b), op_mulh(a, b), op_mulhsu(a, b), op_mulhu(a, b),
					 op_div(a, b), op_divu(a, b), op_rem(a, b), op_remu(a, b)};
			uint32_t k;
			for (k = 0; k < 8; k++)
				h = (h ^ r[k]) * 16777619u;
		}
	printf("digest over %u x %u pairs: %08x\n", (unsigned)NV, (unsigned)NV, h);
	return 0;
}
