/* mixed-regions: one routine whose loads and stores go through a pointer argument. It is first
 * called 1000 times with a RAM buffer (so a translator commits those accesses to RAM), then
 * with the UART base address 0x1000_0000: the very same load (LSR at +5) and store (THR at +0)
 * instructions now talk to the device and print a line; then RAM again, then exit(0).
 * qemu-riscv32 has no UART: expected files are written by hand. */
#include "runtime.h"

#define UART_BASE 0x10000000u

/* Sends every character of s to the "THR" at p[0], waiting for "LSR" (p[5]) bit 5 first.
 * Returns the number of characters sent. */
static __attribute__((noinline)) uint32_t send(volatile uint8_t *p, const char *s)
{
	uint32_t n = 0;
	while (*s) {
		while (!(p[5] & 0x20))
			;
		p[0] = (uint8_t)*s++;
		n++;
	}
	return n;
}

static uint8_t ram[8] __attribute__((aligned(8)));

int main(void)
{
	uint32_t i, total = 0;
	ram[5] = 0x20; /* "transmitter empty", so send() does not spin on RAM */
	for (i = 0; i < 1000; i++) {
		ram[0] = 0;
		total += send(ram, (i & 1) ? "odd\n" : "even!\n");
	}
	printf("ram phase: %u bytes stored, last byte 0x%02x\n", total, ram[0]);
	fflush_stdout();
	total = send((volatile uint8_t *)UART_BASE, "this line went through the UART\n");
	printf("uart phase: %u bytes\n", total);
	ram[0] = 0;
	total = 0;
	for (i = 0; i < 100; i++)
		total += send(ram, "ram again");
	printf("ram again: %u bytes, last byte '%c'\n", total, ram[0]);
	return 0;
}
