# Coverage file for the rvdbt disassembler test (tests/disasm_objdump.rs).
#
# Every RV32I, M, Zicsr and Zifencei instruction form, every pseudo-instruction
# riscv64-unknown-elf-objdump (binutils 2.40) prints for them, boundary immediates,
# x0 in every operand position, and raw words (.insn) for encodings the assembler
# would not produce or that are reserved. Regenerate all.objdump with ./regen.sh.
#
# Raw words use `.insn 4, W` (not `.word W`): `.word` emits a data mapping symbol and
# objdump would print it as `.word 0x...` instead of disassembling it.
#
# Sections: .text is linked at 0x10000, .lowtext at 0x0 and .hightext at 0xfffff000
# (see regen.sh) so branch and jump targets wrap around the 32-bit address space.
# Everything here is assembled as a 32-bit ELF for rv32im_zicsr_zifencei without
# relaxation and without compressed instructions.

        .option norelax
        .text
        .globl _start
_start:
# ---------------------------------------------------------------- registers
# Every ABI register name in rd, rs1 and rs2 position.
        .irp r, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        xor x\r, x\r, x\r
        .endr
        add ra, sp, gp
        add tp, t0, t1
        add t2, s0, s1
        add a0, a1, a2
        add a3, a4, a5
        add a6, a7, s2
        add s3, s4, s5
        add s6, s7, s8
        add s9, s10, s11
        add t3, t4, t5
        add t6, zero, ra
        add fp, fp, fp

# ---------------------------------------------------------------- lui / auipc
        lui a0, 0x12345
        lui a0, 0
        lui a0, 1
        lui a0, 0x7ffff
        lui a0, 0x80000
        lui a0, 0xfffff
        lui zero, 0x1
        lui t6, 0xabcde
        auipc a0, 0x12345
        auipc a0, 0
        auipc ra, 0x1
        auipc t1, 0x7ffff
        auipc t1, 0x80000
        auipc sp, 0xfffff
        auipc zero, 0x1

# ---------------------------------------------------------------- jal
jal_back:
        jal zero, jal_back
        jal ra, jal_back
        jal a0, jal_back
        jal zero, jal_fwd
        jal ra, jal_fwd
        jal t0, jal_fwd
        j jal_fwd
        jal jal_fwd
jal_fwd:
        .insn 4, 0x0000006f             # j . (offset 0)
        .insn 4, 0x000000ef             # jal . (offset 0)
        .insn 4, 0x7ffff06f             # j +0xffffe (max)
        .insn 4, 0x800000ef             # jal -0x100000 (min)
        .insn 4, 0x8000056f             # jal a0, -0x100000
        .insn 4, 0x7ffff5ef             # jal a1, +0xffffe
        .insn 4, 0x0020006f             # j +2
        .insn 4, 0xffdff06f             # j -4
        .insn 4, 0x00100fef             # jal t6, +0x800 (bit 11)
        .insn 4, 0x001000ef             # jal +0x800

# ---------------------------------------------------------------- jalr
        jalr zero, 0(ra)                # ret
        jalr zero, 0(a0)                # jr
        jalr zero, 0(zero)
        jalr zero, 4(ra)
        jalr zero, -4(a0)
        jalr zero, 2047(a0)
        jalr zero, -2048(a0)
        jalr ra, 0(a0)
        jalr ra, 0(ra)
        jalr ra, 0(zero)
        jalr ra, 8(a0)
        jalr ra, -2048(t0)
        jalr ra, 2047(t0)
        jalr a0, 0(a1)
        jalr a0, 0(zero)
        jalr a0, 4(a1)
        jalr a0, -4(a1)
        jalr a0, 2047(a1)
        jalr a0, -2048(a1)
        jalr a0, 0(a0)
        jalr t1, 0(ra)
        jalr t1, 16(ra)
        jalr a0, 4(zero)
        jalr zero, 12(zero)

# ---------------------------------------------------------------- branches
br_back:
        beq a0, a1, br_back
        bne a0, a1, br_back
        blt a0, a1, br_back
        bge a0, a1, br_back
        bltu a0, a1, br_back
        bgeu a0, a1, br_back
        beq a0, zero, br_fwd
        bne a0, zero, br_fwd
        blt a0, zero, br_fwd
        bge a0, zero, br_fwd
        bltu a0, zero, br_fwd
        bgeu a0, zero, br_fwd
        beq zero, a0, br_fwd
        bne zero, a0, br_fwd
        blt zero, a0, br_fwd
        bge zero, a0, br_fwd
        bltu zero, a0, br_fwd
        bgeu zero, a0, br_fwd
        beq zero, zero, br_back
        bne zero, zero, br_back
        blt zero, zero, br_back
        bge zero, zero, br_back
        bltu zero, zero, br_back
        bgeu zero, zero, br_back
        bgt a0, a1, br_fwd
        ble a0, a1, br_fwd
        bgtu a0, a1, br_fwd
        bleu a0, a1, br_fwd
        beqz t6, br_fwd
        bnez s11, br_fwd
        blez a7, br_fwd
        bgez a7, br_fwd
        bltz a7, br_fwd
        bgtz a7, br_fwd
br_fwd:
        .insn 4, 0x00000063             # beq zero, zero, . (offset 0)
        .insn 4, 0x00b50063             # beq a0, a1, .
        .insn 4, 0x7eb51fe3             # bne a0, a1, +4094 (max)
        .insn 4, 0x80b51063             # bne a0, a1, -4096 (min)
        .insn 4, 0x7e054fe3             # bltz a0, +4094
        .insn 4, 0x80a05063             # blez a0, -4096
        .insn 4, 0x00b56163             # bltu a0, a1, +2
        .insn 4, 0xfeb57fe3             # bgeu a0, a1, -2
        .insn 4, 0x00b50063 | (1 << 7)  # beq a0, a1, +0x800 (imm[11])
        .insn 4, 0x80b57063 | (1 << 7)  # bgeu a0, a1, -0x800

# ---------------------------------------------------------------- loads
        lb a0, 0(a1)
        lh a0, 0(a1)
        lw a0, 0(a1)
        lbu a0, 0(a1)
        lhu a0, 0(a1)
        lb t0, -2048(sp)
        lh t1, 2047(sp)
        lw t2, -1(s0)
        lbu s1, 1(a5)
        lhu a7, -2048(t6)
        lw zero, 8(sp)
        lb zero, 0(zero)
        lw a0, 16(zero)
        lw a0, -16(zero)
        lw a0, 16(tp)
        lh a0, 16(gp)
        lw ra, 2047(ra)
        lbu s11, -1(s11)
        lhu t3, 100(t4)

# ---------------------------------------------------------------- stores
        sb a0, 0(a1)
        sh a0, 0(a1)
        sw a0, 0(a1)
        sb t0, -2048(sp)
        sh t1, 2047(sp)
        sw t2, -1(s0)
        sw zero, 8(sp)
        sb zero, 0(zero)
        sw a0, 16(zero)
        sh a0, -16(zero)
        sw a0, 16(tp)
        sb a0, 16(gp)
        sw ra, 2047(ra)
        sh s11, -1(s11)
        sw t6, 100(t5)

# ---------------------------------------------------------------- op-imm
        addi a0, a0, 1
        addi a0, a1, -1
        addi a0, a1, 2047
        addi a0, a1, -2048
        addi a0, a1, 0                  # mv
        addi a0, zero, 5                # li
        addi a0, zero, 0
        addi a0, zero, -2048
        addi a0, zero, 2047
        addi zero, zero, 0              # nop
        addi zero, zero, 1
        addi zero, a0, 0
        addi zero, a0, 7
        addi sp, sp, -16
        slti a0, a1, 5
        slti a0, a1, -2048
        slti a0, a1, 2047
        slti a0, a1, 0
        slti a0, zero, 1
        slti zero, a0, 1
        sltiu a0, a1, 1                 # seqz
        sltiu a0, zero, 1
        sltiu zero, a1, 1
        sltiu a0, a1, 0
        sltiu a0, a1, -1
        sltiu a0, a1, 2047
        sltiu a0, a1, -2048
        xori a0, a1, -1                 # not
        xori a0, zero, -1
        xori a0, a1, 0
        xori a0, a1, 2047
        xori a0, a1, -2048
        xori zero, zero, 1
        ori a0, a1, 0
        ori a0, a1, -1
        ori a0, a1, 2047
        ori a0, a1, -2048
        ori a0, zero, 1
        andi a0, a1, 255                # zext.b
        andi a0, zero, 255
        andi a0, a1, 0
        andi a0, a1, -1
        andi a0, a1, 2047
        andi a0, a1, -2048
        andi a0, a1, 254
        andi a0, a1, 256
        andi a0, a1, -255
        slli a0, a1, 0
        slli a0, a1, 1
        slli a0, a1, 31
        slli zero, zero, 5
        srli a0, a1, 0
        srli a0, a1, 1
        srli a0, a1, 31
        srli zero, zero, 5
        srai a0, a1, 0
        srai a0, a1, 1
        srai a0, a1, 31
        srai zero, zero, 5
        mv t0, t1
        li t0, -1
        nop
        not t0, t1
        seqz t0, t1

# ---------------------------------------------------------------- op
        .irp op, add,sub,sll,slt,sltu,xor,srl,sra,or,and,mul,mulh,mulhsu,mulhu,div,divu,rem,remu
        \op a0, a1, a2
        \op zero, a1, a2
        \op a0, zero, a2
        \op a0, a1, zero
        \op a0, zero, zero
        \op zero, zero, zero
        \op s10, s10, s10
        .endr
        add zero, zero, a2              # ntl.p1 with Zihintntl (not in -march)
        add zero, zero, a3              # ntl.pall
        add zero, zero, a4              # ntl.s1
        add zero, zero, a5              # ntl.all
        neg a0, a1
        snez a0, a1
        sltz a0, a1
        sgtz a0, a1
        sgt a0, a1, a2
        sgtu a0, a1, a2

# ---------------------------------------------------------------- fence / fence.i
        fence
        fence iorw, iorw
        fence rw, rw
        fence r, r
        fence w, w
        fence i, o
        fence io, rw
        fence.tso
        fence.i
# Every pred/succ combination with fm = 0 (0 prints as "unknown").
        .set .Lpred, 0
        .rept 16
        .set .Lsucc, 0
        .rept 16
        .insn 4, 0x0000000f | (.Lpred << 24) | (.Lsucc << 20)
        .set .Lsucc, .Lsucc + 1
        .endr
        .set .Lpred, .Lpred + 1
        .endr
        .insn 4, 0x0100000f             # pause (Zihintpause not in -march)
        .insn 4, 0x8330000f             # fence.tso
        .insn 4, 0x8ff0000f             # fm = 8 without rw,rw: reserved
        .insn 4, 0x8110000f             # fm = 8, w,w: reserved
        .insn 4, 0x1ff0000f             # fm = 1: reserved
        .insn 4, 0xf330000f             # fm = 15: reserved
        .insn 4, 0x0ff0008f             # fence with rd = 1: reserved
        .insn 4, 0x0ff5000f             # fence with rs1 = a0: reserved
        .insn 4, 0x8330050f             # fence.tso with rd = a0: reserved
        .insn 4, 0x0010100f             # fence.i with imm = 1: reserved
        .insn 4, 0x0000108f             # fence.i with rd = 1: reserved
        .insn 4, 0x0000900f             # fence.i with rs1 = 1: reserved
        .insn 4, 0x8000100f             # fence.i with imm = -2048: reserved

# ---------------------------------------------------------------- system
        ecall
        ebreak
        mret
        wfi

# ---------------------------------------------------------------- zicsr
        csrrw a0, mstatus, a1
        csrrw a0, mstatus, zero
        csrrw zero, mstatus, a1         # csrw
        csrrw zero, mstatus, zero
        csrrw zero, cycle, zero         # unimp
        csrrw zero, cycle, a0
        csrrw a0, cycle, zero
        csrrs a0, mstatus, a1
        csrrs a0, mstatus, zero         # csrr
        csrrs zero, mstatus, a1         # csrs
        csrrs zero, mstatus, zero
        csrrc a0, mstatus, a1
        csrrc a0, mstatus, zero
        csrrc zero, mstatus, a1         # csrc
        csrrc zero, mstatus, zero
        csrrwi a0, mstatus, 5
        csrrwi a0, mstatus, 0
        csrrwi a0, mstatus, 31
        csrrwi zero, mstatus, 5         # csrwi
        csrrwi zero, mstatus, 0
        csrrsi a0, mie, 8
        csrrsi a0, mie, 0
        csrrsi zero, mie, 8             # csrsi
        csrrsi zero, mie, 31
        csrrci a0, mip, 8
        csrrci a0, mip, 0
        csrrci zero, mip, 8             # csrci
        csrrci zero, mip, 31
        csrr t0, mhartid
        csrw mtvec, t0
        csrs mie, t0
        csrc mie, t0
        csrwi mscratch, 3
        csrsi mstatus, 8
        csrci mstatus, 8
        rdcycle a0
        rdtime a0
        rdinstret a0
        rdcycleh a0
        rdtimeh a0
        rdinstreth a0
        rdcycle zero
        csrrs a0, cycle, a1
        csrrs zero, cycle, a1
        csrrc a0, time, zero
        csrrsi a0, cycle, 0
        csrrw a0, 0x7c0, a1             # unknown (custom) CSR
        csrrs a0, 0xfff, zero
        csrrc zero, 0x800, a0
        csrrwi zero, 0xbc0, 1
        csrrw a0, 0xc00, a1             # read-only CSR written: still encodable
        csrrw zero, mhartid, a0
        csrrsi zero, mvendorid, 1
# csrr of every CSR number (all 4096), the rdcycle family included.
        .set .Lcsr, 0
        .rept 4096
        csrrs a0, .Lcsr, zero
        .set .Lcsr, .Lcsr + 1
        .endr

# ---------------------------------------------------------------- illegal / reserved
# 32-bit words that objdump does not decode either (it prints `.4byte 0x...`).
        .insn 4, 0x0000001b             # addiw (RV64)
        .insn 4, 0x0000003b             # addw (RV64)
        .insn 4, 0x00003003             # ld (RV64)
        .insn 4, 0x00006003             # lwu (RV64)
        .insn 4, 0x00007003             # load funct3 7
        .insn 4, 0x00003023             # sd (RV64)
        .insn 4, 0x00004023             # store funct3 4
        .insn 4, 0x00007023             # store funct3 7
        .insn 4, 0x00001067             # jalr funct3 1
        .insn 4, 0x00007067             # jalr funct3 7
        .insn 4, 0x00002063             # branch funct3 2
        .insn 4, 0x00003063             # branch funct3 3
        .insn 4, 0x40001013             # slli with funct7 0x20
        .insn 4, 0x08005013             # srli with funct7 0x04
        .insn 4, 0x60005013             # srai with funct7 0x30
        .insn 4, 0x40001033             # sll with funct7 0x20
        .insn 4, 0x40006033             # or with funct7 0x20
        .insn 4, 0x80000033             # add with funct7 0x40
        .insn 4, 0x04000033             # add with funct7 0x02
        .insn 4, 0x00004073             # system funct3 4
        .insn 4, 0x000000f3             # ecall with rd = 1
        .insn 4, 0x00008073             # ecall with rs1 = 1
        .insn 4, 0x00300073             # system imm 3
        .insn 4, 0x30200ff3             # mret with rd = 31
        .insn 4, 0x1050a073 & ~0x7000   # wfi with rs1 = 1
        .insn 4, 0x0000000b             # custom-0
        .insn 4, 0x0000002b             # custom-1
        .insn 4, 0x0000005b             # custom-2
        .insn 4, 0x0000007b             # custom-3
        .insn 4, 0x00000057             # OP-V
        .insn 4, 0x00000077             # OP-P / reserved
        .insn 4, 0x0000002f             # AMO (A not in -march)
        .insn 4, 0x00000007             # LOAD-FP (F not in -march)
        .insn 4, 0x00000053             # OP-FP
        .insn 4, 0x00000043             # MADD
        .insn 4, 0xfffffff3             # csrrci t6, 0xfff, 31 -- valid, not illegal
        .insn 4, 0x00000013 | (0xfff << 20)  # addi zero, zero, -1

# ---------------------------------------------------------------- low addresses
# Linked at 0x0: backwards targets wrap to the top of the address space.
        .section .lowtext, "ax", @progbits
low:
        beq zero, zero, low
        .insn 4, 0xfe000ee3             # beqz zero, -4
        .insn 4, 0x80000063             # beqz zero, -4096
        .insn 4, 0x800000ef             # jal -0x100000
        .insn 4, 0xffdff06f             # j -4
        auipc a0, 0xfffff
        jalr zero, 0(zero)

# ---------------------------------------------------------------- high addresses
# Linked at 0xfffff000: forward targets wrap past 0xffffffff.
        .section .hightext, "ax", @progbits
high:
        nop
        .insn 4, 0x7e000fe3             # beqz zero, +4094
        .insn 4, 0x7ffff06f             # j +0xffffe
        .insn 4, 0x001000ef             # jal +0x800
        auipc ra, 0x1
        bne a0, a1, high
