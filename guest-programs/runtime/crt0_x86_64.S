/* Native x86-64 entry, for native builds of the benchmark programs (benches/compare.py
 * links this instead of crt0.S; syscalls.c has the x86-64 system calls): argc, argv,
 * envp from the Linux initial stack, then exit(main(...)). */
	.text
	.globl _start
	.type _start, @function
_start:
	xor	%rbp, %rbp
	mov	(%rsp), %rdi		/* argc */
	lea	8(%rsp), %rsi		/* argv */
	lea	8(%rsi,%rdi,8), %rdx	/* envp = &argv[argc + 1] */
	and	$-16, %rsp
	call	main
	mov	%eax, %edi
	call	exit
	hlt
	.section .note.GNU-stack,"",@progbits
