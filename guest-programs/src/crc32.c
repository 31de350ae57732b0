/* crc32: CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320) of "123456789" and of a 64 KiB
 * LCG-generated buffer, table-driven and bitwise; exits 0 only if all match the constants
 * (computed with Python's zlib.crc32). */
#include "runtime.h"

#define LEN 65536u

static uint8_t buf[LEN];
static uint32_t table[256];

static void make_table(void)
{
	uint32_t i, k;
	for (i = 0; i < 256; i++) {
		uint32_t c = i;
		for (k = 0; k < 8; k++)
			c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		table[i] = c;
	}
}

static uint32_t crc_table(const uint8_t *p, uint32_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	while (n--)
		c = table[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

static uint32_t crc_bitwise(const uint8_t *p, uint32_t n)
{
	uint32_t c = 0xFFFFFFFFu, k;
	while (n--) {
		c ^= *p++;
		for (k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
	}
	return ~c;
}

static int check(const char *what, uint32_t got, uint32_t want)
{
	printf("%-22s %08x (expected %08x) %s\n", what, got, want, got == want ? "ok" : "MISMATCH");
	return got == want;
}

int main(void)
{
	uint32_t x = 1, i;
	int ok = 1;
	make_table();
	for (i = 0; i < LEN; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 24);
	}
	printf("table[1]=%08x table[255]=%08x\n", table[1], table[255]);
	ok &= check("crc(\"123456789\")", crc_table((const uint8_t *)"123456789", 9), 0xCBF43926u);
	ok &= check("bitwise(\"123456789\")", crc_bitwise((const uint8_t *)"123456789", 9), 0xCBF43926u);
	ok &= check("crc(buf[0..1000])", crc_table(buf, 1000), 0xA346F0DCu);
	ok &= check("bitwise(buf[0..1000])", crc_bitwise(buf, 1000), 0xA346F0DCu);
	ok &= check("crc(buf[0..65536])", crc_table(buf, LEN), 0xC4D2A23Fu);
	printf("%s\n", ok ? "PASS" : "FAIL");
	return ok ? 0 : 1;
}
