/* csr-mret: what the riscv-tests "p" environment does at reset, then a CSR test body.
 *
 * Reset code (like RVTEST_CODE_BEGIN): zero the integer registers, spin unless mhartid == 0,
 * install mtvec, clear medeleg/mideleg/mie/mstatus, write the test body's address to mepc and
 * mret into it. The body checks arithmetic and CSR read-back (csrrw/csrrs/csrrc and the
 * immediate forms on mscratch, mtvec/mepc read-back, cycle/instret nonzero and increasing,
 * a second mret) and ends like RVTEST_PASS / RVTEST_FAIL, but through the Linux exit syscall:
 * a0 = 0 on success, a0 = (testnum << 1) | 1 on failure (testnum lives in gp, as there).
 * A trap (which should never happen) exits with 255.
 *
 * qemu-riscv32 (Linux user mode) raises SIGILL on the first machine-mode CSR, so the
 * expected files (exit 0, no output) are written by hand. */
	.option arch, +zicsr

#define TESTNUM gp

	.section .text._start,"ax",@progbits
	.globl _start
	.type _start, @function
_start:
	j	reset_vector

	.p2align 2
trap_vector:
	li	a7, 93
	li	a0, 255
	ecall
1:	j	1b

reset_vector:
	li	x1, 0
	li	x2, 0
	li	x3, 0
	li	x4, 0
	li	x5, 0
	li	x6, 0
	li	x7, 0
	li	x8, 0
	li	x9, 0
	li	x10, 0
	li	x11, 0
	li	x12, 0
	li	x13, 0
	li	x14, 0
	li	x15, 0
	li	x16, 0
	li	x17, 0
	li	x18, 0
	li	x19, 0
	li	x20, 0
	li	x21, 0
	li	x22, 0
	li	x23, 0
	li	x24, 0
	li	x25, 0
	li	x26, 0
	li	x27, 0
	li	x28, 0
	li	x29, 0
	li	x30, 0
	li	x31, 0
	csrr	a0, mhartid
1:	bnez	a0, 1b			/* only hart 0 runs the test */
	la	t0, trap_vector
	csrw	mtvec, t0
	csrwi	medeleg, 0
	csrwi	mideleg, 0
	csrwi	mie, 0
	li	TESTNUM, 0
	csrwi	mstatus, 0
	la	t0, test_body
	csrw	mepc, t0
	csrr	a0, mhartid
	mret

	.p2align 2
test_body:
	/* test 2: integer arithmetic */
	li	TESTNUM, 2
	li	a1, 0x12345678
	li	a2, 0x11111111
	add	a3, a1, a2
	li	a4, 0x23456789
	bne	a3, a4, fail
	sub	a3, a3, a1
	bne	a3, a2, fail

	/* test 3: M extension */
	li	TESTNUM, 3
	li	a1, -6
	li	a2, 7
	mul	a3, a1, a2
	li	a4, -42
	bne	a3, a4, fail
	div	a5, a3, a2
	bne	a5, a1, fail
	rem	a5, a3, a1
	bnez	a5, fail

	/* test 4: csrw / csrr on mscratch; the value comes from .rodata, is kept in .data */
	li	TESTNUM, 4
	la	t0, magic
	lw	a1, 0(t0)		/* 0xdeadbeef */
	csrw	mscratch, a1
	csrr	a2, mscratch
	bne	a1, a2, fail
	la	t1, saved
	sw	a2, 0(t1)
	lw	a3, 0(t1)
	bne	a3, a1, fail

	/* test 5: csrrw returns the old value and writes the new one */
	li	TESTNUM, 5
	li	a3, 0x12345678
	csrrw	a4, mscratch, a3
	bne	a4, a1, fail
	csrr	a5, mscratch
	bne	a5, a3, fail

	/* test 6: csrrs sets bits */
	li	TESTNUM, 6
	li	a1, 0x0000ff00
	csrrs	a2, mscratch, a1
	bne	a2, a3, fail
	csrr	a4, mscratch
	li	a5, 0x1234ff78
	bne	a4, a5, fail

	/* test 7: csrrc clears bits */
	li	TESTNUM, 7
	li	a1, 0x000000f0
	csrrc	a2, mscratch, a1
	bne	a2, a5, fail
	csrr	a4, mscratch
	li	a5, 0x1234ff08
	bne	a4, a5, fail

	/* test 8: csrrwi / csrrsi / csrrci */
	li	TESTNUM, 8
	csrrwi	a1, mscratch, 0x15
	bne	a1, a5, fail
	csrr	a2, mscratch
	li	a3, 0x15
	bne	a2, a3, fail
	csrrsi	a1, mscratch, 0x0a
	bne	a1, a3, fail
	csrr	a2, mscratch
	li	a3, 0x1f
	bne	a2, a3, fail
	csrrci	a1, mscratch, 0x03
	bne	a1, a3, fail
	csrr	a2, mscratch
	li	a3, 0x1c
	bne	a2, a3, fail

	/* test 9: csrrs with rs1 = x0 only reads; csrrw with rd = x0 only writes;
	 * csrrsi/csrrci with a zero immediate leave the value alone */
	li	TESTNUM, 9
	csrrs	a1, mscratch, x0
	bne	a1, a3, fail
	csrrsi	a1, mscratch, 0
	bne	a1, a3, fail
	csrrci	a1, mscratch, 0
	bne	a1, a3, fail
	csrw	mscratch, x0
	csrr	a1, mscratch
	bnez	a1, fail

	/* test 10: mtvec and mepc read back what the reset code wrote; mhartid is 0 */
	li	TESTNUM, 10
	csrr	a1, mtvec
	la	a2, trap_vector
	bne	a1, a2, fail
	csrr	a1, mepc
	la	a2, test_body
	bne	a1, a2, fail
	csrr	a1, mhartid
	bnez	a1, fail

	/* test 11: cycle and instret are nonzero and increase (the reads are in different
	 * blocks: a counted loop runs between them) */
	li	TESTNUM, 11
	rdcycle	a1
	rdinstret a2
	li	t0, 10
1:	addi	t0, t0, -1
	bnez	t0, 1b
	rdcycle	a3
	rdinstret a4
	beqz	a1, fail
	beqz	a2, fail
	bgeu	a1, a3, fail
	bgeu	a2, a4, fail
	sub	a5, a4, a2
	li	a6, 20			/* at least the 20 loop instructions retired in between */
	bltu	a5, a6, fail

	/* test 12: a second mret goes to the new mepc */
	li	TESTNUM, 12
	la	t0, after_mret
	csrw	mepc, t0
	mret
	j	fail
after_mret:
	csrr	a1, mepc
	bne	a1, t0, fail

	/* test 13: other machine CSRs hold what is written to them */
	li	TESTNUM, 13
	li	a1, 0x5a5a5a5a
	csrw	mtval, a1
	csrr	a2, mtval
	bne	a1, a2, fail
	csrwi	mcause, 0x1f
	csrr	a2, mcause
	li	a3, 0x1f
	bne	a2, a3, fail

pass:
	fence
	li	TESTNUM, 1
	li	a7, 93
	li	a0, 0
	ecall
	j	pass

fail:
	fence
	slli	a0, TESTNUM, 1
	ori	a0, a0, 1
	li	a7, 93
	ecall
	j	fail
	.size _start, . - _start

	.section .rodata
	.p2align 2
magic:
	.word	0xdeadbeef

	.data
	.p2align 2
saved:
	.word	0
