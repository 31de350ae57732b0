/* bench-sort: sorts n = N * 100 int32 values (argument N; default 7000, so 700,000 values)
 * in 12 rounds, three rounds each of four inputs made with an LCG: uniformly random (with
 * negatives), few distinct values, an ascending run with 1% of the elements swapped, and
 * descending. Every round sorts one copy with a quicksort (median of three, Hoare
 * partition, insertion sort below 16 elements, recursion on the smaller side) and another
 * with a top-down merge sort (recursive, one auxiliary buffer). Arrays come from malloc.
 * Self-checks, every round: both results are in order, identical to each other, and have the
 * same element sum and sum of hashed elements as the input. Exit 1 on failure. */
#include "runtime.h"

#define DEFAULT_N 7000u
#define ROUNDS 12u
#define SMALL 16

static void insertion_sort(int32_t *a, int32_t lo, int32_t hi)
{
	int32_t i, j;
	for (i = lo + 1; i <= hi; i++) {
		int32_t v = a[i];
		for (j = i - 1; j >= lo && a[j] > v; j--)
			a[j + 1] = a[j];
		a[j + 1] = v;
	}
}

static void swap(int32_t *a, int32_t i, int32_t j)
{
	int32_t t = a[i];
	a[i] = a[j];
	a[j] = t;
}

/* Sorts a[lo..hi] (inclusive). */
static void quicksort(int32_t *a, int32_t lo, int32_t hi)
{
	while (hi - lo >= SMALL) {
		int32_t mid = lo + (hi - lo) / 2, i, j, pivot;
		if (a[mid] < a[lo])
			swap(a, mid, lo);
		if (a[hi] < a[lo])
			swap(a, hi, lo);
		if (a[hi] < a[mid])
			swap(a, hi, mid);
		pivot = a[mid];
		i = lo - 1;
		j = hi + 1;
		for (;;) {
			do
				i++;
			while (a[i] < pivot);
			do
				j--;
			while (a[j] > pivot);
			if (i >= j)
				break;
			swap(a, i, j);
		}
		/* a[lo..j] <= pivot <= a[j+1..hi]: recurse on the smaller part */
		if (j - lo < hi - j) {
			quicksort(a, lo, j);
			lo = j + 1;
		} else {
			quicksort(a, j + 1, hi);
			hi = j;
		}
	}
	insertion_sort(a, lo, hi);
}

/* Sorts a[lo..hi) using tmp[lo..hi). */
static void merge_sort(int32_t *a, int32_t *tmp, uint32_t lo, uint32_t hi)
{
	uint32_t mid, i, j, k;
	if (hi - lo < 2)
		return;
	mid = lo + (hi - lo) / 2;
	merge_sort(a, tmp, lo, mid);
	merge_sort(a, tmp, mid, hi);
	if (a[mid - 1] <= a[mid])
		return; /* already in order */
	for (i = lo, j = mid, k = lo; i < mid && j < hi;)
		tmp[k++] = a[j] < a[i] ? a[j++] : a[i++];
	while (i < mid)
		tmp[k++] = a[i++];
	while (j < hi)
		tmp[k++] = a[j++];
	for (k = lo; k < hi; k++)
		a[k] = tmp[k];
}

static uint32_t lcg;

static uint32_t next(void)
{
	lcg = lcg * 1664525u + 1013904223u;
	return lcg;
}

static void fill(int32_t *a, uint32_t n, uint32_t kind)
{
	uint32_t i;
	switch (kind) {
	case 0: /* random */
		for (i = 0; i < n; i++)
			a[i] = (int32_t)next();
		break;
	case 1: /* few distinct values */
		for (i = 0; i < n; i++)
			a[i] = (int32_t)(next() >> 16) % 100 - 50;
		break;
	case 2: /* ascending, 1% swapped */
		for (i = 0; i < n; i++)
			a[i] = (int32_t)(i * 3u) - (int32_t)n;
		for (i = 0; i < n / 100; i++)
			swap(a, (int32_t)((next() >> 8) % n), (int32_t)((next() >> 8) % n));
		break;
	default: /* descending */
		for (i = 0; i < n; i++)
			a[i] = (int32_t)(n - i) * 5 + (int32_t)((next() >> 16) & 3u);
		break;
	}
}

static uint32_t hash32(uint32_t k)
{
	k ^= k >> 16;
	k *= 0x7feb352du;
	k ^= k >> 15;
	k *= 0x846ca68bu;
	k ^= k >> 16;
	return k;
}

struct sums {
	uint32_t sum, hsum;
};

static struct sums sums_of(const int32_t *a, uint32_t n)
{
	struct sums s = {0, 0};
	uint32_t i;
	for (i = 0; i < n; i++) {
		s.sum += (uint32_t)a[i];
		s.hsum += hash32((uint32_t)a[i]);
	}
	return s;
}

int main(int argc, char **argv)
{
	static const char *const kinds[4] = {"random", "few distinct", "nearly sorted", "descending"};
	uint32_t n = parse_count(argc, argv, "bench-sort", DEFAULT_N, 1, 200000u) * 100u, round, i, failures = 0, check = 0;
	int32_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *tmp = malloc(n * sizeof *tmp);

	if (!a || !b || !tmp) {
		printf("FAIL: malloc\n");
		return 1;
	}
	printf("bench-sort: %u rounds of %u int32\n", ROUNDS, n);
	lcg = 0x5eed1234u;
	for (round = 0; round < ROUNDS; round++) {
		uint32_t kind = round % 4u;
		struct sums in, sa, sb;
		fill(a, n, kind);
		memcpy(b, a, n * sizeof *a);
		in = sums_of(a, n);
		quicksort(a, 0, (int32_t)n - 1);
		merge_sort(b, tmp, 0, n);
		sa = sums_of(a, n);
		sb = sums_of(b, n);
		for (i = 1; i < n; i++)
			if (a[i - 1] > a[i] || b[i - 1] > b[i])
				break;
		if (i < n) {
			printf("FAIL: round %u: not in order at %u\n", round, i);
			failures++;
		}
		for (i = 0; i < n; i++)
			if (a[i] != b[i])
				break;
		if (i < n) {
			printf("FAIL: round %u: quicksort and merge sort differ at %u\n", round, i);
			failures++;
		}
		if (sa.sum != in.sum || sa.hsum != in.hsum || sb.sum != in.sum || sb.hsum != in.hsum) {
			printf("FAIL: round %u: the elements changed\n", round);
			failures++;
		}
		printf("round %u (%s): min %d median %d max %d sum 0x%08x\n", round, kinds[kind], a[0], a[n / 2],
		       a[n - 1], in.sum);
		for (i = 0; i < n; i += 97)
			check = (check ^ (uint32_t)a[i]) * 16777619u;
	}
	printf("checksum 0x%08x\n", check);
	if (failures) {
		printf("bench-sort: %u check(s) FAILED\n", failures);
		return 1;
	}
	printf("bench-sort: ok\n");
	return 0;
}
