//! The memory-management and process-information syscalls on every backend and memory
//! mode: mmap (anonymous, hinted, fixed, fixed-noreplace, errors), munmap, mprotect
//! (a page that loses write permission faults on store, one that loses execute
//! permission can no longer be fetched, even after its code ran translated), code
//! built in a mapping and run after mprotect or riscv_flush_icache, code replaced
//! by munmap + a fixed mapping, brk stopping at a mapping, madvise, uname, getrandom
//! and set_tid_address.

mod common;
use common::rvc::*;
use common::*;
use rvdbt::guest::decode::Isa;
use rvdbt::machine::{Exit, FaultKind, GuestFault};

const S0: u8 = 8;
const S1: u8 = 9;
const A3: u8 = 13;
const A4: u8 = 14;
const A5: u8 = 15;
const S2: u8 = 18;
const S3: u8 = 19;
const S4: u8 = 20;

const MMAP: u32 = 222;
const MUNMAP: u32 = 215;
const MPROTECT: u32 = 226;
const MADVISE: u32 = 233;
const FLUSH_ICACHE: u32 = 259;
const UNAME: u32 = 160;
const GETRANDOM: u32 = 278;
const SET_TID_ADDRESS: u32 = 96;
const BRK: u32 = 214;

const PROT_R: u32 = 1;
const PROT_RW: u32 = 3;
const PROT_RX: u32 = 5;
const PROT_RWX: u32 = 7;
const MAP_PRIVATE_ANON: u32 = 0x22;
const MAP_FIXED: u32 = 0x10;
const MAP_FIXED_NOREPLACE: u32 = 0x10_0000;

/// A syscall argument: a register or a constant.
#[derive(Clone, Copy)]
enum Arg {
    R(u8),
    I(u32),
}
use Arg::{I, R};

/// `syscall(nr, args...)`: a0.. = args, a7 = nr, ecall (result in a0). Register
/// arguments must not be a0..a5 of a later argument.
fn sys(t: &mut Vec<u32>, nr: u32, args: &[Arg]) {
    for (i, &a) in args.iter().enumerate() {
        match a {
            R(r) => t.push(addi(A0 + i as u8, r, 0)),
            I(v) => t.extend(li(A0 + i as u8, v)),
        }
    }
    t.extend(li(A7, nr));
    t.push(ecall());
}

fn mmap(t: &mut Vec<u32>, addr: Arg, len: u32, prot: u32, flags: u32) {
    sys(t, MMAP, &[addr, I(len), I(prot), I(flags), I(u32::MAX), I(0)]);
}

fn exit_with(t: &mut Vec<u32>, reg: u8) {
    t.push(mv(A0, reg));
    t.extend(exit_seq());
}

/// Runs everywhere; every run agrees with the interpreter (exit, registers, pc,
/// retired, memory unless `random`, stdout, warnings). Returns the interpreter's run.
fn agree_with(name: &str, text: &[u32], random: bool) -> Run {
    let mut runs = run_everywhere(text, &[0u8; 64], Isa::default());
    let reference = runs.remove(0);
    for r in &runs {
        assert_eq!(r.exit, reference.exit, "{name} ({}): exit", r.what);
        assert_eq!(r.m.cpu.regs, reference.m.cpu.regs, "{name} ({}): registers", r.what);
        assert_eq!(r.m.cpu.pc, reference.m.cpu.pc, "{name} ({}): pc", r.what);
        assert_eq!(r.m.cpu.retired, reference.m.cpu.retired, "{name} ({}): retired", r.what);
        if !random {
            assert_eq!(r.m.mem.ram_hash(), reference.m.mem.ram_hash(), "{name} ({}): memory", r.what);
        }
        assert_eq!(r.m.warnings, reference.m.warnings, "{name} ({}): warnings", r.what);
        // Changes of code drop only the translations of the pages they change.
        assert_eq!(r.m.stats.cache.cache_flushes, 0, "{name} ({}): nothing is flushed", r.what);
    }
    reference
}

fn agree(name: &str, text: &[u32]) -> Run {
    agree_with(name, text, false)
}

fn reg(r: &Run, x: u8) -> u32 {
    r.m.cpu.regs[x as usize]
}

#[test]
fn anonymous_mappings_hinted_fixed_and_refused() {
    let mut t = Vec::new();
    // s0 = mmap(0, 8 KiB, rw): zeroed, writable; s1 = a word read back.
    mmap(&mut t, I(0), 0x2000, PROT_RW, MAP_PRIVATE_ANON);
    t.push(mv(S0, A0));
    t.extend(li(T1, 0x1000));
    t.push(r_type(0x33, 0, 0, T1, S0, T1)); // t1 = s0 + 4 KiB
    t.push(lw(S1, T1, 0xffc));
    t.extend(li(T0, 0x1234_5678));
    t.push(sw(T1, T0, 0));
    // s2 = mmap(hint 0x4000_0000): a free hint is taken.
    mmap(&mut t, I(0x4000_0000), 100, PROT_RW, MAP_PRIVATE_ANON);
    t.push(mv(S2, A0));
    // MAP_FIXED over the second page of s0: s3 = its offset, s4 = its word (zero again).
    mmap(&mut t, R(T1), 0x1000, PROT_RW, MAP_PRIVATE_ANON | MAP_FIXED);
    t.push(r_type(0x33, 0, 0x20, S3, A0, S0));
    t.push(lw(S4, T1, 0));
    // s8 = MAP_FIXED_NOREPLACE over s0: -EEXIST; s9 = length 0: -EINVAL.
    mmap(&mut t, R(S0), 0x1000, PROT_RW, MAP_PRIVATE_ANON | MAP_FIXED_NOREPLACE);
    t.push(mv(24, A0));
    mmap(&mut t, I(0), 0, PROT_RW, MAP_PRIVATE_ANON);
    t.push(mv(25, A0));
    // t2 = a file mapping: -ENODEV (with a warning); t3 = bad prot: -EINVAL.
    mmap(&mut t, I(0), 0x1000, PROT_R, 0x02);
    t.push(mv(T2, A0));
    mmap(&mut t, I(0), 0x1000, 0x40, MAP_PRIVATE_ANON);
    t.push(mv(28, A0));
    exit_with(&mut t, ZERO);
    let r = agree("mappings", &t);
    assert_eq!(r.exit, Exit::Exited(0));
    let s0 = reg(&r, S0);
    assert_eq!(s0 % 0x1000, 0);
    assert!(s0 < 0x7f7f_0000 && s0 > 0x7000_0000, "below the stack: {s0:#x}");
    assert_eq!(reg(&r, S1), 0);
    assert_eq!(reg(&r, S2), 0x4000_0000);
    assert_eq!(reg(&r, S3), 0x1000);
    assert_eq!(reg(&r, S4), 0);
    assert_eq!(reg(&r, 24) as i32, -17, "EEXIST");
    assert_eq!(reg(&r, 25) as i32, -22, "EINVAL");
    assert_eq!(reg(&r, T2) as i32, -19, "ENODEV");
    assert_eq!(reg(&r, 28) as i32, -22, "EINVAL");
    assert_eq!(r.m.warnings.len(), 1, "{:?}", r.m.warnings);
}

#[test]
fn unmapped_and_read_only_pages_fault_exactly() {
    // A loop loading and storing a mapping (committed inline after the first round),
    // then mprotect(read-only) or munmap, then the same loop again: its first store
    // (or load) faults at its pc with the state before it.
    for (what, nr, kind) in [("mprotect", MPROTECT, FaultKind::StoreAccess), ("munmap", MUNMAP, FaultKind::LoadAccess)]
    {
        let mut t = Vec::new();
        mmap(&mut t, I(0), 0x1000, PROT_RW, MAP_PRIVATE_ANON);
        t.push(mv(S0, A0));
        t.push(addi(S1, ZERO, 2)); // two rounds
        let round = t.len();
        t.push(addi(T0, ZERO, 10));
        let top = t.len();
        t.push(lw(A5, S0, 8));
        t.push(sw(S0, T0, 8));
        t.push(addi(T0, T0, -1));
        let here = t.len();
        t.push(b_type(1, T0, ZERO, -4 * (here - top) as i32));
        t.push(addi(S1, S1, -1));
        let skip = t.len();
        t.push(0); // beqz s1, done
        sys(&mut t, nr, &[R(S0), I(0x1000), I(PROT_R)]);
        let here = t.len();
        t.push(j_type(ZERO, -4 * (here - round) as i32));
        t[skip] = b_type(0, S1, ZERO, 4 * (t.len() - skip) as i32);
        exit_with(&mut t, ZERO);
        let r = agree(what, &t);
        let index = if kind == FaultKind::StoreAccess { top + 1 } else { top };
        let want = GuestFault { kind, pc: TEXT_BASE + 4 * index as u32, addr: reg(&r, S0) + 8 };
        assert_eq!(r.exit, Exit::Fault(want), "{what}");
        assert_eq!(reg(&r, T0), 10, "{what}: the faulting iteration is the first of round 2");
    }
}

/// Stores `words` at s0 + off.
fn store_code(t: &mut Vec<u32>, words: &[u32], off: i32) {
    for (i, &w) in words.iter().enumerate() {
        t.extend(li(T1, w));
        t.push(sw(S0, T1, off + 4 * i as i32));
    }
}

/// `f(x) = x * k + 1` as mixed code: c.slli / add / c.addi / c.jr ra.
fn function(k_shift: i32, plus: i32) -> Vec<u32> {
    let mut a = Asm::new();
    a.c(c_slli(A0, k_shift));
    a.w(addi(A0, A0, plus));
    a.c(c_jr(RA));
    a.words()
}

#[test]
fn code_built_in_a_mapping_runs_after_mprotect_or_flush_icache() {
    // Two ways to publish code: RW -> mprotect(RX), or an RWX mapping and
    // riscv_flush_icache. Each function is called 30 times (so it runs translated),
    // then rewritten and called again.
    for publish in ["mprotect", "flush_icache"] {
        let mut t = Vec::new();
        let prot = if publish == "mprotect" { PROT_RW } else { PROT_RWX };
        mmap(&mut t, I(0), 0x1000, prot, MAP_PRIVATE_ANON);
        t.push(mv(S0, A0));
        t.push(addi(S2, ZERO, 0)); // sum
        for (shift, plus) in [(1, 1), (3, 5), (0, 100)] {
            if publish == "mprotect" {
                sys(&mut t, MPROTECT, &[R(S0), I(0x1000), I(PROT_RW)]);
            }
            store_code(&mut t, &function(shift, plus), 0);
            if publish == "mprotect" {
                sys(&mut t, MPROTECT, &[R(S0), I(0x1000), I(PROT_RX)]);
            } else {
                t.push(addi(A1, S0, 16));
                sys(&mut t, FLUSH_ICACHE, &[R(S0), R(A1), I(0)]);
            }
            t.push(addi(S1, ZERO, 30));
            let top = t.len();
            t.push(mv(A0, S1));
            t.push(jalr(RA, S0, 0));
            t.push(r_type(0x33, 0, 0, S2, S2, A0));
            t.push(addi(S1, S1, -1));
            let here = t.len();
            t.push(b_type(1, S1, ZERO, -4 * (here - top) as i32));
        }
        exit_with(&mut t, ZERO);
        let r = agree(publish, &t);
        assert_eq!(r.exit, Exit::Exited(0), "{publish}");
        let sum: u32 = (1..=30u32).map(|x| (x << 1) + 1 + (x << 3) + 5 + x + 100).sum();
        assert_eq!(reg(&r, S2), sum, "{publish}");
    }
}

#[test]
fn code_replaced_by_munmap_and_a_fixed_mapping_and_lost_execute_permission() {
    let mut t = Vec::new();
    mmap(&mut t, I(0x5000_0000), 0x1000, PROT_RWX, MAP_PRIVATE_ANON | MAP_FIXED);
    t.push(mv(S0, A0));
    t.push(addi(S2, ZERO, 0));
    let call_loop = |t: &mut Vec<u32>| {
        t.push(addi(S1, ZERO, 20));
        let top = t.len();
        t.push(mv(A0, S1));
        t.push(jalr(RA, S0, 0));
        t.push(r_type(0x33, 0, 0, S2, S2, A0));
        t.push(addi(S1, S1, -1));
        let here = t.len();
        t.push(b_type(1, S1, ZERO, -4 * (here - top) as i32));
    };
    store_code(&mut t, &function(2, 0), 0);
    sys(&mut t, FLUSH_ICACHE, &[I(0), I(0), I(0)]);
    call_loop(&mut t);
    // munmap, then a fresh fixed mapping with other code at the same address.
    sys(&mut t, MUNMAP, &[I(0x5000_0000), I(0x1000)]);
    mmap(&mut t, I(0x5000_0000), 0x1000, PROT_RW, MAP_PRIVATE_ANON | MAP_FIXED);
    store_code(&mut t, &function(0, 7), 0);
    sys(&mut t, MPROTECT, &[I(0x5000_0000), I(0x1000), I(PROT_RX)]);
    call_loop(&mut t);
    // Execute permission gone: the next call faults on fetch.
    sys(&mut t, MPROTECT, &[I(0x5000_0000), I(0x1000), I(PROT_R)]);
    t.push(jalr(RA, S0, 0));
    exit_with(&mut t, ZERO);
    let r = agree("replaced code", &t);
    let sum: u32 = (1..=20u32).map(|x| (x << 2) + x + 7).sum();
    assert_eq!(reg(&r, S2), sum);
    assert_eq!(r.exit, Exit::Fault(GuestFault { kind: FaultKind::FetchAccess, pc: 0x5000_0000, addr: 0x5000_0000 }));
}

#[test]
fn brk_stops_at_a_mapping_and_madvise_zeroes() {
    let mut t = Vec::new();
    sys(&mut t, BRK, &[I(0)]);
    t.push(mv(S0, A0)); // the initial break
                        // A fixed mapping 16 pages above the break.
    t.extend(li(T0, 0x1_0fff));
    t.push(r_type(0x33, 0, 0, A0, S0, T0));
    t.extend(li(T0, !0xfff));
    t.push(r_type(0x33, 7, 0, S1, A0, T0)); // s1 = page_up(brk) + 16 pages
    mmap(&mut t, R(S1), 0x1000, PROT_RW, MAP_PRIVATE_ANON | MAP_FIXED);
    // brk up to the mapping works; into it does not.
    t.push(mv(A0, S1));
    t.extend(li(A7, BRK));
    t.push(ecall());
    t.push(r_type(0x33, 0, 0x20, S2, A0, S1)); // 0
    t.push(addi(A0, S1, 0x100));
    t.push(ecall());
    t.push(r_type(0x33, 0, 0x20, S3, A0, S1)); // 0: unchanged
                                               // madvise(DONTNEED) zeroes the mapping.
    t.extend(li(T0, 99));
    t.push(sw(S1, T0, 0));
    sys(&mut t, MADVISE, &[R(S1), I(0x1000), I(4)]);
    t.push(lw(S4, S1, 0));
    exit_with(&mut t, ZERO);
    let r = agree("brk", &t);
    assert_eq!(r.exit, Exit::Exited(0));
    assert_eq!(reg(&r, S2), 0);
    assert_eq!(reg(&r, S3), 0);
    assert_eq!(reg(&r, S4), 0);
}

#[test]
fn uname_getrandom_set_tid_address() {
    let mut t = Vec::new();
    sys(&mut t, BRK, &[I(0)]);
    t.push(mv(S0, A0));
    t.extend(li(T0, 0x1000));
    t.push(r_type(0x33, 0, 0, A0, S0, T0));
    t.push(ecall()); // brk + 4 KiB: a buffer at s0
    t.push(mv(A0, S0));
    t.extend(li(A7, UNAME));
    t.push(ecall());
    t.push(mv(S1, A0)); // 0
    t.push(lw(S2, S0, 0)); // "Linu"
    t.push(lw(S3, S0, 4 * 65)); // "risc" (machine)
    t.push(lw(S4, S0, 4 * 65 + 4)); // "v32\0"
    t.push(addi(A0, S0, 512));
    t.extend(li(A1, 100));
    t.extend(li(A2, 0));
    t.extend(li(A7, GETRANDOM));
    t.push(ecall());
    t.push(mv(A3, A0)); // 100
    t.push(addi(A0, S0, 512));
    t.extend(li(A1, 10));
    t.extend(li(A2, 8));
    t.push(ecall());
    t.push(mv(A4, A0)); // -EINVAL
    t.extend(li(A0, 0x4000_0000));
    t.extend(li(A1, 10));
    t.extend(li(A2, 0));
    t.push(ecall());
    t.push(mv(A5, A0)); // -EFAULT
    t.push(mv(A0, S0));
    t.extend(li(A7, SET_TID_ADDRESS));
    t.push(ecall());
    t.push(mv(T2, A0)); // the tid
    exit_with(&mut t, ZERO);
    let r = agree_with("uname", &t, true);
    assert_eq!(r.exit, Exit::Exited(0));
    assert_eq!(reg(&r, S1), 0);
    assert_eq!(&reg(&r, S2).to_le_bytes(), b"Linu");
    assert_eq!(&reg(&r, S3).to_le_bytes(), b"risc");
    assert_eq!(&reg(&r, S4).to_le_bytes(), b"v32\0");
    assert_eq!(reg(&r, A3), 100);
    assert_eq!(reg(&r, A4) as i32, -22);
    assert_eq!(reg(&r, A5) as i32, -14);
    assert_eq!(reg(&r, T2), std::process::id(), "the thread id is the process id");
}
