//! The C extension on every backend and memory mode: every compressed instruction
//! against the 32-bit instruction it expands to (edge immediates, sign and zero
//! extension, x0 and sp operands, HINTs), control flow with 2-byte instructions
//! (link values, fall-throughs, offsets at their limits, 4-byte instructions at
//! 2 mod 4), instruction fetch across a page and off the end of a segment, the
//! reserved encodings as illegal instructions, `--isa rv32im`, `misa`, and
//! self-modifying compressed code.
//!
//! The expected values come from the encoders in `common/rvc.rs`, written from the ISA
//! manual's tables, and from the 32-bit instructions run on the interpreter.

mod common;
use common::rvc::*;
use common::*;
use rvdbt::guest::decode::Isa;
use rvdbt::machine::{Exit, FaultKind, GuestFault, Machine};

const S0: u8 = 8;
const S1: u8 = 9;
const A3: u8 = 13;
const A4: u8 = 14;
const A5: u8 = 15;
const T6: u8 = 31;
/// The registers of the 3-bit fields.
const PREGS: [u8; 8] = [8, 9, 10, 11, 12, 13, 14, 15];

/// Bytes of the data segment: a pattern with both signs in every byte position.
fn data() -> Vec<u8> {
    (0..1024u32).map(|i| (i.wrapping_mul(37).wrapping_add(0x8b)) as u8).collect()
}

/// Initial register values: sp, s0 and s1 point into the data, the rest are edge
/// values and patterns.
fn init_value(r: u8) -> u32 {
    match r {
        2 => DATA_BASE + 0x200,
        8 => DATA_BASE + 0x40,
        9 => DATA_BASE + 0x80,
        10 => 0x8000_0000,
        11 => 0xffff_ffff,
        12 => 0x7fff_ffff,
        13 => 1,
        14 => 0x1234_5678,
        15 => 0xdead_beef,
        _ => 0x0101_0101u32.wrapping_mul(u32::from(r)) ^ 0x8000_0003,
    }
}

/// Sets every register but x0 (sp last: `li` needs no stack).
fn prologue(a: &mut Asm) {
    for r in (1..32u8).filter(|&r| r != 2).chain([2]) {
        a.ws(&li(r, init_value(r)));
    }
}

/// Registers, retired count and the data segment agree between two runs.
fn assert_same(name: &str, want: &Run, got: &Run) {
    assert_eq!(got.exit, want.exit, "{name} ({}): exit", got.what);
    for r in 0..32 {
        assert_eq!(
            got.m.cpu.regs[r], want.m.cpu.regs[r],
            "{name} ({}): x{r} = {:#x}, want {:#x}",
            got.what, got.m.cpu.regs[r], want.m.cpu.regs[r]
        );
    }
    assert_eq!(got.m.cpu.retired, want.m.cpu.retired, "{name} ({}): retired", got.what);
    let d = |m: &Machine| m.mem.read_bytes(DATA_BASE, 1024).expect("data");
    assert!(d(&got.m) == d(&want.m), "{name} ({}): data segment differs", got.what);
}

/// Every backend and mode gives the interpreter's result; returns the interpreter's run.
fn agree(name: &str, text: &[u32], isa: Isa) -> Run {
    let mut runs = run_everywhere(text, &data(), isa);
    let reference = runs.remove(0);
    for r in &runs {
        assert_same(name, &reference, r);
        assert_eq!(r.m.cpu.pc, reference.m.cpu.pc, "{name} ({}): pc", r.what);
    }
    reference
}

/// The compressed instruction behaves exactly as its 32-bit expansion.
fn check_expansion(name: &str, c: u16, expanded: u32) {
    let body = |insn: &mut dyn FnMut(&mut Asm)| {
        let mut a = Asm::new();
        prologue(&mut a);
        insn(&mut a);
        a.ws(&exit_seq());
        a.words()
    };
    let want = agree(
        &format!("{name} (32-bit)"),
        &body(&mut |a| {
            a.w(expanded);
        }),
        Isa::default(),
    );
    assert!(matches!(want.exit, Exit::Exited(_)), "{name}: expansion ends with {:?}", want.exit);
    let got = agree(
        name,
        &body(&mut |a| {
            a.c(c);
        }),
        Isa::default(),
    );
    assert_same(name, &want, &got);
    assert_eq!(got.m.cpu.pc + 2, want.m.cpu.pc, "{name}: the compressed one is 2 bytes shorter");
}

const OP_IMM: u32 = 0x13;
const OP: u32 = 0x33;

fn opi(f3: u32, rd: u8, rs1: u8, imm: i32) -> u32 {
    i_type(OP_IMM, f3, rd, rs1, imm)
}
fn op(f3: u32, f7: u32, rd: u8, rs1: u8, rs2: u8) -> u32 {
    r_type(OP, f3, f7, rd, rs1, rs2)
}

#[test]
fn the_encoders_agree_with_the_assembler() {
    // Parcels from `riscv64-unknown-elf-as -march=rv32imac` (tests/data/disasm).
    for (got, want) in [
        (c_addi4spn(A0, 4), 0x0048),
        (c_addi4spn(S0, 1020), 0x1fe0),
        (c_lw(A0, A1, 0), 0x4188),
        (c_lw(S1, A5, 124), 0x5fe4),
        (c_sw(A1, A0, 4), 0xc1c8),
        (c_addi(A0, 1), 0x0505),
        (c_addi(A0, -32), 0x1501),
        (c_li(A0, -1), 0x557d),
        (c_addi16sp(-512), 0x7101),
        (c_addi16sp(496), 0x617d),
        (c_lui(A0, 1), 0x6505),
        (c_lui(A0, -1), 0x757d),
        (c_srli(A0, 1), 0x8105),
        (c_srai(S1, 31), 0x84fd),
        (c_andi(A0, -1), 0x997d),
        (c_sub(A0, A1), 0x8d0d),
        (c_xor(A0, A1), 0x8d2d),
        (c_or(A0, A1), 0x8d4d),
        (c_and(A0, A1), 0x8d6d),
        (c_j(0), 0xa001),
        (c_beqz(A0, 8), 0xc501),
        (c_bnez(A0, -256), 0xf101),
        (c_slli(A0, 31), 0x057e),
        (c_lwsp(A0, 252), 0x557e),
        (c_jr(RA), 0x8082),
        (c_mv(A0, A1), 0x852e),
        (c_jalr(A0), 0x9502),
        (c_add(A0, A1), 0x952e),
        (c_swsp(A0, 252), 0xdfaa),
        (c_jal(0), 0x2001),
    ] {
        assert_eq!(got, want, "{got:#06x} vs {want:#06x}");
    }
    assert_eq!(amo(AMOADD, A0, A1, A2), 0x00c5_a52f);
    assert_eq!(amo_aqrl(AMOMAXU, ZERO, A1, A2, true, true), 0xe6c5_a02f);
    assert_eq!(lr_w(A0, A1), 0x1005_a52f);
    assert_eq!(sc_w(A0, A1, A2), 0x18c5_a52f);
}

#[test]
fn quadrant_0_expansions() {
    for rd in [S0, A5] {
        for imm in [4, 8, 16, 64, 512, 1020] {
            check_expansion(&format!("c.addi4spn x{rd}, sp, {imm}"), c_addi4spn(rd, imm), opi(0, rd, SP, imm));
        }
    }
    for rd in PREGS {
        for base in [S0, S1] {
            for off in [0, 4, 60, 64, 124] {
                check_expansion(&format!("c.lw x{rd}, {off}(x{base})"), c_lw(rd, base, off), lw(rd, base, off));
            }
        }
    }
    for rs2 in PREGS {
        for base in [S0, S1] {
            for off in [0, 4, 124] {
                check_expansion(&format!("c.sw x{rs2}, {off}(x{base})"), c_sw(base, rs2, off), sw(base, rs2, off));
            }
        }
    }
}

#[test]
fn quadrant_1_expansions() {
    check_expansion("c.nop", c_nop(), opi(0, ZERO, ZERO, 0));
    for imm in [1, -1, -32, 31] {
        // HINTs: c.nop with an immediate, c.li and c.lui writing x0.
        check_expansion(&format!("c.nop {imm}"), c_addi(ZERO, imm), opi(0, ZERO, ZERO, imm));
        check_expansion(&format!("c.li zero, {imm}"), c_li(ZERO, imm), opi(0, ZERO, ZERO, imm));
        check_expansion(&format!("c.lui zero, {imm}"), c_lui(ZERO, imm), lui(ZERO, imm as u32 & 0xfffff));
    }
    for rd in [RA, SP, A0, T6] {
        for imm in [-32, -1, 0, 1, 31] {
            check_expansion(&format!("c.addi x{rd}, {imm}"), c_addi(rd, imm), opi(0, rd, rd, imm));
            check_expansion(&format!("c.li x{rd}, {imm}"), c_li(rd, imm), opi(0, rd, ZERO, imm));
        }
    }
    for imm in [-512, -16, 16, 32, 64, 128, 256, 496] {
        check_expansion(&format!("c.addi16sp {imm}"), c_addi16sp(imm), opi(0, SP, SP, imm));
    }
    for rd in [RA, A0, T6] {
        for imm6 in [1, 2, 31, -32, -1] {
            let u = imm6 as u32 & 0xfffff;
            check_expansion(&format!("c.lui x{rd}, {u:#x}"), c_lui(rd, imm6), lui(rd, u));
        }
    }
    for rd in [S0, A0, A5] {
        for sh in [0, 1, 7, 31] {
            check_expansion(&format!("c.srli x{rd}, {sh}"), c_srli(rd, sh), opi(5, rd, rd, sh));
            check_expansion(&format!("c.srai x{rd}, {sh}"), c_srai(rd, sh), opi(5, rd, rd, sh | 0x400));
        }
        for imm in [-32, -1, 0, 1, 31] {
            check_expansion(&format!("c.andi x{rd}, {imm}"), c_andi(rd, imm), opi(7, rd, rd, imm));
        }
    }
    for rd in PREGS {
        for rs2 in [S0, A0, A3, rd] {
            check_expansion(&format!("c.sub x{rd}, x{rs2}"), c_sub(rd, rs2), op(0, 0x20, rd, rd, rs2));
            check_expansion(&format!("c.xor x{rd}, x{rs2}"), c_xor(rd, rs2), op(4, 0, rd, rd, rs2));
            check_expansion(&format!("c.or x{rd}, x{rs2}"), c_or(rd, rs2), op(6, 0, rd, rd, rs2));
            check_expansion(&format!("c.and x{rd}, x{rs2}"), c_and(rd, rs2), op(7, 0, rd, rd, rs2));
        }
    }
}

#[test]
fn quadrant_2_expansions() {
    for rd in [ZERO, RA, A0, T6] {
        for sh in [0, 1, 31] {
            check_expansion(&format!("c.slli x{rd}, {sh}"), c_slli(rd, sh), opi(1, rd, rd, sh));
        }
    }
    for rd in [RA, SP, A0, T6] {
        for off in [0, 4, 64, 252] {
            check_expansion(&format!("c.lwsp x{rd}, {off}"), c_lwsp(rd, off), lw(rd, SP, off));
        }
    }
    for rs2 in [ZERO, RA, SP, A0, T6] {
        for off in [0, 4, 64, 252] {
            check_expansion(&format!("c.swsp x{rs2}, {off}"), c_swsp(rs2, off), sw(SP, rs2, off));
        }
    }
    for rd in [ZERO, SP, A0, T6] {
        for rs2 in [RA, SP, T6] {
            check_expansion(&format!("c.mv x{rd}, x{rs2}"), c_mv(rd, rs2), op(0, 0, rd, ZERO, rs2));
            check_expansion(&format!("c.add x{rd}, x{rs2}"), c_add(rd, rs2), op(0, 0, rd, rd, rs2));
        }
    }
}

/// Runs `a` (which exits with a0) and checks registers on every backend and mode.
fn check_regs(name: &str, a: &Asm, expect: &[(u8, u32)]) -> Run {
    let r = agree(name, &a.words(), Isa::default());
    assert!(matches!(r.exit, Exit::Exited(_)), "{name}: {:?}", r.exit);
    for &(reg, v) in expect {
        assert_eq!(r.m.cpu.regs[reg as usize], v, "{name}: x{reg} = {:#x}, want {v:#x}", r.m.cpu.regs[reg as usize]);
    }
    r
}

/// A run of `n` c.ebreak parcels: landing there by mistake stops the run.
fn trap_pad(a: &mut Asm, n: usize) {
    for _ in 0..n {
        a.c(c_ebreak());
    }
}

/// Fills with c.ebreak up to `pc`.
fn fill_to(a: &mut Asm, pc: u32) {
    assert!(a.pc() <= pc, "layout: at {:#x}, want {pc:#x}", a.pc());
    while a.pc() < pc {
        a.c(c_ebreak());
    }
}

/// Points the c.j at parcel `at` to `target`.
fn c_j_to(a: &mut Asm, at: usize, target: u32) {
    let pc = TEXT_BASE + 2 * at as u32;
    a.halves[at] = c_j(target.wrapping_sub(pc) as i32);
}

#[test]
fn compressed_jumps_link_and_reach_their_limits() {
    // c.jal links pc + 2; c.j reaches +2046 and -2048.
    let mut a = Asm::new();
    a.w(addi(A0, ZERO, 0)); // 0x10000
    a.c(c_jal(6)); // 0x10004 -> 0x1000a
    trap_pad(&mut a, 2);
    a.c(c_j(2046)); // 0x1000a -> 0x10808
    fill_to(&mut a, TEXT_BASE + 0x100);
    a.w(addi(A0, A0, 100)); // reached by the backward jump
    a.ws(&exit_seq());
    fill_to(&mut a, TEXT_BASE + 0x808);
    a.w(addi(A0, A0, 1));
    a.c(c_j(0x900 - 0x80c)); // 0x1080c -> 0x10900
    fill_to(&mut a, TEXT_BASE + 0x900);
    a.c(c_j(-2048)); // 0x10900 -> 0x10100
    let r = check_regs("c.j/c.jal limits", &a, &[(A0, 101), (RA, TEXT_BASE + 6)]);
    assert_eq!(r.m.cpu.retired, 9);
}

#[test]
fn compressed_branches_and_fall_throughs() {
    // The branch at P; its target T holds `c.j TAKEN`, the parcel after it `c.j FALL`.
    for (name, reg) in [("c.beqz", S0), ("c.bnez", S1)] {
        for off in [-256, -2, 4, 6, 254] {
            for value in [0u32, 5] {
                let mut a = Asm::new();
                a.ws(&li(reg, value));
                a.w(addi(A0, ZERO, 0));
                let start_jump = a.halves.len();
                a.c(c_nop()); // c.j P
                let p = TEXT_BASE + 0x200;
                let t = p.wrapping_add(off as u32);
                let (mut taken_at, mut fall_at) = (None, None);
                if off < 0 {
                    fill_to(&mut a, t);
                    taken_at = Some(a.halves.len());
                    a.c(c_nop());
                }
                fill_to(&mut a, p);
                a.c(if name == "c.beqz" { c_beqz(reg, off) } else { c_bnez(reg, off) });
                fall_at = fall_at.or(Some(a.halves.len()));
                a.c(c_nop());
                if off > 0 {
                    fill_to(&mut a, t);
                    taken_at = Some(a.halves.len());
                    a.c(c_nop());
                }
                fill_to(&mut a, p + 0x120);
                let taken = a.pc();
                a.w(addi(A0, A0, 10));
                a.ws(&exit_seq());
                let fall = a.pc();
                a.w(addi(A0, A0, 1));
                a.ws(&exit_seq());
                c_j_to(&mut a, start_jump, p);
                c_j_to(&mut a, taken_at.unwrap(), taken);
                c_j_to(&mut a, fall_at.unwrap(), fall);
                let is_taken = (name == "c.beqz") == (value == 0);
                let want = if is_taken { 10 } else { 1 };
                check_regs(&format!("{name} {off} with {value}"), &a, &[(A0, want)]);
            }
        }
    }
    // Offset 2: taken or not, the next parcel.
    for value in [0u32, 1] {
        let mut a = Asm::new();
        a.ws(&li(S0, value));
        a.c(c_beqz(S0, 2));
        a.c(c_li(A0, 9));
        a.ws(&exit_seq());
        check_regs("c.beqz 2", &a, &[(A0, 9)]);
    }
}

#[test]
fn compressed_indirect_jumps_and_2_byte_aligned_targets() {
    // c.jalr links pc + 2; c.jr and jalr reach targets at 2 mod 4; bit 0 is cleared.
    let mut a = Asm::new();
    a.w(auipc(T0, 0)); // t0 = TEXT_BASE
    let base = TEXT_BASE;
    a.w(addi(T0, T0, 0)); // patched below to the target offset
    let jalr_pc = a.pc();
    a.c(c_jalr(T0));
    trap_pad(&mut a, 3);
    let target = a.pc();
    assert_eq!(target % 4, 0);
    a.c(c_nop()); // target (4-aligned); next 4-byte instruction at 2 mod 4
    a.w(addi(A0, ZERO, 1));
    a.w(auipc(T1, 0)); // t1 = pc of this (2 mod 4)
    let t1_pc = a.pc() - 4;
    assert_eq!(t1_pc % 4, 2);
    a.w(addi(T1, T1, 13)); // t1 -> 12 bytes on + 1 (bit 0 is cleared)
    a.w(jalr(T2, T1, 0)); // at t1_pc + 8, links t1_pc + 12
    assert_eq!(a.pc(), t1_pc + 12);
    a.c(c_addi(A0, 2));
    a.w(auipc(T2, 0));
    let t2_pc = a.pc() - 4;
    a.w(addi(T2, T2, 10)); // -> t2_pc + 10: 2 mod 4
    a.c(c_jr(T2));
    assert_eq!(a.pc(), t2_pc + 10);
    a.c(c_addi(A0, 4));
    a.ws(&exit_seq());
    // Patch the addi after the first auipc: target offset from base.
    a.halves[2] = (addi(T0, T0, (target - base) as i32)) as u16;
    a.halves[3] = (addi(T0, T0, (target - base) as i32) >> 16) as u16;
    check_regs("c.jalr / c.jr / jalr", &a, &[(A0, 7), (RA, jalr_pc + 2), (T2, t2_pc + 10)]);
}

#[test]
fn fetch_across_a_page_and_off_the_end_of_a_segment() {
    // A 4-byte instruction straddling two executable pages runs (rv32uc's first test).
    let mut a = Asm::new();
    a.w(addi(A0, ZERO, 5));
    while a.pc() < TEXT_BASE + 0xffe {
        a.c(c_nop());
    }
    a.w(addi(A0, A0, 1)); // at 0x10ffe..0x11002
    a.c(c_addi(A0, 2));
    a.ws(&exit_seq());
    let r = check_regs("straddling a page", &a, &[(A0, 8)]);
    assert_eq!(r.exit, Exit::Exited(8));

    // The same instruction at the end of the text segment: its second half is not
    // mapped. The fault names the instruction's pc and the missing half's address.
    let mut a = Asm::new();
    a.w(addi(A0, ZERO, 5));
    while a.pc() < TEXT_BASE + 0xffe {
        a.c(c_nop());
    }
    let word = addi(A0, A0, 1);
    a.halves.push(word as u16); // the first half of a 4-byte instruction
    let mut text = a.words();
    assert_eq!(text.len() * 4, 0x1000);
    text.truncate(0x400);
    for r in run_everywhere(&text, &[0u8; 16], Isa::default()) {
        assert_eq!(
            r.exit,
            Exit::Fault(GuestFault { kind: FaultKind::FetchAccess, pc: TEXT_BASE + 0xffe, addr: TEXT_BASE + 0x1000 }),
            "{}",
            r.what
        );
        assert_eq!(r.m.cpu.regs[A0 as usize], 5, "{}", r.what);
        assert_eq!(r.m.cpu.pc, TEXT_BASE + 0xffe, "{}", r.what);
        assert_eq!(r.m.cpu.retired, 1 + (0xffe - 4) / 2, "{}", r.what);
    }
    // ... while a compressed instruction there is fine.
    let mut a = Asm::new();
    a.w(addi(A0, ZERO, 5));
    a.w(j_type(ZERO, 0xff8)); // 0x10004 -> 0x10ffc
    fill_to(&mut a, TEXT_BASE + 0xf00);
    a.w(addi(A0, A0, 1));
    a.ws(&exit_seq());
    fill_to(&mut a, TEXT_BASE + 0xffc);
    a.c(c_addi(A0, 2));
    a.c(c_j(-0xfe)); // the segment's last two bytes
    assert_eq!(a.words().len() * 4, 0x1000);
    check_regs("a compressed instruction at a segment end", &a, &[(A0, 8)]);
}

/// The reserved compressed encodings (and encodings of extensions rvdbt lacks) are
/// illegal instructions, on every backend, with the state before them.
#[test]
fn reserved_compressed_encodings_are_illegal() {
    let reserved: &[(&str, u16)] = &[
        ("all zero (c.unimp)", 0x0000),
        ("c.addi4spn, zero immediate", 0x0008 | (3 << 2)),
        ("c.fld", 0x2000),
        ("c.flw", 0x6000 | (1 << 7)),
        ("quadrant 0, funct3 100", 0x8000),
        ("c.fsd", 0xa000),
        ("c.fsw", 0xe000),
        ("c.addi16sp 0", 0x6101),
        ("c.lui a0, 0", 0x6501),
        ("c.lui zero, 0", 0x6001),
        ("c.srli a0, 32", 0x9101),
        ("c.srai a0, 63", 0x957d),
        ("c.subw", 0x9d0d),
        ("c.addw", 0x9d2d),
        ("RV32 reserved 100 1 11 10", 0x9d4d),
        ("RV32 reserved 100 1 11 11", 0x9d6d),
        ("c.slli a0, 32", 0x1502),
        ("c.slli zero, 63", 0x107e),
        ("c.fldsp", 0x2002),
        ("c.lwsp zero", 0x4002),
        ("c.lwsp zero, 252(sp)", 0x507e),
        ("c.flwsp", 0x6502),
        ("c.jr zero", 0x8002),
        ("c.fsdsp", 0xa002),
        ("c.fswsp", 0xe002),
    ];
    for &(name, half) in reserved {
        let mut a = Asm::new();
        a.w(addi(A0, ZERO, 1));
        a.c(c_addi(A0, 1)); // compressed, then the reserved parcel at 2 mod 4
        a.c(half);
        a.ws(&exit_seq());
        let pc = TEXT_BASE + 6;
        for r in run_everywhere(&a.words(), &[0u8; 16], Isa::default()) {
            assert_eq!(
                r.exit,
                Exit::Fault(GuestFault { kind: FaultKind::IllegalInstruction, pc, addr: 0 }),
                "{name} ({half:#06x}) on {}",
                r.what
            );
            assert_eq!(r.m.cpu.pc, pc, "{name} on {}", r.what);
            assert_eq!(r.m.cpu.retired, 2, "{name} on {}", r.what);
            assert_eq!(r.m.cpu.regs[A0 as usize], 2, "{name} on {}", r.what);
        }
    }
}

#[test]
fn rv32im_rejects_compressed_code_and_keeps_4_byte_alignment() {
    // c.li a0, 7 is an illegal instruction without C.
    let mut a = Asm::new();
    a.w(addi(A0, ZERO, 1));
    a.c(c_li(A0, 7));
    a.c(c_nop());
    a.ws(&exit_seq());
    let text = a.words();
    for r in run_everywhere(&text, &[0u8; 16], Isa::RV32IM) {
        assert_eq!(
            r.exit,
            Exit::Fault(GuestFault { kind: FaultKind::IllegalInstruction, pc: TEXT_BASE + 4, addr: 0 }),
            "{}",
            r.what
        );
        assert_eq!(r.m.cpu.regs[A0 as usize], 1);
        assert!(r
            .m
            .describe_fault(&GuestFault { kind: FaultKind::IllegalInstruction, pc: TEXT_BASE + 4, addr: 0 })
            .contains("li a0,7 (not in rv32im)"));
    }
    for r in run_everywhere(&text, &[0u8; 16], Isa::RV32IMAC) {
        assert_eq!(r.exit, Exit::Exited(7), "{}", r.what);
    }
    // A jalr to 2 mod 4 faults without C, and is fine with it.
    let text = [auipc(T0, 0), jalr(RA, T0, 10), 0x0001_0001, 0x0001_0001, addi(A0, ZERO, 3)]
        .into_iter()
        .chain(exit_seq())
        .collect::<Vec<_>>();
    for r in run_everywhere(&text, &[0u8; 16], Isa::RV32IM) {
        let want = GuestFault { kind: FaultKind::FetchMisaligned, pc: TEXT_BASE + 4, addr: TEXT_BASE + 10 };
        assert_eq!(r.exit, Exit::Fault(want), "{}", r.what);
        assert_eq!(r.m.cpu.regs[RA as usize], 0, "{}: ra untouched", r.what);
    }
    for r in run_everywhere(&text, &[0u8; 16], Isa::RV32IMAC) {
        assert_eq!(r.exit, Exit::Exited(3), "{}", r.what);
        assert_eq!(r.m.cpu.regs[RA as usize], TEXT_BASE + 8, "{}", r.what);
    }
}

#[test]
fn misa_reports_the_extensions() {
    let text: Vec<u32> = [0x3010_2573u32].into_iter().chain(exit_seq()).collect(); // csrr a0, misa
    let a = 1 << 0;
    let c = 1 << 2;
    let base = (1 << 30) | (1 << 8) | (1 << 12);
    for (isa, want) in [
        (Isa::RV32IMAC, base | a | c),
        (Isa::RV32IM, base),
        (Isa { a: true, c: false }, base | a),
        (Isa { a: false, c: true }, base | c),
    ] {
        for r in run_everywhere(&text, &[0u8; 16], isa) {
            assert_eq!(r.m.cpu.regs[A0 as usize], want, "{} {}", isa.name(), r.what);
        }
    }
}

#[test]
fn self_modifying_compressed_code() {
    // Make the text writable (mprotect RWX), then rewrite a compressed instruction of a
    // function that has run (and been translated) many times, with fence.i or with
    // riscv_flush_icache, and replace a 4-byte instruction by two compressed ones.
    for flush in ["fence.i", "riscv_flush_icache"] {
        let mut a = Asm::new();
        a.ws(&li(A0, TEXT_BASE));
        a.ws(&[addi(A1, ZERO, 0), lui(A1, 1), addi(A2, ZERO, 7), addi(A7, ZERO, 226), ecall()]);
        a.ws(&li(S0, 0)); // accumulator
        a.ws(&li(S1, 0)); // function address, patched below
        let fn_addr_at = a.halves.len() - 4;
        // Round 1: call 20 times.
        let call_loop = |a: &mut Asm| {
            a.w(addi(T0, ZERO, 20));
            let top = a.pc();
            a.w(jalr(RA, S1, 0));
            a.c(c_add(S0, A0));
            a.w(addi(T0, T0, -1));
            let here = a.pc();
            a.w(b_type(1, T0, ZERO, top.wrapping_sub(here) as i32));
        };
        call_loop(&mut a);
        // Patch: the c.li a0, 1 at f becomes c.li a0, 5.
        let patch_word = |a: &mut Asm, offset: i32, half: u16| {
            a.ws(&li(T1, u32::from(half)));
            a.w(s_type(0x23, 1, S1, T1, offset)); // sh t1, offset(s1)
        };
        let do_flush = |a: &mut Asm| {
            if flush == "fence.i" {
                a.w(0x0000_100f);
            } else {
                a.ws(&[addi(A0, S1, 0), addi(A1, S1, 16), addi(A2, ZERO, 0), addi(A7, ZERO, 259), ecall()]);
            }
        };
        patch_word(&mut a, 0, c_li(A0, 5));
        do_flush(&mut a);
        call_loop(&mut a);
        // Patch the 4-byte `addi a0, a0, 0` at f + 2 into c.addi a0, 3 ; c.nop.
        patch_word(&mut a, 2, c_addi(A0, 3));
        patch_word(&mut a, 4, c_nop());
        do_flush(&mut a);
        call_loop(&mut a);
        a.w(addi(A0, S0, 0));
        a.ws(&exit_seq());
        let f = a.pc();
        a.c(c_li(A0, 1));
        a.w(addi(A0, A0, 0));
        a.c(c_jr(RA));
        let [hi, lo] = li(S1, f);
        a.halves[fn_addr_at] = hi as u16;
        a.halves[fn_addr_at + 1] = (hi >> 16) as u16;
        a.halves[fn_addr_at + 2] = lo as u16;
        a.halves[fn_addr_at + 3] = (lo >> 16) as u16;
        // 20 * 1 + 20 * 5 + 20 * 8
        check_regs(&format!("smc with {flush}"), &a, &[(S0, 280)]);
    }
}

#[test]
fn faults_in_compressed_blocks_resume_at_the_right_instruction() {
    // c.lw through a pointer that turns from RAM to the UART (a device page): the
    // inline access faults in fastmem mode, and the fault path must find the c.lw by
    // its index in a block of mixed lengths.
    let mut a = Asm::new();
    a.ws(&li(S1, DATA_BASE));
    a.ws(&li(T1, 0x1000_0000));
    a.w(addi(T0, ZERO, 6));
    let top = a.pc();
    a.c(c_addi(A0, 1));
    a.w(addi(A1, A1, 2));
    a.c(c_lw(A2, S1, 4)); // UART register 5 (LSR) = 0x60 ... as a word from offset 4
    a.c(c_add(A3, A2));
    a.c(c_addi(A4, 1));
    a.w(addi(T0, T0, -1));
    // In the last iteration s1 becomes the UART base.
    a.w(i_type(OP_IMM, 3, T2, T0, 2)); // sltiu t2, t0, 2
    a.w(op(0, 0x20, T2, ZERO, T2)); // neg t2
    a.w(op(7, 0, T2, T2, T1));
    a.w(op(0, 0, S1, ZERO, T2));
    a.w(b_type(1, T2, ZERO, 8)); // skip restoring s1 when it is the UART
    a.ws(&[lui(S1, DATA_BASE >> 12)]);
    let here = a.pc();
    a.w(b_type(1, T0, ZERO, top.wrapping_sub(here) as i32));
    a.w(addi(A0, A3, 0));
    a.ws(&exit_seq());
    check_regs("c.lw switching to a device", &a, &[]);
}

#[test]
fn max_insns_is_exact_in_compressed_code() {
    let mut a = Asm::new();
    let top = a.pc();
    a.c(c_addi(A0, 1));
    a.w(addi(A1, A1, 1));
    a.c(c_addi(A2, 1));
    let here = a.pc();
    a.c(c_j(top.wrapping_sub(here) as i32));
    let text = a.words();
    for backend in backends() {
        for limit in [1u64, 2, 3, 5, 1001, 100_003] {
            let mut m = machine(&elf_image(&text, &[], 0), &[], b"");
            let exit = run_on(&mut m, backend, Some(limit));
            assert_eq!(exit, Exit::InsnLimit(limit), "{backend:?}");
            assert_eq!(m.cpu.retired, limit);
            let n = |k: u64| u32::try_from(limit.saturating_sub(k).div_ceil(4)).unwrap();
            assert_eq!(m.cpu.regs[A0 as usize], n(0), "{backend:?} {limit}");
            assert_eq!(m.cpu.regs[A1 as usize], n(1), "{backend:?} {limit}");
            assert_eq!(m.cpu.regs[A2 as usize], n(2), "{backend:?} {limit}");
            let pcs = [TEXT_BASE, TEXT_BASE + 2, TEXT_BASE + 6, TEXT_BASE + 8];
            assert_eq!(m.cpu.pc, pcs[(limit % 4) as usize], "{backend:?} {limit}");
        }
    }
}

#[test]
fn jalr_targets_two_bytes_apart_keep_their_jump_cache_entries() {
    // f1 = c.li a0, 1 falling into f2 = c.jr ra, two bytes on: both called 1000 times
    // through jalr. Their jump cache entries must not evict each other (every call
    // would go through the dispatcher).
    let mut a = Asm::new();
    a.ws(&li(S0, 0)); // f1, patched below
    a.w(addi(S1, S0, 2)); // f2
    a.w(addi(T0, ZERO, 1000));
    let top = a.pc();
    a.w(jalr(RA, S0, 0));
    a.c(c_add(A3, A0));
    a.w(jalr(RA, S1, 0));
    a.c(c_add(A4, A0));
    a.w(addi(T0, T0, -1));
    let here = a.pc();
    a.w(b_type(1, T0, ZERO, top.wrapping_sub(here) as i32));
    a.w(addi(A0, A3, 0));
    a.ws(&exit_seq());
    let f1 = a.pc();
    a.c(c_li(A0, 1));
    a.c(c_jr(RA));
    let [hi, lo] = li(S0, f1);
    a.halves[..4].copy_from_slice(&[hi as u16, (hi >> 16) as u16, lo as u16, (lo >> 16) as u16]);
    let r = check_regs("jalr to targets 2 bytes apart", &a, &[(A3, 1000), (A4, 1000)]);
    assert_eq!(r.exit, Exit::Exited(1000));
    for run in run_everywhere(&a.words(), &[], Isa::default()).iter().skip(1) {
        let n = run.m.stats.dispatcher_entries;
        assert!(n < 100, "{}: {n} dispatcher entries", run.what);
    }
}
