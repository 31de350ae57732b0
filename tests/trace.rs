//! `--trace blocks|insns`: the exact lines for small programs (through the library and
//! the command line), the same on the interpreter and every translating configuration,
//! block traces of every bundled program identical on every backend, the end line
//! on every kind of exit, and symbols on block lines.

mod common;
use common::*;
use rvdbt::jit::access::MemMode;
use rvdbt::jit::JitConfig;
use rvdbt::machine::Machine;
use rvdbt::runner::{self, Backend, RunOptions};
use rvdbt::symbols::Symbols;
use rvdbt::trace::{TraceKind, Tracer};
use std::hash::Hasher;
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

/// The configurations every trace must agree on: the interpreter, and each translating
/// backend translating at once, in the three memory modes, with tiny tier-up counts.
fn configurations() -> Vec<RunOptions> {
    let mut out = vec![RunOptions { backend: Backend::Interp, ..RunOptions::default() }];
    for backend in [Backend::Direct, Backend::Cranelift, Backend::Tiered] {
        for mem in [MemMode::Adaptive, MemMode::Calls, MemMode::Fastmem] {
            let jit = JitConfig { mem, compile_after: 0, tier_up: 3, compile_thread: false, ..JitConfig::default() };
            out.push(RunOptions { backend, jit, ..RunOptions::default() });
        }
    }
    out
}

/// Runs `m` with `opts` and a tracer of `kind` writing to `out`.
fn run_traced(m: &mut Machine, opts: &RunOptions, kind: TraceKind, out: Box<dyn Write>, symbols: Option<Symbols>) {
    let mut tracer = Tracer::new(kind, out, symbols);
    let report = runner::run_observed(m, opts, Some(&mut tracer)).expect("traced run");
    tracer.finish(&report.exit, m.cpu.retired).expect("trace written");
}

/// Runs `text` with a tracer of `kind` on every configuration, checks that the traces
/// are the same, and returns the trace.
fn traced(text: &[u32], kind: TraceKind, max_insns: Option<u64>) -> String {
    let mut traces = Vec::new();
    for opts in configurations() {
        let mut m: Machine = machine(&elf_image(text, &[0; 16], 0), &[], b"");
        let buf = Shared::default();
        run_traced(&mut m, &RunOptions { max_insns, ..opts.clone() }, kind, Box::new(buf.clone()), None);
        let bytes = buf.0.lock().unwrap().clone();
        traces.push((opts, String::from_utf8(bytes).expect("utf-8 trace")));
    }
    for (opts, trace) in &traces[1..] {
        assert_eq!(trace, &traces[0].1, "{} {:?}", opts.backend.name(), opts.jit.mem);
    }
    traces.swap_remove(0).1
}

/// Counts the lines of a trace and hashes its bytes.
#[derive(Clone, Default)]
struct Digest(Arc<Mutex<(u64, std::collections::hash_map::DefaultHasher)>>);

impl Write for Digest {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut d = self.0.lock().unwrap();
        d.0 += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        d.1.write(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn block_traces_of_every_program_are_the_same_on_every_backend() {
    // Every bundled program with expectations (guest-programs/expected), with its
    // arguments and input.
    let expected = std::path::Path::new("guest-programs/expected");
    let mut programs: Vec<(String, Vec<String>, Vec<u8>)> = std::fs::read_dir(expected)
        .expect("guest-programs/expected")
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "code").then(|| path.file_stem().unwrap().to_string_lossy().into_owned())
        })
        .map(|name| {
            let read = |ext: &str| std::fs::read(expected.join(format!("{name}.{ext}"))).ok();
            let args = read("args").map(|a| String::from_utf8(a).unwrap().lines().map(str::to_string).collect());
            let stdin = read("stdin").unwrap_or_default();
            (name, args.unwrap_or_default(), stdin)
        })
        .collect();
    programs.sort();
    assert!(programs.len() >= 38, "{} programs", programs.len());
    let configs = configurations();
    for (name, args, stdin) in &programs {
        let elf = std::fs::read(format!("guest-programs/bin/{name}.elf")).expect("bundled program");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut digests = Vec::new();
        for opts in [&configs[0], &configs[1], &configs[5], &configs[9]] {
            let mut m = machine(&elf, &args, stdin);
            let digest = Digest::default();
            run_traced(&mut m, opts, TraceKind::Blocks, Box::new(digest.clone()), None);
            let d = digest.0.lock().unwrap();
            digests.push((opts.backend.name(), d.0, d.1.finish()));
        }
        assert!(digests[0].1 > 2, "{name}: {digests:?}");
        for d in &digests[1..] {
            assert_eq!((d.1, d.2), (digests[0].1, digests[0].2), "{name}: {} vs the interpreter", d.0);
        }
    }
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
    let opts = RunOptions { backend: Backend::Tiered, ..RunOptions::default() };
    let report = runner::run_observed(&mut m, &opts, Some(&mut tracer)).expect("traced run");
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

    // The default (tiered) backend writes the same trace.
    let tiered = dir.path("tiered.txt");
    let o =
        rvdbt(&["run", "--compile-after", "0", "--trace", "blocks", "--trace-file", tiered.to_str().unwrap(), prog]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&tiered).unwrap(), written);

    // --trace-file needs --trace.
    let o = rvdbt(&["run", "--backend", "interp", "--trace-file", file_arg, prog]);
    assert_eq!(o.status.code(), Some(2));
}
