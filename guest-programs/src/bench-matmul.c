/* bench-matmul: C = A x B for N x N int32 matrices (argument N, the order; default 960),
 * the textbook way on row-major arrays from malloc: B is transposed first, so every element
 * of C is a dot product of two contiguous rows (a multiply-accumulate inner loop). Entries
 * are small LCG values in [-64, 63], so no sum overflows. Prints the trace, a few elements
 * and a checksum of C.
 * Self-checks: Freivalds' test with three LCG vectors (A (B r) == C r, in arithmetic mod
 * 2^32), and 64 elements recomputed directly from A and the untransposed B. Exit 1 on
 * failure. */
#include "runtime.h"

#define DEFAULT_N 960u

static uint32_t lcg_state;

static int32_t next_entry(void)
{
	lcg_state = lcg_state * 1664525u + 1013904223u;
	return (int32_t)(lcg_state >> 25) - 64;
}

static void matmul(int32_t *c, const int32_t *a, const int32_t *bt, uint32_t n)
{
	uint32_t i, j, k;
	for (i = 0; i < n; i++) {
		const int32_t *row = a + i * n;
		for (j = 0; j < n; j++) {
			const int32_t *col = bt + j * n;
			int32_t s = 0;
			for (k = 0; k < n; k++)
				s += row[k] * col[k];
			c[i * n + j] = s;
		}
	}
}

/* y = M x in arithmetic mod 2^32 */
static void mat_vec(uint32_t *y, const int32_t *m, const uint32_t *x, uint32_t n)
{
	uint32_t i, k;
	for (i = 0; i < n; i++) {
		uint32_t s = 0;
		for (k = 0; k < n; k++)
			s += (uint32_t)m[i * n + k] * x[k];
		y[i] = s;
	}
}

int main(int argc, char **argv)
{
	uint32_t n = parse_count(argc, argv, "bench-matmul", DEFAULT_N, 2, 2048u), i, j, k, t, failures = 0, sum = 0;
	int32_t *a, *b, *bt, *c;
	uint32_t *r, *br, *abr, *cr;
	int64_t trace = 0;

	a = malloc(n * n * sizeof *a);
	b = malloc(n * n * sizeof *b);
	bt = malloc(n * n * sizeof *bt);
	c = malloc(n * n * sizeof *c);
	r = malloc(4 * n * sizeof *r);
	if (!a || !b || !bt || !c || !r) {
		printf("FAIL: malloc\n");
		return 1;
	}
	br = r + n;
	abr = r + 2 * n;
	cr = r + 3 * n;
	lcg_state = 20240601u;
	for (i = 0; i < n * n; i++)
		a[i] = next_entry();
	for (i = 0; i < n * n; i++)
		b[i] = next_entry();
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++)
			bt[j * n + i] = b[i * n + j];

	matmul(c, a, bt, n);

	for (i = 0; i < n; i++)
		trace += c[i * n + i];
	for (i = 0; i < n * n; i++)
		sum = (sum ^ (uint32_t)c[i]) * 16777619u;

	/* Freivalds */
	for (t = 0; t < 3; t++) {
		for (i = 0; i < n; i++) {
			lcg_state = lcg_state * 1664525u + 1013904223u;
			r[i] = lcg_state;
		}
		mat_vec(br, b, r, n);
		mat_vec(abr, a, br, n);
		mat_vec(cr, c, r, n);
		for (i = 0; i < n; i++)
			if (abr[i] != cr[i])
				break;
		if (i < n) {
			printf("FAIL: Freivalds test %u: row %u differs\n", t, i);
			failures++;
		}
	}
	/* spot checks */
	for (t = 0; t < 64; t++) {
		int32_t s = 0;
		lcg_state = lcg_state * 1664525u + 1013904223u;
		i = (lcg_state >> 8) % n;
		j = (lcg_state >> 20) % n;
		for (k = 0; k < n; k++)
			s += a[i * n + k] * b[k * n + j];
		if (s != c[i * n + j]) {
			printf("FAIL: C[%u][%u] = %d, want %d\n", i, j, c[i * n + j], s);
			failures++;
		}
	}

	printf("bench-matmul: %ux%u int32\n", n, n);
	printf("trace %lld\n", (long long)trace);
	printf("C[0][0] %d C[0][%u] %d C[%u][0] %d C[%u][%u] %d\n", c[0], n - 1, c[n - 1], n - 1,
	       c[(n - 1) * n], n / 2, n / 3, c[(n / 2) * n + n / 3]);
	printf("checksum 0x%08x\n", sum);
	if (failures) {
		printf("bench-matmul: %u check(s) FAILED\n", failures);
		return 1;
	}
	printf("bench-matmul: ok\n");
	return 0;
}
