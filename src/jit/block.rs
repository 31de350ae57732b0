//! Block discovery: decodes guest code from a pc up to the end of its basic block.
//!
//! A block is straight-line code that a backend translates as a whole. It ends after a
//! branch or jump, or before an instruction that needs the runtime (ecall, ebreak, CSR
//! accesses, mret, fence.i, illegal words), before an instruction that cannot be
//! fetched, or at a length cap. Instructions that need the runtime are never
//! translated: the dispatcher executes them with the interpreter, so a fetch fault or
//! an illegal instruction is raised when execution reaches it, not earlier.

use crate::guest::decode::{decode, Inst};
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
    /// Instructions in order; the i-th is at `pc + 4 * i`.
    pub insts: Vec<Inst>,
    pub end: BlockEnd,
}

impl Block {
    /// The pc after the last instruction.
    pub fn next_pc(&self) -> u32 {
        self.pc.wrapping_add(4 * self.insts.len() as u32)
    }

    pub fn len(&self) -> usize {
        self.insts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insts.is_empty()
    }

    /// Guest pc of instruction `i`.
    pub fn pc_of(&self, i: usize) -> u32 {
        self.pc.wrapping_add(4 * i as u32)
    }

    /// The targets of the block's exits with a known target (each has an exit slot).
    pub fn exit_targets(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for (i, inst) in self.insts.iter().enumerate() {
            let pc = self.pc_of(i);
            match *inst {
                Inst::Jal { offset, .. } => out.push(pc.wrapping_add(offset as u32)),
                Inst::Branch { offset, .. } => {
                    out.push(pc.wrapping_add(offset as u32));
                    out.push(pc.wrapping_add(4));
                }
                _ => {}
            }
        }
        if self.end == BlockEnd::Cap {
            out.push(self.next_pc());
        }
        out.retain(|t| t & 3 == 0);
        out
    }

    /// Guest pcs of the block's loads and stores.
    pub fn access_pcs(&self) -> Vec<u32> {
        (0..self.len())
            .filter(|&i| matches!(self.insts[i], Inst::Load { .. } | Inst::Store { .. }))
            .map(|i| self.pc_of(i))
            .collect()
    }

    /// Index of the instruction at guest `pc`, if it is in the block.
    pub fn index_of(&self, pc: u32) -> Option<usize> {
        let off = pc.wrapping_sub(self.pc);
        (off.is_multiple_of(4) && ((off / 4) as usize) < self.len()).then_some((off / 4) as usize)
    }
}

/// Does this instruction need the runtime (executed by the interpreter, never translated)?
pub fn needs_runtime(inst: &Inst) -> bool {
    matches!(
        inst,
        Inst::Ecall | Inst::Ebreak | Inst::Mret | Inst::FenceI | Inst::Csr { .. } | Inst::Illegal(_) | Inst::Wfi
    )
}

/// Does this instruction end a block (control transfer, or needs the runtime)?
pub fn ends_block(inst: &Inst) -> bool {
    needs_runtime(inst) || matches!(inst, Inst::Jal { .. } | Inst::Jalr { .. } | Inst::Branch { .. })
}

/// Decodes the block at `pc`. The result is empty when the instruction at `pc` itself
/// needs the runtime or cannot be fetched.
pub fn discover(mem: &Memory, pc: u32, max_insns: usize) -> Block {
    let mut insts = Vec::new();
    let mut at = pc;
    if pc & 3 != 0 {
        // The interpreter raises the misaligned-fetch fault.
        return Block { pc, insts, end: BlockEnd::Runtime };
    }
    let end = loop {
        if insts.len() >= max_insns {
            break BlockEnd::Cap;
        }
        let Ok(word) = mem.fetch(at) else { break BlockEnd::Runtime };
        let inst = decode(word);
        if needs_runtime(&inst) {
            break BlockEnd::Runtime;
        }
        insts.push(inst);
        if matches!(inst, Inst::Jal { .. } | Inst::Jalr { .. } | Inst::Branch { .. }) {
            break BlockEnd::Jump;
        }
        at = at.wrapping_add(4);
    };
    Block { pc, insts, end }
}
