/* bad-illegal: prints a line, then executes the all-ones word 0xffffffff, which is not a valid
 * instruction (nor a valid 16-bit or 32-bit encoding). A Linux process dies of SIGILL: 132. */
#include "runtime.h"

int main(void)
{
	printf("about to execute an illegal instruction\n");
	__asm__ volatile(".word 0xffffffff" ::: "memory");
	printf("still alive after the illegal instruction (wrong)\n");
	return 1;
}
