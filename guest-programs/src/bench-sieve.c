/* bench-sieve: sieve of Eratosthenes below N * 1000 (argument; default N = 350000, so
 * 350,000,000) over a bit array of the odd numbers (one bit per odd number: 22 MB at
 * the default size, from malloc). Crossing off starts at p*p and steps by 2p. Then counts the
 * primes (a word-wise population count), sums them (walking the set bits of each word),
 * and prints the largest few.
 * Self-checks: pi(10^k) for every power of ten up to the limit against the known values;
 * every number in the last 2000 below the limit and 500 numbers spread over the whole range
 * against trial division. Exit 1 on failure. */
#include "runtime.h"

#define DEFAULT_N 350000u

/* bit i of the array stands for the odd number 2i + 1; a set bit means composite */
static uint32_t *bits;
static uint32_t limit, nbits;

static int is_prime_sieve(uint32_t x)
{
	if (x < 2)
		return 0;
	if (x == 2)
		return 1;
	if ((x & 1u) == 0)
		return 0;
	return !((bits[(x >> 1) >> 5] >> ((x >> 1) & 31u)) & 1u);
}

static int is_prime_trial(uint32_t x)
{
	uint32_t d;
	if (x < 2)
		return 0;
	if (x < 4)
		return 1;
	if ((x & 1u) == 0)
		return 0;
	for (d = 3; d <= x / d; d += 2)
		if (x % d == 0)
			return 0;
	return 1;
}

static uint32_t popcount(uint32_t w)
{
	w = w - ((w >> 1) & 0x55555555u);
	w = (w & 0x33333333u) + ((w >> 2) & 0x33333333u);
	w = (w + (w >> 4)) & 0x0f0f0f0fu;
	return (w * 0x01010101u) >> 24;
}

/* Number of primes below x (x <= limit). */
static uint32_t count_below(uint32_t x)
{
	uint32_t n = x / 2u, full = n / 32u, i, count = x > 2 ? 1u : 0u; /* odd numbers 1..x-1: n of them */
	for (i = 0; i < full; i++)
		count += 32u - popcount(bits[i]);
	if (n % 32u)
		count += (n % 32u) - popcount(bits[full] & ((1u << (n % 32u)) - 1u));
	return count;
}

int main(int argc, char **argv)
{
	static const uint32_t pi_pow10[10] = {0, 4, 25, 168, 1229, 9592, 78498, 664579, 5761455, 50847534};
	uint32_t n = parse_count(argc, argv, "bench-sieve", DEFAULT_N, 1, 4000000u);
	uint32_t words, i, p, count, failures = 0, checked = 0, top[6], ntop = 0, pow10, k;
	uint64_t sum = 0;

	limit = n * 1000u;
	nbits = limit / 2u; /* the odd numbers below limit */
	words = (nbits + 31u) / 32u;
	bits = malloc(words * sizeof *bits);
	if (!bits) {
		printf("FAIL: malloc of %u bytes\n", words * 4u);
		return 1;
	}
	memset(bits, 0, words * sizeof *bits);
	bits[0] = 1u; /* 1 is not prime */
	if (nbits % 32u)
		bits[words - 1] |= ~((1u << (nbits % 32u)) - 1u); /* past the limit */

	for (p = 3; p <= limit / p; p += 2) {
		uint32_t j;
		if ((bits[p >> 6] >> ((p >> 1) & 31u)) & 1u)
			continue;
		for (j = (p * p) >> 1; j < nbits; j += p)
			bits[j >> 5] |= 1u << (j & 31u);
	}

	count = limit > 2 ? 1u : 0u;
	if (limit > 2)
		sum = 2;
	for (i = 0; i < words; i++) {
		uint32_t w = ~bits[i];
		count += popcount(w);
		while (w) {
			uint32_t b = (uint32_t)__builtin_ctz(w);
			sum += 64u * i + 2u * b + 1u;
			w &= w - 1u;
		}
	}
	for (i = limit; i > 0 && ntop < 6; i--)
		if (is_prime_sieve(i - 1))
			top[ntop++] = i - 1;

	/* self-checks */
	for (k = 1, pow10 = 10; k < 10 && pow10 <= limit; k++, pow10 *= 10u) {
		uint32_t c = count_below(pow10);
		if (c != pi_pow10[k]) {
			printf("FAIL: %u primes below %u, want %u\n", c, pow10, pi_pow10[k]);
			failures++;
		}
	}
	if (count != count_below(limit)) {
		printf("FAIL: two counts differ\n");
		failures++;
	}
	for (i = limit > 2000u ? limit - 2000u : 0; i < limit; i++, checked++)
		if (is_prime_sieve(i) != is_prime_trial(i)) {
			printf("FAIL: sieve and trial division disagree on %u\n", i);
			failures++;
		}
	for (i = 0, k = 12345u; i < 500; i++, checked++) {
		uint32_t x;
		k = k * 1664525u + 1013904223u;
		x = k % limit;
		if (is_prime_sieve(x) != is_prime_trial(x)) {
			printf("FAIL: sieve and trial division disagree on %u\n", x);
			failures++;
		}
	}

	printf("bench-sieve: primes below %u\n", limit);
	printf("count %u\n", count);
	printf("sum %llu\n", (unsigned long long)sum);
	printf("largest:");
	for (i = 0; i < ntop; i++)
		printf(" %u", top[i]);
	printf("\n");
	printf("checked %u numbers by trial division\n", checked);
	if (failures) {
		printf("bench-sieve: %u check(s) FAILED\n", failures);
		return 1;
	}
	printf("bench-sieve: ok\n");
	return 0;
}
