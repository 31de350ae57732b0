/* imac-printf: picolibc's printf with every conversion, flag, width, precision and
 * length modifier, on integers at their limits and on doubles (soft float: NaN,
 * infinities, -0.0, denormals, rounding), plus snprintf truncation and strtod/strtol
 * round trips. */
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char text[] = "static";

int main(void)
{
	static const int ints[] = { 0, 1, -1, 42, -42, 255, 65535, INT_MAX, INT_MIN };
	static const double dbls[] = { 0.0, -0.0, 1.0, -1.5, 0.1, 2.5, 3.14159265358979, 1e10, 1.5e-7,
				       123456.789, 1e300, DBL_MAX, DBL_MIN, 5e-324, 0.5, 1.0 / 3.0 };
	char buf[64];
	volatile size_t small = 8; /* not a constant: no truncation warning */
	unsigned i;
	int n;

	for (i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		int v = ints[i];
		printf("[%d] [%i] [%u] [%o] [%x] [%X] [%#x] [%#o]\n", v, v, (unsigned)v, (unsigned)v, (unsigned)v,
		       (unsigned)v, (unsigned)v, (unsigned)v);
		printf("[%8d] [%-8d] [%08d] [%+d] [% d] [%.5d] [%8.3d] [%-+8d] [%*d] [%-*d]\n", v, v, v, v, v, v, v, v,
		       6, v, 6, v);
		printf("[%hhd] [%hhu] [%hd] [%hu] [%ld] [%lx]\n", (signed char)v, (unsigned char)v, (short)v,
		       (unsigned short)v, (long)v, (unsigned long)v);
	}
	printf("[%lld] [%llu] [%llx] [%llo]\n", LLONG_MIN, ULLONG_MAX, 0x0123456789abcdefULL, 01234567012345670ULL);
	printf("[%jd] [%zu] [%td] [%" PRId64 "] [%" PRIx32 "]\n", (intmax_t)-7, sizeof(double), (ptrdiff_t)-3,
	       (int64_t)1 << 40, (uint32_t)0xdeadbeef);
	printf("[%c] [%3c] [%-3c] [%%] [%s] [%10s] [%-10s] [%.3s] [%*.*s]\n", 'x', 'y', 'z', text, text, text, text,
	       8, 2, text);
	printf("[%p] [%s]\n", (void *)text, text == (const char *)(uintptr_t)text ? "same" : "different");

	for (i = 0; i < sizeof dbls / sizeof dbls[0]; i++) {
		double d = dbls[i];
		printf("[%f] [%.0f] [%.10f] [%e] [%.3E] [%g] [%G] [%.12g]\n", d, d, d, d, d, d, d, d);
		printf("[%a] [%A] [%12.4f] [%-12.3e] [%+g] [% g] [%#g] [%#.0f]\n", d, d, d, d, d, d, d, d);
	}
	printf("[%f] [%f] [%f] [%e] [%g] [%5.1f] [%-6f|]\n", INFINITY, -INFINITY, NAN, -INFINITY, NAN, INFINITY, NAN);
	printf("[%.20f] [%.17g] [%.1f] [%.1f] [%.0f] [%.0f]\n", 0.1, 0.1, 0.25, 0.35, 0.5, 1.5);

	n = snprintf(buf, small, "%d-%s", 1234567, "truncated");
	printf("snprintf: %d \"%s\"\n", n, buf);
	n = snprintf(NULL, 0, "%08.3f", -3.14159);
	printf("snprintf(NULL): %d\n", n);
	n = sprintf(buf, "%x:%o:%c", 48879, 8, 'A');
	printf("sprintf: %d \"%s\"\n", n, buf);

	for (i = 0; i < sizeof dbls / sizeof dbls[0]; i++) {
		char *end;
		snprintf(buf, sizeof buf, "%.17g", dbls[i]);
		double back = strtod(buf, &end);
		printf("%s -> %s%s\n", buf, memcmp(&back, &dbls[i], sizeof back) == 0 ? "same" : "DIFFERENT",
		       *end ? " (trailing)" : "");
	}
	printf("strtol: %ld %ld %ld %lu\n", strtol("-123", NULL, 10), strtol("0x7f", NULL, 16), strtol("0777", NULL, 0),
	       strtoul("4294967295", NULL, 10));
	printf("math: %.6f %.6f %.6f %.6f\n", sqrt(2.0), sin(1.0), exp(1.0), log(10.0));
	return 0;
}
