//! `--trace blocks|insns`: the exact lines for small programs on the interpreter (through
//! the library and the command line), the end line on every kind of exit, symbols on
//! block lines, and the refusals.

mod common;
use common::*;
use rvdbt::machine::Machine;
use rvdbt::runner::{Backend, RunOptions};
use rvdbt::symbols::Symbols;
use rvdbt::trace::{self, TraceKind, Tracer};
use std::io::Write;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

/// A `Write` whose bytes the test can read after the tracer is gone.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A loop, a store, a call over one instruction and exit(0).
fn loop_program() -> Vec<u32> {
    vec![
        addi(A0, ZERO, 2),  // 10000
        addi(A0, A0, -1),   // 10004 loop:
        bne(A0, ZERO, -4),  // 10008
        lui(T0, 0x20),      // 1000c
        sw(T0, A0, 4),      // 10010
        sb(T0, T0, 9),      // 10014
        j_type(RA, 8),      // 10018 -> 10020
        addi(A0, A0, 99),   // 1001c (skipped)
        addi(A7, ZERO, 93), // 10020
        ecall(),            // 10024
    ]
}

/// Runs `text` on the interpreter with a tracer of `kind` and returns the trace.
fn traced(text: &[u32], kind: TraceKind, max_insns: Option<u64>) -> String {
    let mut m: Machine = machine(&elf_image(text, &[0; 16], 0), &[], b"");
    let buf = Shared::default();
    let mut tracer = Tracer::new(kind, Box::new(buf.clone()), None);
    let opts = RunOptions { backend: Backend::Interp, max_insns, ..RunOptions::default() };
    let report = trace::run(&mut m, &opts, &mut tracer).expect("interpreter traces");
    tracer.finish(&report.exit, m.cpu.retired).expect("trace written");
    drop(tracer);
    let bytes = buf.0.lock().unwrap().clone();
    String::from_utf8(bytes).expect("utf-8 trace")
}

#[test]
fn insns_trace_is_exact() {
    let expected = "\
00010000  li a0,2                 a0=0x00000002
00010004  add a0,a0,-1            a0=0x00000001
00010008  bnez a0,10004
00010004  add a0,a0,-1            a0=0x00000000
00010008  bnez a0,10004
0001000c  lui t0,0x20             t0=0x00020000
00010010  sw a0,4(t0)             mem[0x00020004]=0x00000000
00010014  sb t0,9(t0)             mem[0x00020009]=0x00
00010018  jal 10020               ra=0x0001001c
00010020  li a7,93                a7=0x0000005d
00010024  ecall                   a0=0x00000000
end  11  exited with status 0
";
    assert_eq!(traced(&loop_program(), TraceKind::Insns, None), expected);
}

#[test]
fn blocks_trace_is_exact() {
    // Blocks start at the entry and after every branch (taken or not), jump and ecall.
    let expected = "\
00010000  0
00010004  3
0001000c  5
00010020  9
end  11  exited with status 0
";
    assert_eq!(traced(&loop_program(), TraceKind::Blocks, None), expected);
}

#[test]
fn traces_end_on_faults_and_limits() {
    // A load from unmapped memory in the second block: that block still gets its line.
    let text = [addi(A0, ZERO, 1), j_type(ZERO, 4), lw(A1, ZERO, 16), addi(A7, ZERO, 93), ecall()];
    assert_eq!(
        traced(&text, TraceKind::Blocks, None),
        "00010000  0\n00010008  2\nend  2  load access fault at pc 0x00010008\n"
    );
    assert_eq!(
        traced(&text, TraceKind::Insns, None),
        "00010000  li a0,1                 a0=0x00000001\n00010004  j 10008\nend  2  load access fault at pc 0x00010008\n"
    );
    // --max-insns stops exactly.
    assert_eq!(
        traced(&loop_program(), TraceKind::Blocks, Some(4)),
        "00010000  0\n00010004  3\nend  4  stopped after 4 instructions (--max-insns)\n"
    );
}

#[test]
fn runtime_instructions_end_blocks() {
    // csrr (a CSR access) and a write syscall end their blocks, as in block discovery.
    let csrr_instret = 0xc020_2573; // csrr a0,instret
    let text = [addi(A1, ZERO, 5), csrr_instret, addi(A1, A1, 1), addi(A7, ZERO, 93), ecall()];
    assert_eq!(traced(&text, TraceKind::Blocks, None), "00010000  0\n00010008  2\nend  5  exited with status 1\n");
}

#[test]
fn block_lines_name_symbols() {
    let elf = std::fs::read("guest-programs/bin/hello.elf").expect("bundled program");
    let mut m = machine(&elf, &[], b"");
    let buf = Shared::default();
    let mut tracer = Tracer::new(TraceKind::Blocks, Box::new(buf.clone()), Some(Symbols::from_elf(&elf).unwrap()));
    let opts = RunOptions { backend: Backend::Interp, ..RunOptions::default() };
    let report = trace::run(&mut m, &opts, &mut tracer).expect("interpreter traces");
    tracer.finish(&report.exit, m.cpu.retired).unwrap();
    drop(tracer);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "80000000  0  <_start>",
            "8000002c  9  <main>",
            "80000b4c  14  <printf>",
            "80000568  32  <format.constprop.0>"
        ]
    );
    assert_eq!(lines.last(), Some(&format!("end  {}  exited with status 0", m.cpu.retired).as_str()));
}

#[test]
fn translating_backends_refuse_to_trace_for_now() {
    let opts = RunOptions { backend: Backend::Cranelift, ..RunOptions::default() };
    let mut m = machine(&elf_image(&loop_program(), &[0; 16], 0), &[], b"");
    let mut tracer = Tracer::new(TraceKind::Blocks, Box::new(Shared::default()), None);
    assert!(trace::run(&mut m, &opts, &mut tracer).is_err());
}

fn rvdbt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rvdbt")).args(args).output().expect("run rvdbt")
}

#[test]
fn cli_writes_the_trace_to_a_file_or_stderr() {
    let dir = TempDir::new();
    let prog = dir.file("loop.elf", &elf_image(&loop_program(), &[0; 16], 0));
    let prog = prog.to_str().unwrap();
    let file = dir.path("trace.txt");
    let file_arg = file.to_str().unwrap();

    let o = rvdbt(&["run", "--backend", "interp", "--trace", "blocks", "--trace-file", file_arg, prog]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stderr.is_empty());
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(written, traced(&loop_program(), TraceKind::Blocks, None));

    // stderr by default; the guest's exit status is kept.
    let o = rvdbt(&["run", "--backend", "interp", "--trace", "insns", "--max-insns", "3", prog]);
    assert_eq!(o.status.code(), Some(124));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with(&traced(&loop_program(), TraceKind::Insns, Some(3))), "{err}");

    // The translating backend refuses (exit 2), before creating the file.
    let refused = dir.path("refused.txt");
    let o = rvdbt(&["run", "--trace", "blocks", "--trace-file", refused.to_str().unwrap(), prog]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--backend interp"));
    assert!(!refused.exists());

    // --trace-file needs --trace.
    let o = rvdbt(&["run", "--backend", "interp", "--trace-file", file_arg, prog]);
    assert_eq!(o.status.code(), Some(2));
}
