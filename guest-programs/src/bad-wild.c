/* bad-wild: prints a line, then loads a word from 0x4000_0000, where nothing is mapped (it is
 * between the UART window and the stack; the image and its heap start at 0x8000_0000).
 * SIGSEGV: 139. */
#include "runtime.h"

int main(void)
{
	volatile uint32_t *wild = (volatile uint32_t *)0x40000000u;
	printf("about to load from 0x40000000\n");
	printf("loaded %08x (wrong)\n", *wild);
	return 1;
}
