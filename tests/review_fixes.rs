//! Fixes from a review of rvdbt's soundness: a faulting `ecall` is not retired (as
//! `ebreak`), execute-only guest pages can be fetched, and the alternate signal stack
//! of a thread is guarded and unmapped when the thread ends.

mod common;
use common::*;
use rvdbt::machine::{Exit, FaultKind, GuestFault, MachineConfig};
use rvdbt::memory::{Memory, Width, PERM_R, PERM_X};
use rvdbt::runner::Backend;
use std::sync::Mutex;

/// The tests of this file run one at a time: the signal stack test checks that an
/// address range stops being mapped, which a concurrent mapping could reuse.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn a_refused_ecall_is_not_retired_like_ebreak() {
    let _one = serial();
    // addi a0, zero, 1; addi a7, zero, 999; ecall (unknown: refused under
    // --strict-syscalls); the same with ebreak in its place.
    let ecall_text = [addi(A0, ZERO, 1), addi(A7, ZERO, 999), ecall()];
    let ebreak_text = [addi(A0, ZERO, 1), addi(A7, ZERO, 999), 0x0010_0073];
    let pc = TEXT_BASE + 8;
    for backend in backends() {
        let config = MachineConfig { strict_syscalls: true, ..MachineConfig::default() };
        let mut m = machine_with(&elf_image(&ecall_text, &[], 0), &[], b"", config);
        let exit = run_on(&mut m, backend, Some(1000));
        let mut b = machine(&elf_image(&ebreak_text, &[], 0), &[], b"");
        let ebreak_exit = run_on(&mut b, backend, Some(1000));
        assert_eq!(exit, Exit::Fault(GuestFault { kind: FaultKind::UnknownSyscall(999), pc, addr: 0 }), "{backend:?}");
        assert_eq!(ebreak_exit, Exit::Fault(GuestFault { kind: FaultKind::Breakpoint, pc, addr: 0 }), "{backend:?}");
        assert_eq!((m.cpu.pc, m.cpu.retired), (pc, 2), "{backend:?}: the ecall did not retire");
        assert_eq!((b.cpu.pc, b.cpu.retired), (m.cpu.pc, m.cpu.retired), "{backend:?}: as ebreak");
        assert_eq!(m.stats.syscalls, 1, "{backend:?}: the call was seen");
    }
}

#[test]
fn execute_only_pages_are_fetchable_and_readable() {
    let _one = serial();
    // Execute implies read, as Linux maps RISC-V pages: fetching an execute-only page
    // reads it through the arena (no host fault), and loads agree with fetches.
    let mut m = Memory::new(false, false).expect("memory");
    m.add_ram(0x1_0000, 0x1_1000, PERM_X, "xonly").expect("mapped");
    assert_eq!(m.fetch(0x1_0000), Ok(0));
    assert_eq!(m.fetch_insn(0x1_0ffc), Ok((0, 2)));
    assert_eq!(m.load(0x1_0004, Width::B4), Ok(0));
    assert!(m.ram_allows(0x1_0000, 4, PERM_R | PERM_X));
    m.protect_pages(0x1_0000, 0x1000, PERM_X).expect("reprotected");
    assert_eq!(m.fetch(0x1_0800), Ok(0));
}

/// The protection column (`rw-p`, `---p`) of the mapping of /proc/self/maps holding
/// `addr`, if one does.
fn protection_at(addr: usize) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    maps.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (range, perms) = (f.next()?, f.next()?);
        let (lo, hi) = range.split_once('-')?;
        let (lo, hi) = (usize::from_str_radix(lo, 16).ok()?, usize::from_str_radix(hi, 16).ok()?);
        (lo <= addr && addr < hi).then(|| perms.to_string())
    })
}

#[test]
fn the_alternate_signal_stack_is_guarded_and_unmapped_with_its_thread() {
    let _one = serial();
    let (start, len) = std::thread::spawn(|| {
        let mut m = machine(&elf_image(&[addi(A0, ZERO, 3), exit_seq()[0], exit_seq()[1]], &[], 0), &[], b"");
        assert_eq!(run_on(&mut m, Backend::Direct, None), Exit::Exited(3));
        let (start, len) = rvdbt::jit::fault::alt_stack().expect("the run gave this thread a signal stack");
        assert_eq!(protection_at(start).as_deref(), Some("rw-p"), "the stack");
        assert_eq!(protection_at(start + len - 1).as_deref(), Some("rw-p"), "its top");
        assert_eq!(protection_at(start - 1).as_deref(), Some("---p"), "the guard page below it");
        (start, len)
    })
    .join()
    .expect("thread ran");
    assert_eq!(protection_at(start), None, "unmapped when the thread ended");
    assert_eq!(protection_at(start + len - 1), None);
    assert_eq!(protection_at(start - 1), None, "with its guard page");
}
