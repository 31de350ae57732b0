//! `rvdbt run --gdb PORT`: a gdb remote stub (the `gdbstub` crate) on 127.0.0.1:PORT.
//!
//! This module owns the debugger's view of the guest: registers x0..x31 and pc (`g`/`G`,
//! `p`/`P`), guest memory through the machine's memory map (`m`/`M`/`X`; reads and
//! writes of unmapped memory or devices fail with an error, writes to code are allowed
//! as with ptrace), software breakpoints (`Z0`/`z0`, kept as a set of pcs, never
//! written into guest memory), continue and single step, Ctrl-C, and the stop replies:
//! a guest fault stops with the signal a native process would get (SIGSEGV, SIGILL,
//! SIGTRAP for ebreak, SIGBUS, SIGSYS), an exit reports `W` with the status. Continuing
//! after a fault with the signal (gdb's default for SIGSEGV) terminates the guest with
//! it, as the kernel would; continuing without the signal runs the instruction again.
//!
//! Execution is delegated to an [`Engine`]: "resume until the pc is one of these
//! breakpoints, or N instructions retired, and say why you stopped". [`Interp`] is the
//! interpreter engine; [`Translated`] runs the translating backends through their
//! dispatcher, a breakpoint ending a block and single steps on the interpreter.

use crate::interp;
use crate::interp::Observer;
use crate::jit::cache::CodeCache;
use crate::jit::dispatch::{self, End, Watch};
use crate::jit::JitError;
use crate::machine::{Exit, FaultKind, GuestFault, Machine};
use crate::runner;
use crate::runner::{RunOptions, RunReport};
use crate::trace::{TraceKind, Tracer};
use gdbstub::common::Signal;
use gdbstub::conn::ConnectionExt;
use gdbstub::stub::run_blocking::{self, BlockingEventLoop};
use gdbstub::stub::{DisconnectReason, GdbStub, SingleThreadStopReason};
use gdbstub::target::ext::base::single_register_access::{SingleRegisterAccess, SingleRegisterAccessOps};
use gdbstub::target::ext::base::singlethread::{
    SingleThreadBase, SingleThreadResume, SingleThreadResumeOps, SingleThreadSingleStep, SingleThreadSingleStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{Breakpoints, BreakpointsOps, SwBreakpoint, SwBreakpointOps};
use gdbstub::target::ext::target_description_xml_override::{
    TargetDescriptionXmlOverride, TargetDescriptionXmlOverrideOps,
};
use gdbstub::target::{Target, TargetError, TargetResult};
use gdbstub_arch::riscv::reg::id::RiscvRegId;
use gdbstub_arch::riscv::reg::RiscvCoreRegs;
use gdbstub_arch::riscv::Riscv32;
use std::collections::BTreeSet;
use std::io;
use std::marker::PhantomData;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Why a resumption stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The pc reached a breakpoint; the instruction there has not run.
    Breakpoint,
    /// `max_steps` instructions retired.
    Stepped,
    /// The machine stopped: exit, guest fault (state as before the faulting
    /// instruction), `--max-insns`, or a SIGINT/SIGTERM to rvdbt.
    Ended(Exit),
    /// `poll` returned true (the debugger sent something, usually Ctrl-C).
    Polled,
}

/// One resumption requested by the debugger.
pub struct Resume<'a> {
    /// Stop before executing an instruction at one of these pcs, except the first
    /// instruction of this resumption (so that continuing from a breakpoint moves on).
    pub breakpoints: &'a BTreeSet<u32>,
    /// Stop once this many instructions retired (1 for a single step).
    pub max_steps: Option<u64>,
    /// Ask now and then (every few thousand instructions, never before the first); true
    /// means stop with [`Stop::Polled`].
    pub poll: &'a mut dyn FnMut() -> bool,
}

/// An execution engine the stub drives.
///
/// A translating backend implements `resume` with its dispatcher: run translated code
/// only while no breakpoint lies inside the block about to run and the step budget
/// allows the whole block (otherwise interpret instruction by instruction), keep the
/// machine state exact at every stop, and return the reason. It must drop the
/// translations of guest code the debugger writes ([`Engine::memory_written`]).
pub trait Engine {
    /// Runs `m` until one of the reasons in [`Stop`].
    fn resume(&mut self, m: &mut Machine, req: Resume<'_>) -> Stop;

    /// The debugger wrote guest memory `[addr, addr + len)`.
    fn memory_written(&mut self, _m: &mut Machine, _addr: u32, _len: u32) {}

    /// The debugger changed the pc.
    fn pc_written(&mut self) {}
}

/// How often an engine polls the connection and the interrupt flag.
const POLL_INTERVAL: u64 = 1 << 14;

/// The interpreter as an [`Engine`], optionally tracing.
pub struct Interp<'a> {
    /// `--max-insns`: the run ends when the retired count reaches it.
    pub max_insns: Option<u64>,
    /// SIGINT/SIGTERM to rvdbt: the signal number.
    pub interrupted: &'a dyn Fn() -> Option<i32>,
    pub tracer: Option<&'a mut Tracer>,
}

impl Engine for Interp<'_> {
    fn resume(&mut self, m: &mut Machine, req: Resume<'_>) -> Stop {
        let limit = self.max_insns.unwrap_or(u64::MAX);
        let mut steps: u64 = 0;
        loop {
            if req.max_steps.is_some_and(|n| steps >= n) {
                return Stop::Stepped;
            }
            if steps > 0 && req.breakpoints.contains(&m.cpu.pc) {
                return Stop::Breakpoint;
            }
            if m.cpu.retired >= limit {
                return Stop::Ended(Exit::InsnLimit(m.cpu.retired));
            }
            if steps % POLL_INTERVAL == POLL_INTERVAL - 1 {
                if (req.poll)() {
                    return Stop::Polled;
                }
                if let Some(sig) = (self.interrupted)() {
                    return Stop::Ended(Exit::Interrupted(sig));
                }
            }
            let result = match self.tracer.as_deref_mut() {
                Some(t) => interp::step_observed(m, t),
                None => interp::step(m),
            };
            if let Err(exit) = result {
                return Stop::Ended(exit);
            }
            steps += 1;
        }
    }

    fn pc_written(&mut self) {
        if let Some(t) = self.tracer.as_deref_mut() {
            t.redirected();
        }
    }
}

/// A translating backend as an [`Engine`]: its dispatcher runs translated code, one
/// block an entry, with blocks cut before breakpoints, and stops before a breakpoint.
/// A single step, and a block that would pass the step budget, run on the interpreter
/// (see [`dispatch::run_watched`]).
pub struct Translated<'a> {
    pub cache: CodeCache,
    /// `--max-insns`: the run ends when the retired count reaches it.
    pub max_insns: Option<u64>,
    /// SIGINT/SIGTERM to rvdbt: the signal number.
    pub interrupted: &'a dyn Fn() -> Option<i32>,
    pub tracer: Option<&'a mut Tracer>,
    /// The translator's first host-side error: the session ends and the run fails
    /// with it.
    pub error: Option<JitError>,
}

/// How a session ends when the translator fails (the error is reported afterwards).
const TRANSLATOR_FAILED: Stop = Stop::Ended(Exit::Interrupted(libc::SIGABRT));

impl Translated<'_> {
    /// Runs `m` to its end without breakpoints (after gdb detached).
    pub fn run_to_end(&mut self, m: &mut Machine) -> Result<Exit, JitError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.cache.set_breakpoints(&BTreeSet::new())?;
        let observer = self.tracer.as_deref_mut().map(|t| t as &mut dyn Observer);
        let watch = Watch { observer, ..Watch::default() };
        match dispatch::run_watched(m, &mut self.cache, self.max_insns, self.interrupted, watch)? {
            End::Exit(exit) => Ok(exit),
            other => Err(JitError::Internal(format!("a run without breakpoints paused ({other:?})"))),
        }
    }

    fn try_resume(&mut self, m: &mut Machine, req: Resume<'_>) -> Result<Stop, JitError> {
        self.cache.set_breakpoints(req.breakpoints)?;
        let step_limit = req.max_steps.map(|n| m.cpu.retired.saturating_add(n));
        let limit = match (step_limit, self.max_insns) {
            (Some(s), Some(l)) => Some(s.min(l)),
            (s, l) => s.or(l),
        };
        let observer = self.tracer.as_deref_mut().map(|t| t as &mut dyn Observer);
        let watch = Watch { observer, verifier: None, breakpoints: Some(req.breakpoints), poll: Some(req.poll) };
        Ok(match dispatch::run_watched(m, &mut self.cache, limit, self.interrupted, watch)? {
            End::Exit(Exit::InsnLimit(n)) if step_limit == Some(n) => Stop::Stepped,
            End::Exit(exit) => Stop::Ended(exit),
            End::Breakpoint => Stop::Breakpoint,
            End::Polled => Stop::Polled,
        })
    }
}

impl Engine for Translated<'_> {
    fn resume(&mut self, m: &mut Machine, req: Resume<'_>) -> Stop {
        if self.error.is_some() {
            return TRANSLATOR_FAILED;
        }
        self.try_resume(m, req).unwrap_or_else(|e| {
            self.error = Some(e);
            TRANSLATOR_FAILED
        })
    }

    fn memory_written(&mut self, _m: &mut Machine, _addr: u32, _len: u32) {
        if let Err(e) = self.cache.flush("the debugger wrote guest memory") {
            self.error.get_or_insert(e);
        }
    }

    fn pc_written(&mut self) {
        if let Some(t) = self.tracer.as_deref_mut() {
            t.redirected();
        }
    }
}

/// gdb's signal for a guest fault (gdb numbers its signals itself).
pub fn fault_signal(kind: FaultKind) -> Signal {
    match kind {
        FaultKind::IllegalInstruction => Signal::SIGILL,
        FaultKind::Breakpoint => Signal::SIGTRAP,
        FaultKind::LoadAccess | FaultKind::StoreAccess | FaultKind::FetchAccess => Signal::SIGSEGV,
        FaultKind::FetchMisaligned | FaultKind::LoadMisaligned | FaultKind::StoreMisaligned => Signal::SIGBUS,
        FaultKind::UnknownSyscall(_) => Signal::SIGSYS,
    }
}

/// The Linux signal number of a gdb signal, for the exit status of a guest killed by it.
fn host_signal(sig: Signal) -> i32 {
    match sig {
        Signal::SIGBUS => libc::SIGBUS,
        Signal::SIGSYS => libc::SIGSYS,
        Signal::SIGUSR1 => libc::SIGUSR1,
        Signal::SIGUSR2 => libc::SIGUSR2,
        Signal::SIGURG => libc::SIGURG,
        Signal::SIGSTOP => libc::SIGSTOP,
        Signal::SIGTSTP => libc::SIGTSTP,
        Signal::SIGCONT => libc::SIGCONT,
        Signal::SIGCHLD => libc::SIGCHLD,
        Signal::SIGIO => libc::SIGIO,
        // 1..=15 except SIGBUS are the same numbers on Linux.
        Signal(n) => i32::from(n),
    }
}

/// The target description: RV32I registers, and the architecture, so that gdb needs no
/// `set architecture`.
const TARGET_XML: &str = concat!(
    r#"<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target version="1.0">"#,
    "<architecture>riscv:rv32</architecture><feature name=\"org.gnu.gdb.riscv.cpu\">",
    r#"<reg name="zero" bitsize="32" type="int" regnum="0"/><reg name="ra" bitsize="32" type="code_ptr"/>"#,
    r#"<reg name="sp" bitsize="32" type="data_ptr"/><reg name="gp" bitsize="32" type="data_ptr"/>"#,
    r#"<reg name="tp" bitsize="32" type="data_ptr"/><reg name="t0" bitsize="32" type="int"/>"#,
    r#"<reg name="t1" bitsize="32" type="int"/><reg name="t2" bitsize="32" type="int"/>"#,
    r#"<reg name="fp" bitsize="32" type="data_ptr"/><reg name="s1" bitsize="32" type="int"/>"#,
    r#"<reg name="a0" bitsize="32" type="int"/><reg name="a1" bitsize="32" type="int"/>"#,
    r#"<reg name="a2" bitsize="32" type="int"/><reg name="a3" bitsize="32" type="int"/>"#,
    r#"<reg name="a4" bitsize="32" type="int"/><reg name="a5" bitsize="32" type="int"/>"#,
    r#"<reg name="a6" bitsize="32" type="int"/><reg name="a7" bitsize="32" type="int"/>"#,
    r#"<reg name="s2" bitsize="32" type="int"/><reg name="s3" bitsize="32" type="int"/>"#,
    r#"<reg name="s4" bitsize="32" type="int"/><reg name="s5" bitsize="32" type="int"/>"#,
    r#"<reg name="s6" bitsize="32" type="int"/><reg name="s7" bitsize="32" type="int"/>"#,
    r#"<reg name="s8" bitsize="32" type="int"/><reg name="s9" bitsize="32" type="int"/>"#,
    r#"<reg name="s10" bitsize="32" type="int"/><reg name="s11" bitsize="32" type="int"/>"#,
    r#"<reg name="t3" bitsize="32" type="int"/><reg name="t4" bitsize="32" type="int"/>"#,
    r#"<reg name="t5" bitsize="32" type="int"/><reg name="t6" bitsize="32" type="int"/>"#,
    r#"<reg name="pc" bitsize="32" type="code_ptr"/></feature></target>"#,
);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Continue,
    Step,
}

/// The state of one debugging session.
pub struct Session<'a, E: Engine> {
    m: &'a mut Machine,
    engine: &'a mut E,
    breakpoints: BTreeSet<u32>,
    mode: Mode,
    /// A signal gdb asked to deliver on resumption: it terminates the guest.
    deliver: Option<Signal>,
    /// The fault the guest is stopped at, if any.
    fault: Option<GuestFault>,
    /// How the guest ended, once it has.
    ended: Option<Exit>,
}

type GdbError = &'static str;

impl<E: Engine> Target for Session<'_, E> {
    type Arch = Riscv32;
    type Error = GdbError;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::SingleThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_target_description_xml_override(&mut self) -> Option<TargetDescriptionXmlOverrideOps<'_, Self>> {
        Some(self)
    }
}

impl<E: Engine> SingleThreadBase for Session<'_, E> {
    fn read_registers(&mut self, regs: &mut RiscvCoreRegs<u32>) -> TargetResult<(), Self> {
        regs.x = self.m.cpu.regs;
        regs.pc = self.m.cpu.pc;
        Ok(())
    }

    fn write_registers(&mut self, regs: &RiscvCoreRegs<u32>) -> TargetResult<(), Self> {
        for (r, &v) in regs.x.iter().enumerate() {
            self.m.cpu.set_reg(r as u8, v);
        }
        self.set_pc(regs.pc);
        Ok(())
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, (), Self>> {
        Some(self)
    }

    fn read_addrs(&mut self, start: u32, data: &mut [u8]) -> TargetResult<usize, Self> {
        // The readable prefix of the range; nothing readable is an error.
        let mut n = 0;
        while n < data.len() {
            let addr = start.wrapping_add(n as u32);
            let chunk = (data.len() - n).min(4096 - (addr as usize % 4096));
            match self.m.mem.read_bytes(addr, chunk as u32) {
                Ok(bytes) => data[n..n + chunk].copy_from_slice(&bytes),
                Err(_) => break,
            }
            n += chunk;
        }
        if n == 0 && !data.is_empty() {
            return Err(TargetError::Errno(libc::EFAULT as u8));
        }
        Ok(n)
    }

    fn write_addrs(&mut self, start: u32, data: &[u8]) -> TargetResult<(), Self> {
        let len = u32::try_from(data.len()).map_err(|_| TargetError::Errno(libc::EFAULT as u8))?;
        // RAM only, whatever its guest permissions (code too, as ptrace allows).
        if len == 0 {
            return Ok(());
        }
        if !self.m.mem.ram_allows(start, len, 0) {
            return Err(TargetError::Errno(libc::EFAULT as u8));
        }
        match self.m.mem.write_initial(start, data) {
            Ok(true) => {}
            Ok(false) => return Err(TargetError::Errno(libc::EFAULT as u8)),
            Err(e) => return Err(TargetError::Io(e)),
        }
        self.engine.memory_written(self.m, start, len);
        Ok(())
    }

    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl<E: Engine> Session<'_, E> {
    fn set_pc(&mut self, pc: u32) {
        if pc != self.m.cpu.pc {
            self.m.cpu.pc = pc;
            self.fault = None;
            self.engine.pc_written();
        }
    }

    fn resume_with(&mut self, mode: Mode, signal: Option<Signal>) {
        self.mode = mode;
        self.deliver = signal.filter(|s| *s != Signal::SIGZERO);
    }

    /// Runs the guest as asked and turns the outcome into a stop reason, or `None` if
    /// the debugger sent data (the byte is waiting on the connection).
    fn run(&mut self, poll: &mut dyn FnMut() -> bool) -> Option<SingleThreadStopReason<u32>> {
        if let Some(sig) = self.deliver.take() {
            let exit = match self.fault {
                Some(f) if fault_signal(f.kind) == sig => Exit::Fault(f),
                _ => Exit::Interrupted(host_signal(sig)),
            };
            self.ended = Some(exit);
            return Some(SingleThreadStopReason::Terminated(sig));
        }
        self.fault = None;
        let max_steps = (self.mode == Mode::Step).then_some(1);
        let req = Resume { breakpoints: &self.breakpoints, max_steps, poll };
        match self.engine.resume(self.m, req) {
            Stop::Breakpoint => Some(SingleThreadStopReason::SwBreak(())),
            Stop::Stepped => Some(SingleThreadStopReason::DoneStep),
            Stop::Polled => None,
            Stop::Ended(Exit::Fault(f)) => {
                self.fault = Some(f);
                Some(SingleThreadStopReason::Signal(fault_signal(f.kind)))
            }
            Stop::Ended(exit) => {
                self.ended = Some(exit);
                Some(match exit {
                    Exit::Interrupted(sig) => SingleThreadStopReason::Terminated(Signal(sig as u8)),
                    other => SingleThreadStopReason::Exited(other.status() as u8),
                })
            }
        }
    }
}

impl<E: Engine> SingleRegisterAccess<()> for Session<'_, E> {
    fn read_register(&mut self, _tid: (), reg: RiscvRegId<u32>, buf: &mut [u8]) -> TargetResult<usize, Self> {
        let value = match reg {
            RiscvRegId::Gpr(r) if r < 32 => self.m.cpu.reg(r),
            RiscvRegId::Pc => self.m.cpu.pc,
            RiscvRegId::Csr(csr) if csr < 4096 => self.m.csrs.read(csr, self.m.counters()),
            _ => return Err(TargetError::NonFatal),
        };
        buf.copy_from_slice(&value.to_le_bytes());
        Ok(4)
    }

    fn write_register(&mut self, _tid: (), reg: RiscvRegId<u32>, val: &[u8]) -> TargetResult<(), Self> {
        let bytes: [u8; 4] = val.try_into().map_err(|_| TargetError::NonFatal)?;
        let value = u32::from_le_bytes(bytes);
        match reg {
            RiscvRegId::Gpr(r) if r < 32 => self.m.cpu.set_reg(r, value),
            RiscvRegId::Pc => self.set_pc(value),
            _ => return Err(TargetError::NonFatal),
        }
        Ok(())
    }
}

impl<E: Engine> SingleThreadResume for Session<'_, E> {
    fn resume(&mut self, signal: Option<Signal>) -> Result<(), GdbError> {
        self.resume_with(Mode::Continue, signal);
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl<E: Engine> SingleThreadSingleStep for Session<'_, E> {
    fn step(&mut self, signal: Option<Signal>) -> Result<(), GdbError> {
        self.resume_with(Mode::Step, signal);
        Ok(())
    }
}

impl<E: Engine> Breakpoints for Session<'_, E> {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }
}

impl<E: Engine> SwBreakpoint for Session<'_, E> {
    fn add_sw_breakpoint(&mut self, addr: u32, _kind: usize) -> TargetResult<bool, Self> {
        self.breakpoints.insert(addr);
        Ok(true)
    }

    fn remove_sw_breakpoint(&mut self, addr: u32, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.breakpoints.remove(&addr))
    }
}

impl<E: Engine> TargetDescriptionXmlOverride for Session<'_, E> {
    fn target_description_xml(
        &self,
        annex: &[u8],
        offset: u64,
        length: usize,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        if annex != b"target.xml" {
            return Err(TargetError::NonFatal);
        }
        let xml = TARGET_XML.as_bytes();
        let start = xml.len().min(usize::try_from(offset).unwrap_or(usize::MAX));
        let end = xml.len().min(start.saturating_add(length));
        let n = (end - start).min(buf.len());
        buf[..n].copy_from_slice(&xml[start..start + n]);
        Ok(n)
    }
}

/// The blocking event loop of `gdbstub` for a session.
struct EventLoop<'a, E>(PhantomData<&'a mut E>);

impl<'a, E: Engine> BlockingEventLoop for EventLoop<'a, E> {
    type Target = Session<'a, E>;
    type Connection = TcpStream;
    type StopReason = SingleThreadStopReason<u32>;

    #[allow(clippy::type_complexity)]
    fn wait_for_stop_reason(
        target: &mut Session<'a, E>,
        conn: &mut TcpStream,
    ) -> Result<
        run_blocking::Event<SingleThreadStopReason<u32>>,
        run_blocking::WaitForStopReasonError<GdbError, io::Error>,
    > {
        let mut poll = || conn.peek().map(|b| b.is_some()).unwrap_or(true);
        match target.run(&mut poll) {
            Some(reason) => Ok(run_blocking::Event::TargetStopped(reason)),
            None => {
                let byte = conn.read().map_err(run_blocking::WaitForStopReasonError::Connection)?;
                Ok(run_blocking::Event::IncomingData(byte))
            }
        }
    }

    fn on_interrupt(_target: &mut Session<'a, E>) -> Result<Option<SingleThreadStopReason<u32>>, GdbError> {
        Ok(Some(SingleThreadStopReason::Signal(Signal::SIGINT)))
    }
}

/// Why the stub could not run.
#[derive(Debug, thiserror::Error)]
pub enum StubError {
    #[error("cannot listen on 127.0.0.1:{0}: {1}")]
    Listen(u16, io::Error),
    #[error("interrupted by signal {0} while waiting for gdb")]
    Interrupted(i32),
    #[error("gdb connection: {0}")]
    Connection(io::Error),
    #[error(transparent)]
    Translator(#[from] JitError),
}

/// Waits for one connection on `listener`, giving up when `interrupted` reports a signal.
fn accept(listener: &TcpListener, interrupted: &dyn Fn() -> Option<i32>) -> Result<TcpStream, StubError> {
    listener.set_nonblocking(true).map_err(StubError::Connection)?;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).map_err(StubError::Connection)?;
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Some(sig) = interrupted() {
                    return Err(StubError::Interrupted(sig));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(StubError::Connection(e)),
        }
    }
}

/// Serves one gdb connection on `stream` until the guest ends or gdb leaves. Returns how
/// the guest ended, or `None` if gdb detached (or the connection broke) with the guest
/// still alive.
pub fn serve<E: Engine>(m: &mut Machine, engine: &mut E, stream: TcpStream) -> Option<Exit> {
    let mut session = Session {
        m,
        engine,
        breakpoints: BTreeSet::new(),
        mode: Mode::Continue,
        deliver: None,
        fault: None,
        ended: None,
    };
    let stub = GdbStub::new(stream);
    match stub.run_blocking::<EventLoop<'_, E>>(&mut session) {
        Ok(DisconnectReason::Kill) => {
            crate::diag!("rvdbt: gdb killed the guest\n");
            return Some(session.ended.unwrap_or(Exit::Interrupted(libc::SIGKILL)));
        }
        Ok(DisconnectReason::Disconnect) => crate::diag!("rvdbt: gdb detached; the guest runs on\n"),
        Ok(DisconnectReason::TargetExited(_) | DisconnectReason::TargetTerminated(_)) => {}
        Err(e) => crate::diag!("rvdbt: gdb connection lost ({e}); the guest runs on\n"),
    }
    session.ended
}

/// `rvdbt run --gdb PORT`: waits for gdb on 127.0.0.1:PORT (0: any free port; the port is
/// printed on stderr), serves it on the chosen backend, and runs the guest to its end if
/// gdb detaches.
pub fn run(m: &mut Machine, opts: &RunOptions, port: u16, tracer: Option<&mut Tracer>) -> Result<RunReport, StubError> {
    crate::jit::fault::install();
    m.io.interrupt = opts.interrupt.clone();
    let interrupted = opts.interrupted();
    // Set up before waiting, so that a translator that cannot start is reported at once.
    let cache = match opts.backend.translates() {
        true => {
            let every_insn = tracer.as_ref().is_some_and(|t| t.kind() == TraceKind::Insns);
            Some(runner::new_cache(opts.backend, runner::watched_config(&opts.jit, every_insn), m)?)
        }
        false => None,
    };
    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| StubError::Listen(port, e))?;
    let port = listener.local_addr().map_err(StubError::Connection)?.port();
    crate::diag!("rvdbt: waiting for gdb on 127.0.0.1:{port} (in gdb: target remote :{port})\n");
    let stream = accept(&listener, &interrupted)?;
    drop(listener);
    let start = Instant::now();
    let exit = match cache {
        None => {
            let mut engine = Interp { max_insns: opts.max_insns, interrupted: &interrupted, tracer };
            match serve(m, &mut engine, stream) {
                Some(exit) => exit,
                None => match engine.tracer {
                    Some(t) => interp::run_observed(m, opts.max_insns, &interrupted, t),
                    None => interp::run(m, opts.max_insns, &interrupted),
                },
            }
        }
        Some(cache) => {
            let max_insns = opts.max_insns;
            let mut engine = Translated { cache, max_insns, interrupted: &interrupted, tracer, error: None };
            let exit = match serve(m, &mut engine, stream) {
                Some(exit) => engine.error.take().map_or(Ok(exit), Err),
                None => engine.run_to_end(m),
            };
            runner::record_cache_stats(m, &engine.cache);
            exit?
        }
    };
    m.finish();
    let mem = opts.backend.translates().then_some(opts.jit.mem);
    Ok(RunReport { exit, backend: opts.backend, mem, wall_ns: start.elapsed().as_nanos() as u64 })
}
