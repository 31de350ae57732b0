/* bench-coremark: a CoreMark-like mix, repeated N times (argument; default 15000). Every
 * iteration runs, on a small working set that stays in the L1 cache:
 *   - a linked list of 160 nodes: searches by index and by value with move-to-front,
 *     reversals, a merge sort by a seed-dependent key through a comparison function pointer,
 *     and a merge sort back by index;
 *   - 16x16 int16 matrices: add a constant, multiply by a constant, matrix-vector,
 *     matrix-matrix, and matrix-matrix with bit-field extraction, each summarized;
 *   - a state machine (a switch per input byte) that classifies the comma-separated
 *     tokens of a 700-byte buffer as integers, decimals, scientific numbers or invalid,
 *     then again after corrupting every few bytes, then restores the buffer;
 *   - a bitwise CRC-16 over every result, chained across iterations.
 * Self-checks: the list comes back in index order each iteration; the matrix-matrix product
 * equals a second loop order (first and last iteration); the matrix is restored; the
 * unmodified scan agrees with the token kinds recorded when the input was generated; the
 * buffer is restored; the bitwise CRC-16 agrees with a table-driven one. Exit 1 on failure. */
#include "runtime.h"

#define DEFAULT_N 15000u
#define LIST_N 160u
#define MAT_N 16u
#define SM_BYTES 700u
#define NOINLINE __attribute__((noinline))

static int failures;

static void check(int ok, const char *what)
{
	if (!ok) {
		printf("FAIL: %s\n", what);
		failures++;
	}
}

/* ---- CRC-16 (reflected polynomial 0xA001, CRC-16/ARC), bit by bit ---- */

static uint16_t crc16_byte(uint8_t b, uint16_t crc)
{
	uint32_t i;
	crc ^= b;
	for (i = 0; i < 8; i++)
		crc = (crc & 1u) ? (uint16_t)((crc >> 1) ^ 0xA001u) : (uint16_t)(crc >> 1);
	return crc;
}

static uint16_t crc16_u16(uint16_t v, uint16_t crc)
{
	crc = crc16_byte((uint8_t)v, crc);
	return crc16_byte((uint8_t)(v >> 8), crc);
}

static uint16_t crc16_u32(uint32_t v, uint16_t crc)
{
	crc = crc16_u16((uint16_t)v, crc);
	return crc16_u16((uint16_t)(v >> 16), crc);
}

/* ---- linked list ---- */

struct item {
	int16_t data;
	uint16_t idx;
};

struct node {
	struct node *next;
	struct item *info;
};

typedef int (*cmp_fn)(const struct item *a, const struct item *b, uint16_t salt);

static struct node nodes[LIST_N];
static struct item items[LIST_N];

static struct node *list_init(uint16_t seed)
{
	uint32_t i, x = seed;
	for (i = 0; i < LIST_N; i++) {
		x = x * 1103515245u + 12345u;
		items[i].idx = (uint16_t)i;
		items[i].data = (int16_t)((x >> 16) & 0x7fffu);
		nodes[i].info = &items[i];
		nodes[i].next = i + 1 < LIST_N ? &nodes[i + 1] : NULL;
	}
	return &nodes[0];
}

/* Finds the first node whose idx (by_idx) or data equals want; *prev gets its predecessor. */
static struct node *list_find(struct node *l, int by_idx, int32_t want, struct node **prev)
{
	struct node *p = NULL;
	if (by_idx) {
		while (l && l->info->idx != (uint32_t)want) {
			p = l;
			l = l->next;
		}
	} else {
		while (l && l->info->data != want) {
			p = l;
			l = l->next;
		}
	}
	*prev = p;
	return l;
}

static struct node *list_reverse(struct node *l)
{
	struct node *r = NULL, *n;
	while (l) {
		n = l->next;
		l->next = r;
		r = l;
		l = n;
	}
	return r;
}

/* Bottom-up merge sort of a singly linked list: runs of width 1, 2, 4, ... are merged
 * pairwise until one pass does a single merge. Stable. */
static struct node *list_sort(struct node *list, cmp_fn cmp, uint16_t salt)
{
	uint32_t width = 1, merges;
	if (!list)
		return NULL;
	do {
		struct node *p = list, *tail = NULL;
		list = NULL;
		merges = 0;
		while (p) {
			struct node *q = p;
			uint32_t psize = 0, qsize = width;
			merges++;
			while (psize < width && q) {
				psize++;
				q = q->next;
			}
			while (psize > 0 || (qsize > 0 && q)) {
				struct node *e;
				if (psize == 0) {
					e = q;
					q = q->next;
					qsize--;
				} else if (qsize == 0 || !q || cmp(p->info, q->info, salt) <= 0) {
					e = p;
					p = p->next;
					psize--;
				} else {
					e = q;
					q = q->next;
					qsize--;
				}
				if (tail)
					tail->next = e;
				else
					list = e;
				tail = e;
			}
			p = q;
		}
		tail->next = NULL;
		width *= 2;
	} while (merges > 1);
	return list;
}

static int32_t item_key(const struct item *it, uint16_t salt)
{
	uint16_t x = (uint16_t)it->data ^ salt;
	x = (uint16_t)((x << 5) | (x >> 11));
	return (int32_t)(x & 0x3fffu) - 0x2000;
}

static int cmp_key(const struct item *a, const struct item *b, uint16_t salt)
{
	int32_t ka = item_key(a, salt), kb = item_key(b, salt);
	return ka < kb ? -1 : ka > kb;
}

static int cmp_idx(const struct item *a, const struct item *b, uint16_t salt)
{
	return (int)a->idx - (int)b->idx;
}

static struct node *list_head;

NOINLINE static uint16_t bench_list(uint16_t seed, uint16_t crc, int *in_order)
{
	struct node *l = list_head, *prev, *hit, *p;
	uint32_t i, found = 0, missed = 0, pos;
	for (i = 0; i < 24; i++) {
		int by_idx = (int)(i & 1u);
		int32_t want;
		if (by_idx)
			want = (int32_t)((seed + i * 37u) % (LIST_N + LIST_N / 4u)); /* some miss */
		else if (i % 6u == 0)
			want = -1 - (int32_t)i; /* data is never negative: always a miss */
		else
			want = items[(seed * 7u + i * 13u) % LIST_N].data;
		hit = list_find(l, by_idx, want, &prev);
		if (hit) {
			found++;
			crc = crc16_u16((uint16_t)hit->info->data, crc);
			if (prev) { /* move to front */
				prev->next = hit->next;
				hit->next = l;
				l = hit;
			}
		} else {
			missed++;
		}
		if (i % 4u == 3u)
			l = list_reverse(l);
	}
	l = list_sort(l, cmp_key, seed);
	for (p = l, pos = 0; p; p = p->next, pos++)
		if ((pos & 7u) == 0)
			crc = crc16_u16((uint16_t)(p->info->data ^ (int16_t)pos), crc);
	l = list_sort(l, cmp_idx, 0);
	for (p = l, pos = 0; p; p = p->next, pos++)
		if (p->info->idx != pos)
			*in_order = 0;
	if (pos != LIST_N)
		*in_order = 0;
	list_head = l;
	crc = crc16_u16((uint16_t)found, crc);
	return crc16_u16((uint16_t)missed, crc);
}

/* ---- matrices ---- */

static int16_t mat_a[MAT_N * MAT_N], mat_b[MAT_N * MAT_N];
static int32_t mat_c[MAT_N * MAT_N], mat_d[MAT_N * MAT_N];

static void mat_init(uint32_t seed)
{
	uint32_t i, x = seed;
	for (i = 0; i < MAT_N * MAT_N; i++) {
		x = x * 1664525u + 1013904223u;
		mat_a[i] = (int16_t)((int32_t)(x >> 20) - 2048); /* [-2048, 2047] */
		mat_b[i] = (int16_t)((int32_t)((x >> 8) & 0xfffu) - 2048);
	}
}

static void mat_add_const(int16_t *a, int16_t v)
{
	uint32_t i;
	for (i = 0; i < MAT_N * MAT_N; i++)
		a[i] = (int16_t)(a[i] + v);
}

static void mat_mul_const(int32_t *c, const int16_t *a, int16_t v)
{
	uint32_t i;
	for (i = 0; i < MAT_N * MAT_N; i++)
		c[i] = (int32_t)a[i] * v;
}

static void mat_mul_vec(int32_t *c, const int16_t *a, const int16_t *b)
{
	uint32_t i, j;
	for (i = 0; i < MAT_N; i++) {
		int32_t s = 0;
		for (j = 0; j < MAT_N; j++)
			s += (int32_t)a[i * MAT_N + j] * b[j];
		c[i] = s;
	}
}

NOINLINE static void mat_mul_mat(int32_t *c, const int16_t *a, const int16_t *b)
{
	uint32_t i, j, k;
	for (i = 0; i < MAT_N; i++)
		for (j = 0; j < MAT_N; j++) {
			int32_t s = 0;
			for (k = 0; k < MAT_N; k++)
				s += (int32_t)a[i * MAT_N + k] * b[k * MAT_N + j];
			c[i * MAT_N + j] = s;
		}
}

/* The same product in i-k-j order (row updates): an independent computation. */
NOINLINE static void mat_mul_mat_ikj(int32_t *c, const int16_t *a, const int16_t *b)
{
	uint32_t i, j, k;
	for (i = 0; i < MAT_N * MAT_N; i++)
		c[i] = 0;
	for (i = 0; i < MAT_N; i++)
		for (k = 0; k < MAT_N; k++) {
			int32_t x = a[i * MAT_N + k];
			for (j = 0; j < MAT_N; j++)
				c[i * MAT_N + j] += x * b[k * MAT_N + j];
		}
}

NOINLINE static void mat_mul_mat_bits(int32_t *c, const int16_t *a, const int16_t *b)
{
	uint32_t i, j, k;
	for (i = 0; i < MAT_N; i++)
		for (j = 0; j < MAT_N; j++) {
			int32_t s = 0;
			for (k = 0; k < MAT_N; k++) {
				int32_t t = (int32_t)a[i * MAT_N + k] * b[k * MAT_N + j];
				s += ((t >> 2) & 0xf) * ((t >> 5) & 0x7f);
			}
			c[i * MAT_N + j] = s;
		}
}

/* Summarizes a result matrix: a running total that resets when it passes clip, and a count
 * of increases. */
static uint16_t mat_sum(const int32_t *c, uint32_t n, int32_t clip)
{
	int32_t total = 0, prev = 0;
	uint32_t i, ret = 0;
	for (i = 0; i < n; i++) {
		int32_t v = c[i];
		total += v >> 4;
		if (total > clip) {
			ret += 10;
			total = 0;
		} else {
			ret += v > prev ? 1u : 0u;
		}
		prev = v;
	}
	return (uint16_t)ret;
}

NOINLINE static uint16_t bench_matrix(uint16_t seed, uint16_t crc, int verify)
{
	int16_t v = (int16_t)((seed & 0xffu) | 1u);
	uint32_t i;
	mat_add_const(mat_a, v);
	mat_mul_const(mat_c, mat_a, v);
	crc = crc16_u16(mat_sum(mat_c, MAT_N * MAT_N, 100000), crc);
	mat_mul_vec(mat_c, mat_a, mat_b + (seed % MAT_N) * MAT_N);
	crc = crc16_u16(mat_sum(mat_c, MAT_N, 50000), crc);
	mat_mul_mat(mat_c, mat_a, mat_b);
	crc = crc16_u16(mat_sum(mat_c, MAT_N * MAT_N, 1000000), crc);
	if (verify) {
		mat_mul_mat_ikj(mat_d, mat_a, mat_b);
		for (i = 0; i < MAT_N * MAT_N; i++)
			if (mat_c[i] != mat_d[i])
				break;
		check(i == MAT_N * MAT_N, "matrix product differs between two loop orders");
	}
	mat_mul_mat_bits(mat_c, mat_a, mat_b);
	crc = crc16_u16(mat_sum(mat_c, MAT_N * MAT_N, 5000), crc);
	mat_add_const(mat_a, (int16_t)-v);
	return crc;
}

/* ---- state machine ---- */

enum state { S_START, S_INVALID, S_SIGN, S_INT, S_POINT, S_FRAC, S_EXP, S_EXPSIGN, S_SCI, S_COUNT };

static uint8_t sm_buf[SM_BYTES];
static uint32_t sm_len, sm_tokens;
static uint32_t sm_kinds[S_COUNT]; /* final states of the generated tokens */

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

/* Scans one token starting at *pos (up to ',' or the end); returns its final state and
 * counts every state transition in trans[]. */
static enum state sm_token(const uint8_t *buf, uint32_t len, uint32_t *pos, uint32_t *trans)
{
	enum state s = S_START;
	uint32_t i = *pos;
	for (; i < len; i++) {
		uint8_t c = buf[i];
		enum state n = s;
		if (c == ',') {
			i++;
			break;
		}
		switch (s) {
		case S_START:
			if (is_digit(c))
				n = S_INT;
			else if (c == '+' || c == '-')
				n = S_SIGN;
			else if (c == '.')
				n = S_POINT;
			else
				n = S_INVALID;
			break;
		case S_SIGN:
			if (is_digit(c))
				n = S_INT;
			else if (c == '.')
				n = S_POINT;
			else
				n = S_INVALID;
			break;
		case S_INT:
			if (c == '.')
				n = S_POINT;
			else if (c == 'e' || c == 'E')
				n = S_EXP;
			else if (!is_digit(c))
				n = S_INVALID;
			break;
		case S_POINT:
			n = is_digit(c) ? S_FRAC : S_INVALID;
			break;
		case S_FRAC:
			if (c == 'e' || c == 'E')
				n = S_EXP;
			else if (!is_digit(c))
				n = S_INVALID;
			break;
		case S_EXP:
			if (c == '+' || c == '-')
				n = S_EXPSIGN;
			else
				n = is_digit(c) ? S_SCI : S_INVALID;
			break;
		case S_EXPSIGN:
			n = is_digit(c) ? S_SCI : S_INVALID;
			break;
		case S_SCI:
			if (!is_digit(c))
				n = S_INVALID;
			break;
		default:
			break;
		}
		if (n != s)
			trans[n]++;
		s = n;
	}
	*pos = i;
	return s;
}

static void sm_scan(const uint8_t *buf, uint32_t len, uint32_t *finals, uint32_t *trans)
{
	uint32_t pos = 0;
	while (pos < len)
		finals[sm_token(buf, len, &pos, trans)]++;
}

/* Fills sm_buf with comma-separated tokens, each with the final state it must reach. */
static void sm_init(uint32_t seed)
{
	static const struct {
		const char *text;
		enum state final;
	} tokens[32] = {
		{"0", S_INT}, {"7", S_INT}, {"42", S_INT}, {"-13", S_INT},
		{"+905", S_INT}, {"65535", S_INT}, {"-2147483", S_INT}, {"31", S_INT},
		{"3.25", S_FRAC}, {"-0.5", S_FRAC}, {".75", S_FRAC}, {"+12.125", S_FRAC},
		{"100.0", S_FRAC}, {"-.001", S_FRAC}, {"9.99", S_FRAC}, {"0.", S_POINT},
		{"1e5", S_SCI}, {"-2.5E-3", S_SCI}, {"6.02e+23", S_SCI}, {"1.0e0", S_SCI},
		{"+4E9", S_SCI}, {"7.5e-12", S_SCI}, {".5e1", S_SCI}, {"9e9", S_SCI},
		{"1x3", S_INVALID}, {"--2", S_INVALID}, {"5.e", S_INVALID}, {"e5", S_INVALID},
		{"1.2.3", S_INVALID}, {"0x1f", S_INVALID}, {"+", S_SIGN}, {"12e+", S_EXPSIGN},
	};
	uint32_t x = seed, i;
	sm_len = 0;
	sm_tokens = 0;
	for (i = 0; i < S_COUNT; i++)
		sm_kinds[i] = 0;
	for (;;) {
		uint32_t k, n;
		x = x * 1103515245u + 12345u;
		k = (x >> 16) & 31u;
		n = strlen(tokens[k].text);
		if (sm_len + n + 1 > SM_BYTES)
			break;
		if (sm_len)
			sm_buf[sm_len++] = ',';
		memcpy(sm_buf + sm_len, tokens[k].text, n);
		sm_len += n;
		sm_tokens++;
		sm_kinds[tokens[k].final]++;
	}
}

static uint16_t buf_crc(const uint8_t *b, uint32_t n)
{
	uint16_t crc = 0;
	uint32_t i;
	for (i = 0; i < n; i++)
		crc = crc16_byte(b[i], crc);
	return crc;
}

NOINLINE static uint16_t bench_state(uint16_t seed, uint16_t crc, int verify)
{
	uint32_t finals[S_COUNT] = {0}, trans[S_COUNT] = {0}, i, step = 3u + (seed & 7u);
	uint8_t flip = (uint8_t)(0x40u | (seed & 0x3fu));
	sm_scan(sm_buf, sm_len, finals, trans);
	if (verify)
		for (i = 0; i < S_COUNT; i++)
			check(finals[i] == sm_kinds[i], "state machine disagrees with the generated token kinds");
	for (i = 0; i < S_COUNT; i++)
		crc = crc16_u32(finals[i] ^ (trans[i] << 8), crc);
	for (i = seed % step; i < sm_len; i += step)
		sm_buf[i] ^= flip;
	for (i = 0; i < S_COUNT; i++)
		finals[i] = trans[i] = 0;
	sm_scan(sm_buf, sm_len, finals, trans);
	for (i = 0; i < S_COUNT; i++)
		crc = crc16_u32(finals[i] ^ (trans[i] << 8), crc);
	for (i = seed % step; i < sm_len; i += step)
		sm_buf[i] ^= flip;
	return crc;
}

/* ---- table-driven CRC-16, for the self-check ---- */

static uint16_t crc_table[256];

static uint16_t crc16_table(const uint8_t *b, uint32_t n, uint16_t crc)
{
	uint32_t i;
	for (i = 0; i < n; i++)
		crc = (uint16_t)((crc >> 8) ^ crc_table[(crc ^ b[i]) & 0xffu]);
	return crc;
}

int main(int argc, char **argv)
{
	uint32_t n = parse_count(argc, argv, "bench-coremark", DEFAULT_N, 1, UINT32_MAX), it, i;
	uint16_t crc = 0, crc_list = 0, crc_mat = 0, crc_state = 0, sm_crc0;
	int16_t a_copy[MAT_N * MAT_N];
	int in_order = 1;

	list_head = list_init(0x66u);
	mat_init(0x3415u);
	sm_init(0x8badu);
	memcpy(a_copy, mat_a, sizeof a_copy);
	sm_crc0 = buf_crc(sm_buf, sm_len);

	for (it = 0; it < n; it++) {
		uint16_t seed = (uint16_t)(it * 0x9e37u + 0x1234u);
		int verify = it == 0 || it == n - 1;
		crc_list = bench_list(seed, crc_list, &in_order);
		crc_mat = bench_matrix(seed, crc_mat, verify);
		crc_state = bench_state(seed, crc_state, verify);
		crc = crc16_u16(crc_list, crc);
		crc = crc16_u16(crc_mat, crc);
		crc = crc16_u16(crc_state, crc);
	}

	check(in_order, "list not back in index order");
	check(memcmp(a_copy, mat_a, sizeof a_copy) == 0, "matrix A not restored");
	check(buf_crc(sm_buf, sm_len) == sm_crc0, "state machine input not restored");
	for (i = 0; i < 256; i++) {
		uint16_t c = 0;
		uint32_t k;
		c = (uint16_t)i;
		for (k = 0; k < 8; k++)
			c = (c & 1u) ? (uint16_t)((c >> 1) ^ 0xA001u) : (uint16_t)(c >> 1);
		crc_table[i] = c;
	}
	check(buf_crc((const uint8_t *)"123456789", 9) == 0xBB3Du, "CRC-16/ARC check value");
	check(crc16_table(sm_buf, sm_len, 0) == sm_crc0, "bitwise and table CRC-16 differ");

	printf("bench-coremark: %u iterations\n", n);
	printf("list %u nodes, matrix %ux%u, state machine %u bytes / %u tokens\n", LIST_N, MAT_N, MAT_N,
	       sm_len, sm_tokens);
	printf("crc list 0x%04x matrix 0x%04x state 0x%04x\n", crc_list, crc_mat, crc_state);
	printf("final crc 0x%04x\n", crc);
	if (failures) {
		printf("bench-coremark: %d check(s) FAILED\n", failures);
		return 1;
	}
	printf("bench-coremark: ok\n");
	return 0;
}
