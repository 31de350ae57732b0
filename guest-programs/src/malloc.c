/* malloc: exercises the brk heap: raw brk semantics, many allocations of assorted sizes with
 * their contents checked, reuse of freed blocks, coalescing, realloc/calloc, and growth of the
 * heap beyond 1 MiB. Prints only relative facts (never absolute addresses, which differ
 * between loaders). */
#include "runtime.h"

#define NPTR 256
#define ROUNDS 12

static uint8_t *ptrs[NPTR];
static uint32_t sizes[NPTR];

static uint32_t rng = 2463534242u;
static uint32_t xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static void fill(uint8_t *p, uint32_t n, uint32_t tag)
{
	uint32_t i;
	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(tag * 31u + i);
}

static int verify(const uint8_t *p, uint32_t n, uint32_t tag)
{
	uint32_t i;
	for (i = 0; i < n; i++)
		if (p[i] != (uint8_t)(tag * 31u + i))
			return 0;
	return 1;
}

int main(void)
{
	uintptr_t brk0, brk1, brk2, start;
	uint32_t i, round, bad = 0, live_bytes = 0, aligned = 1;
	uint8_t *a, *b, *c, *big;

	/* raw brk: query, grow by 3 pages, query again, shrink back */
	brk0 = (uintptr_t)sys_brk(0);
	brk1 = (uintptr_t)sys_brk(brk0 + 3 * 4096);
	brk2 = (uintptr_t)sys_brk(0);
	printf("brk grow by 12288: %s\n", brk1 == brk0 + 12288 && brk2 == brk1 ? "ok" : "FAILED");
	((volatile uint8_t *)brk0)[0] = 1;
	((volatile uint8_t *)brk0)[12287] = 2;
	printf("new brk memory writable: %s\n",
	       ((volatile uint8_t *)brk0)[0] + ((volatile uint8_t *)brk0)[12287] == 3 ? "ok" : "FAILED");
	brk1 = (uintptr_t)sys_brk(brk0);
	printf("brk shrink back: %s\n", brk1 == brk0 ? "ok" : "FAILED");
	brk1 = (uintptr_t)sys_brk(brk0 - 4096);
	printf("brk below the initial break refused (returns the old break): %s\n",
	       brk1 == brk0 ? "ok" : "FAILED");

	start = (uintptr_t)sbrk(0);

	/* first-fit reuse: a freed block is handed out again for the same size */
	a = malloc(100);
	b = malloc(200);
	c = malloc(100);
	fill(a, 100, 1);
	fill(b, 200, 2);
	fill(c, 100, 3);
	free(b);
	{
		uint8_t *d = malloc(180);
		printf("freed 200-byte block reused for 180: %s\n", d == b ? "yes" : "no");
		fill(d, 180, 4);
		printf("neighbours intact: %s\n", verify(a, 100, 1) && verify(c, 100, 3) ? "yes" : "NO");
		free(d);
	}
	/* coalescing: a, b and c freed -> one block big enough for 400 bytes at a */
	free(a);
	free(c);
	{
		uint8_t *e = malloc(400);
		printf("coalesced block reused for 400: %s\n", e == a ? "yes" : "no");
		free(e);
	}

	/* churn: ROUNDS rounds of random frees and allocations with content checks */
	for (round = 0; round < ROUNDS; round++) {
		for (i = 0; i < NPTR; i++) {
			uint32_t r = xorshift();
			if (ptrs[i] && (r & 1)) {
				if (!verify(ptrs[i], sizes[i], i + round))
					bad++;
				live_bytes -= sizes[i];
				free(ptrs[i]);
				ptrs[i] = NULL;
			}
			if (!ptrs[i]) {
				uint32_t n = (r >> 8) % ((r & 0x30) ? 64u : 2000u);
				ptrs[i] = malloc(n);
				if (!ptrs[i]) {
					bad++;
					continue;
				}
				if ((uintptr_t)ptrs[i] & 7)
					aligned = 0;
				sizes[i] = n;
				live_bytes += n;
				fill(ptrs[i], n, i + round);
			}
		}
		/* check every live block, then retag it for the next round (tag i + round + 1) */
		for (i = 0; i < NPTR; i++)
			if (ptrs[i]) {
				if (!verify(ptrs[i], sizes[i], i + round))
					bad++;
				fill(ptrs[i], sizes[i], i + round + 1);
			}
		if (round % 4 == 3)
			printf("round %u: live bytes %u, content errors %u\n", round, live_bytes, bad);
	}
	printf("all blocks 8-byte aligned: %s\n", aligned ? "yes" : "no");
	for (i = 0; i < NPTR; i++) {
		if (ptrs[i] && !verify(ptrs[i], sizes[i], i + ROUNDS))
			bad++;
		free(ptrs[i]);
		ptrs[i] = NULL;
	}

	/* everything freed: a 64 KiB block comes from the recycled heap, not from new brk */
	{
		uintptr_t before = (uintptr_t)sbrk(0);
		uint8_t *p = malloc(65536);
		printf("64 KiB after free-all needs no new brk: %s\n",
		       (uintptr_t)sbrk(0) == before ? "yes" : "no");
		free(p);
	}

	/* growth beyond 1 MiB: 3 MiB block, touched at every page */
	big = malloc(3u << 20);
	if (!big) {
		printf("3 MiB malloc FAILED\n");
		return 1;
	}
	for (i = 0; i < (3u << 20); i += 4096)
		big[i] = (uint8_t)(i >> 12);
	for (i = 0; i < (3u << 20); i += 4096)
		if (big[i] != (uint8_t)(i >> 12))
			bad++;
	printf("heap grew beyond 1 MiB: %s\n", (uintptr_t)sbrk(0) - start > (1u << 20) ? "yes" : "no");
	printf("heap growth is between 3 and 4 MiB: %s\n",
	       (uintptr_t)sbrk(0) - start >= (3u << 20) && (uintptr_t)sbrk(0) - start < (4u << 20) ? "yes"
													   : "no");
	free(big);

	/* realloc keeps contents; calloc zeroes */
	a = malloc(10);
	fill(a, 10, 9);
	a = realloc(a, 5000);
	printf("realloc keeps contents: %s\n", verify(a, 10, 9) ? "yes" : "NO");
	b = calloc(1000, 4);
	for (i = 0; i < 4000 && b[i] == 0; i++)
		;
	printf("calloc zeroed: %s\n", i == 4000 ? "yes" : "NO");
	free(a);
	free(b);
	printf("malloc(0) returns a pointer: %s\n", malloc(0) ? "yes" : "no");
	printf("huge malloc fails cleanly: %s\n", malloc(0xF0000000u) == NULL ? "yes" : "no");
	printf("content errors: %u\n", bad);
	return bad ? 1 : 0;
}
