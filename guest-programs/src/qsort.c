/* qsort: hand-written quicksort (median of three, insertion sort for small ranges) of 50000
 * pseudo-random ints from an LCG; prints checksums and verifies sortedness. */
#include "runtime.h"

#define N 50000

static int32_t a[N];

static uint32_t lcg_state = 12345;
static uint32_t lcg(void)
{
	lcg_state = lcg_state * 1103515245u + 12345u;
	return lcg_state;
}

static void swap(int32_t *x, int32_t *y)
{
	int32_t t = *x;
	*x = *y;
	*y = t;
}

static void insertion(int32_t *v, int lo, int hi)
{
	int i, j;
	for (i = lo + 1; i <= hi; i++) {
		int32_t x = v[i];
		for (j = i - 1; j >= lo && v[j] > x; j--)
			v[j + 1] = v[j];
		v[j + 1] = x;
	}
}

static void quicksort(int32_t *v, int lo, int hi)
{
	while (hi - lo > 16) {
		int mid = lo + (hi - lo) / 2, i = lo, j = hi;
		int32_t pivot;
		if (v[mid] < v[lo])
			swap(&v[mid], &v[lo]);
		if (v[hi] < v[lo])
			swap(&v[hi], &v[lo]);
		if (v[hi] < v[mid])
			swap(&v[hi], &v[mid]);
		pivot = v[mid];
		while (i <= j) {
			while (v[i] < pivot)
				i++;
			while (v[j] > pivot)
				j--;
			if (i <= j) {
				swap(&v[i], &v[j]);
				i++;
				j--;
			}
		}
		/* recurse into the smaller part, loop on the larger one */
		if (j - lo < hi - i) {
			quicksort(v, lo, j);
			lo = i;
		} else {
			quicksort(v, i, hi);
			hi = j;
		}
	}
	insertion(v, lo, hi);
}

int main(void)
{
	uint32_t sum_before = 0, sum_after = 0, weighted = 0;
	int i, sorted = 1;
	for (i = 0; i < N; i++) {
		a[i] = (int32_t)lcg() >> 3; /* negative and positive values */
		if (i % 7 == 0)
			a[i] = a[i] % 100; /* plenty of duplicates */
		sum_before += (uint32_t)a[i];
	}
	quicksort(a, 0, N - 1);
	for (i = 0; i < N; i++) {
		sum_after += (uint32_t)a[i];
		weighted += (uint32_t)a[i] * (uint32_t)(i + 1);
		if (i > 0 && a[i - 1] > a[i])
			sorted = 0;
	}
	printf("n=%d\n", N);
	printf("sum before=%08x after=%08x\n", sum_before, sum_after);
	printf("weighted checksum=%08x\n", weighted);
	printf("min=%d median=%d max=%d\n", a[0], a[N / 2], a[N - 1]);
	printf("sorted: %s\n", sorted && sum_before == sum_after ? "yes" : "NO");
	return sorted && sum_before == sum_after ? 0 : 1;
}
