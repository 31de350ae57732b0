/* bench-aes: AES-128 with 32-bit T-tables, the classic software implementation. The S-box
 * and its inverse are computed at start-up (logarithm tables in GF(2^8), then the affine
 * map), and from them the four encryption tables Te0..Te3 and the four decryption tables
 * Td0..Td3 (1 KiB each); decryption uses the equivalent inverse cipher (round keys passed
 * through InvMixColumns). The bulk work is N passes (argument; default 12000) over a 4 KiB
 * buffer: CBC-encrypt it (a fresh IV per pass), CBC-decrypt the result into a third buffer
 * and compare it with the plaintext, then use the ciphertext as the next pass's plaintext.
 * Self-checks: S-box spot values, the FIPS-197 example vectors (Appendix B and C.1) for
 * encryption and decryption, and decrypt(encrypt(x)) == x on every pass. Exit 1 on
 * failure. */
#include "runtime.h"

#define DEFAULT_N 12000u
#define BUF_BYTES (4u * 1024u)

static uint8_t sbox[256], inv_sbox[256];
static uint32_t Te0[256], Te1[256], Te2[256], Te3[256];
static uint32_t Td0[256], Td1[256], Td2[256], Td3[256];

static uint32_t ror8(uint32_t x) { return (x >> 8) | (x << 24); }

static uint8_t gf_mul(uint8_t a, uint8_t b)
{
	uint8_t p = 0;
	while (b) {
		if (b & 1u)
			p ^= a;
		a = (uint8_t)((a << 1) ^ ((a & 0x80u) ? 0x1bu : 0u));
		b >>= 1;
	}
	return p;
}

static void make_tables(void)
{
	uint8_t exp_t[256], log_t[256], x = 1;
	uint32_t i;
	/* 3 generates the multiplicative group of GF(2^8) */
	for (i = 0; i < 255; i++) {
		exp_t[i] = x;
		log_t[x] = (uint8_t)i;
		x = (uint8_t)(x ^ (x << 1) ^ ((x & 0x80u) ? 0x1bu : 0u));
	}
	for (i = 0; i < 256; i++) {
		uint8_t inv = i ? exp_t[(255u - log_t[i]) % 255u] : 0, s = inv;
		uint32_t k;
		for (k = 1; k <= 4; k++)
			s ^= (uint8_t)((inv << k) | (inv >> (8 - k)));
		s ^= 0x63u;
		sbox[i] = s;
		inv_sbox[s] = (uint8_t)i;
	}
	for (i = 0; i < 256; i++) {
		uint8_t s = sbox[i], t = inv_sbox[i];
		Te0[i] = ((uint32_t)gf_mul(s, 2) << 24) | ((uint32_t)s << 16) | ((uint32_t)s << 8) | gf_mul(s, 3);
		Te1[i] = ror8(Te0[i]);
		Te2[i] = ror8(Te1[i]);
		Te3[i] = ror8(Te2[i]);
		Td0[i] = ((uint32_t)gf_mul(t, 14) << 24) | ((uint32_t)gf_mul(t, 9) << 16) |
			 ((uint32_t)gf_mul(t, 13) << 8) | gf_mul(t, 11);
		Td1[i] = ror8(Td0[i]);
		Td2[i] = ror8(Td1[i]);
		Td3[i] = ror8(Td2[i]);
	}
}

static uint32_t load_be(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void store_be(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

struct key {
	uint32_t enc[44], dec[44];
};

static uint32_t sub_word(uint32_t w)
{
	return ((uint32_t)sbox[w >> 24] << 24) | ((uint32_t)sbox[(w >> 16) & 0xffu] << 16) |
	       ((uint32_t)sbox[(w >> 8) & 0xffu] << 8) | sbox[w & 0xffu];
}

static void expand_key(struct key *k, const uint8_t *key)
{
	uint32_t i, rc = 1;
	for (i = 0; i < 4; i++)
		k->enc[i] = load_be(key + 4 * i);
	for (i = 4; i < 44; i++) {
		uint32_t t = k->enc[i - 1];
		if (i % 4 == 0) {
			t = sub_word((t << 8) | (t >> 24)) ^ (rc << 24);
			rc = gf_mul((uint8_t)rc, 2);
		}
		k->enc[i] = k->enc[i - 4] ^ t;
	}
	/* decryption: round keys in reverse order, the middle ones through InvMixColumns */
	for (i = 0; i < 11; i++) {
		uint32_t j;
		for (j = 0; j < 4; j++) {
			uint32_t w = k->enc[4 * (10 - i) + j];
			if (i > 0 && i < 10)
				w = Td0[sbox[w >> 24]] ^ Td1[sbox[(w >> 16) & 0xffu]] ^ Td2[sbox[(w >> 8) & 0xffu]] ^
				    Td3[sbox[w & 0xffu]];
			k->dec[4 * i + j] = w;
		}
	}
}

static void encrypt_block(const struct key *k, const uint8_t *in, uint8_t *out)
{
	const uint32_t *rk = k->enc;
	uint32_t s0 = load_be(in) ^ rk[0], s1 = load_be(in + 4) ^ rk[1];
	uint32_t s2 = load_be(in + 8) ^ rk[2], s3 = load_be(in + 12) ^ rk[3];
	uint32_t t0, t1, t2, t3, r;
	for (r = 1; r < 10; r++) {
		rk += 4;
		t0 = Te0[s0 >> 24] ^ Te1[(s1 >> 16) & 0xffu] ^ Te2[(s2 >> 8) & 0xffu] ^ Te3[s3 & 0xffu] ^ rk[0];
		t1 = Te0[s1 >> 24] ^ Te1[(s2 >> 16) & 0xffu] ^ Te2[(s3 >> 8) & 0xffu] ^ Te3[s0 & 0xffu] ^ rk[1];
		t2 = Te0[s2 >> 24] ^ Te1[(s3 >> 16) & 0xffu] ^ Te2[(s0 >> 8) & 0xffu] ^ Te3[s1 & 0xffu] ^ rk[2];
		t3 = Te0[s3 >> 24] ^ Te1[(s0 >> 16) & 0xffu] ^ Te2[(s1 >> 8) & 0xffu] ^ Te3[s2 & 0xffu] ^ rk[3];
		s0 = t0;
		s1 = t1;
		s2 = t2;
		s3 = t3;
	}
	rk += 4;
#define FINAL_E(a, b, c, d)                                                                             \
	(((uint32_t)sbox[(a) >> 24] << 24) | ((uint32_t)sbox[((b) >> 16) & 0xffu] << 16) |                   \
	 ((uint32_t)sbox[((c) >> 8) & 0xffu] << 8) | sbox[(d) & 0xffu])
	store_be(out, FINAL_E(s0, s1, s2, s3) ^ rk[0]);
	store_be(out + 4, FINAL_E(s1, s2, s3, s0) ^ rk[1]);
	store_be(out + 8, FINAL_E(s2, s3, s0, s1) ^ rk[2]);
	store_be(out + 12, FINAL_E(s3, s0, s1, s2) ^ rk[3]);
}

static void decrypt_block(const struct key *k, const uint8_t *in, uint8_t *out)
{
	const uint32_t *rk = k->dec;
	uint32_t s0 = load_be(in) ^ rk[0], s1 = load_be(in + 4) ^ rk[1];
	uint32_t s2 = load_be(in + 8) ^ rk[2], s3 = load_be(in + 12) ^ rk[3];
	uint32_t t0, t1, t2, t3, r;
	for (r = 1; r < 10; r++) {
		rk += 4;
		t0 = Td0[s0 >> 24] ^ Td1[(s3 >> 16) & 0xffu] ^ Td2[(s2 >> 8) & 0xffu] ^ Td3[s1 & 0xffu] ^ rk[0];
		t1 = Td0[s1 >> 24] ^ Td1[(s0 >> 16) & 0xffu] ^ Td2[(s3 >> 8) & 0xffu] ^ Td3[s2 & 0xffu] ^ rk[1];
		t2 = Td0[s2 >> 24] ^ Td1[(s1 >> 16) & 0xffu] ^ Td2[(s0 >> 8) & 0xffu] ^ Td3[s3 & 0xffu] ^ rk[2];
		t3 = Td0[s3 >> 24] ^ Td1[(s2 >> 16) & 0xffu] ^ Td2[(s1 >> 8) & 0xffu] ^ Td3[s0 & 0xffu] ^ rk[3];
		s0 = t0;
		s1 = t1;
		s2 = t2;
		s3 = t3;
	}
	rk += 4;
#define FINAL_D(a, b, c, d)                                                                             \
	(((uint32_t)inv_sbox[(a) >> 24] << 24) | ((uint32_t)inv_sbox[((b) >> 16) & 0xffu] << 16) |           \
	 ((uint32_t)inv_sbox[((c) >> 8) & 0xffu] << 8) | inv_sbox[(d) & 0xffu])
	store_be(out, FINAL_D(s0, s3, s2, s1) ^ rk[0]);
	store_be(out + 4, FINAL_D(s1, s0, s3, s2) ^ rk[1]);
	store_be(out + 8, FINAL_D(s2, s1, s0, s3) ^ rk[2]);
	store_be(out + 12, FINAL_D(s3, s2, s1, s0) ^ rk[3]);
}

static void cbc_encrypt(const struct key *k, const uint8_t *iv, const uint8_t *in, uint8_t *out, uint32_t len)
{
	uint8_t x[16];
	const uint8_t *prev = iv;
	uint32_t i, j;
	for (i = 0; i < len; i += 16) {
		for (j = 0; j < 16; j++)
			x[j] = in[i + j] ^ prev[j];
		encrypt_block(k, x, out + i);
		prev = out + i;
	}
}

static void cbc_decrypt(const struct key *k, const uint8_t *iv, const uint8_t *in, uint8_t *out, uint32_t len)
{
	const uint8_t *prev = iv;
	uint32_t i, j;
	for (i = 0; i < len; i += 16) {
		decrypt_block(k, in + i, out + i);
		for (j = 0; j < 16; j++)
			out[i + j] ^= prev[j];
		prev = in + i;
	}
}

static int hex_equal(const uint8_t *b, const char *hex)
{
	uint32_t i;
	for (i = 0; i < 16; i++) {
		char h = hex[2 * i], l = hex[2 * i + 1];
		uint32_t v = (uint32_t)((h <= '9' ? h - '0' : h - 'a' + 10) * 16 + (l <= '9' ? l - '0' : l - 'a' + 10));
		if (b[i] != v)
			return 0;
	}
	return 1;
}

static void from_hex(uint8_t *b, const char *hex)
{
	uint32_t i;
	for (i = 0; i < 16; i++) {
		char h = hex[2 * i], l = hex[2 * i + 1];
		b[i] = (uint8_t)((h <= '9' ? h - '0' : h - 'a' + 10) * 16 + (l <= '9' ? l - '0' : l - 'a' + 10));
	}
}

static uint32_t failures;

static void known_answer(const char *key_hex, const char *pt_hex, const char *ct_hex)
{
	struct key k;
	uint8_t key[16], pt[16], ct[16], back[16];
	from_hex(key, key_hex);
	from_hex(pt, pt_hex);
	expand_key(&k, key);
	encrypt_block(&k, pt, ct);
	decrypt_block(&k, ct, back);
	if (!hex_equal(ct, ct_hex) || !hex_equal(back, pt_hex)) {
		printf("FAIL: FIPS-197 vector with key %s\n", key_hex);
		failures++;
	}
}

static uint32_t bufs[3][BUF_BYTES / 4]; /* words, so the buffers are aligned for the compare */

int main(int argc, char **argv)
{
	uint32_t n = parse_count(argc, argv, "bench-aes", DEFAULT_N, 1, UINT32_MAX), pass, i, x = 0x13572468u, chain = 0;
	uint8_t *plain = (uint8_t *)bufs[0], *cipher = (uint8_t *)bufs[1], *check = (uint8_t *)bufs[2], *t;
	uint8_t key_bytes[16], iv[16];
	struct key key;

	make_tables();
	if (sbox[0x00] != 0x63 || sbox[0x53] != 0xed || sbox[0xff] != 0x16 || inv_sbox[0x63] != 0x00 ||
	    Te0[0] != 0xc66363a5u || Td0[0] != 0x51f4a750u) {
		printf("FAIL: S-box or table values\n");
		failures++;
	}
	known_answer("2b7e151628aed2a6abf7158809cf4f3c", "3243f6a8885a308d313198a2e0370734",
		     "3925841d02dc09fbdc118597196a0b32");
	known_answer("000102030405060708090a0b0c0d0e0f", "00112233445566778899aabbccddeeff",
		     "69c4e0d86a7b0430d8cdb78070b4c55a");

	for (i = 0; i < 16; i++) {
		x = x * 1103515245u + 12345u;
		key_bytes[i] = (uint8_t)(x >> 16);
	}
	expand_key(&key, key_bytes);
	for (i = 0; i < BUF_BYTES; i++) {
		x = x * 1103515245u + 12345u;
		plain[i] = (uint8_t)(x >> 16);
	}

	for (pass = 0; pass < n; pass++) {
		for (i = 0; i < 16; i++)
			iv[i] = (uint8_t)(pass * 7u + i * 13u);
		cbc_encrypt(&key, iv, plain, cipher, BUF_BYTES);
		cbc_decrypt(&key, iv, cipher, check, BUF_BYTES);
		for (i = 0; i < BUF_BYTES / 4; i++)
			if (((const uint32_t *)check)[i] != ((const uint32_t *)plain)[i])
				break;
		if (i < BUF_BYTES / 4) {
			printf("FAIL: pass %u: decrypt(encrypt(x)) differs at byte %u\n", pass, 4 * i);
			failures++;
			break;
		}
		chain = (chain ^ load_be(cipher + BUF_BYTES - 4)) * 16777619u;
		t = plain;
		plain = cipher;
		cipher = t;
	}

	printf("bench-aes: AES-128-CBC, %u passes over %u bytes\n", n, BUF_BYTES);
	printf("last block:");
	for (i = BUF_BYTES - 16; i < BUF_BYTES; i++)
		printf(" %02x", plain[i]);
	printf("\n");
	printf("chain 0x%08x\n", chain);
	if (failures) {
		printf("bench-aes: %u check(s) FAILED\n", failures);
		return 1;
	}
	printf("bench-aes: ok\n");
	return 0;
}
