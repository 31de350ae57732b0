/* fault-exact: precise state at a faulting access. `probe_load` is one basic block, no
 * branches: increment RAM counter `before_load`, load a word through the pointer argument,
 * increment RAM counter `after_load`. It runs 10 times on RAM, once on the CLINT mtime
 * register 0x0200_BFF8 (a device: a translator that committed the load to RAM faults there and
 * must resume exactly at the load, without repeating the first increment), then 5 times on RAM.
 * `probe_store` does the same around a byte store, once aimed at the UART THR (prints '!').
 * Each counter must equal the number of calls. Only counters are printed (never mtime).
 * qemu-riscv32 has no devices: expected files are written by hand. */
#include "runtime.h"

uint32_t before_load, after_load, before_store, after_store;

__asm__(".text\n"
	".p2align 2\n"
	".globl probe_load\n"
	"probe_load:\n" /* uint32_t probe_load(const volatile uint32_t *p) */
	"	lui t0, %hi(before_load)\n"
	"	lw t1, %lo(before_load)(t0)\n"
	"	addi t1, t1, 1\n"
	"	sw t1, %lo(before_load)(t0)\n"
	"	lw a1, 0(a0)\n"
	"	lui t2, %hi(after_load)\n"
	"	lw t3, %lo(after_load)(t2)\n"
	"	addi t3, t3, 1\n"
	"	sw t3, %lo(after_load)(t2)\n"
	"	mv a0, a1\n"
	"	ret\n"
	".p2align 2\n"
	".globl probe_store\n"
	"probe_store:\n" /* void probe_store(volatile uint8_t *p, uint32_t byte) */
	"	lui t0, %hi(before_store)\n"
	"	lw t1, %lo(before_store)(t0)\n"
	"	addi t1, t1, 1\n"
	"	sw t1, %lo(before_store)(t0)\n"
	"	sb a1, 0(a0)\n"
	"	lui t2, %hi(after_store)\n"
	"	lw t3, %lo(after_store)(t2)\n"
	"	addi t3, t3, 1\n"
	"	sw t3, %lo(after_store)(t2)\n"
	"	ret\n");

extern uint32_t probe_load(const volatile uint32_t *p);
extern void probe_store(volatile uint8_t *p, uint32_t byte);

#define MTIME ((const volatile uint32_t *)0x0200BFF8u)
#define UART_THR ((volatile uint8_t *)0x10000000u)

static uint32_t words[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static uint8_t sink[16];

int main(void)
{
	uint32_t i, sum = 0, calls = 0;
	for (i = 0; i < 10; i++, calls++)
		sum += probe_load(&words[i]);
	(void)probe_load(MTIME); /* the device load: its value is not printed */
	calls++;
	for (i = 10; i < 15; i++, calls++)
		sum += probe_load(&words[i]);
	printf("load:  calls %u, before_load %u, after_load %u, sum of RAM loads %u\n", calls, before_load,
	       after_load, sum);

	for (i = 0; i < 10; i++)
		probe_store(&sink[i], 'a' + i);
	fflush_stdout();
	probe_store(UART_THR, '!');
	probe_store(UART_THR, '\n');
	for (i = 10; i < 15; i++)
		probe_store(&sink[i], 'a' + i);
	printf("store: calls %u, before_store %u, after_store %u, sink %.15s\n", 17u, before_store,
	       after_store, (const char *)sink);
	return before_load == calls && after_load == calls && before_store == 17 && after_store == 17 ? 0
												     : 1;
}
