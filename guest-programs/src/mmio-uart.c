/* mmio-uart: bare-metal style output through the 16550 UART of QEMU's virt machine (THR at
 * 0x1000_0000, LSR at 0x1000_0005, bit 5 = THR empty), then exit through the SiFive test
 * finisher at 0x0010_0000 by writing (7 << 16) | 0x3333: exit code 7. Uses no syscalls
 * unless the finisher does not stop the machine (then: exit(100)).
 * qemu-riscv32 (Linux user mode) has no devices: expected files are written by hand. */
#include "runtime.h"

#define UART_BASE 0x10000000u
#define UART_THR (*(volatile uint8_t *)(UART_BASE + 0))
#define UART_LSR (*(volatile uint8_t *)(UART_BASE + 5))
#define LSR_THRE 0x20u
#define FINISHER (*(volatile uint32_t *)0x00100000u)
#define FINISHER_FAIL 0x3333u

static void uart_putc(char c)
{
	while (!(UART_LSR & LSR_THRE))
		;
	UART_THR = (uint8_t)c;
}

static void uart_puts(const char *s)
{
	while (*s)
		uart_putc(*s++);
}

int main(void)
{
	unsigned i;
	uart_puts("Hello from the UART!\n");
	for (i = 0; i < 3; i++) {
		uart_puts("line ");
		uart_putc((char)('0' + i));
		uart_putc('\n');
	}
	uart_puts("exiting through the test finisher with code 7\n");
	FINISHER = (7u << 16) | FINISHER_FAIL;
	exit(100); /* not reached when the finisher works */
}
