/* bench-hash: word frequency counting in a chained hash table with string keys, the way a
 * symbol table or a word counter works. The vocabulary has V = N * 250 distinct words
 * (argument N; default 1200, so 300,000 words of 7 to 14 letters); a stream of 16V words is
 * drawn from it with an LCG, half of them from a hot tenth of the vocabulary. Each word is
 * built into a buffer, hashed (FNV-1a) and looked up; a miss inserts an entry carved from
 * 64 KiB arena chunks (malloc), a hit bumps its count. The bucket array doubles (rehash)
 * whenever the entries outnumber the buckets. Then every word seen exactly once is
 * unlinked, and the table is walked for statistics. At the default size the table and its
 * entries take about 12 MiB.
 * Self-checks: a plain array of counts indexed by word number, kept alongside the stream,
 * must agree with a lookup of every vocabulary word, before and after the deletions; the
 * number of entries and the sum of the counts must match. Exit 1 on failure. */
#include "runtime.h"

#define DEFAULT_N 1200u
#define ARENA_CHUNK (64u * 1024u)

struct entry {
	struct entry *next;
	uint32_t hash;
	uint32_t count;
	uint32_t len;
	char word[16]; /* up to 14 letters and a NUL */
};

static struct entry **buckets;
static uint32_t nbuckets, nentries, rehashes;
static char *arena;
static uint32_t arena_left;

static struct entry *new_entry(void)
{
	struct entry *e;
	if (arena_left < sizeof(struct entry)) {
		arena = malloc(ARENA_CHUNK);
		if (!arena) {
			printf("FAIL: out of memory\n");
			exit(1);
		}
		arena_left = ARENA_CHUNK;
	}
	e = (struct entry *)arena;
	arena += sizeof(struct entry);
	arena_left -= sizeof(struct entry);
	return e;
}

/* A bijection of the 32-bit integers (each step can be undone). */
static uint32_t mix(uint32_t k)
{
	k ^= k >> 16;
	k *= 0x7feb352du;
	k ^= k >> 15;
	k *= 0x846ca68bu;
	k ^= k >> 16;
	return k;
}

/* Word number j: 7 base-26 letters of mix(j) (26^7 > 2^32, so distinct numbers give
 * distinct words) and 0 to 7 more letters that depend on it. Returns the length. */
static uint32_t make_word(uint32_t j, char *w)
{
	uint32_t h = mix(j), x = h, i, extra = h >> 29, len = 7;
	for (i = 0; i < 7; i++) {
		w[i] = (char)('a' + x % 26u);
		x /= 26u;
	}
	x = h * 0x9e3779b1u + 0x7f4a7c15u;
	for (i = 0; i < extra; i++) {
		w[len++] = (char)('a' + (x >> 27) % 26u);
		x = x * 1103515245u + 12345u;
	}
	w[len] = 0;
	return len;
}

static uint32_t fnv1a(const char *s, uint32_t len)
{
	uint32_t h = 2166136261u, i;
	for (i = 0; i < len; i++) {
		h ^= (uint8_t)s[i];
		h *= 16777619u;
	}
	return h;
}

static struct entry *lookup(const char *w, uint32_t len, uint32_t h)
{
	struct entry *e;
	for (e = buckets[h & (nbuckets - 1)]; e; e = e->next)
		if (e->hash == h && e->len == len && memcmp(e->word, w, len) == 0)
			return e;
	return NULL;
}

static void grow(void)
{
	uint32_t n = nbuckets * 2, i;
	struct entry **nb = malloc(n * sizeof *nb);
	if (!nb) {
		printf("FAIL: out of memory\n");
		exit(1);
	}
	memset(nb, 0, n * sizeof *nb);
	for (i = 0; i < nbuckets; i++) {
		struct entry *e = buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	free(buckets);
	buckets = nb;
	nbuckets = n;
	rehashes++;
}

static void add_word(const char *w, uint32_t len)
{
	uint32_t h = fnv1a(w, len);
	struct entry *e = lookup(w, len, h);
	if (e) {
		e->count++;
		return;
	}
	e = new_entry();
	e->hash = h;
	e->count = 1;
	e->len = len;
	memcpy(e->word, w, len + 1);
	e->next = buckets[h & (nbuckets - 1)];
	buckets[h & (nbuckets - 1)] = e;
	if (++nentries > nbuckets)
		grow();
}

/* Unlinks every entry with count 1; returns how many. */
static uint32_t remove_singletons(void)
{
	uint32_t i, removed = 0;
	for (i = 0; i < nbuckets; i++) {
		struct entry **pp = &buckets[i];
		while (*pp) {
			if ((*pp)->count == 1) {
				*pp = (*pp)->next;
				removed++;
			} else {
				pp = &(*pp)->next;
			}
		}
	}
	nentries -= removed;
	return removed;
}

/* Every vocabulary word against the plain counts; min_count: counts below it must be absent. */
static uint32_t verify(const uint32_t *counts, uint32_t vocab, uint32_t min_count, const char *when)
{
	uint32_t j, bad = 0;
	char w[16];
	for (j = 0; j < vocab; j++) {
		uint32_t len = make_word(j, w);
		struct entry *e = lookup(w, len, fnv1a(w, len));
		uint32_t got = e ? e->count : 0, want = counts[j] >= min_count ? counts[j] : 0;
		if (got != want) {
			if (bad < 5)
				printf("FAIL (%s): word %u \"%s\" counted %u, want %u\n", when, j, w, got, want);
			bad++;
		}
	}
	return bad;
}

int main(int argc, char **argv)
{
	uint32_t n = parse_count(argc, argv, "bench-hash", DEFAULT_N, 1, 40000u), vocab = n * 250u, stream = 16u * vocab;
	uint32_t hot = vocab / 10u, x = 0x2545f491u, i, failures = 0, distinct = 0, removed;
	uint32_t total = 0, longest_chain = 0, used = 0, top_count = 0, sum = 0;
	const char *top_word = "";
	uint32_t *counts;
	char w[16];

	nbuckets = 1024;
	buckets = malloc(nbuckets * sizeof *buckets);
	counts = malloc(vocab * sizeof *counts);
	if (!buckets || !counts) {
		printf("FAIL: malloc\n");
		return 1;
	}
	memset(buckets, 0, nbuckets * sizeof *buckets);
	memset(counts, 0, vocab * sizeof *counts);

	for (i = 0; i < stream; i++) {
		uint32_t j, len;
		x = x * 1664525u + 1013904223u;
		j = (x >> 31) ? (x >> 8) % hot : (x >> 1) % vocab;
		len = make_word(j, w);
		add_word(w, len);
		distinct += counts[j]++ == 0;
	}
	if (nentries != distinct) {
		printf("FAIL: %u entries, %u distinct words\n", nentries, distinct);
		failures++;
	}
	failures += verify(counts, vocab, 1, "after counting") != 0;

	removed = remove_singletons();
	failures += verify(counts, vocab, 2, "after removing singletons") != 0;

	for (i = 0; i < nbuckets; i++) {
		struct entry *e;
		uint32_t chain = 0;
		for (e = buckets[i]; e; e = e->next) {
			chain++;
			total += e->count;
			sum += fnv1a(e->word, e->len) ^ (e->count * 0x9e3779b1u);
			if (e->count > top_count || (e->count == top_count && strcmp(e->word, top_word) < 0)) {
				top_count = e->count;
				top_word = e->word;
			}
		}
		used += chain != 0;
		if (chain > longest_chain)
			longest_chain = chain;
	}
	if (total + removed != stream) {
		printf("FAIL: counts add up to %u, want %u\n", total + removed, stream);
		failures++;
	}

	printf("bench-hash: %u words from a vocabulary of %u\n", stream, vocab);
	printf("distinct %u, seen once %u, kept %u\n", distinct, removed, nentries);
	printf("buckets %u (%u rehashes), used %u, longest chain %u\n", nbuckets, rehashes, used, longest_chain);
	printf("most frequent \"%s\" x %u\n", top_word, top_count);
	printf("checksum 0x%08x\n", sum);
	if (failures) {
		printf("bench-hash: %u check(s) FAILED\n", failures);
		return 1;
	}
	printf("bench-hash: ok\n");
	return 0;
}
