/* strings: corner cases of the runtime's memcpy/memmove/memset/memcmp/strlen/strcmp/strncmp/
 * strchr/strrchr: empty strings, overlapping memmove in both directions, every source and
 * destination alignment 0..3, lengths 0..33, guard bytes around every destination. Each
 * result is checked against a plain byte-loop reference; a digest of all outputs is printed. */
#include "runtime.h"

#define BUF 96

static uint8_t src[BUF], dst[BUF], ref[BUF];
static uint32_t digest = 2166136261u; /* FNV-1a over every produced buffer */
static int failures;

static void mix(const uint8_t *p, uint32_t n)
{
	while (n--)
		digest = (digest ^ *p++) * 16777619u;
}

static void fill(uint8_t *p, uint32_t n, uint32_t seed)
{
	uint32_t i;
	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static void fail(const char *what, int a, int b, int c)
{
	if (failures < 10)
		printf("FAIL %s (%d, %d, %d)\n", what, a, b, c);
	failures++;
}

static int sign(int v) { return v < 0 ? -1 : v > 0; }

static void test_memcpy(void)
{
	int so, d, n, i;
	for (so = 0; so < 4; so++)
		for (d = 0; d < 4; d++)
			for (n = 0; n <= 33; n++) {
				fill(src, BUF, (uint32_t)(so * 1000 + d * 100 + n));
				memset(dst, 0xAA, BUF);
				memcpy(ref, dst, BUF);
				for (i = 0; i < n; i++)
					ref[8 + d + i] = src[8 + so + i];
				if (memcpy(dst + 8 + d, src + 8 + so, (size_t)n) != dst + 8 + d)
					fail("memcpy return", so, d, n);
				for (i = 0; i < BUF; i++)
					if (dst[i] != ref[i]) {
						fail("memcpy", so, d, n);
						break;
					}
				mix(dst, BUF);
			}
	printf("memcpy: 4x4 alignments x lengths 0..33 done\n");
}

static void test_memmove(void)
{
	int off, n, i, start;
	/* off < 0: destination below source (forward copy); off > 0: destination above source
	 * (backward copy); off == 0: same buffer. */
	for (off = -9; off <= 9; off++)
		for (n = 0; n <= 33; n++)
			for (start = 24; start < 28; start++) {
				fill(dst, BUF, (uint32_t)(off * 977 + n * 13 + start));
				memcpy(ref, dst, BUF);
				/* reference: go through a temporary copy */
				memcpy(src, ref + start, (size_t)n);
				for (i = 0; i < n; i++)
					ref[start + off + i] = src[i];
				if (memmove(dst + start + off, dst + start, (size_t)n) != dst + start + off)
					fail("memmove return", off, n, start);
				for (i = 0; i < BUF; i++)
					if (dst[i] != ref[i]) {
						fail("memmove", off, n, start);
						break;
					}
				mix(dst, BUF);
			}
	printf("memmove: overlaps -9..9 x lengths 0..33 x 4 alignments done\n");
}

static void test_memset(void)
{
	int d, n, i, v;
	static const int values[] = {0, 0x5A, 0xFF, 0x1234 /* only the low byte counts */, -1};
	for (v = 0; v < 5; v++)
		for (d = 0; d < 4; d++)
			for (n = 0; n <= 33; n++) {
				fill(dst, BUF, (uint32_t)(v * 7 + d * 100 + n));
				memcpy(ref, dst, BUF);
				for (i = 0; i < n; i++)
					ref[8 + d + i] = (uint8_t)values[v];
				if (memset(dst + 8 + d, values[v], (size_t)n) != dst + 8 + d)
					fail("memset return", v, d, n);
				for (i = 0; i < BUF; i++)
					if (dst[i] != ref[i]) {
						fail("memset", v, d, n);
						break;
					}
				mix(dst, BUF);
			}
	printf("memset: 5 values x 4 alignments x lengths 0..33 done\n");
}

static void test_strlen(void)
{
	int d, n;
	uint32_t total = 0;
	for (d = 0; d < 4; d++)
		for (n = 0; n <= 33; n++) {
			memset(dst, 'x', BUF);
			dst[8 + d + n] = 0;
			if (strlen((const char *)dst + 8 + d) != (size_t)n)
				fail("strlen", d, n, 0);
			total += (uint32_t)strlen((const char *)dst + 8 + d);
		}
	printf("strlen: total %u, strlen(\"\")=%u\n", total, (unsigned)strlen(""));
}

static void test_compare(void)
{
	static const struct {
		const char *a, *b;
	} cases[] = {
		{"", ""},       {"", "a"},         {"a", ""},          {"abc", "abc"},
		{"abc", "abd"}, {"abd", "abc"},    {"abc", "ab"},      {"ab", "abc"},
		{"\x80", "a"},  {"a", "\x80"},     {"\xff\x01", "\xff\x02"}, {"hello", "help"},
	};
	unsigned i;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int c = strcmp(cases[i].a, cases[i].b);
		int n0 = strncmp(cases[i].a, cases[i].b, 0);
		int n2 = strncmp(cases[i].a, cases[i].b, 2);
		int n9 = strncmp(cases[i].a, cases[i].b, 9);
		int m = memcmp(cases[i].a, cases[i].b, 1);
		printf("cmp #%u: strcmp %d strncmp(0) %d strncmp(2) %d strncmp(9) %d memcmp(1) %d\n", i,
		       sign(c), sign(n0), sign(n2), sign(n9), sign(m));
	}
}

static void test_strchr(void)
{
	const char *s = "hello, world";
	printf("strchr(s,'o') at %d\n", (int)(strchr(s, 'o') - s));
	printf("strrchr(s,'o') at %d\n", (int)(strrchr(s, 'o') - s));
	printf("strchr(s,'h') at %d\n", (int)(strchr(s, 'h') - s));
	printf("strchr(s,'d') at %d\n", (int)(strchr(s, 'd') - s));
	printf("strchr(s,0) at %d (the terminator)\n", (int)(strchr(s, 0) - s));
	printf("strchr(s,'z') is %s\n", strchr(s, 'z') ? "found" : "NULL");
	printf("strchr(\"\",'a') is %s\n", strchr("", 'a') ? "found" : "NULL");
	printf("strchr(s,'o'+256) at %d (char conversion)\n", (int)(strchr(s, 'o' + 256) - s));
	printf("strrchr(\"\",0) at %d\n", strrchr("", 0) ? 0 : -1);
}

int main(void)
{
	test_memcpy();
	test_memmove();
	test_memset();
	test_strlen();
	test_compare();
	test_strchr();
	printf("digest %08x\n", digest);
	printf("failures: %d\n", failures);
	return failures ? 1 : 0;
}
