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
//! The tracer is an [`Observer`]: the interpreter reports every instruction to it, and
//! the translating dispatcher every entry into translated code (which then runs one
//! block an entry, and for `insns` one instruction a block), so that traces of the
//! interpreter and of every translating configuration are the same.
//!
//! Output is buffered and flushed by [`Tracer::finish`], and on drop (every other exit
//! path, including errors and panics).

use crate::guest::cpu::Cpu;
use crate::guest::decode::{Inst, StoreOp};
use crate::guest::disasm::{disassemble, reg_name};
use crate::interp::Observer;
use crate::jit::block::ends_block;
use crate::machine::Exit;
use crate::symbols::Symbols;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::Path;

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

impl Observer for Tracer {
    /// Writes a block line if `pc` starts a dynamic block.
    fn enter(&mut self, pc: u32, retired: u64) {
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

    /// Writes the `insns` line.
    fn retired(&mut self, pc: u32, inst: &Inst, cpu: &Cpu) {
        self.block_start = ends_block(inst);
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

    /// A block that ended at a length cap, or bailed out before an access, does not
    /// end a dynamic block.
    fn ran(&mut self, ends_block: bool) {
        self.block_start = ends_block;
    }

    fn wants_instructions(&self) -> bool {
        self.kind == TraceKind::Insns
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
