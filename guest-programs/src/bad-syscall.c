/* bad-syscall: calls syscall number 999, which does not exist; the result must be -ENOSYS
 * (-38). Prints "ENOSYS ok" and exits 0 if so, otherwise prints the value and exits 1. */
#include "runtime.h"

int main(void)
{
	long r = syscall6(999, 1, 2, 3, 4, 5, 6);
	if (r == -ENOSYS) {
		printf("ENOSYS ok\n");
		return 0;
	}
	printf("syscall 999 returned %ld, expected %d\n", r, -ENOSYS);
	return 1;
}
