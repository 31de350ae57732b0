/* imac-malloc: picolibc's malloc (over sbrk, that is brk) under load: rounds of random
 * malloc/calloc/realloc/free with content checks, many small blocks, a 1 MiB block
 * touched on every page, and everything freed and allocated again. Prints only
 * relative facts and checksums, never addresses. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 256

static uint32_t seed = 12345;
static uint32_t rnd(void)
{
	seed = seed * 1103515245u + 12345u;
	return seed >> 8;
}

struct slot {
	unsigned char *p;
	size_t len;
	unsigned char fill;
};

static struct slot slots[SLOTS];

/* A block holds its fill byte, with a running pattern every 16 bytes and in its last
 * byte; `len` bytes of it are checked, every 8th (the last one only if `whole`). */
static int check_n(const struct slot *s, size_t len, int whole)
{
	size_t i;
	for (i = 0; i < len; i += 8)
		if (i + 1 != s->len && s->p[i] != (i % 16 == 0 ? (unsigned char)(s->fill + i) : s->fill))
			return 0;
	return !whole || s->p[s->len - 1] == (unsigned char)(s->fill + s->len - 1);
}

static int check(const struct slot *s)
{
	return check_n(s, s->len, 1);
}

static void fill(struct slot *s)
{
	size_t i;
	memset(s->p, s->fill, s->len);
	for (i = 0; i < s->len; i += 16)
		s->p[i] = (unsigned char)(s->fill + i);
	s->p[s->len - 1] = (unsigned char)(s->fill + s->len - 1);
}

int main(void)
{
	unsigned round, i, ops = 0, bad = 0, reallocs = 0, callocs = 0;
	uint32_t sum = 0;

	for (round = 0; round < 6; round++) {
		for (i = 0; i < 1000; i++) {
			struct slot *s = &slots[rnd() % SLOTS];
			unsigned what = rnd() % 8;
			ops++;
			if (s->p && !check(s))
				bad++;
			if (s->p && what < 3) {
				free(s->p);
				s->p = NULL;
			} else if (s->p && what < 5) {
				size_t len = 1 + rnd() % (what == 3 ? 64 : 512);
				size_t keep = len < s->len ? len : s->len;
				unsigned char *q = realloc(s->p, len);
				if (!q) {
					bad++;
					continue;
				}
				reallocs++;
				s->p = q;
				/* the kept prefix must survive the move */
				if (!check_n(s, keep < s->len ? keep : s->len - 1, 0))
					bad++;
				s->len = len;
				fill(s);
			} else if (!s->p) {
				size_t len = 1 + rnd() % (rnd() % 8 ? 128 : 4096);
				if (what == 7) {
					size_t j;
					s->p = calloc(len, 1);
					callocs++;
					for (j = 0; s->p && j < len; j++)
						if (s->p[j])
							bad++;
				} else {
					s->p = malloc(len);
				}
				if (!s->p) {
					bad++;
					continue;
				}
				s->len = len;
				s->fill = (unsigned char)rnd();
				fill(s);
			}
		}
		for (i = 0; i < SLOTS; i++)
			if (slots[i].p) {
				sum = sum * 31 + slots[i].len + slots[i].p[slots[i].len - 1];
			}
		printf("round %2u: checksum %08lx\n", round, (unsigned long)sum);
	}

	/* A 1 MiB block (picolibc clears what malloc returns), touched on every page. */
	{
		size_t big = 1u << 20, k;
		unsigned char *b = malloc(big);
		uint32_t h = 0;
		if (!b) {
			printf("big block: failed\n");
			return 1;
		}
		for (k = 0; k < big; k += 4096)
			b[k] = (unsigned char)(k >> 12);
		for (k = 0; k < big; k += 4096)
			h = h * 33 + b[k];
		printf("big block: %lu pages, hash %08lx\n", (unsigned long)(big / 4096), (unsigned long)h);
		free(b);
	}
	for (i = 0; i < SLOTS; i++) {
		free(slots[i].p);
		slots[i].p = NULL;
	}
	/* Everything freed: many small blocks again. */
	{
		void *many[500];
		unsigned got = 0;
		for (i = 0; i < 500; i++) {
			many[i] = malloc(16 + i % 48);
			got += many[i] != NULL;
			if (many[i])
				memset(many[i], (int)i, 16);
		}
		for (i = 0; i < 500; i++)
			if (many[i] && ((unsigned char *)many[i])[15] != (unsigned char)i)
				bad++;
		for (i = 0; i < 500; i++)
			free(many[i]);
		printf("small blocks: %u of 500\n", got);
	}
	printf("%u operations, %u reallocs, %u callocs, %u bad\n", ops, reallocs, callocs, bad);
	return bad != 0;
}
