//! The embedding API: many guests in one process, on many threads at once, each with
//! its own memory, cache and streams, giving exactly what a single-threaded run of the
//! same guest gives; guests one after another on one thread; the code-range registry
//! grown past its first table; stop handles, timeouts, host streams, the host's answer
//! to unknown syscalls, and every bad input a clear error.
//!
//! The tests take one lock: some count the process's code chunks.

mod common;
use common::*;
use rvdbt::jit::codemem::{self, CodePool};
use rvdbt::machine::FaultKind;
use rvdbt::{Backend, Engine, EngineError, Exit, GuestOptions, Input, MemMode, Output};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Barrier, Mutex, MutexGuard};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn programs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("guest-programs")
}

fn expected(name: &str, ext: &str) -> Option<Vec<u8>> {
    std::fs::read(programs().join("expected").join(format!("{name}.{ext}"))).ok()
}

fn expected_code(name: &str) -> i32 {
    String::from_utf8(expected(name, "code").unwrap()).unwrap().trim().parse().unwrap()
}

/// One guest of the mixed workload.
#[derive(Clone, Copy)]
struct Job {
    program: &'static str,
    backend: Backend,
    mem: MemMode,
    /// Answer syscall 999 with 7 (the program then reports the unexpected value).
    answer_999: bool,
}

const fn job(program: &'static str, backend: Backend, mem: MemMode) -> Job {
    Job { program, backend, mem, answer_999: false }
}

/// Eight guests: faults (inline ones repaired, and guest faults that end the run),
/// fence.i and code writes, a stdin buffer, an unknown syscall the host answers, on
/// every backend and memory mode.
const JOBS: [Job; 8] = [
    job("fault-exact", Backend::Cranelift, MemMode::Fastmem),
    job("mixed-regions", Backend::Tiered, MemMode::Adaptive),
    job("bad-wild", Backend::Direct, MemMode::Fastmem),
    job("smc", Backend::Tiered, MemMode::Fastmem),
    job("imac-jit", Backend::Direct, MemMode::Calls),
    job("stdin-wc", Backend::Cranelift, MemMode::Adaptive),
    Job { program: "bad-syscall", backend: Backend::Tiered, mem: MemMode::Adaptive, answer_999: true },
    job("bad-write-code", Backend::Interp, MemMode::Adaptive),
];

/// What a run left: everything the comparison looks at.
#[derive(Debug)]
struct Result {
    exit: Exit,
    status: i32,
    retired: u64,
    regs: [u32; 32],
    pc: u32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    diagnostic: Option<String>,
    warnings: Vec<String>,
    /// Inline accesses that faulted and were repaired (how many depends on when the
    /// compile thread delivers, so it is not compared).
    faults_handled: u64,
}

impl PartialEq for Result {
    fn eq(&self, o: &Result) -> bool {
        (self.exit, self.status, self.retired, self.regs, self.pc) == (o.exit, o.status, o.retired, o.regs, o.pc)
            && (&self.stdout, &self.stderr, &self.diagnostic, &self.warnings)
                == (&o.stdout, &o.stderr, &o.diagnostic, &o.warnings)
    }
}

fn options(job: Job) -> GuestOptions {
    let mut args = vec![format!("{}.elf", job.program)];
    if let Some(a) = expected(job.program, "args") {
        args.extend(String::from_utf8(a).unwrap().lines().map(str::to_string));
    }
    let mut opts = GuestOptions {
        args,
        backend: job.backend,
        stdin: Input::Buffer(expected(job.program, "stdin").unwrap_or_default()),
        max_insns: Some(2_000_000_000),
        ..GuestOptions::default()
    };
    opts.jit.mem = job.mem;
    if job.answer_999 {
        opts.ecall_handler = Some(Box::new(|call| (call.nr == 999 && call.args == [1, 2, 3, 4, 5, 6]).then_some(7)));
    }
    opts
}

fn run_job(engine: &Engine, job: Job) -> Result {
    let path = programs().join("bin").join(format!("{}.elf", job.program));
    let mut guest = engine.guest_from_path(&path, options(job)).expect("loads");
    let outcome = guest.run().expect("runs");
    let m = guest.machine();
    Result {
        exit: outcome.exit,
        status: outcome.status,
        retired: outcome.retired,
        regs: m.cpu.regs,
        pc: m.cpu.pc,
        stdout: guest.stdout().to_vec(),
        stderr: guest.stderr().to_vec(),
        diagnostic: outcome.diagnostic,
        warnings: guest.warnings().to_vec(),
        faults_handled: m.stats.faults_handled,
    }
}

/// The result the program's expectation files give (the host's answer to syscall 999
/// changes what bad-syscall prints).
fn check_expected(job: Job, r: &Result) {
    let what = format!("{} on {}", job.program, job.backend.name());
    if job.answer_999 {
        assert_eq!(r.stdout, b"syscall 999 returned 7, expected -38\n", "{what}");
        assert_eq!(r.status, 1, "{what}");
        assert!(r.warnings.is_empty(), "{what}: an answered syscall is not unknown: {:?}", r.warnings);
        return;
    }
    assert_eq!(r.status, expected_code(job.program), "{what}: {:?}", r.diagnostic);
    assert_eq!(r.stdout, expected(job.program, "stdout").unwrap(), "{what}");
    if let Some(reason) = expected(job.program, "stderr") {
        let reason = String::from_utf8(reason).unwrap();
        let diagnostic = r.diagnostic.as_deref().unwrap_or_default();
        assert!(diagnostic.contains(reason.trim()), "{what}: '{diagnostic}' says '{}'", reason.trim());
    }
}

#[test]
fn eight_guests_on_eight_threads_match_single_threaded_runs() {
    let _serial = serial();
    let engine = Engine::new().unwrap();
    let alone: Vec<Result> = JOBS.iter().map(|&job| run_job(&engine, job)).collect();
    for (job, r) in JOBS.iter().zip(&alone) {
        check_expected(*job, r);
    }
    assert!(
        matches!(alone[2].exit, Exit::Fault(f) if f.kind == FaultKind::StoreAccess || f.kind == FaultKind::LoadAccess)
    );
    for round in 0..2 {
        let start = Barrier::new(JOBS.len());
        let together: Vec<Result> = std::thread::scope(|s| {
            let threads: Vec<_> = JOBS
                .iter()
                .map(|&job| {
                    let (engine, start) = (engine.clone(), &start);
                    s.spawn(move || {
                        start.wait();
                        run_job(&engine, job)
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().expect("no panic")).collect()
        });
        for ((job, a), t) in JOBS.iter().zip(&alone).zip(&together) {
            assert_eq!(a, t, "round {round}: {} on {} --mem {}", job.program, job.backend.name(), job.mem.name());
        }
        assert!(together[1].faults_handled > 0, "mixed-regions repaired inline faults while the others ran");
    }
}

#[test]
fn many_guests_one_after_another_on_one_thread() {
    let _serial = serial();
    let chunks_before = codemem::registered_chunks();
    for i in 0..48 {
        let engine = Engine::new().unwrap();
        let program = ["hello", "fib", "crc32", "fault-exact"][i % 4];
        let backend = Backend::ALL[i / 4 % 4];
        let mem = [MemMode::Calls, MemMode::Adaptive, MemMode::Fastmem][i / 16];
        let job = job(program, backend, mem);
        let r = run_job(&engine, job);
        check_expected(job, &r);
    }
    assert!(chunks_return_to(chunks_before), "every guest's code chunks were given back");
}

#[test]
fn faults_in_code_past_the_old_registry_table_are_recognised() {
    let _serial = serial();
    let engine = Engine::new().unwrap();
    let jobs = [
        job("mixed-regions", Backend::Direct, MemMode::Fastmem),
        job("mixed-regions", Backend::Cranelift, MemMode::Fastmem),
    ];
    let alone: Vec<Result> = jobs.iter().map(|&j| run_job(&engine, j)).collect();
    // More chunks than the 4096 the registry used to hold, all live: the guests' own
    // chunks come after them.
    assert!(chunks_return_to(0), "the earlier runs' chunks were given back");
    let before = 0;
    let pools: Vec<CodePool> = (0..4200)
        .map(|_| {
            let pool = CodePool::new(false);
            pool.emit(64, |_| Ok::<_, ()>(vec![0xc3])).expect("maps a chunk").expect("assembles");
            pool
        })
        .collect();
    assert_eq!(codemem::registered_chunks(), before + 4200);
    for (&job, a) in jobs.iter().zip(&alone) {
        let path = programs().join("bin/mixed-regions.elf");
        let mut guest = engine.guest_from_path(&path, options(job)).unwrap();
        let outcome = guest.run().unwrap();
        assert_eq!(outcome.exit, a.exit);
        assert_eq!((outcome.retired, guest.machine().cpu.regs), (a.retired, a.regs));
        assert_eq!(guest.stdout(), a.stdout);
        assert!(guest.machine().stats.faults_handled > 0, "inline accesses faulted and were repaired");
    }
    drop(pools);
    assert!(chunks_return_to(before));
}

/// Waits (at most 10 s) until the process holds `count` code chunks: a compile thread
/// that was busy when its run ended finishes that compile, then drops its share of the
/// cache's chunks.
fn chunks_return_to(count: usize) -> bool {
    let until = Instant::now() + Duration::from_secs(10);
    while codemem::registered_chunks() != count {
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// A pipe: (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = std::io::pipe().expect("pipe");
    (r.into(), w.into())
}

#[test]
fn stop_handle_ends_a_guest_blocked_in_a_host_read_and_only_that_one() {
    let _serial = serial();
    let engine = Engine::new().unwrap();
    let guest_on_pipe = |backend| {
        let (r, w) = pipe();
        let job = job("stdin-wc", backend, MemMode::Adaptive);
        let opts = GuestOptions { stdin: Input::Host(r), ..options(job) };
        (engine.guest_from_path(programs().join("bin/stdin-wc.elf"), opts).unwrap(), w)
    };
    let (mut stopped, _w1) = guest_on_pipe(Backend::Tiered);
    let (mut fed, w2) = guest_on_pipe(Backend::Direct);
    let stop = stopped.stop_handle();
    std::thread::scope(|s| {
        let a = s.spawn(|| stopped.run().unwrap());
        let b = s.spawn(|| fed.run().unwrap());
        std::thread::sleep(Duration::from_millis(300));
        stop.stop();
        let outcome = a.join().unwrap();
        assert_eq!(outcome.exit, Exit::Interrupted(libc::SIGTERM));
        assert_eq!(outcome.status, 143);
        assert!(!b.is_finished(), "the other guest still waits for its input");
        let input = expected("stdin-wc", "stdin").unwrap();
        let mut writer = std::fs::File::from(w2);
        std::io::Write::write_all(&mut writer, &input).unwrap();
        drop(writer); // end of file

        let outcome = b.join().unwrap();
        assert_eq!(outcome.status, expected_code("stdin-wc"));
    });
    assert_eq!(fed.stdout(), expected("stdin-wc", "stdout").unwrap());
    assert!(stopped.stdout().is_empty());
}

#[test]
fn a_wake_without_a_stop_changes_nothing() {
    let _serial = serial();
    let engine = Engine::new().unwrap();
    let (r, w) = pipe();
    let opts = GuestOptions { stdin: Input::Host(r), ..options(job("stdin-wc", Backend::Tiered, MemMode::Adaptive)) };
    let mut guest = engine.guest_from_path(programs().join("bin/stdin-wc.elf"), opts).unwrap();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let run = s.spawn(|| {
            tid_tx.send(rvdbt::host::gettid()).unwrap();
            guest.run().unwrap()
        });
        let tid = tid_rx.recv().unwrap();
        // Interrupted reads of a guest whose stop flag is clear are retried.
        for _ in 0..20 {
            rvdbt::host::wake_thread(tid);
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut writer = std::fs::File::from(w);
        std::io::Write::write_all(&mut writer, &expected("stdin-wc", "stdin").unwrap()).unwrap();
        drop(writer);
        assert_eq!(run.join().unwrap().status, expected_code("stdin-wc"));
    });
    assert_eq!(guest.stdout(), expected("stdin-wc", "stdout").unwrap());
}

#[test]
fn a_stop_before_the_run_ends_it_at_once() {
    let _serial = serial();
    let engine = Engine::new().unwrap();
    let mut guest = engine.guest_from_path(programs().join("bin/hello.elf"), GuestOptions::default()).unwrap();
    guest.stop_handle().stop();
    let outcome = guest.run().unwrap();
    assert_eq!((outcome.exit, outcome.retired), (Exit::Interrupted(libc::SIGTERM), 0));
    assert!(guest.stdout().is_empty());
}

#[test]
fn timeout_ends_an_endless_loop_on_every_backend() {
    let _serial = serial();
    let engine = Engine::new().unwrap();
    let endless = elf_image(&[j_type(ZERO, 0)], &[], 0);
    for backend in Backend::ALL {
        let opts = GuestOptions { backend, timeout: Some(Duration::from_millis(200)), ..GuestOptions::default() };
        let mut guest = engine.guest(&endless, opts).unwrap();
        let started = Instant::now();
        let outcome = guest.run().unwrap();
        assert_eq!((outcome.exit, outcome.status), (Exit::Timeout, 124), "{backend:?}");
        assert!(started.elapsed() < Duration::from_secs(10), "{backend:?}");
        assert!(outcome.retired > 1000, "{backend:?}: the loop ran");
    }
}

#[test]
fn output_to_host_descriptors_and_buffers() {
    let _serial = serial();
    let engine = Engine::new().unwrap();
    let (out_r, out_w) = pipe();
    let opts = GuestOptions { stdout: Output::Host(out_w), backend: Backend::Direct, ..GuestOptions::default() };
    let mut guest = engine.guest_from_path(programs().join("bin/hello.elf"), opts).unwrap();
    assert_eq!(guest.run().unwrap().exit, Exit::Exited(0));
    assert!(guest.stdout().is_empty(), "nothing buffered");
    drop(guest); // closes the guest's end of the pipe
    assert_eq!(read_all(out_r), "Hello, world!\n");

    // write(2, "err\n", 4); write(1, "out\n", 4); exit(0): stderr to a pipe, stdout
    // to a buffer.
    let mut text = li(A1, DATA_BASE).to_vec();
    text.extend([addi(A0, ZERO, 2), addi(A2, ZERO, 4), addi(A7, ZERO, 64), ecall()]);
    text.extend([addi(A0, ZERO, 1), addi(A1, A1, 4), ecall(), addi(A0, ZERO, 0)]);
    text.extend(exit_seq());
    let elf = elf_image(&text, b"err\nout\n", 0);
    for backend in Backend::ALL {
        let (err_r, err_w) = pipe();
        let opts = GuestOptions { stderr: Output::Host(err_w), backend, ..GuestOptions::default() };
        let mut guest = engine.guest(&elf, opts).unwrap();
        assert_eq!(guest.run().unwrap().exit, Exit::Exited(0), "{backend:?}");
        assert_eq!((guest.stdout(), guest.stderr()), (&b"out\n"[..], &b""[..]), "{backend:?}");
        drop(guest);
        assert_eq!(read_all(err_r), "err\n", "{backend:?}");
    }
}

/// Everything until end of file.
fn read_all(fd: OwnedFd) -> String {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut text).unwrap();
    text
}

/// li t0, DATA_BASE; mv a0, t0; li a1, 4; li a7, 500; ecall; mv a2, a0; lw a0, 0(t0);
/// add a0, a0, a2; exit(a0): the handler reads and writes the guest's buffer.
#[test]
fn the_ecall_handler_reads_and_writes_guest_memory() {
    let _serial = serial();
    let engine = Engine::new().unwrap();
    let mut text = li(T0, DATA_BASE).to_vec();
    text.extend([mv(A0, T0), addi(A1, ZERO, 4), addi(A7, ZERO, 500), ecall(), mv(A2, A0), lw(A0, T0, 0)]);
    text.extend([add(A0, A0, A2)]);
    text.extend(exit_seq());
    let elf = elf_image(&text, &5u32.to_le_bytes(), 0);
    for backend in Backend::ALL {
        let mut opts = GuestOptions { backend, ..GuestOptions::default() };
        opts.ecall_handler = Some(Box::new(|call| {
            if call.nr != 500 {
                return None;
            }
            let [buf, len, ..] = call.args;
            let bytes = call.read(buf, len).ok()?;
            let word = u32::from_le_bytes(bytes.try_into().ok()?);
            call.write(buf, &(word * 3).to_le_bytes()).ok()?;
            assert!(call.write(0x10, &[1]).is_err(), "unmapped guest memory is refused");
            Some(100)
        }));
        let mut guest = engine.guest(&elf, opts).unwrap();
        assert_eq!(guest.run().unwrap().exit, Exit::Exited(115), "{backend:?}: 5 * 3 + 100");
    }
}

#[test]
fn an_unanswered_ecall_is_unknown_as_without_a_handler() {
    let _serial = serial();
    let engine = Engine::new().unwrap();
    let path = programs().join("bin/bad-syscall.elf");
    let opts = GuestOptions { ecall_handler: Some(Box::new(|_| None)), ..GuestOptions::default() };
    let mut guest = engine.guest_from_path(&path, opts).unwrap();
    assert_eq!(guest.run().unwrap().exit, Exit::Exited(0));
    assert_eq!(guest.stdout(), b"ENOSYS ok\n");
    assert_eq!(guest.warnings().len(), 1, "{:?}", guest.warnings());
    assert!(guest.warnings()[0].contains("unknown syscall 999"));

    let mut opts = GuestOptions::default();
    opts.machine.strict_syscalls = true;
    opts.ecall_handler = Some(Box::new(|_| None));
    let mut guest = engine.guest_from_path(&path, opts).unwrap();
    let outcome = guest.run().unwrap();
    assert!(matches!(outcome.exit, Exit::Fault(f) if f.kind == FaultKind::UnknownSyscall(999)), "{outcome:?}");
    assert_eq!(outcome.status, 128 + libc::SIGSYS);
    assert!(outcome.diagnostic.unwrap().contains("unknown syscall 999"));
}

#[test]
fn bad_inputs_are_clear_errors() {
    let _serial = serial();
    let engine = Engine::new().unwrap();
    let hello = std::fs::read(programs().join("bin/hello.elf")).unwrap();
    let message = |r: std::result::Result<rvdbt::Guest, EngineError>| r.err().expect("refused").to_string();

    assert_eq!(
        message(engine.guest(b"not an elf", GuestOptions::default())),
        "cannot load the program: not an ELF file"
    );
    assert_eq!(
        message(engine.guest(&hello[..40], GuestOptions::default())),
        "cannot load the program: truncated ELF file: ELF header"
    );
    let missing = message(engine.guest_from_path("/nonexistent/prog.elf", GuestOptions::default()));
    assert!(missing.starts_with("cannot read /nonexistent/prog.elf: "), "{missing}");
    let dir =
        message(engine.guest(&hello, GuestOptions { dir: Some("/nonexistent".into()), ..GuestOptions::default() }));
    assert!(dir.starts_with("cannot grant /nonexistent: "), "{dir}");
    let env = message(engine.guest(&hello, GuestOptions { env: vec!["NOEQUALS".into()], ..GuestOptions::default() }));
    assert_eq!(env, "invalid guest options: environment entries are KEY=VALUE, got 'NOEQUALS'");
    let mut opts = GuestOptions::default();
    opts.machine.stack_size = 1000;
    assert!(message(engine.guest(&hello, opts)).contains("stack size 1000 must be a multiple of 4096"));
    for (tweak, what) in [
        ((|o: &mut GuestOptions| o.jit.max_block_insns = 0) as fn(&mut GuestOptions), "max_block_insns"),
        (|o| o.jit.max_block_insns = 4097, "max_block_insns"),
        (|o| o.jit.code_cache_bytes = 4096, "code_cache_bytes"),
        (|o| o.jit.tier_up = 0, "tier_up"),
        (|o| o.jit.commit_after = 0, "commit_after"),
        (|o| o.jit.max_region_blocks = 0, "max_region_blocks"),
    ] {
        let mut opts = GuestOptions::default();
        tweak(&mut opts);
        let text = message(engine.guest(&hello, opts));
        assert!(text.starts_with("invalid guest options: ") && text.contains(what), "{text}");
    }

    let mut guest = engine.guest(&hello, GuestOptions::default()).unwrap();
    assert!(guest.stats_json().is_none());
    guest.run().unwrap();
    assert!(guest.stats_json().unwrap().contains("\"exit_code\": 0"));
    assert_eq!(guest.run().err().unwrap().to_string(), "this guest has already run");
}
