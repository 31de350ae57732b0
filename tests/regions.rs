//! Hot regions: loops compiled as one function keep the interpreter's exact state at
//! every exit, at `--max-insns` stops and when an inline access faults in the middle of
//! an iteration. Every program runs both ways the fault path can work: with
//! checkpoints (a faulting load resumes at the last store that wrote the state to
//! `Cpu`, or at the region's entry) and without (the fault path recovers the guest
//! registers the code had not stored from the faulting code's host registers and
//! frame).

mod common;
use common::*;
use rvdbt::jit::access::MemMode;
use rvdbt::machine::{Exit, FaultKind, Machine};
use rvdbt::memory::UART_BASE;
use rvdbt::runner::{self, Backend, RunOptions};

const S0: u8 = 8;
const S1: u8 = 9;
const S2: u8 = 18;
const S3: u8 = 19;
const S4: u8 = 20;
const S5: u8 = 21;
const S6: u8 = 22;

/// A loop of `n` iterations (counter s3) running `body`, which reads through pointer
/// s0 and moves it on; after iteration `k` the pointer jumps to `target`. s2 starts at
/// 0, `init` sets more registers; the loop exits with s2 + `result`.
fn counted_loop(n: u32, k: u32, target: u32, init: &[(u8, u32)], body: &[u32], result: u8) -> Vec<u32> {
    let mut t = Vec::new();
    for (r, v) in [(S0, DATA_BASE), (S1, n), (S2, 0), (S3, 0), (S5, k), (S6, target)].iter().chain(init) {
        t.extend(li(*r, *v));
    }
    let head = t.len();
    t.extend_from_slice(body);
    t.push(bne(S3, S5, 8)); // at i == k the pointer moves to `target`
    t.push(addi(S0, S6, 0));
    let back = t.len();
    t.push(blt(S3, S1, -(((back - head) * 4) as i32)));
    t.push(add(A0, S2, result));
    t.extend(exit_seq());
    t
}

/// Reads a byte through pointer s0 (then stores it back one byte further on), with pure
/// arithmetic around the accesses whose values live across them.
fn walker(n: u32, k: u32, target: u32) -> Vec<u32> {
    let body = [
        addi(S3, S3, 1), // i += 1 (computed before the access, used after it)
        slli(T1, S3, 3), // t1 = i << 3
        xor(S4, S4, T1), // s4 ^= t1
        lbu(T0, S0, 0),  // the access that faults once s0 leaves RAM
        add(S2, S2, T0), // sum += byte
        sb(S0, T0, 1),   // a second access with the same pointer
        addi(S0, S0, 2),
    ];
    counted_loop(n, k, target, &[(S4, 0x5a5a)], &body, S4)
}

fn data() -> Vec<u8> {
    (0..4096u32).map(|i| (i * 7 + 3) as u8).collect()
}

/// The machines of one program run with checkpoints and without.
struct Runs {
    checkpoints: Machine,
    exact: Machine,
}

/// Runs `text` on the interpreter and on the tiered backend (regions compiled on the
/// dispatcher's thread after `tier_up` entries), with checkpoints and without, and
/// compares the whole final state.
fn check(text: &[u32], mem: MemMode, tier_up: u32, max_insns: u64) -> (Runs, Exit) {
    let elf = elf_image(text, &data(), 64 * 1024);
    let mut reference = machine(&elf, &[], b"");
    let want = run_on(&mut reference, Backend::Interp, Some(max_insns));
    let [checkpoints, exact] = [true, false].map(|checkpoints| {
        let mut m = machine(&elf, &[], b"");
        let mut opts = RunOptions { backend: Backend::Tiered, max_insns: Some(max_insns), ..RunOptions::default() };
        opts.jit.verify = true;
        opts.jit.compile_after = 0;
        opts.jit.tier_up = tier_up;
        opts.jit.compile_thread = false;
        opts.jit.mem = mem;
        opts.jit.checkpoints = checkpoints;
        let exit = runner::run(&mut m, &opts).expect("runs").exit;
        let what = format!("{mem:?}, tier-up {tier_up}, max {max_insns}, checkpoints {checkpoints}");
        assert_eq!(exit, want, "exit ({what})");
        assert_same_machine(&what, &reference, &m);
        if !checkpoints {
            assert_eq!(m.stats.faults_rolled_back, 0, "no rollbacks without checkpoints ({what})");
        }
        m
    });
    (Runs { checkpoints, exact }, want)
}

#[test]
fn a_loop_becomes_one_region_and_agrees() {
    let text = walker(500, 10_000, DATA_BASE);
    for mem in [MemMode::Calls, MemMode::Adaptive, MemMode::Fastmem] {
        for tier_up in [1, 3, 20] {
            let (runs, exit) = check(&text, mem, tier_up, 1_000_000);
            assert!(matches!(exit, Exit::Exited(_)));
            assert!(runs.checkpoints.stats.cache.regions_compiled >= 1, "{mem:?}/{tier_up}: the loop is a region");
        }
    }
}

#[test]
fn a_fault_in_the_middle_of_a_region_recovers_the_registers_from_the_host() {
    // After 200 iterations in RAM the pointer moves to the UART: the inline load faults,
    // the fault path rebuilds the guest state and the access goes on through the
    // generic path (reading the UART's registers, writing its THR).
    let text = walker(260, 200, UART_BASE);
    let (runs, exit) = check(&text, MemMode::Fastmem, 3, 1_000_000);
    assert!(matches!(exit, Exit::Exited(_)), "{exit:?}");
    let m = &runs.exact;
    assert!(m.stats.cache.regions_compiled >= 1);
    assert!(m.stats.faults_handled >= 1, "the region's inline access faulted");
    assert!(m.stats.registers_recovered >= 1, "registers came from the host: {}", m.stats.registers_recovered);
    // With checkpoints too: one store a loop and one load after it make a checkpoint
    // cost more stores than it saves.
    assert_eq!(runs.checkpoints.stats.faults_rolled_back, 0);
}

/// A loop that stores a counter and then reads eight bytes through pointer s0, each
/// into t0: syncing exactly stores t0 before each load, a checkpoint at the store
/// writes the state once an iteration.
fn rereader(n: u32, k: u32, target: u32) -> Vec<u32> {
    const T2: u8 = 7;
    let mut body = vec![addi(S3, S3, 1), sb(T2, S3, 0)];
    for off in 0..8 {
        body.extend([lbu(T0, S0, off), add(S2, S2, T0), slli(S2, S2, 1)]);
    }
    body.push(addi(S0, S0, 1));
    counted_loop(n, k, target, &[(T2, DATA_BASE + 3000)], &body, T0)
}

#[test]
fn a_load_after_a_checkpoint_store_resumes_at_the_store() {
    // On a device the loads go on through the generic path from the store on (it runs
    // again); on unmapped memory the run ends with the guest's fault, the state exact.
    let (runs, exit) = check(&rereader(300, 200, UART_BASE), MemMode::Fastmem, 3, 1_000_000);
    assert!(matches!(exit, Exit::Exited(_)), "{exit:?}");
    let m = &runs.checkpoints;
    assert!(m.stats.faults_rolled_back >= 1, "rollbacks: {}", m.stats.faults_rolled_back);
    assert!(runs.exact.stats.faults_handled >= 1, "the load faulted without checkpoints too");
    let (runs, exit) = check(&rereader(300, 200, 0x4000_0000), MemMode::Fastmem, 3, 1_000_000);
    assert!(matches!(exit, Exit::Fault(f) if f.addr == 0x4000_0000), "{exit:?}");
    assert!(runs.checkpoints.stats.faults_rolled_back >= 1);
    for limit in [17, 1000, 3001] {
        assert_eq!(check(&rereader(300, 10_000, DATA_BASE), MemMode::Fastmem, 3, limit).1, Exit::InsnLimit(limit));
    }
}

#[test]
fn a_guest_fault_inside_a_region_leaves_the_exact_state() {
    // The pointer moves to unmapped memory: the run ends with the guest's access fault,
    // every register as the interpreter has it at the faulting instruction.
    let text = walker(400, 150, 0x4000_0000);
    for mem in [MemMode::Adaptive, MemMode::Fastmem] {
        let (_, exit) = check(&text, mem, 3, 1_000_000);
        match exit {
            Exit::Fault(f) => {
                assert_eq!(f.kind, FaultKind::LoadAccess, "{mem:?}");
                assert_eq!(f.addr, 0x4000_0000);
            }
            other => panic!("{mem:?}: expected a guest fault, got {other:?}"),
        }
    }
}

#[test]
fn max_insns_stops_exactly_inside_regions() {
    // Tier-up after one entry: the region still profiles its accesses, so its back
    // edges read the budget from `Cpu` (the profiling helpers cut it when an access
    // commits); after three, the accesses are committed and the back edges compare with
    // the budget read on entry.
    let text = walker(5000, 100_000, DATA_BASE);
    for limit in [1, 57, 1000, 4321, 20_011] {
        for (mem, tier_up) in [(MemMode::Adaptive, 1), (MemMode::Adaptive, 3), (MemMode::Fastmem, 3)] {
            let (_, exit) = check(&text, mem, tier_up, limit);
            assert_eq!(exit, Exit::InsnLimit(limit), "{mem:?}, tier-up {tier_up}");
        }
    }
}

/// A loop whose body has a diamond: `i` is written before it and used after the
/// access in the merge block (one value from the dominator, not a parameter of the
/// merge), `s4` in one arm only (a parameter of the merge).
fn diamond(n: u32, k: u32, target: u32) -> Vec<u32> {
    let body = [
        addi(S3, S3, 1),            // i += 1
        i_type(0x13, 7, T2, S3, 1), // andi t2, i, 1
        beq(T2, ZERO, 8),           // even: skip the arm
        addi(S4, S4, 3),            // odd: s4 += 3
        slli(T1, S3, 2),            // merge: t1 = i << 2
        lbu(T0, S0, 0),             // the access (i, s4, t1 live across it)
        add(S2, S2, T0),
        add(S2, S2, S4),
        add(S2, S2, T1),
        addi(S0, S0, 1),
    ];
    counted_loop(n, k, target, &[(S4, 0)], &body, S4)
}

#[test]
fn values_from_dominators_and_merge_parameters_are_exact_at_faults_and_stops() {
    for mem in [MemMode::Calls, MemMode::Adaptive, MemMode::Fastmem] {
        let (runs, exit) = check(&diamond(700, 10_000, DATA_BASE), mem, 3, 1_000_000);
        assert!(matches!(exit, Exit::Exited(_)), "{mem:?}: {exit:?}");
        assert!(runs.exact.stats.cache.region_blocks >= 3, "{mem:?}: the diamond is inside a region");
        for limit in [5, 333, 4001] {
            assert_eq!(check(&diamond(700, 10_000, DATA_BASE), mem, 3, limit).1, Exit::InsnLimit(limit));
        }
    }
    // The access faults in the merge block: on a device (the run goes on) and on
    // unmapped memory (the run ends), after both an odd and an even iteration.
    for k in [201, 202] {
        let (runs, exit) = check(&diamond(260, k, UART_BASE), MemMode::Fastmem, 3, 1_000_000);
        assert!(matches!(exit, Exit::Exited(_)), "{exit:?}");
        assert!(runs.exact.stats.faults_handled >= 1, "the merge block's inline access faulted");
        // No store in the loop: the load rolls back to the region's entry.
        assert!(runs.checkpoints.stats.faults_rolled_back >= 1, "the load rolled back to the region's entry");
        let (_, exit) = check(&diamond(400, k, 0x4000_0000), MemMode::Fastmem, 3, 1_000_000);
        assert!(matches!(exit, Exit::Fault(f) if f.addr == 0x4000_0000), "{exit:?}");
    }
}

/// A loop whose counter `s7 += 4` is first used after the access: the optimizer
/// computes its new value there, so at a fault in the access the fault path computes it
/// from the old value the code keeps.
fn lazy(n: u32, k: u32, target: u32) -> Vec<u32> {
    const S7: u8 = 23;
    let body = [
        addi(S7, S7, 4), // first used after the access
        addi(S3, S3, 1),
        lbu(T0, S0, 0), // the access
        add(S2, S2, T0),
        xor(S2, S2, S7),
        addi(S0, S0, 1),
    ];
    counted_loop(n, k, target, &[(S7, 0x100)], &body, S7)
}

#[test]
fn a_register_computed_after_the_access_is_computed_by_the_fault_path() {
    let (runs, exit) = check(&lazy(300, 200, UART_BASE), MemMode::Fastmem, 3, 1_000_000);
    assert!(matches!(exit, Exit::Exited(_)), "{exit:?}");
    let m = &runs.exact;
    assert!(m.stats.faults_handled >= 1);
    assert!(m.stats.registers_computed >= 1, "computed registers: {}", m.stats.registers_computed);
    let (_, exit) = check(&lazy(300, 200, 0x4000_0000), MemMode::Fastmem, 3, 1_000_000);
    assert!(matches!(exit, Exit::Fault(f) if f.addr == 0x4000_0000), "{exit:?}");
}

/// A loop whose `s7 += s4` (s4 kept in a register, not a constant) is first used after
/// the access: at a fault there the fault path computes it from the two values.
fn lazy_sum(n: u32, k: u32, target: u32) -> Vec<u32> {
    const S7: u8 = 23;
    let body = [
        add(S7, S7, S4), // first used after the access
        addi(S3, S3, 1),
        lbu(T0, S0, 0), // the access
        add(S2, S2, T0),
        xor(S2, S2, S7),
        addi(S0, S0, 1),
    ];
    counted_loop(n, k, target, &[(S7, 0x100), (S4, 0x1234)], &body, S7)
}

#[test]
fn a_register_computed_from_two_kept_values_after_the_access_is_computed_by_the_fault_path() {
    let (runs, exit) = check(&lazy_sum(300, 200, UART_BASE), MemMode::Fastmem, 3, 1_000_000);
    assert!(matches!(exit, Exit::Exited(_)), "{exit:?}");
    let m = &runs.exact;
    assert!(m.stats.faults_handled >= 1);
    assert!(m.stats.registers_computed >= 1, "computed registers: {}", m.stats.registers_computed);
    // Nothing had to be stored before the access and compiled again.
    assert_eq!(m.stats.cache.recovery_recompiles, 0);
    let (_, exit) = check(&lazy_sum(300, 200, 0x4000_0000), MemMode::Fastmem, 3, 1_000_000);
    assert!(matches!(exit, Exit::Fault(f) if f.addr == 0x4000_0000), "{exit:?}");
}

/// A loop that calls a function through a pointer (s6) every iteration and adds its
/// result (a0) to s2; after iteration `k` the pointer moves to a second function.
fn caller(n: u32, k: u32) -> Vec<u32> {
    // Layout: setup (10 words), loop (7), exit (3), first callee (4), second (3).
    let first = TEXT_BASE + 4 * (10 + 7 + 3);
    let second = first + 4 * 4;
    let mut t = Vec::new();
    for (r, v) in [(S1, n), (S2, 0), (S3, 0), (S5, k), (S6, first)] {
        t.extend(li(r, v));
    }
    let head = t.len();
    t.push(addi(S3, S3, 1));
    t.push(jalr(RA, S6, 0)); // the call through the pointer ends the head block
    t.push(add(S2, S2, A0));
    t.push(bne(S3, S5, 12)); // at i == k the pointer moves on
    t.extend(li(S6, second));
    let back = t.len();
    t.push(blt(S3, S1, -(((back - head) * 4) as i32)));
    t.push(add(A0, S2, ZERO));
    t.extend(exit_seq());
    assert_eq!(t.len() * 4, (first - TEXT_BASE) as usize);
    t.extend([slli(A0, S3, 1), xor(A0, A0, S3), addi(A0, A0, 7), jalr(ZERO, RA, 0)]);
    t.extend([slli(A0, S3, 2), sub(A0, A0, S2), jalr(ZERO, RA, 0)]);
    t
}

#[test]
fn a_call_through_a_pointer_continues_in_the_region_at_the_target_it_took() {
    // The head block ends in the call: the region takes in the callee its direct code
    // saw last (guarded by comparing the target) and the callee's return comes back
    // into the region. The callee's own code tiers up first (it is entered as often as
    // the return point and before it); the return point then heads the loop's region:
    // itself, the back edge's block, the loop head and the callee.
    let (runs, exit) = check(&caller(2000, 10_000), MemMode::Adaptive, 3, 1_000_000);
    assert!(matches!(exit, Exit::Exited(_)), "{exit:?}");
    for m in [&runs.checkpoints, &runs.exact] {
        assert_eq!((m.stats.cache.regions_compiled, m.stats.cache.region_blocks), (1, 4));
    }
    // The pointer changes mid-run: the guard fails, the call leaves the region through
    // the jump cache, and the state stays the interpreter's.
    let (_, exit) = check(&caller(2000, 700), MemMode::Adaptive, 3, 1_000_000);
    assert!(matches!(exit, Exit::Exited(_)), "{exit:?}");
    for limit in [5, 2101, 3333] {
        assert_eq!(check(&caller(2000, 700), MemMode::Adaptive, 3, limit).1, Exit::InsnLimit(limit));
    }
}

#[test]
fn blocks_of_a_loop_that_is_being_compiled_wait_for_its_region() {
    // Every block of the loop gets hot within the same few iterations. On the compile
    // thread the loop's region takes far longer than that to compile: the other blocks
    // wait for it instead of each heading a region of its own around the same loop, and
    // once it is linked in they are not entered again.
    let text = diamond(800_000, u32::MAX, DATA_BASE);
    let elf = elf_image(&text, &data(), 0xc_8000);
    let mut reference = machine(&elf, &[], b"");
    let want = run_on(&mut reference, Backend::Interp, None);
    let mut m = machine(&elf, &[], b"");
    let mut opts = RunOptions { backend: Backend::Tiered, ..RunOptions::default() };
    opts.jit.compile_after = 0;
    // Not lower: a slice ends every 4M instructions and the dispatcher enters the loop
    // again at the block a back edge leads to, in direct code.
    opts.jit.tier_up = 100;
    let exit = runner::run(&mut m, &opts).expect("runs").exit;
    assert_eq!(exit, want);
    assert_same_machine("compile thread", &reference, &m);
    let c = &m.stats.cache;
    assert_eq!((c.tier_ups, c.regions_compiled), (1, 1), "one region for the loop");
    assert!(c.tier_ups_deferred >= 1, "the loop's other blocks got hot while it compiled");
}
