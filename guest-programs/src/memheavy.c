/* memheavy: memory-bound work for benchmarks. (1) An open-addressing hash table (linear
 * probing, tombstones) of 2^19 slots x 8 bytes = 4 MiB: inserts, lookups of present and absent
 * keys, deletions, re-insertions of pseudo-random keys. (2) An LSD radix sort (4 passes of 8
 * bits) of 2^20 pseudo-random 32-bit ints (two 4 MiB arrays). Everything lives on the brk
 * heap (~12 MiB). Prints checksums; exits 0 when every check holds. */
#include "runtime.h"

#define SLOTS (1u << 19)
#define EMPTY 0u
#define TOMB 0xFFFFFFFFu
#define NKEYS 300000u
#define NSORT (1u << 20)

struct slot {
	uint32_t key, val;
};

static struct slot *table;

static uint32_t hash(uint32_t k)
{
	k ^= k >> 16;
	k *= 0x7feb352du;
	k ^= k >> 15;
	k *= 0x846ca68bu;
	k ^= k >> 16;
	return k;
}

/* hash() is a bijection with hash(0) = 0, so keys are distinct and never EMPTY (TOMB does
 * not occur for the indices used: checked by the insert count) */
static uint32_t key_of(uint32_t i) { return hash(i + 1u); }

static int insert(uint32_t k, uint32_t v)
{
	uint32_t i = hash(k) & (SLOTS - 1), tomb = SLOTS;
	for (;;) {
		uint32_t s = table[i].key;
		if (s == k) {
			table[i].val = v;
			return 0;
		}
		if (s == TOMB && tomb == SLOTS)
			tomb = i;
		if (s == EMPTY) {
			if (tomb != SLOTS)
				i = tomb;
			table[i].key = k;
			table[i].val = v;
			return 1;
		}
		i = (i + 1) & (SLOTS - 1);
	}
}

static struct slot *lookup(uint32_t k)
{
	uint32_t i = hash(k) & (SLOTS - 1);
	for (;;) {
		uint32_t s = table[i].key;
		if (s == k)
			return &table[i];
		if (s == EMPTY)
			return NULL;
		i = (i + 1) & (SLOTS - 1);
	}
}

static int erase(uint32_t k)
{
	struct slot *s = lookup(k);
	if (!s)
		return 0;
	s->key = TOMB;
	return 1;
}

static int hash_table_part(void)
{
	uint32_t i, inserted = 0, found = 0, absent_found = 0, erased = 0, sum = 0, live = 0;
	int ok = 1;
	table = calloc(SLOTS, sizeof *table);
	if (!table) {
		printf("calloc of the table failed\n");
		return 0;
	}
	for (i = 0; i < NKEYS; i++)
		inserted += (uint32_t)insert(key_of(i), i);
	for (i = 0; i < NKEYS; i++) {
		struct slot *s = lookup(key_of(i));
		if (s && s->val == i) {
			found++;
			sum += s->val ^ s->key;
		}
	}
	for (i = NKEYS; i < NKEYS + 100000u; i++)
		absent_found += lookup(key_of(i)) != NULL;
	for (i = 0; i < NKEYS; i += 2)
		erased += (uint32_t)erase(key_of(i));
	for (i = 0; i < NKEYS; i += 3)
		insert(key_of(i), i * 7u);
	for (i = 0; i < NKEYS; i++) {
		struct slot *s = lookup(key_of(i));
		uint32_t want_present = (i % 2 != 0) || (i % 3 == 0);
		uint32_t want_val = (i % 3 == 0) ? i * 7u : i;
		if ((s != NULL) != want_present || (s && s->val != want_val))
			ok = 0;
		if (s)
			sum = sum * 31u + s->val;
	}
	for (i = 0; i < SLOTS; i++)
		live += table[i].key != EMPTY && table[i].key != TOMB;
	printf("hash: inserted %u, found %u, absent found %u, erased %u, live %u\n", inserted, found,
	       absent_found, erased, live);
	printf("hash: checksum %08x, contents %s\n", sum, ok ? "ok" : "WRONG");
	free(table);
	return ok && inserted == NKEYS && found == NKEYS && absent_found == 0 && erased == NKEYS / 2;
}

static int radix_part(void)
{
	uint32_t *a = malloc(NSORT * sizeof *a), *b = malloc(NSORT * sizeof *b), *t;
	uint32_t count[256], i, pass, x = 88172645u, sum_in = 0, sum_out = 0, weighted = 0;
	int sorted = 1;
	if (!a || !b) {
		printf("malloc of the sort arrays failed\n");
		return 0;
	}
	for (i = 0; i < NSORT; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		a[i] = x;
		sum_in += x;
	}
	for (pass = 0; pass < 32; pass += 8) {
		uint32_t pos = 0;
		memset(count, 0, sizeof count);
		for (i = 0; i < NSORT; i++)
			count[(a[i] >> pass) & 255]++;
		for (i = 0; i < 256; i++) {
			uint32_t c = count[i];
			count[i] = pos;
			pos += c;
		}
		for (i = 0; i < NSORT; i++)
			b[count[(a[i] >> pass) & 255]++] = a[i];
		t = a;
		a = b;
		b = t;
	}
	for (i = 0; i < NSORT; i++) {
		sum_out += a[i];
		weighted += a[i] * (i | 1);
		if (i && a[i - 1] > a[i])
			sorted = 0;
	}
	printf("radix: n %u, min %08x, median %08x, max %08x\n", NSORT, a[0], a[NSORT / 2], a[NSORT - 1]);
	printf("radix: sum %08x/%08x, weighted %08x, sorted %s\n", sum_in, sum_out, weighted,
	       sorted ? "yes" : "NO");
	free(a);
	free(b);
	return sorted && sum_in == sum_out;
}

int main(void)
{
	int ok = hash_table_part();
	ok &= radix_part();
	printf("%s\n", ok ? "PASS" : "FAIL");
	return ok ? 0 : 1;
}
