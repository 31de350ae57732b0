/* imac-hello: hello world built with the stock toolchain and picolibc for rv32imac
 * (compressed code): printf, puts, the arguments, uname, getentropy and a line on
 * stderr. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "linux.h"

int main(int argc, char **argv)
{
	struct utsname u;
	unsigned char key[16];
	int i;

	printf("Hello, world!\n");
	puts("from picolibc, compiled for rv32imac");
	printf("argc = %d\n", argc);
	for (i = 1; i < argc; i++)
		printf("argv[%d] = \"%s\" (%zu bytes)\n", i, argv[i], strlen(argv[i]));
	if (sys_uname(&u) == 0)
		printf("uname: %s %s\n", u.sysname, u.machine);
	memset(key, 0, sizeof key);
	printf("getentropy: %s\n", getentropy(key, sizeof key) == 0 ? "ok" : "failed");
	/* Random bytes must not stay in memory: runs are compared by a hash of it. */
	memset(key, 0, sizeof key);
	__asm__ volatile("" : : "r"(key) : "memory");
	fprintf(stderr, "a line on stderr\n");
	return 0;
}
