//! Block discovery: decodes guest code from a pc up to the end of its basic block.
//!
//! A block is straight-line code that a backend translates as a whole. It ends after a
//! branch or jump, or before an instruction that needs the runtime (ecall, ebreak, CSR
//! accesses, mret, fence.i, lr/sc, illegal words), before an instruction that cannot
//! be fetched, or at a length cap. With the C extension instructions are 2 or 4 bytes
//! long, so the block records where each one is. Instructions that need the runtime are never
//! translated: the dispatcher executes them with the interpreter, so a fetch fault or
//! an illegal instruction is raised when execution reaches it, not earlier.

use crate::guest::decode::{decode_insn, Inst};
use crate::memory::Memory;

/// Default cap on guest instructions per block.
pub const DEFAULT_MAX_BLOCK_INSNS: usize = 64;

/// How a block ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockEnd {
    /// The last instruction is a branch or jump (jal, jalr, conditional branch).
    Jump,
    /// The next instruction (at `next_pc`) needs the runtime or cannot be fetched.
    Runtime,
    /// The length cap was reached; execution continues at `next_pc`.
    Cap,
}

/// A decoded guest block.
#[derive(Clone, Debug)]
pub struct Block {
    pub pc: u32,
    /// Instructions in order (compressed ones expanded); see [`Block::pc_of`] for where
    /// each one is.
    pub insts: Vec<Inst>,
    pub end: BlockEnd,
    /// Instruction alignment of the ISA the block was decoded for: 2 with C, 4 without.
    /// A jump or branch target that is not a multiple faults (the interpreter raises it).
    pub ialign: u32,
    /// Guest pc of each instruction, and the pc after the last one.
    pcs: Vec<u32>,
}

impl Block {
    /// A block of `insts` with their lengths `lens`, starting at `pc`.
    pub fn new(pc: u32, insts: Vec<Inst>, lens: Vec<u8>, end: BlockEnd, ialign: u32) -> Block {
        debug_assert_eq!(insts.len(), lens.len());
        let mut pcs = Vec::with_capacity(lens.len() + 1);
        let mut at = pc;
        pcs.push(at);
        for &len in &lens {
            at = at.wrapping_add(u32::from(len));
            pcs.push(at);
        }
        Block { pc, insts, end, ialign, pcs }
    }

    /// The pc after the last instruction.
    pub fn next_pc(&self) -> u32 {
        self.pcs[self.insts.len()]
    }

    pub fn len(&self) -> usize {
        self.insts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insts.is_empty()
    }

    /// Guest pc of instruction `i` (`i == len()`: the pc after the block).
    pub fn pc_of(&self, i: usize) -> u32 {
        self.pcs[i]
    }

    /// Cuts the block before instruction `n` (which becomes the continuation, as at a
    /// length cap).
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.insts.truncate(n);
            self.pcs.truncate(n + 1);
            self.end = BlockEnd::Cap;
        }
    }

    /// Is `target` a legal jump target (aligned as the ISA requires)?
    pub fn aligned(&self, target: u32) -> bool {
        target.is_multiple_of(self.ialign)
    }

    /// The targets of the block's exits with a known target (each has an exit slot):
    /// the fall-through and target of a final branch, the target of a final `jal`, the
    /// continuation of a capped block; legal (aligned) targets only, each once.
    pub fn exit_targets(&self) -> Vec<u32> {
        let Some(&last) = self.insts.last() else { return Vec::new() };
        let pc = self.pc_of(self.len() - 1);
        let mut out = match (last, self.end) {
            (Inst::Branch { offset, .. }, _) => vec![self.next_pc(), pc.wrapping_add(offset as u32)],
            (Inst::Jal { offset, .. }, _) => vec![pc.wrapping_add(offset as u32)],
            (_, BlockEnd::Cap) => vec![self.next_pc()],
            _ => Vec::new(),
        };
        out.retain(|&t| self.aligned(t));
        out.dedup();
        out
    }

    /// Does the block end in an indirect jump (`jalr`: a return, or a call or jump
    /// through a register)?
    pub fn ends_indirect(&self) -> bool {
        matches!(self.insts.last(), Some(Inst::Jalr { .. }))
    }

    /// Does the block end in a return (`jalr` to the link register `ra` or `t0`, not
    /// linking: the form the ISA names a return)?
    pub fn ends_in_return(&self) -> bool {
        matches!(self.insts.last(), Some(Inst::Jalr { rd: 0, rs1: 1 | 5, .. }))
    }

    /// Guest pcs of the block's memory accesses (loads, stores and AMOs).
    pub fn access_pcs(&self) -> Vec<u32> {
        (0..self.len()).filter(|&i| is_access(&self.insts[i])).map(|i| self.pc_of(i)).collect()
    }
}

/// Is this a memory access with an access record (a load, a store or an AMO)?
pub fn is_access(inst: &Inst) -> bool {
    matches!(inst, Inst::Load { .. } | Inst::Store { .. } | Inst::Amo { .. })
}

/// Does this instruction need the runtime (executed by the interpreter, never
/// translated)? `lr.w` and `sc.w` do: the reservation lives in the machine, and while
/// it is valid the dispatcher interprets (see [`crate::machine::Reservation`]).
pub fn needs_runtime(inst: &Inst) -> bool {
    matches!(
        inst,
        Inst::Ecall
            | Inst::Ebreak
            | Inst::Mret
            | Inst::FenceI
            | Inst::Csr { .. }
            | Inst::Illegal(_)
            | Inst::Wfi
            | Inst::Lr { .. }
            | Inst::Sc { .. }
    )
}

/// Does this instruction end a block (control transfer, or needs the runtime)?
pub fn ends_block(inst: &Inst) -> bool {
    needs_runtime(inst) || matches!(inst, Inst::Jal { .. } | Inst::Jalr { .. } | Inst::Branch { .. })
}

/// Decodes the block at `pc` (for the ISA of `mem`'s instruction fetch). The result is
/// empty when the instruction at `pc` itself needs the runtime or cannot be fetched.
pub fn discover(mem: &Memory, pc: u32, max_insns: usize) -> Block {
    let isa = mem.isa;
    let (mut insts, mut lens) = (Vec::new(), Vec::new());
    let mut at = pc;
    if !pc.is_multiple_of(isa.ialign()) {
        // The interpreter raises the misaligned-fetch fault.
        return Block::new(pc, insts, lens, BlockEnd::Runtime, isa.ialign());
    }
    let end = loop {
        if insts.len() >= max_insns {
            break BlockEnd::Cap;
        }
        let Ok((bits, _)) = mem.fetch_insn(at) else { break BlockEnd::Runtime };
        let (inst, len) = decode_insn(isa, bits);
        if needs_runtime(&inst) {
            break BlockEnd::Runtime;
        }
        insts.push(inst);
        lens.push(len as u8);
        if matches!(inst, Inst::Jal { .. } | Inst::Jalr { .. } | Inst::Branch { .. }) {
            break BlockEnd::Jump;
        }
        at = at.wrapping_add(len);
    };
    Block::new(pc, insts, lens, end, isa.ialign())
}
