/* Process entry: Linux initial stack layout (argc, argv..., NULL, envp..., NULL, auxv). */
	.section .text._start,"ax",@progbits
	.globl _start
	.type _start, @function
_start:
	.option push
	.option norelax
	la	gp, __global_pointer$
	.option pop
	lw	a0, 0(sp)		/* argc */
	addi	a1, sp, 4		/* argv */
	slli	t0, a0, 2
	add	a2, a1, t0
	addi	a2, a2, 4		/* envp = &argv[argc + 1] */
	andi	sp, sp, -16
	call	main
	call	exit			/* exit(main's return value); never returns */
1:	j	1b
	.size _start, . - _start
