/* Process entry for picolibc programs on Linux (rv32imac): the Linux initial stack
 * (argc, argv..., NULL, envp..., NULL, auxv), gp and the thread pointer set, the
 * kernel told where the thread id lives (set_tid_address, as musl's start does), the
 * constructors run, then exit(main(argc, argv, envp)). */
	.section .text._start,"ax",@progbits
	.globl _start
	.type _start, @function
_start:
	.option push
	.option norelax
	la	gp, __global_pointer$
	.option pop
	/* TLS: one thread, whose block is .tdata + .tbss in the data segment as the
	 * ELF file sets it up (tp points at its start, RISC-V TLS variant I). */
	la	tp, __tls_base
	lw	s0, 0(sp)		/* argc */
	addi	s1, sp, 4		/* argv */
	slli	t0, s0, 2
	add	s2, s1, t0
	addi	s2, s2, 4		/* envp = &argv[argc + 1] */
	andi	sp, sp, -16
	la	a0, __tid
	li	a7, 96			/* set_tid_address */
	ecall
	call	__libc_init_array
	mv	a0, s0
	mv	a1, s1
	mv	a2, s2
	call	main
	call	exit
1:	j	1b
	.size _start, . - _start

	.section .bss.__tid,"aw",@nobits
	.p2align 2
__tid:	.space 4
