/* bad-write-code: prints a line, then stores a nop over the first instruction of main. Text is
 * mapped read+execute only: SIGSEGV, 139. */
#include "runtime.h"

int main(void)
{
	volatile uint32_t *code = (volatile uint32_t *)(void *)main;
	printf("about to store to the text section\n");
	*code = 0x00000013u; /* addi x0, x0, 0 */
	printf("stored to the text section (wrong)\n");
	return 1;
}
