/* imac-atomics: C11 <stdatomic.h> on rv32imac, which gcc turns into AMOs (fetch_add,
 * fetch_and/or/xor, exchange) and lr.w/sc.w loops (compare_exchange, and libgcc's
 * byte and halfword __sync operations, which mask a word): counters, a spinlock on
 * an atomic_flag, a lock-free stack, and amomin/amomax through inline assembly. One
 * hart, so every result is exact. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

static atomic_int counter;
static atomic_uint bits;
static atomic_int swapped;
static atomic_flag lock = ATOMIC_FLAG_INIT;
static int guarded;
static uint8_t bytes[8];
static uint16_t halves[4];

struct node {
	struct node *next;
	int value;
};
static struct node nodes[64];
static _Atomic(struct node *) top;

static void push(struct node *n)
{
	struct node *old = atomic_load_explicit(&top, memory_order_relaxed);
	do
		n->next = old;
	while (!atomic_compare_exchange_weak_explicit(&top, &old, n, memory_order_release, memory_order_relaxed));
}

static struct node *pop(void)
{
	struct node *old = atomic_load_explicit(&top, memory_order_acquire);
	while (old && !atomic_compare_exchange_weak_explicit(&top, &old, old->next, memory_order_acq_rel,
							       memory_order_acquire))
		;
	return old;
}

static int32_t amo(int which, int32_t *p, int32_t v)
{
	int32_t old;
	switch (which) {
	case 0: __asm__ volatile("amomin.w %0, %2, (%1)" : "=r"(old) : "r"(p), "r"(v) : "memory"); break;
	case 1: __asm__ volatile("amomax.w.aq %0, %2, (%1)" : "=r"(old) : "r"(p), "r"(v) : "memory"); break;
	case 2: __asm__ volatile("amominu.w.rl %0, %2, (%1)" : "=r"(old) : "r"(p), "r"(v) : "memory"); break;
	default: __asm__ volatile("amomaxu.w.aqrl %0, %2, (%1)" : "=r"(old) : "r"(p), "r"(v) : "memory"); break;
	}
	return old;
}

int main(void)
{
	int i, expected, popped = 0, sum = 0;
	bool ok;

	for (i = 0; i < 1000; i++)
		atomic_fetch_add_explicit(&counter, i, memory_order_relaxed);
	for (i = 0; i < 100; i++)
		atomic_fetch_sub(&counter, 3);
	printf("counter: %d\n", atomic_load(&counter));

	atomic_store(&bits, 0xf0f0f0f0u);
	printf("fetch_and: %08x", atomic_fetch_and(&bits, 0xff00ff00u));
	printf(" fetch_or: %08x", atomic_fetch_or_explicit(&bits, 0x0000000fu, memory_order_acq_rel));
	printf(" fetch_xor: %08x", atomic_fetch_xor_explicit(&bits, 0xffffffffu, memory_order_seq_cst));
	printf(" now: %08x\n", atomic_load_explicit(&bits, memory_order_acquire));

	atomic_store(&swapped, 5);
	printf("exchange: %d", atomic_exchange(&swapped, 6));
	printf(" then %d\n", atomic_exchange_explicit(&swapped, 7, memory_order_release));

	expected = 7;
	ok = atomic_compare_exchange_strong(&swapped, &expected, 8);
	printf("cas 7->8: %s (expected %d)", ok ? "done" : "refused", expected);
	expected = 7;
	ok = atomic_compare_exchange_strong(&swapped, &expected, 9);
	printf(", cas 7->9: %s (expected %d), value %d\n", ok ? "done" : "refused", expected, atomic_load(&swapped));

	for (i = 0; i < 500; i++) {
		while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire))
			;
		guarded += i % 7;
		atomic_flag_clear_explicit(&lock, memory_order_release);
	}
	printf("spinlock: %d, flag %s\n", guarded,
	       atomic_flag_test_and_set(&lock) ? "was set" : "was clear");

	for (i = 0; i < 64; i++) {
		nodes[i].value = i * i;
		push(&nodes[i]);
	}
	struct node *taken[10];
	for (i = 0; i < 10; i++) {
		taken[i] = pop();
		if (taken[i]) {
			sum += taken[i]->value;
			popped++;
		}
	}
	for (i = 0; i < 5; i++)
		if (taken[i])
			push(taken[i]);
	while (pop())
		popped++;
	printf("stack: popped %d, first ten sum %d\n", popped, sum);

	for (i = 0; i < 300; i++) {
		__sync_fetch_and_add(&bytes[i % 8], (uint8_t)(i + 1));
		__sync_fetch_and_xor(&halves[i % 4], (uint16_t)(i * 77));
	}
	__sync_val_compare_and_swap(&bytes[7], bytes[7], 0x5a);
	printf("bytes:");
	for (i = 0; i < 8; i++)
		printf(" %02x", bytes[i]);
	printf("\nhalves:");
	for (i = 0; i < 4; i++)
		printf(" %04x", halves[i]);
	printf(" cas %d\n", __sync_bool_compare_and_swap(&halves[1], halves[1], 0x1234) + halves[1]);

	{
		static int32_t w[4] = { 10, -10, 10, -10 };
		static const int32_t v[] = { 3, -20, 20, -3, 0x7fffffff, (int32_t)0x80000000 };
		int j;
		for (j = 0; j < 6; j++)
			for (i = 0; i < 4; i++)
				amo(i, &w[i], v[j]);
		printf("amomin %d amomax %d amominu %08x amomaxu %08x\n", (int)w[0], (int)w[1], (unsigned)w[2],
		       (unsigned)w[3]);
	}
	atomic_thread_fence(memory_order_seq_cst);
	atomic_signal_fence(memory_order_seq_cst);
	return 0;
}
