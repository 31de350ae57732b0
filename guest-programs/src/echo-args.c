/* echo-args: prints argc and every argument (argv[0] as its basename, since the path the
 * test harness uses differs between runs), checks that argv[argc] is NULL and that envp
 * follows it; exits with argc - 1 (3 for the arguments in expected/echo-args.args). */
#include "runtime.h"

static const char *basename(const char *p)
{
	const char *slash = strrchr(p, '/');
	return slash ? slash + 1 : p;
}

int main(int argc, char **argv, char **envp)
{
	int i;
	printf("argc=%d\n", argc);
	printf("argv[0]=%s\n", argc > 0 ? basename(argv[0]) : "(none)");
	for (i = 1; i < argc; i++)
		printf("argv[%d]=%s (len %u)\n", i, argv[i], (unsigned)strlen(argv[i]));
	printf("argv[argc] is %s\n", argv[argc] == NULL ? "NULL" : "not NULL");
	printf("envp follows argv: %s\n", envp == argv + argc + 1 ? "yes" : "no");
	return argc - 1;
}
