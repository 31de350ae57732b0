//! Execution traces: `rvdbt run --trace blocks|insns [--trace-file FILE]`.
//!
//! This module owns the trace format and its writer ([`Tracer`]), and the traced
//! interpreter loop. The format is defined by the guest's execution alone, never by how
//! a backend cuts or caches code, so that traces of two backends can be compared with
//! `diff` and the first differing line is the first divergence:
//!
//! * `insns`: one line per retired instruction, `PC  DISASSEMBLY  EFFECT`, where EFFECT is
//!   the register the instruction writes with its new value (`a0=0x00000005`; `ecall`
//!   shows `a0`, the syscall result), or for a store the address and the value stored
//!   (`mem[0x7ffefffc]=0x00000005`, as many digits as the store is wide).
//! * `blocks`: one line per executed dynamic basic block, `PC  RETIRED  <SYMBOL+OFF>`:
//!   its first pc, the number of instructions retired before it, and the nearest
//!   symbol. A dynamic block starts at the entry point and at the instruction executed
//!   after any instruction that ends a block in [`crate::jit::block::ends_block`] terms
//!   (branches and jumps, taken or not, and the instructions that need the runtime:
//!   ecall, ebreak, CSR accesses, mret, fence.i, wfi). A block whose first instruction
//!   faults still gets its line. Length caps of translated blocks play no part.
//! * Both end with `end  RETIRED  HOW` (how the run ended).
//!
//! The interpreter calls the tracer itself ([`run_interp`], [`step`]). A translating
//! dispatcher calls [`Tracer::enter`] before it runs code at a pc, [`Tracer::retired`]
//! after each instruction it interprets, and [`Tracer::ran`] after a translated block
//! returns; see their documentation.
//!
//! Output is buffered and flushed by [`Tracer::finish`], and on drop (every other exit
//! path, including errors and panics).

use crate::guest::cpu::Cpu;
use crate::guest::decode::{Inst, StoreOp};
use crate::guest::disasm::{disassemble, reg_name};
use crate::interp;
use crate::jit::block::ends_block;
use crate::machine::{Exit, Machine};
use crate::runner::{Backend, RunOptions, RunReport};
use crate::symbols::Symbols;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// What a trace records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceKind {
    /// One line per dynamic basic block.
    Blocks,
    /// One line per retired instruction.
    Insns,
}

/// Width of the disassembly column of `insns` lines.
const DISASM_COLUMN: usize = 24;

/// Writes a trace.
pub struct Tracer {
    kind: TraceKind,
    out: BufWriter<Box<dyn Write>>,
    /// For `<symbol+off>` on block lines.
    symbols: Option<Symbols>,
    /// Does the next instruction to execute start a dynamic block?
    block_start: bool,
    /// The first write error; writing stops there.
    error: Option<io::Error>,
    line: String,
}

impl Tracer {
    /// A tracer writing to `out`; `symbols` label block lines.
    pub fn new(kind: TraceKind, out: Box<dyn Write>, symbols: Option<Symbols>) -> Tracer {
        Tracer {
            kind,
            out: BufWriter::with_capacity(1 << 16, out),
            symbols,
            block_start: true,
            error: None,
            line: String::new(),
        }
    }

    /// A tracer writing to a new file at `path`, or to stderr.
    pub fn create(kind: TraceKind, path: Option<&Path>, symbols: Option<Symbols>) -> io::Result<Tracer> {
        let out: Box<dyn Write> = match path {
            Some(p) => Box::new(std::fs::File::create(p)?),
            None => Box::new(io::stderr()),
        };
        Ok(Tracer::new(kind, out, symbols))
    }

    pub fn kind(&self) -> TraceKind {
        self.kind
    }

    fn emit(&mut self) {
        self.line.push('\n');
        if self.error.is_none() {
            if let Err(e) = self.out.write_all(self.line.as_bytes()) {
                self.error = Some(e);
            }
        }
        self.line.clear();
    }

    /// Call before executing guest code at `pc`, with `retired` instructions retired so
    /// far (`cpu.retired`): before each interpreted instruction, and before entering
    /// translated code (whose chaining must then be off, so that every block entry
    /// passes here). Writes a block line if `pc` starts a dynamic block.
    pub fn enter(&mut self, pc: u32, retired: u64) {
        if !self.block_start {
            return;
        }
        self.block_start = false;
        if self.kind != TraceKind::Blocks {
            return;
        }
        let _ = write!(self.line, "{pc:08x}  {retired}");
        if let Some(name) = self.symbols.as_ref().and_then(|s| s.describe(pc)) {
            let _ = write!(self.line, "  <{name}>");
        }
        self.emit();
    }

    /// Call after the instruction `inst` at `pc` retired (the retired count grew), with
    /// `cpu` the state after it. Writes the `insns` line.
    pub fn retired(&mut self, pc: u32, inst: &Inst, cpu: &Cpu) {
        self.ran(inst);
        if self.kind != TraceKind::Insns {
            return;
        }
        let text = disassemble(inst, pc).replace('\t', " ");
        let _ = write!(self.line, "{pc:08x}  {text}");
        let effect = effect(inst, cpu);
        if !effect.is_empty() {
            let pad = DISASM_COLUMN.saturating_sub(text.len()).max(2);
            let _ = write!(self.line, "{:pad$}{effect}", "");
        }
        self.emit();
    }

    /// Call after translated code returned, with `last` the last instruction it retired
    /// (if it retired any): the next entry starts a block if `last` ends one. A block
    /// that ended at a length cap, or bailed out before an access, does not.
    pub fn ran(&mut self, last: &Inst) {
        self.block_start = ends_block(last);
    }

    /// Call when the pc was changed from outside the program (by a debugger): the next
    /// instruction starts a block.
    pub fn redirected(&mut self) {
        self.block_start = true;
    }

    /// Writes the end line and flushes. Returns the first write error of the trace.
    pub fn finish(&mut self, exit: &Exit, retired: u64) -> io::Result<()> {
        let _ = write!(self.line, "end  {retired}  {exit}");
        self.emit();
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

/// The `EFFECT` column of an `insns` line (empty when the instruction writes nothing).
pub fn effect(inst: &Inst, cpu: &Cpu) -> String {
    let written = match (*inst, inst.dest()) {
        (_, Some(rd)) => rd,
        (Inst::Ecall, _) => 10,
        (Inst::Store { op, rs1, rs2, offset }, _) => {
            let addr = cpu.reg(rs1).wrapping_add(offset as u32);
            let value = cpu.reg(rs2);
            return match op {
                StoreOp::Sb => format!("mem[{addr:#010x}]=0x{:02x}", value & 0xff),
                StoreOp::Sh => format!("mem[{addr:#010x}]=0x{:04x}", value & 0xffff),
                StoreOp::Sw => format!("mem[{addr:#010x}]=0x{value:08x}"),
            };
        }
        _ => 0,
    };
    if written == 0 {
        return String::new();
    }
    format!("{}=0x{:08x}", reg_name(written), cpu.reg(written))
}

/// Executes one instruction on the interpreter and reports it to `tracer`.
pub fn step(m: &mut Machine, tracer: &mut Tracer) -> Result<(), Exit> {
    let pc = m.cpu.pc;
    tracer.enter(pc, m.cpu.retired);
    let (inst, len) = interp::fetch(m)?;
    let before = m.cpu.retired;
    let result = interp::execute(m, inst, len);
    if m.cpu.retired != before {
        tracer.retired(pc, &inst, &m.cpu);
    }
    result
}

/// How often the traced loop looks at the interrupt flag.
const INTERRUPT_CHECK_INTERVAL: u64 = 1 << 16;

/// [`interp::run`] with every instruction reported to `tracer`.
pub fn run_interp(
    m: &mut Machine,
    max_insns: Option<u64>,
    interrupted: &dyn Fn() -> Option<i32>,
    tracer: &mut Tracer,
) -> Exit {
    let limit = max_insns.unwrap_or(u64::MAX);
    let mut next_check = m.cpu.retired.saturating_add(INTERRUPT_CHECK_INTERVAL);
    loop {
        if m.cpu.retired >= limit {
            return Exit::InsnLimit(m.cpu.retired);
        }
        if m.cpu.retired >= next_check {
            next_check = m.cpu.retired.saturating_add(INTERRUPT_CHECK_INTERVAL);
            if let Some(sig) = interrupted() {
                return Exit::Interrupted(sig);
            }
        }
        if let Err(exit) = step(m, tracer) {
            return exit;
        }
    }
}

/// Why a traced run cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("--trace is implemented on the interpreter only for now (use --backend interp)")]
    Unsupported,
}

/// Can `backend` be traced?
pub fn supported(backend: Backend) -> Result<(), TraceError> {
    match backend {
        Backend::Interp => Ok(()),
        Backend::Cranelift | Backend::Direct | Backend::Tiered => Err(TraceError::Unsupported),
    }
}

/// Runs `m` to its end as [`crate::runner::run`] does, tracing every step. Only the
/// interpreter backend traces for now; the dispatcher of the translating backends
/// joins in through [`Tracer::enter`], [`Tracer::retired`] and [`Tracer::ran`].
pub fn run(m: &mut Machine, opts: &RunOptions, tracer: &mut Tracer) -> Result<RunReport, TraceError> {
    supported(opts.backend)?;
    let interrupt = opts.interrupt.clone();
    let interrupted = move || {
        let sig = interrupt.as_ref()?.load(Ordering::Relaxed);
        (sig != 0).then_some(sig as i32)
    };
    let start = Instant::now();
    let exit = run_interp(m, opts.max_insns, &interrupted, tracer);
    m.finish();
    Ok(RunReport { exit, backend: opts.backend, mem: None, wall_ns: start.elapsed().as_nanos() as u64 })
}
