/* bad-jump-data: prints a line, then calls a function whose valid instructions sit in a .data
 * array. Data is mapped read+write without execute: SIGSEGV, 139. */
#include "runtime.h"

static uint32_t code_in_data[2] = {
	0x02a00513u, /* li a0, 42 */
	0x00008067u, /* ret */
};

int main(void)
{
	uint32_t (*f)(void) = (uint32_t(*)(void))(void *)code_in_data;
	printf("about to jump into a data array\n");
	printf("the data array returned %u (wrong)\n", f());
	return 1;
}
