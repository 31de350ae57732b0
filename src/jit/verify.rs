//! `--verify`: lockstep checking of translated code against the interpreter.
//!
//! Before each entry into translated code the dispatcher asks [`Verifier::expect`] to
//! run the interpreter from the entry state for at most a budget of instructions,
//! recording the register each instruction writes and the old and new value of every
//! byte it stores, and then to put the machine back (registers restored, stored bytes
//! written back). The translated code then runs with that many instructions as its
//! budget, and [`Verifier::check`] compares what it did with what the interpreter did
//! after the same number of instructions: every register, the pc, the retired count,
//! and every byte the interpreter's run stored (a translated store to an address the
//! interpreter never wrote is seen only when it changed a checked byte or a register).
//!
//! The interpreter's run stops before an instruction that needs the runtime (ecall,
//! CSRs, ...: translated code stops there too), before an access outside RAM (a device
//! access has effects that cannot be undone; the translated code may not run past it,
//! see [`Expectation::allowed`]), and before an instruction that faults.

use crate::guest::cpu::Cpu;
use crate::guest::decode::Inst;
use crate::guest::disasm::{disassemble, reg_name};
use crate::interp;
use crate::jit::block::needs_runtime;
use crate::machine::Machine;
use crate::memory::{PERM_R, PERM_W};
use crate::stats::VerifyStats;
use std::fmt::Write as _;

/// Instructions the interpreter runs ahead of one entry into translated code.
pub const MAX_VERIFY_INSNS: u64 = 4096;

/// One byte the interpreter's run stored.
#[derive(Clone, Copy, Debug)]
struct ByteWrite {
    addr: u32,
    old: u8,
    new: u8,
    /// Index of the storing instruction in the run.
    index: usize,
}

/// One instruction of the interpreter's run.
#[derive(Clone, Copy, Debug)]
struct Step {
    pc: u32,
    inst: Inst,
    /// The register it wrote (0: none) and the value.
    rd: u8,
    value: u32,
    /// The pc after it.
    next: u32,
}

/// What the interpreter did from one entry state.
#[derive(Clone, Debug, Default)]
pub struct Expectation {
    start: Cpu,
    steps: Vec<Step>,
    writes: Vec<ByteWrite>,
}

impl Expectation {
    /// How many instructions the translated code may run: as many as the interpreter
    /// ran (it stopped before an instruction it could not run and undo).
    pub fn allowed(&self) -> u64 {
        self.steps.len() as u64
    }

    /// The registers and pc after `n` instructions.
    fn cpu_after(&self, n: usize) -> Cpu {
        let mut cpu = self.start.clone();
        for s in &self.steps[..n] {
            cpu.set_reg(s.rd, s.value);
            cpu.pc = s.next;
        }
        cpu.retired = self.start.retired + n as u64;
        cpu
    }

    /// The bytes the interpreter's run stored, each with its value after `n`
    /// instructions (the last write before, else the value before the first one).
    fn memory_after(&self, n: usize) -> Vec<(u32, u8)> {
        let mut out: Vec<(u32, u8)> = Vec::new();
        for w in &self.writes {
            match out.iter_mut().find(|(a, _)| *a == w.addr) {
                Some((_, v)) if w.index < n => *v = w.new,
                Some(_) => {}
                None => out.push((w.addr, if w.index < n { w.new } else { w.old })),
            }
        }
        out
    }
}

/// The lockstep checker of one run.
#[derive(Debug, Default)]
pub struct Verifier {
    pending: Option<Expectation>,
    pub stats: VerifyStats,
}

impl Verifier {
    /// Runs the interpreter ahead from `m`'s state for at most `max` instructions,
    /// then restores the state. Returns how many instructions translated code may run
    /// from here ([`Expectation::allowed`]).
    pub fn expect(&mut self, m: &mut Machine, max: u64) -> u64 {
        let start = m.cpu.clone();
        let mut e = Expectation { start, ..Expectation::default() };
        while (e.steps.len() as u64) < max.min(MAX_VERIFY_INSNS) {
            let pc = m.cpu.pc;
            let Ok((inst, len)) = interp::fetch(m) else { break };
            if needs_runtime(&inst) {
                break;
            }
            let stored = match access(m, &inst) {
                Access::None => None,
                Access::Store(addr, width) => Some((addr, width)),
                Access::Outside => break,
            };
            let old = match stored {
                Some((addr, width)) => match m.mem.read_bytes(addr, width) {
                    Ok(bytes) => bytes,
                    Err(_) => break,
                },
                None => Vec::new(),
            };
            let before = m.cpu.clone();
            if interp::execute(m, inst, len).is_err() {
                m.cpu = before;
                break;
            }
            let rd = inst.dest().unwrap_or(0);
            let index = e.steps.len();
            e.steps.push(Step { pc, inst, rd, value: m.cpu.reg(rd), next: m.cpu.pc });
            if let Some((addr, width)) = stored {
                let new = m.mem.read_bytes(addr, width).unwrap_or_default();
                for (i, (&old, &new)) in old.iter().zip(&new).enumerate() {
                    e.writes.push(ByteWrite { addr: addr.wrapping_add(i as u32), old, new, index });
                }
            }
        }
        // Undo: stored bytes back, last first, and the registers.
        for w in e.writes.iter().rev() {
            let _ = m.mem.write_bytes(w.addr, &[w.old]);
        }
        m.cpu = e.start.clone();
        let allowed = e.allowed();
        self.pending = Some(e);
        allowed
    }

    /// The entry was not made (the blocks are interpreted instead).
    pub fn skip(&mut self) {
        self.pending = None;
        self.stats.skipped += 1;
    }

    /// Compares `m` after translated code ran from the state [`Verifier::expect`]
    /// saw with the interpreter's run. `code` describes the translation that was
    /// entered (printed with a difference). `rolled_back`: a fault resumed at a
    /// checkpoint store that had already run (it runs again, storing the same bytes),
    /// so memory is compared as it is after that store. Returns the report of the first
    /// difference.
    pub fn check(&mut self, m: &Machine, code: &dyn Fn() -> String, rolled_back: bool) -> Result<(), String> {
        let Some(e) = self.pending.take() else { return Ok(()) };
        let ran = m.cpu.retired.wrapping_sub(e.start.retired);
        self.stats.entries += 1;
        self.stats.insns += ran;
        let mut diffs = String::new();
        if ran > e.allowed() {
            let _ = writeln!(
                diffs,
                "  translated code retired {ran} instructions, the interpreter's run had {}",
                e.allowed()
            );
            return Err(report(&e, m, &diffs, e.steps.len(), code));
        }
        let n = ran as usize;
        let want = e.cpu_after(n);
        for r in 1..32u8 {
            if m.cpu.reg(r) != want.reg(r) {
                let (got, exp) = (m.cpu.reg(r), want.reg(r));
                let _ = writeln!(diffs, "  {:<4} translated {got:#010x}, interpreter {exp:#010x}", reg_name(r));
            }
        }
        if m.cpu.pc != want.pc {
            let _ = writeln!(diffs, "  pc   translated {:#010x}, interpreter {:#010x}", m.cpu.pc, want.pc);
        }
        for (addr, exp) in e.memory_after(n + usize::from(rolled_back)) {
            match m.mem.read_bytes(addr, 1) {
                Ok(got) if got[0] == exp => {}
                Ok(got) => {
                    let _ = writeln!(diffs, "  mem[{addr:#010x}] translated 0x{:02x}, interpreter 0x{exp:02x}", got[0]);
                }
                Err(_) => {
                    let _ = writeln!(diffs, "  mem[{addr:#010x}] no longer readable, interpreter 0x{exp:02x}");
                }
            }
        }
        if diffs.is_empty() {
            return Ok(());
        }
        Err(report(&e, m, &diffs, n, code))
    }
}

/// How an instruction accesses memory, seen before it runs.
enum Access {
    /// No access, or a load from readable RAM.
    None,
    /// A store (or AMO) to RAM: address and width.
    Store(u32, u32),
    /// An access outside readable (or writable) RAM: a device, a fault.
    Outside,
}

fn access(m: &Machine, inst: &Inst) -> Access {
    let (addr, width, write) = match *inst {
        Inst::Load { op, rs1, offset, .. } => {
            (m.cpu.reg(rs1).wrapping_add(offset as u32), interp::load_shape(op).0.bytes(), false)
        }
        Inst::Store { op, rs1, offset, .. } => {
            (m.cpu.reg(rs1).wrapping_add(offset as u32), interp::store_width(op).bytes(), true)
        }
        Inst::Amo { rs1, .. } => (m.cpu.reg(rs1), 4, true),
        _ => return Access::None,
    };
    let perms = if write { PERM_R | PERM_W } else { PERM_R };
    match (m.mem.ram_allows(addr, width, perms), write) {
        (false, _) => Access::Outside,
        (true, false) => Access::None,
        (true, true) => Access::Store(addr, width),
    }
}

/// The report of a difference: what differs, the entry state, the interpreter's
/// instructions (the first `ran` of them compared) and the translation.
fn report(e: &Expectation, m: &Machine, diffs: &str, ran: usize, code: &dyn Fn() -> String) -> String {
    let start = &e.start;
    let mut out = format!(
        "translated code and the interpreter differ after {ran} instructions from pc {:#010x} (retired {}):\n{diffs}",
        start.pc, start.retired
    );
    out += "entry state:\n";
    out += &registers(start);
    out += "state after translated code:\n";
    out += &registers(&m.cpu);
    out += "the interpreter's instructions (- not compared):\n";
    for (i, s) in e.steps.iter().enumerate().take(ran + 4) {
        let mark = if i < ran { ' ' } else { '-' };
        let _ = writeln!(out, " {mark}{:08x}  {}", s.pc, disassemble(&s.inst, s.pc).replace('\t', " "));
    }
    out += &code();
    out
}

/// Registers four a line.
fn registers(cpu: &Cpu) -> String {
    let mut out = format!("  pc   {:#010x}  retired {}\n", cpu.pc, cpu.retired);
    for row in 0..8u8 {
        out += " ";
        for r in row * 4..row * 4 + 4 {
            let _ = write!(out, " {:<4} {:#010x}", reg_name(r), cpu.reg(r));
        }
        out.push('\n');
    }
    out
}
