//! The fault handler recovers only inline guest accesses in translated code. Any other
//! SIGSEGV still kills the process with SIGSEGV, as it would without rvdbt. Each case
//! runs in a child process (this test binary, re-executed with an environment variable).

mod common;
use common::*;
use std::os::unix::process::ExitStatusExt as _;
use std::process::Command;

const CHILD: &str = "RVDBT_FOREIGN_FAULT_CHILD";

/// Runs this test binary's `test` in a child with `CHILD=case`; returns its status.
fn child(test: &str, case: &str) -> std::process::ExitStatus {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, case)
        .output()
        .expect("child runs")
        .status
}

/// In the child: install the handler by running a guest program in fastmem mode (one
/// recovered fault included), then fault on purpose outside translated code.
fn child_body(case: &str) {
    let mut text = li(A0, 0x1000_0000).to_vec(); // UART: an inline store faults once
    text.push(s_type(0x23, 0, A0, ZERO, 0));
    text.extend([addi(A0, ZERO, 0)]);
    text.extend(exit_seq());
    let mut m = machine(&elf_image(&text, &[], 0), &[], b"");
    let mut opts = rvdbt::runner::RunOptions::default();
    opts.jit.mem = rvdbt::jit::access::MemMode::Fastmem;
    opts.jit.compile_after = 0;
    let report = rvdbt::runner::run(&mut m, &opts).expect("runs");
    assert_eq!(report.exit, rvdbt::machine::Exit::Exited(0));
    assert_eq!(m.stats.faults_handled, 1, "the handler is installed and recovered one fault");
    let target: *mut u32 = match case {
        "null" => std::ptr::null_mut(),
        // An arena address (a device page, PROT_NONE) touched by Rust code, not by
        // translated code: a host bug, which must not be "recovered".
        _ => m.mem.arena_base().wrapping_add(0x1000_0000).cast(),
    };
    // SAFETY: deliberately not safe: this write must kill the child with SIGSEGV.
    unsafe { std::ptr::write_volatile(target, 1) };
    std::process::exit(0); // not reached
}

#[test]
fn null_write_outside_translated_code_kills_with_sigsegv() {
    if let Ok(case) = std::env::var(CHILD) {
        return child_body(&case);
    }
    let status = child("null_write_outside_translated_code_kills_with_sigsegv", "null");
    assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status:?}");
}

#[test]
fn arena_fault_outside_translated_code_kills_with_sigsegv() {
    if let Ok(case) = std::env::var(CHILD) {
        return child_body(&case);
    }
    let status = child("arena_fault_outside_translated_code_kills_with_sigsegv", "arena");
    assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status:?}");
}
