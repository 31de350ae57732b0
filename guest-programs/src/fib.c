/* fib: Fibonacci numbers, iteratively (32- and 64-bit) and recursively; cross-checked. */
#include "runtime.h"

static uint32_t fib_rec(uint32_t n)
{
	return n < 2 ? n : fib_rec(n - 1) + fib_rec(n - 2);
}

static uint32_t fib_iter(uint32_t n)
{
	uint32_t a = 0, b = 1;
	while (n--) {
		uint32_t t = a + b;
		a = b;
		b = t;
	}
	return a;
}

int main(void)
{
	uint64_t a = 0, b = 1;
	uint32_t n;
	int bad = 0;
	for (n = 0; n <= 47; n++)
		printf("fib(%u) = %u\n", n, fib_iter(n));
	for (n = 0; n <= 90; n++) {
		if (n % 10 == 0)
			printf("fib64(%u) = %llu (0x%016llx)\n", n, (unsigned long long)a,
			       (unsigned long long)a);
		uint64_t t = a + b;
		a = b;
		b = t;
	}
	for (n = 0; n <= 24; n++) {
		uint32_t r = fib_rec(n);
		if (r != fib_iter(n)) {
			printf("mismatch at %u: %u vs %u\n", n, r, fib_iter(n));
			bad = 1;
		}
	}
	printf("fib_rec(24) = %u\n", fib_rec(24));
	printf("%s\n", bad ? "FAIL" : "recursive and iterative agree");
	return bad;
}
