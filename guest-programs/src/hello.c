/* hello: the smallest useful guest program. */
#include "runtime.h"

int main(void)
{
	printf("Hello, world!\n");
	return 0;
}
