//! rvdbt as a Linux process, run as a real child process under the conditions a native
//! program meets: pipes (non-blocking, closed, broken), signals (sent while the guest
//! runs or blocks in a syscall), resource limits (`ulimit -n`, `-v`), closed or full
//! standard streams, and the limits rvdbt itself offers (`--timeout`, `--max-memory`,
//! the stack guard). Every case runs on every backend in [`BACKENDS`].
//!
//! The numbers in the test names are the items of the issue they cover. No test sleeps
//! for a fixed time: a guest says "ready" (on stderr, or stdout) before it blocks or
//! spins, and the test waits for that, then polls with a deadline.

mod common;
use common::*;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The backends every process-level behaviour must hold on (`--backend NAME`).
const BACKENDS: &[&str] = &["interp", "cranelift", "direct", "tiered"];

/// How long a test waits for something that should happen at once.
const DEADLINE: Duration = Duration::from_secs(20);

const S0: u8 = 8;
const S1: u8 = 9;
const S2: u8 = 18;
const A3: u8 = 13;

const EAGAIN: i32 = 11;
const AT_FDCWD: u32 = -100i32 as u32;

// ---------------------------------------------------------------------------------------
// A tiny assembler for guest programs.

const BEQ: u32 = 0;
const BNE: u32 = 1;
const BLT: u32 = 4;
const EBREAK: u32 = 0x0010_0073;

/// Guest code and data (data at DATA_BASE).
#[derive(Default)]
struct Asm {
    text: Vec<u32>,
    data: Vec<u8>,
}

impl Asm {
    fn new() -> Asm {
        Asm::default()
    }

    /// Byte offset of the next instruction.
    fn here(&self) -> i32 {
        self.text.len() as i32 * 4
    }

    fn emit(&mut self, words: impl IntoIterator<Item = u32>) -> &mut Asm {
        self.text.extend(words);
        self
    }

    /// Places bytes in the data segment (4-byte aligned); returns their guest address.
    fn bytes(&mut self, b: &[u8]) -> u32 {
        while !self.data.len().is_multiple_of(4) {
            self.data.push(0);
        }
        let at = DATA_BASE + self.data.len() as u32;
        self.data.extend_from_slice(b);
        at
    }

    fn li(&mut self, rd: u8, v: u32) -> &mut Asm {
        self.emit(li(rd, v))
    }

    /// `a0 = syscall nr(a0..)`.
    fn sys(&mut self, nr: i32) -> &mut Asm {
        self.emit([addi(A7, ZERO, nr), ecall()])
    }

    /// `write(fd, "text", len)`.
    fn write(&mut self, fd: u32, text: &[u8]) -> &mut Asm {
        let at = self.bytes(text);
        self.li(A0, fd).li(A1, at).li(A2, text.len() as u32).sys(64)
    }

    /// A conditional branch back to `target` (a `here()` value).
    fn branch_back(&mut self, f3: u32, rs1: u8, rs2: u8, target: i32) -> &mut Asm {
        let off = target - self.here();
        self.emit([b_type(f3, rs1, rs2, off)])
    }

    /// A forward branch to be placed with [`Asm::land`]; returns its index.
    fn branch_fwd(&mut self) -> usize {
        self.text.push(0);
        self.text.len() - 1
    }

    /// Makes the forward branch at `at` jump here.
    fn land(&mut self, at: usize, f3: u32, rs1: u8, rs2: u8) -> &mut Asm {
        let off = self.here() - at as i32 * 4;
        self.text[at] = b_type(f3, rs1, rs2, off);
        self
    }

    fn exit(&mut self, code: i32) -> &mut Asm {
        self.emit([addi(A0, ZERO, code)]).sys(93)
    }

    /// `exit(-a0)`: the errno of a failed call as the exit status.
    fn exit_neg_a0(&mut self) -> &mut Asm {
        self.emit([sub(A0, ZERO, A0)]).sys(93)
    }

    /// `j .` forever.
    fn spin(&mut self) -> &mut Asm {
        self.emit([j_type(ZERO, 0)])
    }

    fn elf(&self) -> Vec<u8> {
        elf_image(&self.text, &self.data, 0)
    }

    /// Writes the program into `dir` as `prog.elf`.
    fn file(&self, dir: &TempDir) -> PathBuf {
        dir.file("prog.elf", &self.elf())
    }
}

// ---------------------------------------------------------------------------------------
// Process helpers.

/// `rvdbt run --backend B OPTS PROG`, with every stream /dev/null until changed.
fn rvdbt(backend: &str, opts: &[&str], prog: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rvdbt"));
    c.arg("run").arg("--backend").arg(backend).args(opts).arg(prog);
    c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// A running rvdbt that is killed if the test fails before it ends.
struct Proc(Child);

impl Proc {
    fn spawn(mut c: Command) -> Proc {
        Proc(c.spawn().expect("spawn rvdbt"))
    }

    fn pid(&self) -> libc::pid_t {
        self.0.id() as libc::pid_t
    }

    fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child, which has not been reaped yet.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0, "kill");
    }

    /// Waits at most [`DEADLINE`] for the process to end.
    #[track_caller]
    fn wait(&mut self, what: &str) -> ExitStatus {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(s) = self.0.try_wait().expect("try_wait") {
                return s;
            }
            assert!(Instant::now() < end, "{what}: rvdbt did not end within {DEADLINE:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn stdin(&mut self) -> std::process::ChildStdin {
        self.0.stdin.take().expect("stdin piped")
    }
    fn stdout(&mut self) -> std::process::ChildStdout {
        self.0.stdout.take().expect("stdout piped")
    }
    fn stderr(&mut self) -> std::process::ChildStderr {
        self.0.stderr.take().expect("stderr piped")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Reads from `src` until `done(bytes so far)`, end of file, or [`DEADLINE`]. Returns
/// the bytes and whether end of file was reached.
fn read_until(src: &mut (impl std::io::Read + AsRawFd), done: impl Fn(&[u8]) -> bool) -> (Vec<u8>, bool) {
    let end = Instant::now() + DEADLINE;
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while !done(&out) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (out, false);
        }
        let mut p = libc::pollfd { fd: src.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: poll on one pollfd we own.
        if unsafe { libc::poll(&mut p, 1, left.as_millis().min(1000) as i32) } <= 0 {
            continue;
        }
        match src.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    (out, false)
}

/// Reads until `needle` appears; panics at the deadline or end of file.
#[track_caller]
fn wait_for(src: &mut (impl std::io::Read + AsRawFd), needle: &[u8]) -> Vec<u8> {
    let (out, _) = read_until(src, |b| b.windows(needle.len()).any(|w| w == needle));
    assert!(
        out.windows(needle.len()).any(|w| w == needle),
        "waited for {:?}, got {:?}",
        String::from_utf8_lossy(needle),
        String::from_utf8_lossy(&out)
    );
    out
}

/// Reads to end of file (within the deadline).
#[track_caller]
fn read_to_end(src: &mut (impl std::io::Read + AsRawFd)) -> Vec<u8> {
    let (out, eof) = read_until(src, |_| false);
    assert!(eof, "no end of file within {DEADLINE:?}; got {:?}", String::from_utf8_lossy(&out));
    out
}

/// A pipe `(read end, write end)`, both close-on-exec, the write end optionally
/// non-blocking.
fn pipe(nonblocking_writer: bool) -> (File, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors from pipe2.
    let (r, w) = unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    if nonblocking_writer {
        // SAFETY: fcntl on our own descriptor (O_NONBLOCK is per open file description,
        // so only the write end gets it).
        unsafe {
            let fl = libc::fcntl(w.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(w.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
    (r, w)
}

/// Runs `f` in the child between fork and exec.
fn pre_exec(c: &mut Command, f: impl Fn() + Send + Sync + 'static) {
    // SAFETY: the closures used here only make async-signal-safe calls (setrlimit,
    // close, signal).
    unsafe {
        c.pre_exec(move || {
            f();
            Ok(())
        });
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) {
    let lim = libc::rlimit { rlim_cur: value, rlim_max: value };
    // SAFETY: setrlimit with a limit we own.
    unsafe { libc::setrlimit(resource, &lim) };
}

/// The value of `key` in a `--stats` table.
fn stat(stderr: &str, key: &str) -> Option<String> {
    stderr.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        (f.next() == Some(key)).then(|| f.next().unwrap_or("").to_string())
    })
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A guest that says "ready" on `fd` and then spins forever.
fn ready_then_spin(fd: u32) -> Asm {
    let mut a = Asm::new();
    a.write(fd, b"ready\n").spin();
    a
}

/// A guest that says "ready" on stderr, blocks reading stdin and exits 7 if the read
/// returns.
fn ready_then_read() -> Asm {
    let mut a = Asm::new();
    let buf = a.bytes(&[0; 64]);
    a.write(2, b"ready\n").li(A0, 0).li(A1, buf).li(A2, 64).sys(63).exit(7);
    a
}

// ---------------------------------------------------------------------------------------
// 1. A non-blocking stdout pipe: partial writes are reported as partial counts.

#[test]
fn item1_nonblocking_stdout_gets_partial_counts() {
    const LEN: u32 = 256 * 1024;
    let pattern: Vec<u8> = (0..LEN).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut a = Asm::new();
    let buf = a.bytes(&pattern);
    a.li(S0, buf).li(S1, LEN);
    let top = a.here();
    a.emit([addi(A0, ZERO, 1), addi(A1, S0, 0), addi(A2, S1, 0)]).sys(64);
    a.emit([addi(T0, ZERO, -EAGAIN)]);
    a.branch_back(BEQ, A0, T0, top); // -EAGAIN: try again
    let fail = a.branch_fwd();
    a.emit([add(S0, S0, A0), sub(S1, S1, A0)]);
    a.branch_back(BNE, S1, ZERO, top);
    a.exit(0);
    a.land(fail, BLT, A0, ZERO).exit_neg_a0();
    let dir = TempDir::new();
    let prog = a.file(&dir);
    for backend in BACKENDS {
        let (mut reader, writer) = pipe(true);
        let mut c = rvdbt(backend, &[], &prog);
        c.stdout(writer);
        let mut p = Proc::spawn(c);
        let (out, _) = read_until(&mut reader, |b| b.len() > LEN as usize);
        let status = p.wait(backend);
        let mut out = out;
        out.extend(read_to_end(&mut reader));
        assert_eq!(out.len(), LEN as usize, "{backend}: bytes on the pipe (status {status:?})");
        assert!(out == pattern, "{backend}: the bytes, in order");
        assert_eq!(status.code(), Some(0), "{backend}");
    }
}

// ---------------------------------------------------------------------------------------
// 2. rvdbt's own messages on a closed stderr pipe: no panic, the guest's status.

#[test]
fn item2_own_messages_on_a_broken_stderr_keep_the_exit_status() {
    let mut fault = Asm::new();
    fault.emit([addi(A0, ZERO, 1), EBREAK]);
    let mut warn = Asm::new();
    warn.sys(999).exit_neg_a0();
    let mut counted = Asm::new();
    counted.exit(7);
    let cases: [(&str, &Asm, &[&str], i32); 5] = [
        ("fault diagnostic", &fault, &[], 133),
        ("syscall warning", &warn, &[], 38),
        ("--stats", &counted, &["--stats"], 7),
        ("--print-code", &counted, &["--print-code", "--compile-after", "0"], 7),
        ("bad command line", &counted, &["--frobnicate"], 2),
    ];
    let dir = TempDir::new();
    for backend in BACKENDS {
        for (what, prog, opts, want) in cases {
            let path = prog.file(&dir);
            let (reader, writer) = pipe(false);
            drop(reader);
            let mut c = rvdbt(backend, opts, &path);
            c.stderr(writer);
            let mut p = Proc::spawn(c);
            let status = p.wait(what);
            assert_eq!(status.signal(), None, "{backend}, {what}: killed by a signal");
            assert_eq!(status.code(), Some(want), "{backend}, {what}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// 3. SIGSEGV, SIGBUS and SIGPIPE sent to rvdbt kill it, as they kill a native process.

#[test]
fn item3_sent_sigsegv_sigbus_and_sigpipe_kill() {
    let dir = TempDir::new();
    let prog = ready_then_spin(2).file(&dir);
    for backend in BACKENDS {
        for (mode, sig) in [
            ("adaptive", libc::SIGSEGV),
            ("fastmem", libc::SIGSEGV),
            ("adaptive", libc::SIGBUS),
            ("adaptive", libc::SIGPIPE),
        ] {
            let mut c = rvdbt(backend, &["--mem", mode], &prog);
            c.stderr(Stdio::piped());
            let mut p = Proc::spawn(c);
            wait_for(&mut p.stderr(), b"ready\n");
            p.signal(sig);
            let status = p.wait(backend);
            assert_eq!(status.signal(), Some(sig), "{backend} --mem {mode}: {status:?}");
        }
    }
}

#[test]
fn item3_queued_sigsegv_with_an_address_kills() {
    let dir = TempDir::new();
    let prog = ready_then_spin(2).file(&dir);
    for backend in BACKENDS {
        let mut c = rvdbt(backend, &[], &prog);
        c.stderr(Stdio::piped());
        let mut p = Proc::spawn(c);
        wait_for(&mut p.stderr(), b"ready\n");
        // SI_QUEUE with an address-like payload where a fault's si_addr would be.
        // SAFETY: a zeroed siginfo filled in field by field, sent to our child.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            info.si_signo = libc::SIGSEGV;
            info.si_code = -1; // SI_QUEUE
            let raw = (&mut info as *mut libc::siginfo_t).cast::<u64>();
            *raw.add(2) = 0x7f00_0000_1000;
            let rc = libc::syscall(libc::SYS_rt_sigqueueinfo, p.pid(), libc::SIGSEGV, &info);
            assert_eq!(rc, 0, "rt_sigqueueinfo");
        }
        let status = p.wait(backend);
        assert_eq!(status.signal(), Some(libc::SIGSEGV), "{backend}: {status:?}");
    }
}

// ---------------------------------------------------------------------------------------
// 4. A guest writing to a pipe whose reader went away dies of SIGPIPE.

/// `for (;;) if (write(1, "y\n", 2) < 0) exit(-a0);`
fn yes() -> Asm {
    let mut a = Asm::new();
    let y = a.bytes(b"y\n");
    let top = a.here();
    a.li(A0, 1).li(A1, y).li(A2, 2).sys(64);
    let fail = a.branch_fwd();
    a.branch_back(BEQ, ZERO, ZERO, top);
    a.land(fail, BLT, A0, ZERO).exit_neg_a0();
    a
}

#[test]
fn item4_broken_stdout_pipe_kills_with_sigpipe() {
    let dir = TempDir::new();
    let prog = yes().file(&dir);
    for backend in BACKENDS {
        let mut c = rvdbt(backend, &[], &prog);
        c.stdout(Stdio::piped());
        let mut p = Proc::spawn(c);
        let mut out = p.stdout();
        let (got, _) = read_until(&mut out, |b| b.len() >= 100);
        assert!(got.len() >= 100 && got.starts_with(b"y\ny\n"), "{backend}: {:?}", text(&got));
        drop(out);
        let status = p.wait(backend);
        assert_eq!(status.signal(), Some(libc::SIGPIPE), "{backend}: {status:?}");
    }
}

#[test]
fn item4_inherited_ignored_sigpipe_gives_the_guest_epipe() {
    let dir = TempDir::new();
    let prog = yes().file(&dir);
    for backend in BACKENDS {
        let mut c = rvdbt(backend, &[], &prog);
        c.stdout(Stdio::piped());
        pre_exec(&mut c, || {
            // SAFETY: setting a disposition in the child before exec.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        });
        let mut p = Proc::spawn(c);
        let mut out = p.stdout();
        read_until(&mut out, |b| b.len() >= 100);
        drop(out);
        let status = p.wait(backend);
        assert_eq!(status.code(), Some(libc::EPIPE), "{backend}: {status:?}");
    }
}

// ---------------------------------------------------------------------------------------
// 5. SIGINT/SIGTERM end a run that blocks in a syscall, with 130/143 and statistics.

#[test]
fn item5_sigint_and_sigterm_interrupt_a_blocking_read() {
    let dir = TempDir::new();
    let prog = ready_then_read().file(&dir);
    for backend in BACKENDS {
        for sig in [libc::SIGINT, libc::SIGTERM] {
            let mut c = rvdbt(backend, &["--stats"], &prog);
            c.stdin(Stdio::piped()).stderr(Stdio::piped());
            let mut p = Proc::spawn(c);
            let _stdin = p.stdin(); // open, never written: the read blocks
            let mut err = p.stderr();
            wait_for(&mut err, b"ready\n");
            p.signal(sig);
            let status = p.wait(backend);
            let err = text(&read_to_end(&mut err));
            assert_eq!(status.code(), Some(128 + sig), "{backend}, signal {sig}: {err}");
            assert!(err.contains(&format!("interrupted by signal {sig}")), "{backend}: {err}");
            assert_eq!(stat(&err, "exit_code"), Some((128 + sig).to_string()), "{backend}: statistics\n{err}");
        }
    }
}

#[test]
fn item5_sigterm_interrupts_openat_of_a_fifo() {
    let dir = TempDir::new();
    let fifo = dir.path("fifo");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a path we own.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let mut a = Asm::new();
    let name = a.bytes(b"fifo\0");
    a.write(2, b"ready\n").li(A0, AT_FDCWD).li(A1, name).li(A2, 0).li(A3, 0).sys(56).exit(5);
    let prog = a.file(&dir);
    for backend in BACKENDS {
        let mut c = rvdbt(backend, &["--dir", dir.str()], &prog);
        c.stderr(Stdio::piped());
        let mut p = Proc::spawn(c);
        let mut err = p.stderr();
        wait_for(&mut err, b"ready\n");
        p.signal(libc::SIGTERM);
        let status = p.wait(backend);
        assert_eq!(status.code(), Some(143), "{backend}: {}", text(&read_to_end(&mut err)));
    }
}

#[test]
fn timeout_ends_a_spinning_or_blocked_run_with_124_and_statistics() {
    let dir = TempDir::new();
    let spin = ready_then_spin(1).file(&dir);
    let block = TempDir::new();
    let read = ready_then_read().file(&block);
    for backend in BACKENDS {
        for (what, prog) in [("spinning", &spin), ("blocked in read", &read)] {
            let mut c = rvdbt(backend, &["--timeout", "0.2", "--stats"], prog);
            c.stdin(Stdio::piped()).stderr(Stdio::piped());
            let start = Instant::now();
            let mut p = Proc::spawn(c);
            let _stdin = p.stdin();
            let mut err = p.stderr();
            let status = p.wait(what);
            let err = text(&read_to_end(&mut err));
            assert!(start.elapsed() >= Duration::from_millis(200), "{backend}, {what}: too early");
            assert_eq!(status.code(), Some(124), "{backend}, {what}: {err}");
            assert!(err.contains("--timeout"), "{backend}, {what}: {err}");
            assert_eq!(stat(&err, "exit_code"), Some("124".into()), "{backend}, {what}: {err}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// 6. Warnings are counted, not kept: bounded memory and output for a warning loop.

/// `for (i = n; i; i--) syscall 999; exit(0)`.
fn unknown_syscall_loop(n: u32) -> Asm {
    let mut a = Asm::new();
    a.li(S1, n);
    let top = a.here();
    a.sys(999).emit([addi(S1, S1, -1)]);
    a.branch_back(BNE, S1, ZERO, top);
    a.exit(0);
    a
}

#[test]
fn item6_repeated_warnings_are_counted_not_kept() {
    const N: u32 = 200_000;
    let prog = unknown_syscall_loop(N);
    for backend in common::backends() {
        let mut m = machine(&prog.elf(), &[], b"");
        assert_eq!(run_on(&mut m, backend, None), rvdbt::machine::Exit::Exited(0));
        assert_eq!(m.warnings.len(), rvdbt::machine::MAX_WARNINGS, "{backend:?}");
        assert_eq!(m.stats.warnings, u64::from(N), "{backend:?}");
        assert_eq!(m.stats.unknown_syscalls, u64::from(N), "{backend:?}");
    }
    let dir = TempDir::new();
    let path = prog.file(&dir);
    for backend in BACKENDS {
        let mut c = rvdbt(backend, &["--stats"], &path);
        c.stderr(Stdio::piped());
        let mut p = Proc::spawn(c);
        let err = text(&read_to_end(&mut p.stderr()));
        assert_eq!(p.wait(backend).code(), Some(0));
        let warnings = err.lines().filter(|l| l.starts_with("rvdbt: warning:")).count();
        assert_eq!(warnings, rvdbt::machine::MAX_WARNINGS + 1, "{backend}: printed warnings");
        assert!(err.contains("the rest are only counted"), "{backend}");
        assert_eq!(stat(&err, "unknown_syscalls"), Some(N.to_string()), "{backend}");
        assert_eq!(stat(&err, "warnings"), Some(N.to_string()), "{backend}");
    }
}

// ---------------------------------------------------------------------------------------
// 7. A 2 GiB write costs no host memory: it goes straight from guest memory.

#[test]
fn item7_huge_write_needs_no_host_copy() {
    const LEN: u32 = 0x7f00_0000; // 2032 MiB of brk heap, written in one call
    let mut a = Asm::new();
    a.li(A0, 0).sys(214).emit([addi(S0, A0, 0)]); // s0 = brk(0)
    a.li(T0, LEN).emit([add(A0, S0, T0)]).sys(214); // brk(s0 + LEN)
    a.emit([addi(A1, S0, 0)]).li(A2, LEN).li(A0, 1).sys(64); // write(1, s0, LEN)
    a.li(T0, LEN);
    let ok = a.branch_fwd();
    a.exit(1);
    a.land(ok, BEQ, A0, T0).exit(0);
    let dir = TempDir::new();
    let prog = a.file(&dir);
    for backend in BACKENDS {
        let mut c = rvdbt(backend, &["--no-devices"], &prog);
        c.stdout(std::fs::OpenOptions::new().write(true).open("/dev/null").expect("/dev/null")).stderr(Stdio::piped());
        pre_exec(&mut c, || set_limit(libc::RLIMIT_AS, 6_000_000 * 1024)); // ulimit -v 6000000
        let mut p = Proc::spawn(c);
        let err = text(&read_to_end(&mut p.stderr()));
        let status = p.wait(backend);
        assert_eq!(status.code(), Some(0), "{backend}: {status:?} {err}");
    }
}

// ---------------------------------------------------------------------------------------
// 8. openat with a mode but without O_CREAT opens the file, as openat does on Linux.

#[test]
fn item8_openat_ignores_the_mode_without_o_creat() {
    let dir = TempDir::new();
    dir.file("in.txt", b"data\n");
    let mut a = Asm::new();
    let name = a.bytes(b"in.txt\0");
    a.li(A0, AT_FDCWD).li(A1, name).li(A2, 0).li(A3, 0o644).sys(56);
    let fail = a.branch_fwd();
    a.sys(93); // exit(fd)
    a.land(fail, BLT, A0, ZERO).exit_neg_a0();
    let prog = a.file(&dir);
    for backend in BACKENDS {
        let mut c = rvdbt(backend, &["--dir", dir.str()], &prog);
        c.stderr(Stdio::piped());
        let mut p = Proc::spawn(c);
        let err = text(&read_to_end(&mut p.stderr()));
        assert_eq!(p.wait(backend).code(), Some(3), "{backend}: the first free fd; {err}");
    }
}

// ---------------------------------------------------------------------------------------
// 9. Output the guest wrote is out of rvdbt when a signal kills it.

#[test]
fn item9_partial_line_survives_a_fatal_signal() {
    let mut a = Asm::new();
    let buf = a.bytes(&[0; 16]);
    a.write(1, b"partial").write(2, b"x").li(A0, 0).li(A1, buf).li(A2, 16).sys(63).exit(0);
    let dir = TempDir::new();
    let prog = a.file(&dir);
    for backend in BACKENDS {
        for sig in [libc::SIGHUP, libc::SIGUSR1, libc::SIGALRM, libc::SIGQUIT] {
            let mut c = rvdbt(backend, &[], &prog);
            c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
            pre_exec(&mut c, || set_limit(libc::RLIMIT_CORE, 0));
            let mut p = Proc::spawn(c);
            let _stdin = p.stdin();
            let mut out = p.stdout();
            wait_for(&mut p.stderr(), b"x");
            p.signal(sig);
            let status = p.wait(backend);
            assert_eq!(status.signal(), Some(sig), "{backend}: {status:?}");
            assert_eq!(text(&read_to_end(&mut out)), "partial", "{backend}, signal {sig}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// 10. stdout on /dev/full or closed: the guest gets ENOSPC / EBADF.

#[test]
fn item10_full_or_closed_stdout_reports_the_error() {
    let mut a = Asm::new();
    a.write(1, b"x");
    let fail = a.branch_fwd();
    a.exit(0);
    a.land(fail, BLT, A0, ZERO).exit_neg_a0();
    let dir = TempDir::new();
    let prog = a.file(&dir);
    for backend in BACKENDS {
        let mut c = rvdbt(backend, &[], &prog);
        c.stdout(std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full"));
        assert_eq!(Proc::spawn(c).wait(backend).code(), Some(libc::ENOSPC), "{backend}: /dev/full");
        let mut c = rvdbt(backend, &[], &prog);
        pre_exec(&mut c, || {
            // SAFETY: closing stdout in the child before exec (`>&-`).
            unsafe { libc::close(1) };
        });
        assert_eq!(Proc::spawn(c).wait(backend).code(), Some(libc::EBADF), "{backend}: closed stdout");
    }
}

// ---------------------------------------------------------------------------------------
// 11. stdout and stderr into one pipe interleave exactly as written.

#[test]
fn item11_stdout_and_stderr_interleave_in_write_order() {
    let mut a = Asm::new();
    a.write(1, b"a").write(2, b"b\n").write(1, b"c\n").exit(0);
    let dir = TempDir::new();
    let prog = a.file(&dir);
    for backend in BACKENDS {
        let (mut reader, writer) = pipe(false);
        let mut c = rvdbt(backend, &[], &prog);
        c.stdout(writer.try_clone().expect("dup")).stderr(writer);
        let mut p = Proc::spawn(c);
        let status = p.wait(backend);
        assert_eq!(status.code(), Some(0));
        assert_eq!(text(&read_to_end(&mut reader)), "ab\nc\n", "{backend}");
    }
}

// ---------------------------------------------------------------------------------------
// 12. Descriptor exhaustion in the guest does not stop --stats-json or change the status.

#[test]
fn item12_stats_json_is_written_when_the_guest_used_every_descriptor() {
    let dir = TempDir::new();
    dir.file("in.txt", b"data\n");
    let mut a = Asm::new();
    let name = a.bytes(b"in.txt\0");
    let top = a.here();
    a.li(A0, AT_FDCWD).li(A1, name).li(A2, 0).li(A3, 0).sys(56);
    let fail = a.branch_fwd();
    a.branch_back(BEQ, ZERO, ZERO, top);
    a.land(fail, BLT, A0, ZERO).exit_neg_a0();
    let prog = a.file(&dir);
    for backend in BACKENDS {
        let json = dir.path(&format!("stats-{backend}.json"));
        let mut c = rvdbt(backend, &["--dir", dir.str(), "--stats-json", json.to_str().unwrap()], &prog);
        c.stderr(Stdio::piped());
        pre_exec(&mut c, || set_limit(libc::RLIMIT_NOFILE, 64)); // ulimit -n 64
        let mut p = Proc::spawn(c);
        let err = text(&read_to_end(&mut p.stderr()));
        assert_eq!(p.wait(backend).code(), Some(libc::EMFILE), "{backend}: {err}");
        let stats = std::fs::read_to_string(&json).expect("stats file");
        assert!(stats.contains("\"exit_code\": 24"), "{backend}: {stats}");
    }
}

// ---------------------------------------------------------------------------------------
// 13. Smaller differences from qemu-riscv32.

#[test]
fn item13_close_of_standard_streams_closes_them() {
    // close(1) = 0; write(1) = -EBADF; close(1) = -EBADF; close(0) = 0; read(0) = -EBADF;
    // the five results go to stderr as words.
    let mut a = Asm::new();
    let res = a.bytes(&[0; 20]);
    let buf = a.bytes(&[0; 4]);
    a.li(S0, res);
    a.li(A0, 1).sys(57).emit([sw(S0, A0, 0)]);
    a.write(1, b"x").emit([sw(S0, A0, 4)]);
    a.li(A0, 1).sys(57).emit([sw(S0, A0, 8)]);
    a.li(A0, 0).sys(57).emit([sw(S0, A0, 12)]);
    a.li(A0, 0).li(A1, buf).li(A2, 1).sys(63).emit([sw(S0, A0, 16)]);
    a.li(A0, 2).li(A1, res).li(A2, 20).sys(64).exit(0);
    let dir = TempDir::new();
    let prog = a.file(&dir);
    for backend in BACKENDS {
        let mut c = rvdbt(backend, &[], &prog);
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut p = Proc::spawn(c);
        let _stdin = p.stdin();
        let err = read_to_end(&mut p.stderr());
        assert_eq!(p.wait(backend).code(), Some(0));
        let words: Vec<i32> = err.chunks_exact(4).map(|w| i32::from_le_bytes(w.try_into().unwrap())).collect();
        assert_eq!(words, [0, -libc::EBADF, -libc::EBADF, 0, -libc::EBADF], "{backend}");
        assert_eq!(read_to_end(&mut p.stdout()), b"", "{backend}");
    }
}

#[test]
fn item13_closing_stdout_gives_the_reader_end_of_file_at_once() {
    let mut a = Asm::new();
    let buf = a.bytes(&[0; 4]);
    a.write(1, b"before close\n").li(A0, 1).sys(57);
    a.write(2, b"closed\n").li(A0, 0).li(A1, buf).li(A2, 1).sys(63).exit(0);
    let dir = TempDir::new();
    let prog = a.file(&dir);
    for backend in BACKENDS {
        let mut c = rvdbt(backend, &[], &prog);
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut p = Proc::spawn(c);
        let stdin = p.stdin();
        let mut err = p.stderr();
        wait_for(&mut err, b"closed\n");
        // rvdbt still runs (blocked in read), yet stdout is at end of file.
        assert_eq!(read_to_end(&mut p.stdout()), b"before close\n", "{backend}");
        assert!(p.0.try_wait().unwrap().is_none(), "{backend}: still running");
        drop(stdin);
        assert_eq!(p.wait(backend).code(), Some(0), "{backend}");
    }
}

#[test]
fn item13_open_after_close_reuses_the_lowest_descriptor() {
    let dir = TempDir::new();
    let mut a = Asm::new();
    let name = a.bytes(b"out.txt\0");
    a.li(A0, 1).sys(57);
    a.li(A0, AT_FDCWD).li(A1, name).li(A2, 0o1101).li(A3, 0o644).sys(56).emit([addi(S2, A0, 0)]);
    a.write(1, b"to the file\n");
    a.emit([addi(A0, S2, 0)]).sys(93);
    let prog = a.file(&dir);
    for backend in BACKENDS {
        let mut c = rvdbt(backend, &["--dir", dir.str()], &prog);
        c.stdout(Stdio::piped());
        let mut p = Proc::spawn(c);
        assert_eq!(read_to_end(&mut p.stdout()), b"", "{backend}");
        assert_eq!(p.wait(backend).code(), Some(1), "{backend}: openat returned fd 1");
        assert_eq!(std::fs::read(dir.path("out.txt")).unwrap(), b"to the file\n", "{backend}");
    }
}

#[test]
fn item13_rv32_has_only_the_64_bit_time_calls_and_getpid_is_the_pid() {
    let mut a = Asm::new();
    let res = a.bytes(&[0; 16]);
    let ts = a.bytes(&[0; 16]);
    a.li(S0, res);
    a.li(A0, 1).li(A1, ts).sys(113).emit([sw(S0, A0, 0)]); // clock_gettime (time32)
    a.li(A0, ts).li(A1, 0).sys(169).emit([sw(S0, A0, 4)]); // gettimeofday (time32)
    a.li(A0, 1).li(A1, ts).sys(403).emit([sw(S0, A0, 8)]); // clock_gettime64
    a.sys(172).emit([sw(S0, A0, 12)]); // getpid
    a.li(A0, 1).li(A1, res).li(A2, 16).sys(64).exit(0);
    let dir = TempDir::new();
    let prog = a.file(&dir);
    for backend in BACKENDS {
        let mut c = rvdbt(backend, &[], &prog);
        c.stdout(Stdio::piped());
        let mut p = Proc::spawn(c);
        let out = read_to_end(&mut p.stdout());
        assert_eq!(p.wait(backend).code(), Some(0));
        let words: Vec<i32> = out.chunks_exact(4).map(|w| i32::from_le_bytes(w.try_into().unwrap())).collect();
        assert_eq!(words[..3], [-libc::ENOSYS, -libc::ENOSYS, 0], "{backend}");
        assert_eq!(words[3], p.pid(), "{backend}: getpid");
    }
}

#[test]
fn item13_at_phdr_is_reported_as_qemu_does() {
    // Walks argv and envp to auxv, writes AT_PHDR's value. The test ELF's program
    // headers (at file offset 52) are not in its only segment (file offset 0x1000 at
    // 0x10000); qemu-riscv32 reports 0x10034, the segment's page plus e_phoff.
    let mut a = Asm::new();
    a.emit([lw(T1, SP, 0), addi(T0, SP, 4), slli(T1, T1, 2), add(T0, T0, T1), addi(T0, T0, 4)]);
    let envp = a.here();
    a.emit([lw(T1, T0, 0), addi(T0, T0, 4)]);
    a.branch_back(BNE, T1, ZERO, envp);
    let auxv = a.here();
    a.emit([lw(T1, T0, 0), addi(T2, ZERO, 3)]);
    let found = a.branch_fwd();
    a.emit([addi(T0, T0, 8)]);
    a.branch_back(BEQ, ZERO, ZERO, auxv);
    a.land(found, BEQ, T1, T2).emit([addi(A1, T0, 4)]).li(A0, 1).li(A2, 4).sys(64).exit(0);
    let dir = TempDir::new();
    let prog = a.file(&dir);
    for backend in BACKENDS {
        let mut c = rvdbt(backend, &["--env", "A=1"], &prog);
        c.stdout(Stdio::piped());
        let mut p = Proc::spawn(c);
        let out = read_to_end(&mut p.stdout());
        assert_eq!(p.wait(backend).code(), Some(0));
        assert_eq!(out, 0x10034u32.to_le_bytes(), "{backend}");
    }
}

#[test]
fn item13_stack_size_takes_a_g_suffix() {
    let bottom = 0x7fff_0000u32 - (1 << 30);
    let mut a = Asm::new();
    a.li(T0, bottom).emit([sw(T0, ZERO, 0), sw(T0, ZERO, -4)]).exit(0);
    let dir = TempDir::new();
    let prog = a.file(&dir);
    for backend in BACKENDS {
        let mut c = rvdbt(backend, &["--stack-size", "1G"], &prog);
        c.stderr(Stdio::piped());
        let mut p = Proc::spawn(c);
        let err = text(&read_to_end(&mut p.stderr()));
        assert_eq!(p.wait(backend).code(), Some(139), "{backend}: {err}");
        assert!(err.contains("address 0x3ffefffc") && err.contains("stack overflow"), "{backend}: {err}");
    }
}

// ---------------------------------------------------------------------------------------
// Limits: --max-memory and the stack guard.

#[test]
fn max_memory_caps_brk() {
    // brk(cur + 8 MiB) works; brk(cur + 16 MiB) then fails (returns the old break).
    let mut a = Asm::new();
    a.li(A0, 0).sys(214).emit([addi(S0, A0, 0)]);
    a.li(T0, 8 << 20).emit([add(S1, S0, T0), addi(A0, S1, 0)]).sys(214);
    let grew = a.branch_fwd();
    a.exit(2);
    a.land(grew, BEQ, A0, S1);
    a.li(T0, 16 << 20).emit([add(A0, S0, T0)]).sys(214);
    let refused = a.branch_fwd();
    a.exit(3);
    a.land(refused, BEQ, A0, S1).exit(0);
    let dir = TempDir::new();
    let prog = a.file(&dir);
    for backend in BACKENDS {
        let run = |opts: &[&str]| {
            let mut opts = opts.to_vec();
            opts.extend(["--no-devices", "--stack-size", "64K"]);
            Proc::spawn(rvdbt(backend, &opts, &prog)).wait(backend).code()
        };
        assert_eq!(run(&["--max-memory", "16"]), Some(0), "{backend}");
        assert_eq!(run(&[]), Some(3), "{backend}: without a cap the second brk works");
    }
    let mut c = rvdbt("interp", &["--max-memory", "1"], &prog);
    c.stderr(Stdio::piped());
    let mut p = Proc::spawn(c);
    let err = text(&read_to_end(&mut p.stderr()));
    assert_eq!(p.wait("load").code(), Some(2), "{err}");
    assert!(err.contains("more than --max-memory"), "{err}");
}

#[test]
fn stack_overflow_is_a_guest_fault_naming_the_stack() {
    // f: sp -= 16; sw ra, 12(sp); jal ra, f — endless recursion.
    let mut a = Asm::new();
    a.emit([addi(SP, SP, -16), sw(SP, RA, 12), j_type(RA, -8)]);
    let dir = TempDir::new();
    let prog = a.file(&dir);
    for backend in BACKENDS {
        let mut c = rvdbt(backend, &["--stack-size", "64K"], &prog);
        c.stderr(Stdio::piped());
        let mut p = Proc::spawn(c);
        let err = text(&read_to_end(&mut p.stderr()));
        assert_eq!(p.wait(backend).code(), Some(139), "{backend}: {err}");
        assert!(
            err.contains("store access fault") && err.contains("stack overflow") && err.contains("64 KiB stack"),
            "{backend}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{backend}: one line\n{err}");
    }
}

#[test]
fn writev_is_one_gathered_write() {
    let mut a = Asm::new();
    let one = a.bytes(b"gather");
    let two = a.bytes(b"ed\n");
    let mut iov = Vec::new();
    for (base, len) in [(one, 6u32), (0, 0), (two, 3)] {
        iov.extend(base.to_le_bytes());
        iov.extend(len.to_le_bytes());
    }
    let table = a.bytes(&iov);
    a.li(A0, 1).li(A1, table).li(A2, 3).sys(66).sys(93); // exit(writev(...))
    let dir = TempDir::new();
    let prog = a.file(&dir);
    for backend in BACKENDS {
        let mut c = rvdbt(backend, &[], &prog);
        c.stdout(Stdio::piped());
        let mut p = Proc::spawn(c);
        assert_eq!(read_to_end(&mut p.stdout()), b"gathered\n", "{backend}");
        assert_eq!(p.wait(backend).code(), Some(9), "{backend}");
    }
}
