//! The A extension on every backend and memory mode: every AMO with edge values and
//! ordering bits, register aliasing and x0, faults (misaligned, read-only, unmapped,
//! and an inline AMO that faults once committed), AMOs on devices, and lr/sc pairs
//! that succeed and fail (no reservation, another address, a second sc, a store, a
//! byte store or an AMO to the reserved word, a syscall, the reservation lapsing),
//! with retry loops that run translated.

mod common;
use common::rvc::*;
use common::*;
use rvdbt::guest::decode::Isa;
use rvdbt::machine::{Exit, FaultKind, GuestFault, RESERVATION_INSNS};

const A3: u8 = 13;
const A4: u8 = 14;
const A5: u8 = 15;
const S0: u8 = 8;
const S1: u8 = 9;

/// Every run agrees with the interpreter (exit, registers, pc, retired, memory,
/// stdout); returns the interpreter's.
fn agree(name: &str, text: &[u32], data: &[u8]) -> Run {
    let mut runs = run_everywhere(text, data, Isa::default());
    let reference = runs.remove(0);
    for r in &runs {
        assert_eq!(r.exit, reference.exit, "{name} ({}): exit", r.what);
        assert_eq!(r.m.cpu.regs, reference.m.cpu.regs, "{name} ({}): registers", r.what);
        assert_eq!(r.m.cpu.pc, reference.m.cpu.pc, "{name} ({}): pc", r.what);
        assert_eq!(r.m.cpu.retired, reference.m.cpu.retired, "{name} ({}): retired", r.what);
        assert_eq!(r.m.mem.ram_hash(), reference.m.mem.ram_hash(), "{name} ({}): memory", r.what);
        assert_eq!(r.m.io.stdout_bytes(), reference.m.io.stdout_bytes(), "{name} ({}): stdout", r.what);
    }
    reference
}

fn word(r: &Run, addr: u32) -> u32 {
    let b = r.m.mem.read_bytes(addr, 4).expect("readable");
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// The AMO result, from the ISA manual's definitions.
fn amo_result(funct5: u32, old: u32, src: u32) -> u32 {
    match funct5 {
        AMOSWAP => src,
        AMOADD => old.wrapping_add(src),
        AMOXOR => old ^ src,
        AMOAND => old & src,
        AMOOR => old | src,
        AMOMIN => (old as i32).min(src as i32) as u32,
        AMOMAX => (old as i32).max(src as i32) as u32,
        AMOMINU => old.min(src),
        AMOMAXU => old.max(src),
        _ => unreachable!(),
    }
}

const OPS: [(&str, u32); 9] = [
    ("amoswap", AMOSWAP),
    ("amoadd", AMOADD),
    ("amoxor", AMOXOR),
    ("amoand", AMOAND),
    ("amoor", AMOOR),
    ("amomin", AMOMIN),
    ("amomax", AMOMAX),
    ("amominu", AMOMINU),
    ("amomaxu", AMOMAXU),
];

const PAIRS: [(u32, u32); 9] = [
    (0, 0),
    (1, 0xffff_ffff),
    (0xffff_ffff, 1),
    (0x8000_0000, 0x7fff_ffff),
    (0x7fff_ffff, 0x8000_0000),
    (0x8000_0000, 0),
    (5, 5),
    (0x1234_5678, 0x0f0f_f0f0),
    (0xffff_f800, 0x8000_0000),
];

#[test]
fn every_amo_with_edge_values_and_ordering_bits() {
    for (name, f5) in OPS {
        let mut text = Vec::new();
        for (k, &(mem, src)) in PAIRS.iter().enumerate() {
            // a1 = data + 16k; [a1] = mem; a0 = amo(a1, src); [a1 + 4] = a0.
            text.extend(li(A1, DATA_BASE + 16 * k as u32));
            text.extend(li(T0, mem));
            text.push(sw(A1, T0, 0));
            text.extend(li(A2, src));
            text.push(amo_aqrl(f5, A0, A1, A2, k & 1 != 0, k & 2 != 0));
            text.push(sw(A1, A0, 4));
        }
        text.extend(exit_seq());
        let r = agree(name, &text, &[0u8; 256]);
        assert!(matches!(r.exit, Exit::Exited(_)), "{name}: {:?}", r.exit);
        for (k, &(mem, src)) in PAIRS.iter().enumerate() {
            let at = DATA_BASE + 16 * k as u32;
            assert_eq!(word(&r, at), amo_result(f5, mem, src), "{name} {mem:#x}, {src:#x}: memory");
            assert_eq!(word(&r, at + 4), mem, "{name} {mem:#x}, {src:#x}: rd is the old value");
        }
    }
}

#[test]
fn amo_register_aliasing_and_x0() {
    let mut text = li(A1, DATA_BASE).to_vec();
    text.extend(li(T0, 100));
    text.push(sw(A1, T0, 0));
    text.extend(li(A2, 7));
    text.push(amo(AMOSWAP, A2, A1, A2)); // rd == rs2: a2 = 100, [d] = 7
    text.push(amo(AMOADD, ZERO, A1, A2)); // rd = x0: [d] = 107, x0 stays 0
    text.extend(li(A3, DATA_BASE + 8));
    text.push(amo(AMOADD, A3, A3, A2)); // rd == rs1: a3 = [d + 8] = 0, [d + 8] = 100
    text.push(amo(AMOOR, A4, A1, ZERO)); // rs2 = x0: a4 = 107, [d] unchanged
    text.push(amo(AMOSWAP, A5, A1, ZERO)); // [d] = 0, a5 = 107
    text.extend(exit_seq());
    let r = agree("aliasing", &text, &[0u8; 64]);
    assert_eq!(r.m.cpu.regs[A2 as usize], 100);
    assert_eq!(r.m.cpu.regs[A3 as usize], 0);
    assert_eq!(r.m.cpu.regs[A4 as usize], 107);
    assert_eq!(r.m.cpu.regs[A5 as usize], 107);
    assert_eq!(r.m.cpu.regs[0], 0);
    assert_eq!(word(&r, DATA_BASE), 0);
    assert_eq!(word(&r, DATA_BASE + 8), 100);
}

/// `text` faults at instruction `index` with `kind` at `addr`; nothing it did retires.
fn expect_fault(name: &str, text: &[u32], index: u32, kind: FaultKind, addr: u32) -> Run {
    let pc = TEXT_BASE + 4 * index;
    let r = agree(name, text, &[0x55u8; 64]);
    assert_eq!(r.exit, Exit::Fault(GuestFault { kind, pc, addr }), "{name}");
    assert_eq!(r.m.cpu.pc, pc, "{name}");
    r
}

#[test]
fn amo_faults_leave_the_state_exact() {
    // Misaligned: store/AMO address misaligned (SIGBUS, as qemu-riscv32 raises it).
    for off in [1, 2, 3] {
        let mut text = li(A1, DATA_BASE + off).to_vec();
        text.extend(li(A0, 0x1234));
        text.push(amo(AMOADD, A0, A1, A1));
        text.extend(exit_seq());
        let r = expect_fault("misaligned amoadd", &text, 4, FaultKind::StoreMisaligned, DATA_BASE + off);
        assert_eq!(r.m.cpu.regs[A0 as usize], 0x1234, "rd unchanged");
        assert_eq!(word(&r, DATA_BASE), 0x5555_5555, "memory unchanged");
        assert_eq!(r.exit.status(), 135);
    }
    // Read-only (the text) and unmapped: store/AMO access fault.
    for (what, addr) in [("text", TEXT_BASE), ("unmapped", 0x4000_0000)] {
        let mut text = li(A1, addr).to_vec();
        text.extend(li(A0, 0x1234));
        text.push(amo(AMOSWAP, A0, A1, A0));
        text.extend(exit_seq());
        let r = expect_fault(what, &text, 4, FaultKind::StoreAccess, addr);
        assert_eq!(r.m.cpu.regs[A0 as usize], 0x1234, "{what}: rd unchanged");
        assert_eq!(r.exit.status(), 139);
    }
    // AMOs that leave the word as it was (add 0, or 0, and all ones) on the text still
    // fault: the store half must not be dropped as a no-op.
    for (what, op, src) in [("amoadd 0", AMOADD, 0), ("amoor 0", AMOOR, 0), ("amoand -1", AMOAND, u32::MAX)] {
        let mut text = li(A1, TEXT_BASE).to_vec();
        text.extend(li(A0, src));
        text.push(amo(op, ZERO, A1, A0));
        text.extend(exit_seq());
        let r = expect_fault(what, &text, 4, FaultKind::StoreAccess, TEXT_BASE);
        assert_eq!(r.exit.status(), 139);
    }
    let r = {
        let mut text = li(A1, TEXT_BASE).to_vec();
        text.extend(li(A0, 0x1234));
        text.push(amo(AMOSWAP, A0, A1, A0));
        let r = agree("text unchanged", &text, &[]);
        assert_eq!(word(&r, TEXT_BASE), text[0]);
        r
    };
    assert!(matches!(r.exit, Exit::Fault(_)));
}

#[test]
fn an_inline_amo_that_faults_is_repaired() {
    // An amoadd in a loop: RAM for 5 iterations (committed, inline), then, still in
    // the same translated block, the read-only text (the inline store faults after its
    // load) or the UART (the inline load faults; the AMO then runs on the device).
    for (what, target, status) in [("text", TEXT_BASE, 139), ("uart", 0x1000_0000, 0)] {
        let mut text = Vec::new();
        text.extend(li(S0, DATA_BASE));
        text.extend(li(S1, target));
        text.extend(li(A2, u32::from(b'A')));
        text.push(addi(T0, ZERO, 6));
        text.push(addi(T2, ZERO, 1));
        let top = text.len();
        text.push(r_type(0x33, 0, 0, A1, ZERO, S0)); // mv a1, s0
        text.push(b_type(1, T0, T2, 8)); // the last iteration (t0 == 1) uses s1
        text.push(r_type(0x33, 0, 0, A1, ZERO, S1));
        text.push(amo(AMOADD, A0, A1, A2));
        text.push(addi(A3, A3, 1));
        text.push(addi(T0, T0, -1));
        let here = text.len();
        text.push(bne(T0, ZERO, -4 * (here - top) as i32));
        text.extend(exit_seq());
        let r = agree(what, &text, &[0u8; 16]);
        assert_eq!(r.exit.status(), status, "{what}: {:?}", r.exit);
    }
}

#[test]
fn amos_on_devices() {
    // amoswap to the UART's THR prints; amoor to the test finisher exits.
    let mut text = li(A1, 0x1000_0000).to_vec();
    text.extend(li(A2, u32::from(b'!')));
    text.push(amo(AMOSWAP, A0, A1, A2));
    text.extend(li(A2, u32::from(b'\n')));
    text.push(amo(AMOOR, A0, A1, A2));
    text.extend(li(A1, 0x0010_0000));
    text.extend(li(A2, (7 << 16) | 0x3333));
    text.push(amo(AMOOR, A3, A1, A2));
    text.extend([addi(A0, ZERO, 1)]);
    text.extend(exit_seq());
    let r = agree("devices", &text, &[]);
    assert_eq!(r.exit, Exit::Exited(7));
    assert_eq!(r.m.io.stdout_bytes(), b"!\n");
    assert_eq!(r.m.cpu.regs[A3 as usize], 0, "the finisher reads 0");
}

/// Runs a program that ends with `exit(0)` and returns the interpreter's run.
fn run_ok(name: &str, text: &mut Vec<u32>) -> Run {
    text.extend([addi(A0, ZERO, 0)]);
    text.extend(exit_seq());
    let r = agree(name, text, &[0u8; 64]);
    assert_eq!(r.exit, Exit::Exited(0), "{name}");
    r
}

/// `lr.w t2, (s0); <between>; sc.w a3, a2, (<sc_base>)`; then a4 = the word at s0.
fn lr_sc(name: &str, between: &[u32], sc_base: u8) -> Run {
    let mut text = li(S0, DATA_BASE).to_vec();
    text.extend(li(S1, DATA_BASE + 4));
    text.extend(li(T0, 41));
    text.push(sw(S0, T0, 0));
    text.extend(li(A2, 99));
    text.push(lr_w(T2, S0));
    text.extend_from_slice(between);
    text.push(sc_w(A3, sc_base, A2));
    text.push(lw(A4, S0, 0));
    run_ok(name, &mut text)
}

#[test]
fn lr_sc_pairs_that_succeed_and_fail() {
    let ok = |r: &Run, what: &str| {
        assert_eq!(r.m.cpu.regs[T2 as usize], 41, "{what}: lr value");
        assert_eq!(r.m.cpu.regs[A3 as usize], 0, "{what}: sc succeeds");
        assert_eq!(r.m.cpu.regs[A4 as usize], 99, "{what}: sc stored");
    };
    let failed = |r: &Run, what: &str, mem: u32| {
        assert_eq!(r.m.cpu.regs[A3 as usize], 1, "{what}: sc fails");
        assert_eq!(r.m.cpu.regs[A4 as usize], mem, "{what}: sc stored nothing");
    };
    ok(&lr_sc("plain", &[], S0), "plain");
    ok(&lr_sc("ALU in between", &[addi(T1, T1, 1), addi(A5, A5, 2)], S0), "ALU");
    ok(&lr_sc("a store to the next word", &[sw(S0, T0, 4)], S0), "next word");
    ok(&lr_sc("a load in between", &[lw(T1, S0, 0)], S0), "load");
    failed(&lr_sc("a store to the word", &[sw(S0, T0, 0)], S0), "store", 41);
    failed(&lr_sc("a byte store to the word", &[addi(T1, ZERO, 7), sb(S0, T1, 3)], S0), "byte store", 0x0700_0029);
    failed(&lr_sc("an AMO on the word", &[amo(AMOADD, T1, S0, ZERO)], S0), "amo", 41);
    failed(&lr_sc("a syscall", &[addi(A7, ZERO, 172), ecall()], S0), "syscall", 41);
    // sc to another address fails and clears the reservation.
    let r = lr_sc("sc elsewhere", &[sc_w(A5, S1, A2)], S0);
    failed(&r, "sc elsewhere, then here", 41);
    assert_eq!(r.m.cpu.regs[A5 as usize], 1);
    failed(&lr_sc("sc to another word", &[], S1), "another word", 41);
    // A second sc fails.
    let r = lr_sc("sc twice", &[sc_w(A5, S0, A2)], S0);
    assert_eq!(r.m.cpu.regs[A5 as usize], 0, "the first sc succeeds");
    failed(&r, "the second sc", 99);
    // The reservation lapses RESERVATION_INSNS instructions after the lr.
    for (n, succeeds) in [(RESERVATION_INSNS / 2 - 2, true), (RESERVATION_INSNS / 2, false)] {
        // li t1, n; loop: addi t1, -1; bnez t1 (2 instructions per iteration).
        let between = [addi(T1, ZERO, n as i32), addi(T1, T1, -1), bne(T1, ZERO, -4)];
        let r = lr_sc(&format!("{n} iterations"), &between, S0);
        if succeeds {
            ok(&r, "before the lapse");
        } else {
            failed(&r, "after the lapse", 41);
        }
    }
}

#[test]
fn sc_without_reservation_and_misaligned_lr_sc() {
    // No lr: the sc fails without touching memory (a misaligned or unmapped address
    // does not fault, as on qemu-riscv32).
    for addr in [DATA_BASE, DATA_BASE + 2, 0x4000_0000] {
        let mut text = li(S0, addr).to_vec();
        text.extend(li(A2, 5));
        text.push(sc_w(A3, S0, A2));
        let r = run_ok("sc without lr", &mut text);
        assert_eq!(r.m.cpu.regs[A3 as usize], 1);
    }
    // A misaligned lr faults (load address misaligned).
    let mut text = li(S0, DATA_BASE + 2).to_vec();
    text.push(lr_w(A0, S0));
    text.extend(exit_seq());
    expect_fault("misaligned lr", &text, 2, FaultKind::LoadMisaligned, DATA_BASE + 2);
    // lr on read-only memory works; the sc then faults (store access), rd unchanged.
    let mut text = li(S0, TEXT_BASE).to_vec();
    text.extend(li(A3, 77));
    text.push(lr_w(A0, S0));
    text.push(sc_w(A3, S0, A0));
    text.extend(exit_seq());
    let r = expect_fault("sc to text", &text, 5, FaultKind::StoreAccess, TEXT_BASE);
    assert_eq!(r.m.cpu.regs[A3 as usize], 77);
    assert_eq!(r.m.cpu.regs[A0 as usize], text[0]);
}

#[test]
fn lr_sc_retry_loops_count_exactly() {
    // The riscv-tests lrsc pattern: 1024 increments through lr/add/sc/bnez, with a
    // store to another word and a translated inner loop between the pairs.
    let mut text = li(S0, DATA_BASE).to_vec();
    text.extend(li(T0, 1024));
    text.extend(li(A2, 3));
    let top = text.len();
    text.push(lr_w(A4, S0)); // 1: lr.w a4, (s0)
    text.push(r_type(0x33, 0, 0, A4, A4, A2)); // add a4, a4, a2
    text.push(sc_w(A4, S0, A4)); // sc.w a4, a4, (s0)
    let here = text.len();
    text.push(bne(A4, ZERO, -4 * (here - top) as i32)); // bnez a4, 1b
    text.push(sw(S0, T0, 8));
    text.push(addi(T1, ZERO, 3));
    text.push(addi(T1, T1, -1));
    text.push(bne(T1, ZERO, -4));
    text.push(addi(T0, T0, -1));
    let here = text.len();
    text.push(bne(T0, ZERO, -4 * (here - top) as i32));
    // sc after a successful sc fails (riscv-tests lrsc case 6).
    let retry = text.len();
    text.push(lr_w(A1, S0));
    text.push(sc_w(A1, S0, ZERO));
    let here = text.len();
    text.push(bne(A1, ZERO, -4 * (here - retry) as i32));
    text.push(sc_w(A1, S0, ZERO));
    text.push(lw(A5, S0, 0));
    let mut words = text.clone();
    let r = run_ok("lr/sc counter", &mut words);
    assert_eq!(r.m.cpu.regs[A4 as usize], 0);
    assert_eq!(r.m.cpu.regs[A1 as usize], 1, "sc after sc fails");
    assert_eq!(r.m.cpu.regs[A5 as usize], 0, "the successful sc stored zero");
    // Without the final pair, the counter is 3 * 1024.
    text.truncate(retry);
    text.push(lw(A5, S0, 0));
    let r = run_ok("lr/sc counter value", &mut text);
    assert_eq!(r.m.cpu.regs[A5 as usize], 3 * 1024);
}

#[test]
fn atomics_are_illegal_without_a() {
    let mut text = li(S0, DATA_BASE).to_vec();
    text.push(amo(AMOADD, A0, S0, S0));
    text.extend(exit_seq());
    for isa in [Isa::RV32IM, Isa { a: false, c: true }] {
        for insn in [amo(AMOADD, A0, S0, S0), lr_w(A0, S0), sc_w(A0, S0, S0)] {
            text[2] = insn;
            for r in run_everywhere(&text, &[0u8; 16], isa) {
                let want = GuestFault { kind: FaultKind::IllegalInstruction, pc: TEXT_BASE + 8, addr: 0 };
                assert_eq!(r.exit, Exit::Fault(want), "{} {insn:#x} {}", isa.name(), r.what);
            }
        }
    }
}
