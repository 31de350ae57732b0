/* bench-primes: counts the primes below N * 1000 (argument; default N = 12000, so 12,000,000)
 * by trial division, testing each candidate with the 6k +- 1 wheel (divisors 5, 7, 11, 13,
 * ... up to the square root: 32-bit remainders). Along the way it sums them, counts twin
 * primes and finds the largest gap between consecutive primes.
 * Self-checks: the count, sum, twin count and largest gap are recomputed from a byte sieve of
 * Eratosthenes over the same range, and pi(10^k) is checked against the known values. Exit 1
 * on failure. */
#include "runtime.h"

#define DEFAULT_N 12000u

static int is_prime(uint32_t x)
{
	uint32_t d;
	if (x < 2)
		return 0;
	if (x % 2 == 0)
		return x == 2;
	if (x % 3 == 0)
		return x == 3;
	for (d = 5; d * d <= x; d += 6)
		if (x % d == 0 || x % (d + 2) == 0)
			return 0;
	return 1;
}

struct tally {
	uint32_t count, twins, gap, gap_after, last;
	uint64_t sum;
	uint32_t pi_pow10[10];
};

static void add_prime(struct tally *t, uint32_t p)
{
	if (t->count && p - t->last == 2)
		t->twins++;
	if (t->count && p - t->last > t->gap) {
		t->gap = p - t->last;
		t->gap_after = t->last;
	}
	t->count++;
	t->sum += p;
	t->last = p;
}

int main(int argc, char **argv)
{
	static const uint32_t pi_pow10[10] = {0, 4, 25, 168, 1229, 9592, 78498, 664579, 5761455, 50847534};
	uint32_t n = parse_count(argc, argv, "bench-primes", DEFAULT_N, 1, 1000000u), limit = n * 1000u, x, i, k, pow10, failures = 0;
	struct tally td = {0}, sv = {0};
	uint8_t *composite;

	/* trial division */
	for (x = 0, k = 1, pow10 = 10; x < limit; x++) {
		if (x == pow10) {
			td.pi_pow10[k++] = td.count;
			pow10 *= 10u;
		}
		if (is_prime(x))
			add_prime(&td, x);
	}

	/* the same from a sieve */
	composite = malloc(limit);
	if (!composite) {
		printf("FAIL: malloc of %u bytes\n", limit);
		return 1;
	}
	memset(composite, 0, limit);
	for (i = 2; i * i < limit; i++)
		if (!composite[i])
			for (x = i * i; x < limit; x += i)
				composite[x] = 1;
	for (x = 2, k = 1, pow10 = 10; x < limit; x++) {
		if (x == pow10) {
			sv.pi_pow10[k++] = sv.count;
			pow10 *= 10u;
		}
		if (!composite[x])
			add_prime(&sv, x);
	}

	if (td.count != sv.count || td.sum != sv.sum || td.twins != sv.twins || td.gap != sv.gap ||
	    td.gap_after != sv.gap_after) {
		printf("FAIL: trial division and the sieve disagree (count %u/%u)\n", td.count, sv.count);
		failures++;
	}
	for (i = 1, pow10 = 10; i < 10 && pow10 < limit; i++, pow10 *= 10u)
		if (td.pi_pow10[i] != pi_pow10[i] || sv.pi_pow10[i] != pi_pow10[i]) {
			printf("FAIL: pi(%u) = %u (sieve %u), want %u\n", pow10, td.pi_pow10[i], sv.pi_pow10[i],
			       pi_pow10[i]);
			failures++;
		}

	printf("bench-primes: primes below %u by trial division\n", limit);
	printf("count %u\n", td.count);
	printf("sum %llu\n", (unsigned long long)td.sum);
	printf("twin pairs %u\n", td.twins);
	printf("largest gap %u after %u\n", td.gap, td.gap_after);
	printf("largest prime %u\n", td.last);
	if (failures) {
		printf("bench-primes: %u check(s) FAILED\n", failures);
		return 1;
	}
	printf("bench-primes: ok\n");
	return 0;
}
