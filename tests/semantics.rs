//! Instruction semantics, edge cases included, checked on every backend: each case sets
//! registers, runs a few instructions and compares exact register values.

mod common;
use common::*;
use rvdbt::guest::decode::Isa;
use rvdbt::machine::{Exit, FaultKind, GuestFault};
use rvdbt::runner::Backend;

const OP: u32 = 0x33;
const OPI: u32 = 0x13;

fn op(f3: u32, f7: u32, rd: u8, a: u8, b: u8) -> u32 {
    r_type(OP, f3, f7, rd, a, b)
}
fn muldiv(f3: u32, rd: u8, a: u8, b: u8) -> u32 {
    r_type(OP, f3, 1, rd, a, b)
}
fn load(f3: u32, rd: u8, rs1: u8, imm: i32) -> u32 {
    i_type(0x03, f3, rd, rs1, imm)
}
fn store(f3: u32, rs1: u8, rs2: u8, imm: i32) -> u32 {
    s_type(0x23, f3, rs1, rs2, imm)
}
fn csr(f3: u32, rd: u8, src: u8, csr: u16) -> u32 {
    0x73 | (u32::from(rd) << 7) | (f3 << 12) | (u32::from(src) << 15) | (u32::from(csr) << 20)
}

/// Sets `inputs`, runs `body`, exits with a0, and checks `expect` on every backend.
fn check(name: &str, inputs: &[(u8, u32)], body: &[u32], expect: &[(u8, u32)]) {
    let mut text = Vec::new();
    for &(r, v) in inputs {
        text.extend(li(r, v));
    }
    text.extend_from_slice(body);
    text.extend(exit_seq());
    for backend in backends() {
        let (m, exit) = run_words(&text, &[0u8; 64], backend);
        assert!(matches!(exit, Exit::Exited(_)), "{name} on {backend:?}: {exit:?}");
        for &(r, v) in expect {
            assert_eq!(
                m.cpu.regs[r as usize], v,
                "{name} on {backend:?}: x{r} = {:#x}, want {v:#x}",
                m.cpu.regs[r as usize]
            );
        }
        assert_eq!(m.cpu.regs[0], 0, "{name}: x0 must stay 0");
    }
}

#[test]
fn alu_register_forms() {
    let (a, b, d) = (T0, T1, T2);
    let cases: &[(&str, u32, u32, u32, u32)] = &[
        // name, instruction, a, b, result
        ("add wraps", add(d, a, b), 0xffff_ffff, 2, 1),
        ("sub wraps", op(0, 0x20, d, a, b), 0, 1, 0xffff_ffff),
        ("sll masks to 5 bits", op(1, 0, d, a, b), 1, 33, 2),
        ("sll by 31", op(1, 0, d, a, b), 3, 31, 0x8000_0000),
        ("slt signed", op(2, 0, d, a, b), 0xffff_ffff, 1, 1),
        ("sltu unsigned", op(3, 0, d, a, b), 0xffff_ffff, 1, 0),
        ("xor", op(4, 0, d, a, b), 0xf0f0_f0f0, 0xff00_ff00, 0x0ff0_0ff0),
        ("srl logical", op(5, 0, d, a, b), 0x8000_0000, 31, 1),
        ("srl masks", op(5, 0, d, a, b), 0x8000_0000, 0xffff_ffe4, 0x0800_0000),
        ("sra arithmetic", op(5, 0x20, d, a, b), 0x8000_0000, 31, 0xffff_ffff),
        ("sra masks", op(5, 0x20, d, a, b), 0x8000_0000, 32 + 4, 0xf800_0000),
        ("or", op(6, 0, d, a, b), 0xf0f0_0000, 0x0000_0f0f, 0xf0f0_0f0f),
        ("and", op(7, 0, d, a, b), 0xf0f0_ffff, 0xff00_0f0f, 0xf000_0f0f),
        ("mul low", muldiv(0, d, a, b), 0x1234_5678, 0x9abc_def0, 0x242d_2080),
        ("mulh neg*neg", muldiv(1, d, a, b), 0xffff_ffff, 0xffff_ffff, 0),
        ("mulh min*min", muldiv(1, d, a, b), 0x8000_0000, 0x8000_0000, 0x4000_0000),
        ("mulh neg*pos", muldiv(1, d, a, b), 0xffff_fffe, 3, 0xffff_ffff),
        ("mulhsu -1*max", muldiv(2, d, a, b), 0xffff_ffff, 0xffff_ffff, 0xffff_ffff),
        ("mulhsu pos*max", muldiv(2, d, a, b), 2, 0xffff_ffff, 1),
        ("mulhu max*max", muldiv(3, d, a, b), 0xffff_ffff, 0xffff_ffff, 0xffff_fffe),
        ("div truncates", muldiv(4, d, a, b), (-7i32) as u32, 2, (-3i32) as u32),
        ("div by zero", muldiv(4, d, a, b), 1234, 0, 0xffff_ffff),
        ("div overflow", muldiv(4, d, a, b), 0x8000_0000, 0xffff_ffff, 0x8000_0000),
        ("divu", muldiv(5, d, a, b), 0xffff_fffe, 2, 0x7fff_ffff),
        ("divu by zero", muldiv(5, d, a, b), 1234, 0, 0xffff_ffff),
        ("rem sign follows dividend", muldiv(6, d, a, b), (-7i32) as u32, 2, (-1i32) as u32),
        ("rem positive dividend", muldiv(6, d, a, b), 7, (-2i32) as u32, 1),
        ("rem by zero", muldiv(6, d, a, b), (-1234i32) as u32, 0, (-1234i32) as u32),
        ("rem overflow", muldiv(6, d, a, b), 0x8000_0000, 0xffff_ffff, 0),
        ("remu", muldiv(7, d, a, b), 0xffff_ffff, 10, 5),
        ("remu by zero", muldiv(7, d, a, b), 0xdead_beef, 0, 0xdead_beef),
    ];
    for &(name, inst, va, vb, want) in cases {
        check(name, &[(a, va), (b, vb)], &[inst], &[(d, want), (a, va), (b, vb)]);
    }
    // Destination equal to a source.
    check("rd == rs1 == rs2", &[(a, 21)], &[add(a, a, a)], &[(a, 42)]);
}

#[test]
fn alu_immediate_forms() {
    let (s, d) = (A1, A2);
    let cases: &[(&str, u32, u32, u32)] = &[
        ("addi -2048", i_type(OPI, 0, d, s, -2048), 0, 0xffff_f800),
        ("addi 2047", i_type(OPI, 0, d, s, 2047), 1, 2048),
        ("slti", i_type(OPI, 2, d, s, -1), 0xffff_fffe, 1),
        ("sltiu -1 is max", i_type(OPI, 3, d, s, -1), 0xffff_fffe, 1),
        ("sltiu seqz", i_type(OPI, 3, d, s, 1), 0, 1),
        ("xori not", i_type(OPI, 4, d, s, -1), 0x0f0f_0f0f, 0xf0f0_f0f0),
        ("ori", i_type(OPI, 6, d, s, 0x7ff), 0x1000_0000, 0x1000_07ff),
        ("andi sign-extended", i_type(OPI, 7, d, s, -16), 0x1234_5678, 0x1234_5670),
        ("slli 31", i_type(OPI, 1, d, s, 31), 1, 0x8000_0000),
        ("slli 0", i_type(OPI, 1, d, s, 0), 0x1234, 0x1234),
        ("srli 31", i_type(OPI, 5, d, s, 31), 0x8000_0000, 1),
        ("srai 31", i_type(OPI, 5, d, s, 31 | 0x400), 0x8000_0000, 0xffff_ffff),
        ("srai 4", i_type(OPI, 5, d, s, 4 | 0x400), 0x8000_0010, 0xf800_0001),
    ];
    for &(name, inst, v, want) in cases {
        check(name, &[(s, v)], &[inst], &[(d, want)]);
    }
}

#[test]
fn x0_stays_zero() {
    check(
        "writes to x0 are discarded",
        &[(T0, 77)],
        &[addi(ZERO, T0, 5), lui(ZERO, 0x12345), add(ZERO, T0, T0), load(2, ZERO, SP, 0), add(T1, ZERO, ZERO)],
        &[(T1, 0)],
    );
}

#[test]
fn upper_immediates_and_jumps() {
    // lui; auipc (text starts at TEXT_BASE: two `li` = 4 words before the body).
    check("lui", &[], &[lui(T0, 0xfffff)], &[(T0, 0xffff_f000)]);
    check("auipc", &[], &[auipc(T0, 1)], &[(T0, TEXT_BASE + 0x1000)]);
    check("auipc wraps", &[], &[auipc(T0, 0xfffff)], &[(T0, TEXT_BASE.wrapping_sub(0x1000))]);
    // jal skips one instruction and links.
    check(
        "jal links",
        &[],
        &[j_type(RA, 8), addi(T0, ZERO, 1), addi(T1, ZERO, 2)],
        &[(RA, TEXT_BASE + 4), (T0, 0), (T1, 2)],
    );
    // jalr clears bit 0 of the target and links rd == rs1 correctly (old rs1 used).
    let base = TEXT_BASE + 8; // after li (2 words)
    check(
        "jalr clears bit 0, rd == rs1",
        &[(T0, base + 12 + 1)],
        &[jalr(T0, T0, 0), addi(T1, ZERO, 1), addi(T1, ZERO, 2), addi(T2, ZERO, 3)],
        &[(T0, base + 4), (T1, 0), (T2, 3)],
    );
}

#[test]
fn branches_signed_and_unsigned() {
    // For each branch op: a taken branch skips `addi t2, zero, 1`.
    let ops: &[(&str, u32, u32, u32, bool)] = &[
        ("beq", 0, 5, 5, true),
        ("beq not", 0, 5, 6, false),
        ("bne", 1, 5, 6, true),
        ("blt signed", 4, 0xffff_ffff, 0, true),
        ("blt not", 4, 0, 0xffff_ffff, false),
        ("bge equal", 5, 7, 7, true),
        ("bge signed", 5, 0, 0x8000_0000, true),
        ("bltu unsigned", 6, 0, 0xffff_ffff, true),
        ("bltu not", 6, 0xffff_ffff, 0, false),
        ("bgeu", 7, 0xffff_ffff, 0, true),
        ("bgeu not", 7, 0, 1, false),
    ];
    for &(name, f3, a, b, taken) in ops {
        check(
            name,
            &[(T0, a), (T1, b)],
            &[b_type(f3, T0, T1, 8), addi(T2, ZERO, 1)],
            &[(T2, if taken { 0 } else { 1 })],
        );
    }
}

#[test]
fn loads_extend_and_stores_write_partially() {
    let d = DATA_BASE;
    check(
        "sign and zero extension",
        &[(A0, d), (T0, 0x8081_8283)],
        &[
            store(2, A0, T0, 0),
            load(0, A1, A0, 0), // lb 0x83
            load(4, A2, A0, 0), // lbu
            load(1, T1, A0, 0), // lh 0x8283
            load(5, T2, A0, 0), // lhu
            load(2, 28, A0, 0), // lw
            load(0, 29, A0, 3), // lb 0x80
            load(1, 30, A0, 2), // lh 0x8081
        ],
        &[
            (A1, 0xffff_ff83),
            (A2, 0x83),
            (T1, 0xffff_8283),
            (T2, 0x8283),
            (28, 0x8081_8283),
            (29, 0xffff_ff80),
            (30, 0xffff_8081),
        ],
    );
    check(
        "partial stores",
        &[(A0, d), (T0, 0x1122_3344), (T1, 0xaabb_ccdd)],
        &[store(2, A0, T0, 0), store(0, A0, T1, 1), store(1, A0, T1, 2), load(2, A1, A0, 0)],
        &[(A1, 0xccdd_dd44)],
    );
    check(
        "misaligned word and halfword accesses",
        &[(A0, d), (T0, 0x4433_2211), (T1, 0x8877_6655)],
        &[
            store(2, A0, T0, 0),
            store(2, A0, T1, 4),
            load(2, A1, A0, 1),
            load(2, A2, A0, 3),
            load(1, T2, A0, 3),
            store(2, A0, T0, 5),
            load(2, 28, A0, 4),
            store(1, A0, T1, 7),
            load(2, 29, A0, 6),
        ],
        &[(A1, 0x5544_3322), (A2, 0x7766_5544), (T2, 0x5544), (28, 0x3322_1155), (29, 0x0066_5522)],
    );
    check("negative offsets", &[(A0, d + 16), (T0, 99)], &[store(2, A0, T0, -16), load(2, A1, A0, -16)], &[(A1, 99)]);
}

#[test]
fn csr_file_and_mret() {
    let mscratch = 0x340;
    check(
        "csrrw/csrrs/csrrc and immediate forms",
        &[(T0, 0xf0), (T1, 0x0f)],
        &[
            csr(1, ZERO, T0, mscratch), // csrw mscratch, t0
            csr(2, A1, T1, mscratch),   // csrrs a1, mscratch, t1 -> a1 = 0xf0, csr = 0xff
            csr(3, A2, T0, mscratch),   // csrrc a2, mscratch, t0 -> a2 = 0xff, csr = 0x0f
            csr(5, T2, 0x1f, mscratch), // csrrwi t2, mscratch, 31 -> t2 = 0x0f, csr = 31
            csr(6, 28, 0, mscratch),    // csrrsi t3, 0 -> read only
            csr(7, 29, 1, mscratch),    // csrrci t4, 1 -> t4 = 31, csr = 30
            csr(2, 30, ZERO, mscratch), // csrr t5
            csr(2, 31, ZERO, 0xf14),    // csrr t6, mhartid
        ],
        &[(A1, 0xf0), (A2, 0xff), (T2, 0x0f), (28, 31), (29, 31), (30, 30), (31, 0)],
    );
    // instret counts retired instructions: li (2) before the first read.
    check(
        "instret and cycle count retired instructions",
        &[(T0, 1)],
        &[csr(2, A1, ZERO, 0xc02), addi(T1, ZERO, 0), csr(2, A2, ZERO, 0xc00), csr(2, T2, ZERO, 0xc82)],
        &[(A1, 2), (A2, 4), (T2, 0)],
    );
    // mret jumps to mepc.
    let base = TEXT_BASE + 8;
    check(
        "mret",
        &[(T0, base + 16)],
        &[csr(1, ZERO, T0, 0x341), 0x3020_0073, addi(T1, ZERO, 1), addi(T1, ZERO, 2), addi(T2, ZERO, 3)],
        &[(T1, 0), (T2, 3)],
    );
}

fn expect_fault(name: &str, text: &[u32], kind: FaultKind, pc: u32, addr: u32, regs: &[(u8, u32)]) {
    expect_fault_isa(name, text, kind, pc, addr, regs, Isa::default());
}

fn expect_fault_isa(name: &str, text: &[u32], kind: FaultKind, pc: u32, addr: u32, regs: &[(u8, u32)], isa: Isa) {
    // Everything before the faulting instruction retired; a fetch fault outside text
    // follows the jump that led there.
    let retired = if pc >= DATA_BASE { text.len() as u64 } else { u64::from((pc - TEXT_BASE) / 4) };
    for backend in backends() {
        let (m, exit) = run_words_isa(text, &[0u8; 16], backend, isa);
        assert_eq!(exit, Exit::Fault(GuestFault { kind, pc, addr }), "{name} on {backend:?}");
        for &(r, v) in regs {
            assert_eq!(m.cpu.regs[r as usize], v, "{name} on {backend:?}: x{r}");
        }
        assert_eq!(m.cpu.pc, pc, "{name}: pc is the faulting instruction");
        assert_eq!(m.cpu.retired, retired, "{name}: retired count");
    }
}

#[test]
fn faults_leave_state_before_the_instruction() {
    let wild = li(A0, 0x4000_0000);
    expect_fault(
        "load from unmapped",
        &[wild[0], wild[1], load(2, A0, A0, 8)],
        FaultKind::LoadAccess,
        TEXT_BASE + 8,
        0x4000_0008,
        &[(A0, 0x4000_0000)],
    );
    let code = li(A0, TEXT_BASE);
    expect_fault(
        "store to code",
        &[code[0], code[1], store(2, A0, A0, 0)],
        FaultKind::StoreAccess,
        TEXT_BASE + 8,
        TEXT_BASE,
        &[],
    );
    let data = li(T0, DATA_BASE);
    expect_fault(
        "jump into data",
        &[data[0], data[1], jalr(RA, T0, 0)],
        FaultKind::FetchAccess,
        DATA_BASE,
        DATA_BASE,
        &[(RA, TEXT_BASE + 12)],
    );
    // Without C, targets must be 4-byte aligned.
    expect_fault_isa(
        "misaligned jump target",
        &[addi(A0, ZERO, 1), j_type(RA, 6)],
        FaultKind::FetchMisaligned,
        TEXT_BASE + 4,
        TEXT_BASE + 10,
        &[(RA, 0)],
        Isa::RV32IM,
    );
    expect_fault(
        "illegal instruction",
        &[addi(A0, ZERO, 1), 0xffff_ffff],
        FaultKind::IllegalInstruction,
        TEXT_BASE + 4,
        0,
        &[(A0, 1)],
    );
    expect_fault("ebreak", &[0x0010_0073], FaultKind::Breakpoint, TEXT_BASE, 0, &[]);
    expect_fault(
        "write to read-only CSR",
        &[csr(1, ZERO, A0, 0xc00)],
        FaultKind::IllegalInstruction,
        TEXT_BASE,
        0,
        &[],
    );
    expect_fault(
        "run into the zero padding after text (all-zero word is illegal)",
        &[addi(A0, ZERO, 1)],
        FaultKind::IllegalInstruction,
        TEXT_BASE + 4,
        0,
        &[],
    );
}

#[test]
fn unknown_syscall_returns_enosys() {
    check("syscall 999", &[(A7, 999)], &[ecall(), addi(T0, A0, 0)], &[(T0, (-38i32) as u32)]);
}

#[test]
fn max_insns_stops_exactly() {
    // An endless loop: addi t0, t0, 1; j -4.
    let text = [addi(T0, T0, 1), j_type(ZERO, -4)];
    for backend in backends() {
        for limit in [1u64, 2, 3, 1000, 100_001] {
            let mut m = machine(&elf_image(&text, &[], 0), &[], b"");
            let exit = run_on(&mut m, backend, Some(limit));
            assert_eq!(exit, Exit::InsnLimit(limit), "{backend:?}");
            assert_eq!(m.cpu.retired, limit);
            assert_eq!(u64::from(m.cpu.regs[T0 as usize]), limit.div_ceil(2), "{backend:?} limit {limit}");
        }
    }
    let _ = Backend::Interp;
}
