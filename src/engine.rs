//! Embedding rvdbt: an [`Engine`] for the process and any number of [`Guest`]s, each a
//! RISC-V program with its own memory, translation cache and streams, run on any thread.
//!
//! This module owns the embedding API; it is a thin layer over [`crate::machine`] (the
//! guest machine), [`crate::loader`], [`crate::streams`] and [`crate::runner`] (a run on
//! the chosen backend), which the `rvdbt` command uses directly.
//!
//! ```
//! use rvdbt::{Engine, Exit, GuestOptions};
//!
//! let engine = Engine::new()?;
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/guest-programs/bin/hello.elf");
//! let mut guest = engine.guest_from_path(path, GuestOptions::default())?;
//! let outcome = guest.run()?;
//! assert_eq!(outcome.exit, Exit::Exited(0));
//! assert_eq!(guest.stdout(), b"Hello, world!\n");
//! # Ok::<(), rvdbt::EngineError>(())
//! ```
//!
//! What is process-wide, and so belongs to the [`Engine`]: the SIGSEGV/SIGBUS handler
//! that repairs faulting inline accesses ([`crate::jit::fault`]), the registry of code
//! chunks that handler consults (it grows as chunks are mapped, see
//! [`crate::jit::codemem`]), the allocator of code memory near the executable (shared by
//! every guest's cache), and the signal that interrupts a guest blocked in a host call
//! ([`crate::host::wake_signal`]). Everything else is per guest: the 4 GiB arena, the
//! translation cache and its compile thread, the streams, the stop flag. The handler's
//! per-run state is per thread, so guests may run on as many threads at once as the
//! host likes; a guest moves between threads between runs (`Guest: Send`).
//!
//! A guest never sees SIGINT or SIGTERM: those stay the embedding program's. A run ends
//! when the guest exits or faults, at `max_insns`, at the [`GuestOptions::timeout`], or
//! when its [`StopHandle`] is used, also while the guest blocks in a host `read`.
//!
//! The translation cache is never flushed while translated code runs, by construction:
//! it is created by [`crate::runner::run`] for one run and lent as `&mut CodeCache` to
//! the dispatcher, the only caller of its flush. Translated code and the helpers it
//! calls get a `*mut Cpu`, which leads to the [`Machine`] and nothing else; the machine
//! holds no handle to the cache (checked at compile time: the machine is `Send`, the
//! cache is not) and no global one exists, so what changes code under the translations
//! (`fence.i`, `munmap`, `riscv_flush_icache`) only sets a flag that the dispatcher acts
//! on between two entries into translated code.

use crate::host;
use crate::jit::{JitConfig, JitError};
use crate::loader::LoadError;
use crate::machine::{EcallHandler, Exit, Machine, MachineConfig};
use crate::runner::{self, Backend, RunOptions, RunReport};
use crate::streams::Io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Why a guest could not be made or run (never a guest fault: that is an [`Exit`]).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot set up rvdbt in this process: {0}")]
    Setup(std::io::Error),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot load the program: {0}")]
    Load(#[from] LoadError),
    #[error("cannot grant {path}: {source}")]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("invalid guest options: {0}")]
    Options(String),
    #[error("cannot start the timeout timer: {0}")]
    Timer(std::io::Error),
    #[error("this guest has already run")]
    AlreadyRan,
    #[error(transparent)]
    Jit(#[from] JitError),
}

/// The process-wide part of rvdbt (see the module documentation). Cheap to make and to
/// clone; every handle is the same engine.
#[derive(Clone, Debug)]
pub struct Engine {
    _process_wide: (),
}

impl Engine {
    /// Installs what rvdbt needs in the process (once; later calls only check it).
    pub fn new() -> Result<Engine, EngineError> {
        crate::jit::fault::install();
        host::install_wake_signal().map_err(EngineError::Setup)?;
        Ok(Engine { _process_wide: () })
    }

    /// A guest running the static RV32 ELF executable `elf`.
    pub fn guest(&self, elf: &[u8], options: GuestOptions) -> Result<Guest, EngineError> {
        Guest::new(elf, "guest", options)
    }

    /// A guest running the ELF file at `path` (its `argv[0]` unless `options.args` says).
    pub fn guest_from_path(&self, path: impl AsRef<Path>, options: GuestOptions) -> Result<Guest, EngineError> {
        let path = path.as_ref();
        let elf = std::fs::read(path).map_err(|source| EngineError::Read { path: path.into(), source })?;
        Guest::new(&elf, &path.to_string_lossy(), options)
    }
}

/// Where a guest's stdin comes from.
#[derive(Debug, Default)]
pub enum Input {
    /// End of file at once.
    #[default]
    Empty,
    /// These bytes, then end of file.
    Buffer(Vec<u8>),
    /// A host file or pipe, which the guest owns from now on (`close` closes it).
    Host(OwnedFd),
}

/// Where a guest's stdout or stderr goes.
#[derive(Debug, Default)]
pub enum Output {
    /// Collected in memory: [`Guest::stdout`], [`Guest::stderr`].
    #[default]
    Buffer,
    /// A host file or pipe, written without buffering; the guest owns it from now on.
    /// A write to a pipe without a reader raises SIGPIPE, as for a native process (Rust
    /// programs ignore it, and then the guest gets `-EPIPE`).
    Host(OwnedFd),
}

/// How a guest is built and run.
pub struct GuestOptions {
    /// `argv`, program name first (empty: the path, or `guest` for bytes).
    pub args: Vec<String>,
    /// The environment, `KEY=VALUE` each (the host's is not passed).
    pub env: Vec<String>,
    /// The engine that runs guest code (default: tiered).
    pub backend: Backend,
    /// Translator settings (memory mode, code cache size, tiers, ...).
    pub jit: JitConfig,
    /// Machine settings (stack size, memory limit, ISA, devices, strict syscalls).
    pub machine: MachineConfig,
    /// Stop after this many guest instructions ([`Exit::InsnLimit`]).
    pub max_insns: Option<u64>,
    /// Stop after this much wall time ([`Exit::Timeout`]).
    pub timeout: Option<Duration>,
    /// Guest descriptor 0 (default: empty).
    pub stdin: Input,
    /// Guest descriptor 1 (default: a buffer).
    pub stdout: Output,
    /// Guest descriptor 2 (default: a buffer).
    pub stderr: Output,
    /// The directory the guest may open files beneath (its working directory).
    pub dir: Option<PathBuf>,
    /// Answers syscalls rvdbt does not know (see [`crate::machine::HostCall`]).
    pub ecall_handler: Option<EcallHandler>,
}

impl Default for GuestOptions {
    /// The `rvdbt run` defaults, with in-memory streams and an empty stdin.
    fn default() -> Self {
        GuestOptions {
            args: Vec::new(),
            env: Vec::new(),
            backend: Backend::Tiered,
            jit: JitConfig::default(),
            machine: MachineConfig::default(),
            max_insns: None,
            timeout: None,
            stdin: Input::Empty,
            stdout: Output::Buffer,
            stderr: Output::Buffer,
            dir: None,
            ecall_handler: None,
        }
    }
}

/// Stops a guest's run from any thread: at the next block boundary or syscall, or at
/// once when the guest blocks in a host call. The run ends with
/// `Exit::Interrupted(SIGTERM)`, as a SIGTERM ends an `rvdbt run`.
#[derive(Clone, Debug)]
pub struct StopHandle {
    /// The run's stop flag: a signal number, or [`host::TIMEOUT_STOP`].
    flag: Arc<AtomicUsize>,
    /// The thread running the guest now (0: none).
    run_tid: Arc<AtomicI32>,
}

impl StopHandle {
    /// Stops the run; a guest that has not started yet stops before its first
    /// instruction. The first reason recorded (this, or the timeout) wins.
    pub fn stop(&self) {
        self.stop_with(libc::SIGTERM as usize);
    }

    fn stop_with(&self, reason: usize) {
        let _ = self.flag.compare_exchange(0, reason, Ordering::SeqCst, Ordering::SeqCst);
        // Paired with `Guest::run`: it publishes its thread before it first reads the
        // flag, so either it sees the flag or this sees its thread.
        let tid = self.run_tid.load(Ordering::SeqCst);
        if tid != 0 {
            host::wake_thread(tid);
        }
    }
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Exited, faulted, or stopped (instruction limit, timeout, stop handle).
    pub exit: Exit,
    /// The exit status `rvdbt run` would give (see [`Exit::status`]).
    pub status: i32,
    /// Guest instructions retired.
    pub retired: u64,
    /// Wall time of the run in nanoseconds.
    pub wall_ns: u64,
    /// For a guest fault, the one-line diagnostic `rvdbt run` prints (pc, address,
    /// the instruction).
    pub diagnostic: Option<String>,
}

/// One guest program: its machine (memory, registers, streams) and how to run it.
pub struct Guest {
    machine: Machine,
    run: RunOptions,
    timeout: Option<Duration>,
    stop: StopHandle,
    report: Option<RunReport>,
}

/// Guests move between threads (each run uses the thread it is called on), so the
/// machine is `Send`, while the translation cache is not (it holds raw pointers into
/// its code and records): hence nothing reachable from a machine, which is all that
/// translated code and helpers reach, owns or points to a cache (a raw pointer, a
/// reference, a `Box` or an `Arc` of one would make the machine `!Send` too). These
/// checks fail to compile if either changes.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Guest>();
    send::<Machine>();
    // Resolves only if `CodeCache` is not `Send` (with `Send`, both impls apply).
    trait AmbiguousIfSend<A> {
        fn check() {}
    }
    impl<T: ?Sized> AmbiguousIfSend<()> for T {}
    impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}
    <crate::jit::cache::CodeCache as AmbiguousIfSend<_>>::check();
};

/// Checks the settings the command line bounds before they reach the translator.
fn check_options(jit: &JitConfig) -> Result<(), EngineError> {
    let bad = |what: &str| Err(EngineError::Options(what.to_string()));
    if !(1..=4096).contains(&jit.max_block_insns) {
        return bad("jit.max_block_insns must be between 1 and 4096");
    }
    if jit.code_cache_bytes < 1 << 20 {
        return bad("jit.code_cache_bytes must be at least 1 MiB");
    }
    if jit.commit_after == 0 || jit.tier_up == 0 || jit.max_region_blocks == 0 {
        return bad("jit.commit_after, jit.tier_up and jit.max_region_blocks must be at least 1");
    }
    Ok(())
}

impl Guest {
    fn new(elf: &[u8], program: &str, options: GuestOptions) -> Result<Guest, EngineError> {
        check_options(&options.jit)?;
        if let Some(e) = options.env.iter().find(|e| !e.contains('=')) {
            return Err(EngineError::Options(format!("environment entries are KEY=VALUE, got '{e}'")));
        }
        let (stdin, stdin_file) = match options.stdin {
            Input::Empty => (Vec::new(), None),
            Input::Buffer(bytes) => (bytes, None),
            Input::Host(file) => (Vec::new(), Some(file)),
        };
        let mut io = Io::buffered(stdin);
        let outputs = [options.stdout, options.stderr].map(|o| match o {
            Output::Buffer => None,
            Output::Host(file) => Some(file),
        });
        for (fd, file) in [stdin_file].into_iter().chain(outputs).enumerate() {
            if let Some(file) = file {
                io.attach(fd as u32, file);
            }
        }
        if let Some(dir) = &options.dir {
            io.grant_dir(dir).map_err(|source| EngineError::Dir { path: dir.clone(), source })?;
        }
        let args = if options.args.is_empty() { vec![program.to_string()] } else { options.args };
        let mut machine = Machine::from_elf(elf, &args, &options.env, options.machine, io)?;
        machine.ecall_handler = options.ecall_handler;
        let stop = StopHandle { flag: Arc::new(AtomicUsize::new(0)), run_tid: Arc::new(AtomicI32::new(0)) };
        let run = RunOptions {
            backend: options.backend,
            max_insns: options.max_insns,
            interrupt: Some(Arc::clone(&stop.flag)),
            jit: options.jit,
            verify: false,
        };
        Ok(Guest { machine, run, timeout: options.timeout, stop, report: None })
    }

    /// A handle that stops this guest's run from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Runs the guest to its end on the calling thread. A guest runs once.
    pub fn run(&mut self) -> Result<Outcome, EngineError> {
        if self.report.is_some() {
            return Err(EngineError::AlreadyRan);
        }
        let timer = match self.timeout {
            Some(after) => Some(start_timer(self.stop.clone(), after)?),
            None => None,
        };
        self.stop.run_tid.store(host::gettid(), Ordering::SeqCst);
        // Orders the thread's publication before every later check of the flag.
        self.stop.flag.load(Ordering::SeqCst);
        let result = runner::run(&mut self.machine, &self.run);
        self.stop.run_tid.store(0, Ordering::SeqCst);
        if let Some((done, thread)) = timer {
            drop(done);
            let _ = thread.join();
        }
        let report = result?;
        let m = &self.machine;
        let diagnostic = match &report.exit {
            Exit::Fault(f) => Some(m.describe_fault(f)),
            _ => None,
        };
        let outcome = Outcome {
            exit: report.exit,
            status: report.exit.status(),
            retired: m.cpu.retired,
            wall_ns: report.wall_ns,
            diagnostic,
        };
        self.report = Some(report);
        Ok(outcome)
    }

    /// The machine: registers (`cpu`), memory, statistics, streams.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// What the guest wrote to an in-memory stdout.
    pub fn stdout(&self) -> &[u8] {
        self.machine.io.stdout_bytes()
    }

    /// What the guest wrote to an in-memory stderr.
    pub fn stderr(&self) -> &[u8] {
        self.machine.io.stderr_bytes()
    }

    /// Warnings about the guest's behaviour (unknown syscalls, ...), the first 100.
    pub fn warnings(&self) -> &[String] {
        &self.machine.warnings
    }

    /// The statistics of the run as `rvdbt run --stats-json` writes them (None before
    /// the run).
    pub fn stats_json(&self) -> Option<String> {
        self.report.as_ref().map(|r| runner::stats_json(&self.machine, r))
    }
}

/// A thread that stops the run after `after` unless the returned sender is dropped
/// first (the run ended).
fn start_timer(
    stop: StopHandle,
    after: Duration,
) -> Result<(mpsc::Sender<()>, std::thread::JoinHandle<()>), EngineError> {
    let (done, wait) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("rvdbt-guest-timeout".into())
        .spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(after) {
                stop.stop_with(host::TIMEOUT_STOP);
            }
        })
        .map_err(EngineError::Timer)?;
    Ok((done, thread))
}
