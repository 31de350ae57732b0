/* bench-dhrystone: a Dhrystone-like mix of small procedure calls, record copies through
 * pointers, enumerations and switches, 30-character string copies and comparisons, character
 * tests, one- and two-dimensional global arrays and a little multiply/divide, run N times
 * (argument; default 3,500,000). Every procedure is kept out of line (noipa), as if each
 * lived in its own file: calls and returns are the point of the mix.
 * Self-checks: the final globals, counters and array cells are compared with values computed
 * separately from the iteration count (closed forms and a plain counting loop); the record
 * ring must still be a ring. Exit 1 on failure. */
#include "runtime.h"

#define DEFAULT_N 3500000u
#define NOINLINE __attribute__((noipa))

typedef enum { K_IDLE, K_QUEUED, K_ACTIVE, K_BLOCKED, K_DONE } kind;

struct rec {
	struct rec *next;
	kind status;
	kind prio;
	int32_t qty;
	char name[31];
};

#define NRECS 4

static struct rec recs[NRECS];
static struct rec *g_cur;
static int32_t g_int;
static int g_flag;
static char g_c1, g_c2;
static int32_t g_vec[50];
static int32_t g_grid[50][50];
static uint32_t g_hits, g_after, g_copies;

static const char *const names[4] = {
	"RECORD PROCESSING MIX, ENTRY 1",
	"RECORD PROCESSING MIX, ENTRY 2",
	"RECORD PROCESSING MIX, ENTRY 3",
	"RECORD PROCESSING MIX, ENTRY 4",
};

/* The next state of a record: a switch. */
NOINLINE static kind next_kind(kind k, int32_t level)
{
	switch (k) {
	case K_IDLE:
		return K_QUEUED;
	case K_QUEUED:
		return level > 100 ? K_ACTIVE : K_BLOCKED;
	case K_ACTIVE:
		return K_DONE;
	case K_BLOCKED:
		return level & 1 ? K_QUEUED : K_ACTIVE;
	default:
		return K_IDLE;
	}
}

NOINLINE static int is_active(kind k) { return k == K_ACTIVE; }

NOINLINE static void lin(int32_t a, int32_t b, int32_t *out) { *out = a + b + 2; }

NOINLINE static kind char_match(char a, char b)
{
	if (a != b)
		return K_IDLE;
	g_c1 = a;
	return K_QUEUED;
}

/* 1 if a sorts after b (a string comparison that runs 29 characters deep). */
NOINLINE static int name_after(const char *a, const char *b)
{
	if (char_match(a[0], b[1]) == K_QUEUED) /* never: 'R' != 'E' */
		return 0;
	if (strcmp(a, b) > 0) {
		g_after++;
		return 1;
	}
	return 0;
}

NOINLINE static void refresh_chars(uint32_t r)
{
	int first_is_a = g_c1 == 'A';
	g_flag = first_is_a | g_flag;
	g_c1 = 'A';
	g_c2 = (char)('B' + (r & 1u));
}

NOINLINE static void grid_update(int32_t *vec, int32_t grid[50][50], int32_t i, int32_t v)
{
	int32_t k;
	vec[i] = v;
	vec[i + 1] = vec[i];
	vec[i + 30] = i;
	for (k = i; k <= i + 1; k++)
		grid[i][k] = i;
	grid[i][i - 1] += 1;
	grid[i + 20][i] = vec[i];
	g_int = 5;
}

NOINLINE static void relink(struct rec **pp)
{
	if (g_cur)
		*pp = g_cur->next;
	lin(10, g_int, &g_cur->qty);
}

/* Copies the current record over its successor and moves one of them along the ring. */
NOINLINE static void advance(struct rec *r)
{
	struct rec *n = r->next, *after = n->next;
	*n = *g_cur;
	g_copies++;
	r->qty = 5;
	n->qty = r->qty;
	n->next = after;
	relink(&n->next);
	n->next = after;
	if (is_active(n->status) || n->status == K_IDLE) {
		n->qty = 6;
		n->prio = next_kind(r->prio, n->qty);
		lin(n->qty, 10, &n->qty);
		n->status = next_kind(n->status, n->qty);
		g_cur = n;
	} else {
		n->status = next_kind(n->status, r->qty + g_int);
		r->status = n->status;
	}
}

/* Counts *p down to a multiple of 5 (of 3 when the first character is not 'A'). */
NOINLINE static void settle(int32_t *p)
{
	int32_t v = *p + 10;
	for (;;) {
		v -= 1;
		*p = v - g_int;
		if (g_c1 == 'A' ? v % 5 == 0 : v % 3 == 0)
			break;
	}
}

int main(int argc, char **argv)
{
	uint32_t n = parse_count(argc, argv, "bench-dhrystone", DEFAULT_N, 1, UINT32_MAX), r, i;
	uint32_t sum = 0, cells[50] = {0}, failures = 0, want_after;
	char buf[31];
	struct rec *p;

	for (i = 0; i < NRECS; i++) {
		recs[i].next = &recs[(i + 1) % NRECS];
		recs[i].status = K_IDLE;
		recs[i].prio = (kind)(i % 5);
		recs[i].qty = 40;
		strcpy(recs[i].name, names[1]);
	}
	g_cur = &recs[0];
	g_grid[8][7] = 10;

	for (r = 1; r <= n; r++) {
		int32_t a, b, c = 0;
		kind k = K_IDLE;
		char ch;
		refresh_chars(r);
		strcpy(buf, names[r & 3u]);
		g_flag = name_after(buf, g_cur->name);
		a = 2;
		b = 3 + (int32_t)(r & 1u);
		while (a < b) {
			c = 5 * a - b;
			lin(a, b, &c);
			a++;
		}
		grid_update(g_vec, g_grid, a + (int32_t)(r & 3u), c);
		advance(g_cur);
		for (ch = 'A'; ch <= g_c2; ch++) {
			if (char_match(ch, 'C') == K_QUEUED) {
				k = next_kind(k, (int32_t)r);
				strcpy(buf, "RECORD PROCESSING MIX, ENTRY 9");
				g_hits++;
			}
		}
		b = b * a;
		a = b / c;
		b = 7 * (b - c) - a;
		settle(&a);
		sum = sum * 31u + (uint32_t)a + (uint32_t)b * 3u + (uint32_t)c * 7u + (uint32_t)k + (uint32_t)buf[29];
	}

	/* independent expectations */
	for (r = 1; r <= n; r++)
		cells[3u + (r & 1u) + (r & 3u)]++;
	for (i = 3; i <= 8; i++) {
		uint32_t want = cells[i] + (i == 8 ? 10u : 0u);
		if ((uint32_t)g_grid[i][i - 1] != want) {
			printf("FAIL: grid[%u][%u] = %d, want %u\n", i, i - 1, g_grid[i][i - 1], want);
			failures++;
		}
	}
	if (g_hits != (n + 1) / 2) {
		printf("FAIL: %u character hits, want %u\n", g_hits, (n + 1) / 2);
		failures++;
	}
	want_after = n / 4 * 2 + (n % 4 >= 2 ? n % 4 - 1 : 0); /* r % 4 == 2 or 3: ENTRY 3 and 4 */
	if (g_after != want_after) {
		printf("FAIL: %u names sorted after, want %u\n", g_after, want_after);
		failures++;
	}
	if (g_copies != n || g_int != 5 || g_c1 != (n & 1u ? 'C' : 'A') || strcmp(g_cur->name, names[1]) != 0) {
		printf("FAIL: final globals\n");
		failures++;
	}
	for (i = 0, p = g_cur; i < NRECS; i++)
		p = p->next;
	if (p != g_cur) {
		printf("FAIL: the record ring is broken\n");
		failures++;
	}

	printf("bench-dhrystone: %u runs\n", n);
	printf("g_int %d g_flag %d g_c1 %c g_c2 %c hits %u after %u\n", g_int, g_flag, g_c1, g_c2, g_hits, g_after);
	printf("vec[7] %d vec[37] %d grid[8][7] %d grid[27][7] %d\n", g_vec[7], g_vec[37], g_grid[8][7],
	       g_grid[27][7]);
	for (i = 0, p = g_cur; i < NRECS; i++, p = p->next)
		printf("rec %u: status %d prio %d qty %d\n", (uint32_t)(p - recs), (int)p->status, (int)p->prio, p->qty);
	printf("checksum 0x%08x\n", sum);
	if (failures) {
		printf("bench-dhrystone: %u check(s) FAILED\n", failures);
		return 1;
	}
	printf("bench-dhrystone: ok\n");
	return 0;
}
