//! The per-access state machine end to end: each transition, the recompile it causes,
//! the fault path, under each `--mem` mode — always with exactly the interpreter's
//! result.

mod common;
use common::*;
use rvdbt::jit::access::{AccessState, MemMode, RegionClass};
use rvdbt::jit::cache::CodeCache;
use rvdbt::jit::dispatch;
use rvdbt::jit::JitConfig;
use rvdbt::machine::{Exit, FaultKind, GuestFault, Machine};
use rvdbt::memory::{Device, UART_BASE};
use rvdbt::runner::new_cache;
use rvdbt::runner::Backend;

const S1: u8 = 9;

/// Calls a one-store function `n1` times with pointer `addr1`, then `n2` times with
/// `addr2`, then exits with 0. The store (`sb a1, 0(a0)`, a1 = 'x') is at [`store_pc`].
fn two_phase(addr1: u32, n1: u32, addr2: u32, n2: u32) -> Vec<u32> {
    let mut t = Vec::new();
    t.extend(li(A1, u32::from(b'x')));
    for (addr, n) in [(addr1, n1), (addr2, n2)] {
        t.extend(li(A0, addr));
        t.extend(li(S1, n));
        // loop: jal ra, F; addi s1, s1, -1; bnez s1, loop  (F is patched below)
        t.push(0); // placeholder for jal
        t.push(addi(S1, S1, -1));
        t.push(b_type(1, S1, ZERO, -8));
    }
    t.push(addi(A0, ZERO, 0));
    t.extend(exit_seq());
    let f = t.len();
    t.push(s_type(0x23, 0, A0, A1, 0)); // sb a1, 0(a0)
    t.push(jalr(ZERO, RA, 0)); // ret
    for (i, w) in t.clone().iter().enumerate() {
        if *w == 0 {
            t[i] = j_type(RA, ((f - i) * 4) as i32);
        }
    }
    t
}

fn store_pc(text: &[u32]) -> u32 {
    TEXT_BASE + 4 * (text.len() as u32 - 2)
}

/// Runs `text` on the interpreter, on Cranelift and on the direct backend with `mode`;
/// asserts identical results (and identical state machine histories for the two code
/// generators) and returns the Cranelift machine and its cache.
fn run_both(text: &[u32], mode: MemMode, commit_after: u32) -> (Machine, CodeCache, Exit) {
    let elf = elf_image(text, &[0u8; 256], 0);
    let mut reference = machine(&elf, &[], b"");
    let want = run_on(&mut reference, Backend::Interp, Some(1_000_000));
    let mut runs = [Backend::Cranelift, Backend::Direct].map(|backend| {
        let mut m = machine(&elf, &[], b"");
        // Compile on first entry: every observation then happens in translated code.
        let config = JitConfig { mem: mode, commit_after, verify: true, compile_after: 0, ..JitConfig::default() };
        let mut cache = new_cache(backend, config, &m).expect("backend");
        let exit = dispatch::run(&mut m, &mut cache, Some(1_000_000), &|| None).expect("runs");
        m.finish();
        let what = format!("{backend:?}, {mode:?}");
        assert_eq!(exit, want, "exit ({what})");
        assert_same_machine(&what, &reference, &m);
        Some((m, cache, exit))
    });
    let (direct, direct_cache, _) = runs[1].take().expect("direct run");
    let (m, cache, exit) = runs[0].take().expect("cranelift run");
    assert_eq!(direct.stats.transitions, m.stats.transitions, "same transitions ({mode:?})");
    assert_eq!(direct.stats.faults_handled, m.stats.faults_handled, "same faults ({mode:?})");
    assert_eq!(direct_cache.access_states(), cache.access_states(), "same final states ({mode:?})");
    // A fault that rolls back to the block's start (Cranelift: `Cpu` is exact there)
    // may enter that block again, which recompiles it; the direct backend resumes at
    // the access, in a new block.
    let (direct_recompiles, recompiles) = (direct_cache.stats.recompiles, cache.stats.recompiles);
    assert!(
        direct_recompiles <= recompiles && recompiles <= direct_recompiles + m.stats.faults_rolled_back,
        "same recompiles besides rollbacks ({mode:?}): direct {direct_recompiles}, cranelift {recompiles}, \
         {} rollbacks",
        m.stats.faults_rolled_back
    );
    (m, cache, exit)
}

fn state_at(cache: &CodeCache, pc: u32) -> AccessState {
    cache.access_record(pc).expect("the access was translated").state
}

const UART: RegionClass = RegionClass::Device(Device::Uart);

#[test]
fn ram_only_access_commits_after_n_and_recompiles() {
    let text = two_phase(DATA_BASE, 10, DATA_BASE + 1, 10);
    let (m, cache, exit) = run_both(&text, MemMode::Adaptive, 3);
    assert_eq!(exit, Exit::Exited(0));
    assert_eq!(state_at(&cache, store_pc(&text)), AccessState::Committed(RegionClass::Ram));
    assert_eq!(m.stats.transitions.naive_to_committed, 1);
    assert_eq!(m.stats.transitions.naive_to_variable + m.stats.transitions.committed_to_variable, 0);
    assert!(cache.stats.recompiles >= 1, "the store's block was recompiled");
    assert_eq!(m.stats.faults_handled, 0);
}

#[test]
fn commit_after_is_honoured() {
    for n in [1u32, 3, 5, 9] {
        // n observations of RAM commit (two_phase runs n1 + n2 stores) ...
        let text = two_phase(DATA_BASE, n.max(2) - 1, DATA_BASE, 1);
        let (_, cache, _) = run_both(&text, MemMode::Adaptive, n);
        assert_eq!(state_at(&cache, store_pc(&text)), AccessState::Committed(RegionClass::Ram), "commit after {n}");
        // ... n - 1 do not.
        if n >= 3 {
            let text = two_phase(DATA_BASE, n - 2, DATA_BASE, 1);
            let (_, cache, _) = run_both(&text, MemMode::Adaptive, n);
            let seen = n - 1;
            assert_eq!(
                state_at(&cache, store_pc(&text)),
                AccessState::Naive { class: Some(RegionClass::Ram), seen },
                "commit after {n}"
            );
        }
    }
}

#[test]
fn committed_ram_access_that_hits_a_device_faults_and_becomes_variable() {
    let text = two_phase(DATA_BASE, 10, UART_BASE, 3);
    for mode in [MemMode::Adaptive, MemMode::Fastmem] {
        let (m, cache, _) = run_both(&text, mode, 3);
        assert_eq!(m.io.stdout_bytes(), b"xxx", "{mode:?}");
        assert_eq!(state_at(&cache, store_pc(&text)), AccessState::Variable, "{mode:?}");
        assert_eq!(m.stats.transitions.committed_to_variable, 1, "{mode:?}");
        assert_eq!(m.stats.faults_handled, 1, "{mode:?}: one fault, then the generic path");
        assert!(cache.stats.recompiles >= 1, "{mode:?}");
    }
}

#[test]
fn device_access_commits_to_the_device_and_leaves_on_a_bounds_miss() {
    // UART first: COMMITTED(uart), a bounds-checked direct call.
    let text = two_phase(UART_BASE, 4, UART_BASE, 4);
    let (m, cache, _) = run_both(&text, MemMode::Adaptive, 3);
    assert_eq!(state_at(&cache, store_pc(&text)), AccessState::Committed(UART));
    assert_eq!(m.io.stdout_bytes(), b"xxxxxxxx");
    assert_eq!(m.stats.faults_handled, 0, "device accesses never fault");
    // Then RAM: the bounds check fails, the slow path makes it VARIABLE (no fault).
    let text = two_phase(UART_BASE, 4, DATA_BASE, 4);
    let (m, cache, _) = run_both(&text, MemMode::Adaptive, 3);
    assert_eq!(state_at(&cache, store_pc(&text)), AccessState::Variable);
    assert_eq!(m.stats.transitions.naive_to_committed, 1);
    assert_eq!(m.stats.transitions.committed_to_variable, 1);
    assert_eq!(m.stats.faults_handled, 0);
}

#[test]
fn naive_access_that_sees_two_regions_becomes_variable() {
    let text = two_phase(DATA_BASE, 2, UART_BASE, 2);
    let (m, cache, _) = run_both(&text, MemMode::Adaptive, 3);
    assert_eq!(state_at(&cache, store_pc(&text)), AccessState::Variable);
    assert_eq!(m.stats.transitions.naive_to_variable, 1);
    assert_eq!(m.stats.transitions.naive_to_committed, 0);
}

#[test]
fn calls_mode_never_changes_state() {
    let text = two_phase(DATA_BASE, 10, UART_BASE, 3);
    let (m, cache, _) = run_both(&text, MemMode::Calls, 3);
    assert_eq!(state_at(&cache, store_pc(&text)), AccessState::Variable);
    assert_eq!(m.stats.transitions, Default::default());
    assert_eq!(m.stats.faults_handled, 0);
    assert_eq!(cache.stats.recompiles, 0);
}

#[test]
fn fastmem_wild_access_ends_as_the_guest_fault_with_exact_state() {
    // t0 = 1; a0 = 0x4000_0000 (unmapped); lw a1, 8(a0): load access fault.
    let mut text = vec![addi(T0, ZERO, 1)];
    text.extend(li(A0, 0x4000_0000));
    text.push(i_type(0x03, 2, A1, A0, 8));
    text.extend(exit_seq());
    for mode in [MemMode::Calls, MemMode::Adaptive, MemMode::Fastmem] {
        let (m, _, exit) = run_both(&text, mode, 3);
        let fault = GuestFault { kind: FaultKind::LoadAccess, pc: TEXT_BASE + 12, addr: 0x4000_0008 };
        assert_eq!(exit, Exit::Fault(fault), "{mode:?}");
        assert_eq!(m.cpu.regs[T0 as usize], 1, "{mode:?}: registers before the access are written back");
        assert_eq!(m.stats.faults_handled, u64::from(mode == MemMode::Fastmem), "{mode:?}");
    }
}

#[test]
fn fastmem_store_to_code_is_a_store_access_fault() {
    let mut text = li(A0, TEXT_BASE).to_vec();
    text.push(addi(T1, ZERO, 5));
    text.push(s_type(0x23, 2, A0, T1, 0));
    text.extend(exit_seq());
    let (m, _, exit) = run_both(&text, MemMode::Fastmem, 3);
    assert_eq!(exit, Exit::Fault(GuestFault { kind: FaultKind::StoreAccess, pc: TEXT_BASE + 12, addr: TEXT_BASE }));
    assert_eq!(m.stats.faults_handled, 1, "the read-only page faulted on the inline store");
}

#[test]
fn storing_back_what_was_loaded_from_code_still_faults() {
    // lw t1, 0(a0); sw t1, 0(a0) with a0 in the text: the store changes no byte, but the
    // page is read-only, so it faults as the interpreter says (Cranelift would drop a
    // store of the value just loaded from the same place as a no-op).
    let mut text = li(A0, TEXT_BASE).to_vec();
    text.push(lw(T1, A0, 0));
    text.push(s_type(0x23, 2, A0, T1, 0));
    text.extend(exit_seq());
    for mode in [MemMode::Adaptive, MemMode::Fastmem] {
        let (_, _, exit) = run_both(&text, mode, 1);
        let fault = GuestFault { kind: FaultKind::StoreAccess, pc: TEXT_BASE + 12, addr: TEXT_BASE };
        assert_eq!(exit, Exit::Fault(fault), "{mode:?}");
    }
}

#[test]
fn stores_before_a_fault_in_the_same_block_happen_once() {
    // One block: sw to counter A; lw from a0 (RAM, then a device); sw to counter B.
    // Called 5 times with RAM, once with the CLINT (mtimecmp, deterministic), 5 more with RAM.
    let counter_a = DATA_BASE + 64;
    let counter_b = DATA_BASE + 68;
    let mut t = Vec::new();
    t.extend(li(S1, 11));
    t.extend(li(T2, counter_a));
    let loop_start = t.len();
    // a0 = (s1 == 6) ? CLINT mtimecmp : DATA_BASE
    t.extend(li(A0, DATA_BASE));
    t.push(addi(T0, ZERO, 6));
    t.push(b_type(1, S1, T0, 12)); // bne s1, t0, +12
    t.extend(li(A0, 0x0200_4000));
    t.push(j_type(RA, 0)); // patched: jal ra, F
    t.push(addi(S1, S1, -1));
    let back = -((t.len() - loop_start) as i32 * 4);
    t.push(b_type(1, S1, ZERO, back));
    t.push(i_type(0x03, 2, A0, T2, 0));
    t.push(i_type(0x03, 2, A1, T2, (counter_b - counter_a) as i32));
    t.push(r_type(0x33, 0, 0, A0, A0, A1)); // exit(a + b)
    t.extend(exit_seq());
    let f = t.len();
    // F: counter_a += 1; t0 = *a0; counter_b += 1; ret  (t2 = &counter_a)
    let b = (counter_b - counter_a) as i32;
    t.extend([
        i_type(0x03, 2, T1, T2, 0),
        addi(T1, T1, 1),
        s_type(0x23, 2, T2, T1, 0),
        i_type(0x03, 2, T0, A0, 0),
        i_type(0x03, 2, T1, T2, b),
        addi(T1, T1, 1),
        s_type(0x23, 2, T2, T1, b),
        jalr(ZERO, RA, 0),
    ]);
    let call = t.iter().position(|&w| w == j_type(RA, 0)).unwrap();
    t[call] = j_type(RA, ((f - call) * 4) as i32);
    for mode in [MemMode::Calls, MemMode::Adaptive, MemMode::Fastmem] {
        let (m, _, exit) = run_both(&t, mode, 3);
        assert_eq!(exit, Exit::Exited(22), "{mode:?}: both counters are 11");
        if mode != MemMode::Calls {
            assert_eq!(m.stats.faults_handled, 1, "{mode:?}");
        }
    }
}

#[test]
fn heap_growing_over_a_device_turns_it_into_ram_on_every_backend() {
    // brk(0x30_0000): the heap (from the first page after the data) grows over the test
    // finisher at 0x10_0000. Then a word stored there reads back: it is RAM now.
    let mut t = li(A0, 0x30_0000).to_vec();
    t.extend([addi(A7, ZERO, 214), ecall()]);
    t.extend(li(T0, 0x10_0000));
    t.extend(li(T1, 0x5555)); // would stop the machine on the test finisher
    for _ in 0..20 {
        t.push(s_type(0x23, 2, T0, T1, 0));
        t.push(i_type(0x03, 2, A0, T0, 0));
    }
    t.push(i_type(0x13, 7, A0, A0, 0x7f)); // andi a0, a0, 0x7f
    t.extend(exit_seq());
    for mode in [MemMode::Calls, MemMode::Adaptive, MemMode::Fastmem] {
        let (m, _, exit) = run_both(&t, mode, 3);
        assert_eq!(exit, Exit::Exited(0x55), "{mode:?}");
        assert_eq!(m.warnings.len(), 1, "{mode:?}: {:?}", m.warnings);
        assert!(m.warnings[0].contains("test-finisher"), "{:?}", m.warnings);
    }
}

#[test]
fn access_committed_to_a_device_the_heap_grows_over_becomes_variable() {
    // Print 'x' 5 times through one store (COMMITTED(uart)), grow the heap over the UART,
    // then run the same store 5 more times: it writes RAM now, and prints nothing.
    let brk_to = UART_BASE + 0x1000;
    let mut t = li(A1, u32::from(b'x')).to_vec();
    t.extend(li(A0, UART_BASE));
    t.extend(li(S1, 10));
    let top = t.len();
    t.push(addi(T0, ZERO, 5));
    t.push(b_type(1, S1, T0, 4 * 6)); // bne s1, 5, store
    t.push(addi(T2, A0, 0)); // save a0
    t.extend(li(A0, brk_to));
    t.extend([addi(A7, ZERO, 214), ecall()]);
    t[top + 1] = b_type(1, S1, T0, 4 * 7); // skip the 6 brk instructions (incl. restore)
    t.push(addi(A0, T2, 0)); // restore a0
    t.push(s_type(0x23, 0, A0, A1, 0)); // store: sb a1, 0(a0)
    t.push(addi(S1, S1, -1));
    let back = -((t.len() - top) as i32 * 4);
    t.push(b_type(1, S1, ZERO, back));
    t.push(i_type(0x03, 4, A0, A0, 0)); // lbu a0, 0(a0): 'x' from RAM
    t.extend(exit_seq());
    for mode in [MemMode::Adaptive, MemMode::Fastmem, MemMode::Calls] {
        let (m, cache, exit) = run_both(&t, mode, 3);
        assert_eq!(exit, Exit::Exited(i32::from(b'x')), "{mode:?}");
        assert_eq!(m.io.stdout_bytes(), b"xxxxx", "{mode:?}");
        let store = TEXT_BASE + 4 * (top as u32 + 8);
        assert_eq!(state_at(&cache, store), AccessState::Variable, "{mode:?}");
        if mode == MemMode::Adaptive {
            assert_eq!(m.stats.transitions.naive_to_committed, 1);
            assert_eq!(m.stats.transitions.committed_to_variable, 1, "dropped with the device");
        }
    }
}
