/* malloc/free over brk: an address-ordered free list, first fit, splitting, and coalescing
 * of neighbours on free. The heap grows with brk in steps of at least HEAP_STEP bytes. */
#include "runtime.h"

#define ALIGN 8u
#define HDR ((size_t)sizeof(struct hdr))
#define MIN_BLOCK 16u
#define HEAP_STEP (64u * 1024u)

struct hdr {
	size_t size;      /* whole block in bytes, header included; multiple of ALIGN */
	struct hdr *next; /* next free block (valid only while free) */
};

static struct hdr *free_list;
static uintptr_t cur_brk;

void *sbrk(intptr_t inc)
{
	uintptr_t old, want;
	long got;
	if (cur_brk == 0) {
		cur_brk = (uintptr_t)sys_brk(0);
		if (cur_brk & (ALIGN - 1)) {
			want = (cur_brk + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1);
			got = sys_brk(want);
			if ((uintptr_t)got != want)
				return (void *)-1;
			cur_brk = want;
		}
	}
	old = cur_brk;
	want = old + (uintptr_t)inc;
	if (inc > 0 && want < old)
		return (void *)-1;
	got = sys_brk(want);
	if ((uintptr_t)got != want)
		return (void *)-1;
	cur_brk = want;
	return (void *)old;
}

/* Inserts b into the free list, merging it with adjacent free blocks. */
static void insert_free(struct hdr *b)
{
	struct hdr *prev = NULL, *cur = free_list;
	while (cur && cur < b) {
		prev = cur;
		cur = cur->next;
	}
	b->next = cur;
	if (cur && (char *)b + b->size == (char *)cur) {
		b->size += cur->size;
		b->next = cur->next;
	}
	if (prev) {
		prev->next = b;
		if ((char *)prev + prev->size == (char *)b) {
			prev->size += b->size;
			prev->next = b->next;
		}
	} else {
		free_list = b;
	}
}

void *malloc(size_t n)
{
	size_t need;
	struct hdr *prev, *cur;
	if (n > 0x7fff0000u)
		return NULL;
	need = (n + HDR + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	if (need < MIN_BLOCK)
		need = MIN_BLOCK;
	for (;;) {
		prev = NULL;
		for (cur = free_list; cur; prev = cur, cur = cur->next) {
			if (cur->size < need)
				continue;
			if (cur->size - need >= MIN_BLOCK) {
				struct hdr *rest = (struct hdr *)((char *)cur + need);
				rest->size = cur->size - need;
				rest->next = cur->next;
				cur->size = need;
				if (prev)
					prev->next = rest;
				else
					free_list = rest;
			} else if (prev) {
				prev->next = cur->next;
			} else {
				free_list = cur->next;
			}
			cur->next = NULL;
			return cur + 1;
		}
		{
			size_t grow = need > HEAP_STEP ? (need + 4095u) & ~(size_t)4095u : HEAP_STEP;
			struct hdr *b = sbrk((intptr_t)grow);
			if (b == (void *)-1)
				return NULL;
			b->size = grow;
			insert_free(b);
		}
	}
}

void free(void *p)
{
	if (p)
		insert_free((struct hdr *)p - 1);
}

void *calloc(size_t n, size_t m)
{
	size_t total = n * m;
	void *p;
	if (m && total / m != n)
		return NULL;
	p = malloc(total);
	if (p)
		memset(p, 0, total);
	return p;
}

void *realloc(void *p, size_t n)
{
	void *q;
	size_t old;
	if (!p)
		return malloc(n);
	old = ((struct hdr *)p - 1)->size - HDR;
	if (n <= old)
		return p;
	q = malloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, old);
	free(p);
	return q;
}
