/* sieve: Eratosthenes over [0, 1000000) in a 1 MB bss array. */
#include "runtime.h"

#define N 1000000u

static uint8_t composite[N];

int main(void)
{
	uint32_t i, j, count = 0, sum = 0;
	uint32_t last[8], nlast = 0;
	composite[0] = composite[1] = 1;
	for (i = 2; i * i < N; i++)
		if (!composite[i])
			for (j = i * i; j < N; j += i)
				composite[j] = 1;
	for (i = 0; i < N; i++) {
		if (!composite[i]) {
			count++;
			sum += i;
			last[nlast++ % 8] = i;
		}
	}
	printf("primes below %u: %u\n", N, count);
	printf("sum of primes mod 2^32: %u\n", sum);
	printf("last 8:");
	for (i = 0; i < 8; i++)
		printf(" %u", last[(nlast + i) % 8]);
	printf("\n");
	printf("first 10:");
	for (i = 0, j = 0; j < 10; i++)
		if (!composite[i]) {
			printf(" %u", i);
			j++;
		}
	printf("\n");
	return count == 78498 ? 0 : 1;
}
