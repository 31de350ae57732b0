/* bad-ebreak: prints a line, then executes ebreak. A Linux process without a debugger dies of
 * SIGTRAP: 133. */
#include "runtime.h"

int main(void)
{
	printf("about to execute ebreak\n");
	__asm__ volatile("ebreak" ::: "memory");
	printf("still alive after ebreak (wrong)\n");
	return 1;
}
