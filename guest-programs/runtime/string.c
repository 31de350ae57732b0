/* String and memory functions. memcpy/memset use word accesses when both pointers allow it,
 * so guest programs exercise both the byte and the word paths. */
#include "runtime.h"

void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if ((((uintptr_t)d ^ (uintptr_t)s) & 3) == 0) {
		while (n && ((uintptr_t)d & 3)) {
			*d++ = *s++;
			n--;
		}
		while (n >= 16) {
			uint32_t a = ((const uint32_t *)s)[0], b = ((const uint32_t *)s)[1];
			uint32_t c = ((const uint32_t *)s)[2], e = ((const uint32_t *)s)[3];
			((uint32_t *)d)[0] = a;
			((uint32_t *)d)[1] = b;
			((uint32_t *)d)[2] = c;
			((uint32_t *)d)[3] = e;
			d += 16;
			s += 16;
			n -= 16;
		}
		while (n >= 4) {
			*(uint32_t *)d = *(const uint32_t *)s;
			d += 4;
			s += 4;
			n -= 4;
		}
	}
	while (n--)
		*d++ = *s++;
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if (d == s || n == 0)
		return dst;
	if (d < s || d >= s + n)
		return memcpy(dst, src, n); /* forward copy is safe */
	/* overlapping with dst above src: copy backwards */
	d += n;
	s += n;
	if ((((uintptr_t)d ^ (uintptr_t)s) & 3) == 0) {
		while (n && ((uintptr_t)d & 3)) {
			*--d = *--s;
			n--;
		}
		while (n >= 4) {
			d -= 4;
			s -= 4;
			*(uint32_t *)d = *(const uint32_t *)s;
			n -= 4;
		}
	}
	while (n--)
		*--d = *--s;
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;
	uint32_t w = (unsigned char)c;
	w |= w << 8;
	w |= w << 16;
	while (n && ((uintptr_t)d & 3)) {
		*d++ = (unsigned char)c;
		n--;
	}
	while (n >= 4) {
		*(uint32_t *)d = w;
		d += 4;
		n -= 4;
	}
	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x < *y ? -1 : 1;
	return 0;
}

size_t strlen(const char *s)
{
	const char *p = s;
	while (*p)
		p++;
	return (size_t)(p - s);
}

int strcmp(const char *a, const char *b)
{
	const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
	while (*x && *x == *y) {
		x++;
		y++;
	}
	return (int)*x - (int)*y;
}

int strncmp(const char *a, const char *b, size_t n)
{
	const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
	if (n == 0)
		return 0;
	while (--n && *x && *x == *y) {
		x++;
		y++;
	}
	return (int)*x - (int)*y;
}

char *strchr(const char *s, int c)
{
	char ch = (char)c;
	for (;; s++) {
		if (*s == ch)
			return (char *)s;
		if (!*s)
			return NULL;
	}
}

char *strrchr(const char *s, int c)
{
	char ch = (char)c;
	const char *last = NULL;
	for (;; s++) {
		if (*s == ch)
			last = s;
		if (!*s)
			return (char *)last;
	}
}

char *strcpy(char *dst, const char *src)
{
	char *d = dst;
	while ((*d++ = *src++))
		;
	return dst;
}

uint32_t parse_count(int argc, char **argv, const char *name, uint32_t def, uint32_t min, uint32_t max)
{
	uint32_t v = 0;
	const char *s;
	if (argc < 2)
		return def;
	for (s = argv[1]; *s; s++) {
		if (*s < '0' || *s > '9' || v > 100000000u)
			break;
		v = v * 10u + (uint32_t)(*s - '0');
	}
	if (*s || v < min || v > max) {
		if (max == UINT32_MAX)
			printf("usage: %s [N] (N > 0, default %u)\n", name, def);
		else if (min == 1)
			printf("usage: %s [N] (0 < N <= %u, default %u)\n", name, max, def);
		else
			printf("usage: %s [N] (%u <= N <= %u, default %u)\n", name, min, max, def);
		exit(2);
	}
	return v;
}
