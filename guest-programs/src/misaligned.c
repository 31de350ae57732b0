/* misaligned: halfword and word loads and stores at every offset 0..3 of an aligned buffer,
 * through inline asm (lh/lhu/lw/sh/sw), so the accesses really are misaligned. User-mode
 * Linux (and qemu-riscv32) performs them; the expected output records that behaviour. */
#include "runtime.h"

static uint8_t buf[32] __attribute__((aligned(16)));
static uint8_t pages[8192] __attribute__((aligned(4096))); /* two RAM pages */

static uint32_t load_lh(const void *p)
{
	int32_t r;
	__asm__ volatile("lh %0, 0(%1)" : "=r"(r) : "r"(p) : "memory");
	return (uint32_t)r;
}
static uint32_t load_lhu(const void *p)
{
	uint32_t r;
	__asm__ volatile("lhu %0, 0(%1)" : "=r"(r) : "r"(p) : "memory");
	return r;
}
static uint32_t load_lw(const void *p)
{
	uint32_t r;
	__asm__ volatile("lw %0, 0(%1)" : "=r"(r) : "r"(p) : "memory");
	return r;
}
static void store_sh(void *p, uint32_t v) { __asm__ volatile("sh %0, 0(%1)" : : "r"(v), "r"(p) : "memory"); }
static void store_sw(void *p, uint32_t v) { __asm__ volatile("sw %0, 0(%1)" : : "r"(v), "r"(p) : "memory"); }

static void reset(void)
{
	unsigned i;
	for (i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(0x80 + i * 0x11);
}

static void dump(const char *what)
{
	unsigned i;
	printf("%-14s", what);
	for (i = 0; i < 12; i++)
		printf(" %02x", buf[i]);
	printf("\n");
}

int main(void)
{
	unsigned off;
	reset();
	dump("initial:");
	for (off = 0; off < 4; off++)
		printf("off %u: lh=%08x lhu=%08x lw=%08x\n", off, load_lh(buf + off), load_lhu(buf + off),
		       load_lw(buf + off));
	for (off = 1; off < 4; off++) {
		char label[20];
		reset();
		store_sh(buf + off, 0xA1B2C3D4u);
		snprintf(label, sizeof label, "sh at +%u:", off);
		dump(label);
		reset();
		store_sw(buf + off, 0xA1B2C3D4u);
		snprintf(label, sizeof label, "sw at +%u:", off);
		dump(label);
	}
	/* a word straddling an 8-byte boundary, then a read-modify-write at an odd address */
	reset();
	store_sw(buf + 7, 0x01020304u);
	printf("sw/lw across 8-byte boundary: %08x\n", load_lw(buf + 7));
	store_sw(buf + 5, load_lw(buf + 5) + 0x10101010u);
	dump("rmw at +5:");
	/* accesses that straddle a page boundary (both pages are RAM) */
	for (off = 0; off < 8; off++)
		pages[4092 + off] = (uint8_t)(0x10 + off);
	printf("lw across page boundary: %08x %08x %08x\n", load_lw(pages + 4093), load_lw(pages + 4094),
	       load_lw(pages + 4095));
	printf("lh across page boundary: %08x\n", load_lh(pages + 4095));
	store_sw(pages + 4094, 0xCAFEF00Du);
	store_sh(pages + 4099 - 4, 0xBEEFu);
	printf("after sw at 4094, sh at 4095: %08x %08x\n", load_lw(pages + 4092), load_lw(pages + 4096));
	printf("misaligned accesses: done\n");
	return 0;
}
