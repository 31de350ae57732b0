//! Regions: hot code compiled as one unit. A region is a set of guest blocks grown from
//! a hot head block along the paths the program has taken; jumps between its blocks
//! stay inside the compiled code (a loop's back edge is a jump, not an exit), so guest
//! registers can live in host registers across blocks and iterations.
//!
//! This module forms regions and computes what any code generator needs to keep the
//! retired count and the budget exact at a low cost:
//!
//! - the retired count is kept in a running total that is added to only on edges into
//!   *join* blocks (the head, and blocks with two or more edges into them); every other
//!   block has a static `pending` count of instructions retired since the last add, so
//!   an exit or a fault knows the exact count from the total plus a constant;
//! - the budget is checked on entry for the longest stretch the region can run before
//!   its next check, and on every *back edge* (an edge to a block on the current
//!   depth-first path, which cuts every cycle) for the stretch from its target.

use crate::guest::decode::Inst;
use crate::jit::block::{discover, Block};
use crate::memory::Memory;
use std::collections::{HashMap, HashSet};

/// Default cap on the blocks of a region.
pub const DEFAULT_MAX_REGION_BLOCKS: usize = 16;
/// Cap on the guest instructions of a region.
pub const MAX_REGION_INSNS: usize = 256;
/// Cap on the loads and stores of a region (a code generator may name each one with a
/// trap code of its own, and Cranelift has 250).
pub const MAX_REGION_ACCESSES: usize = 240;

/// One edge leaving a block: the target pc, and whether it stays in the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    pub target: u32,
    /// Index of the target block when it is in the region.
    pub inside: Option<usize>,
    /// An edge to a block on the depth-first path from the head: the budget is checked
    /// on it.
    pub back: bool,
}

/// A region: blocks (the head first) and the analysis that exact counting needs.
#[derive(Clone, Debug)]
pub struct Region {
    pub blocks: Vec<Block>,
    /// Per block: instructions retired since the running total was last added to,
    /// when the block starts (0 for joins).
    pub pending: Vec<u32>,
    /// Per block: is it a join (the running total is brought up to date on every edge
    /// into it)?
    pub join: Vec<bool>,
    /// Per block: the most instructions that can retire from its start before the next
    /// budget check or exit.
    pub stretch: Vec<u32>,
    /// Per block: how often the tier below entered it before the region was formed,
    /// where known (else 0 for every block): how hot each part of the region is.
    pub entries: Vec<u32>,
    /// Per block: the blocks its back edges go to.
    back: Vec<Vec<usize>>,
    /// Per block: the region blocks it can continue at.
    succ: Vec<Vec<usize>>,
    index: HashMap<u32, usize>,
}

/// Where a call's callee returns to: the instruction after a `jal` or `jalr` that
/// links.
fn return_point(block: &Block) -> Option<u32> {
    match block.insts.last() {
        Some(Inst::Jal { rd, .. } | Inst::Jalr { rd, .. }) if *rd != 0 => Some(block.next_pc()),
        _ => None,
    }
}

impl Region {
    /// A region of one block.
    pub fn single(block: Block) -> Region {
        Region::analyse(vec![block], vec![None])
    }

    /// Grows a region from the block at `head`, breadth first, along the successors
    /// `taken` says the program has run: each block's exit targets (branch targets and
    /// fall-throughs, jump and call targets, the continuation of a capped block) and the
    /// return points of its calls. Indirect jumps (returns, calls through pointers) are
    /// followed to those return points and to the target `seen_target` says the block
    /// at a pc took last (see [`Region::indirect_targets`]). At most `max_blocks`
    /// blocks and [`MAX_REGION_INSNS`] instructions. `None` when the head cannot be
    /// translated.
    pub fn form(
        mem: &Memory,
        head: u32,
        max_block_insns: usize,
        max_blocks: usize,
        taken: &dyn Fn(u32) -> bool,
        seen_target: &dyn Fn(u32) -> Option<u32>,
    ) -> Option<Region> {
        let first = discover(mem, head, max_block_insns);
        if first.is_empty() {
            return None;
        }
        let accesses = |b: &Block| b.access_pcs().len();
        // Per block, the target its indirect jump was seen to take, read once.
        let went_to = |b: &Block| if b.ends_indirect() { seen_target(b.pc) } else { None };
        let mut insns = first.len();
        let mut n_accesses = accesses(&first);
        let mut went = vec![went_to(&first)];
        let mut blocks = vec![first];
        let mut seen = HashSet::from([head]);
        let mut next = 0;
        while next < blocks.len() && blocks.len() < max_blocks {
            let b = &blocks[next];
            let candidates = b.exit_targets().into_iter().chain(went[next]).chain(return_point(b));
            for target in candidates {
                if blocks.len() >= max_blocks || seen.contains(&target) || !taken(target) {
                    continue;
                }
                seen.insert(target);
                let b = discover(mem, target, max_block_insns);
                if b.is_empty() || insns + b.len() > MAX_REGION_INSNS || n_accesses + accesses(&b) > MAX_REGION_ACCESSES
                {
                    continue;
                }
                insns += b.len();
                n_accesses += accesses(&b);
                went.push(went_to(&b));
                blocks.push(b);
            }
            next += 1;
        }
        Some(Region::analyse(blocks, went))
    }

    /// The analysis of `blocks` (the head first); `seen_target` per block: the target
    /// its indirect jump was seen to take (see [`Region::form`]).
    fn analyse(blocks: Vec<Block>, seen_target: Vec<Option<u32>>) -> Region {
        let n = blocks.len();
        let index: HashMap<u32, usize> = blocks.iter().enumerate().map(|(i, b)| (b.pc, i)).collect();
        // Indirect jumps may continue at the return point of any call in the region,
        // and at the target they were seen to take.
        let returns: Vec<usize> =
            blocks.iter().filter_map(return_point).filter_map(|t| index.get(&t).copied()).collect();
        let succ: Vec<Vec<usize>> = blocks
            .iter()
            .zip(&seen_target)
            .map(|(b, seen)| {
                let mut s: Vec<usize> = b.exit_targets().iter().filter_map(|t| index.get(t).copied()).collect();
                if b.ends_indirect() {
                    for r in seen.and_then(|t| index.get(&t).copied()).into_iter().chain(returns.iter().copied()) {
                        if !s.contains(&r) {
                            s.push(r);
                        }
                    }
                }
                s
            })
            .collect();
        // Joins: the head (entered from outside) and blocks with two or more edges in.
        let mut incoming = vec![0usize; n];
        incoming[0] = 1;
        for s in succ.iter().flatten() {
            incoming[*s] += 1;
        }
        let join: Vec<bool> = incoming.iter().map(|&k| k >= 2).collect();
        // Back edges: depth-first from the head.
        let mut back = vec![Vec::new(); n];
        let mut state = vec![0u8; n]; // 0 new, 1 on the path, 2 done
        let mut stack = vec![(0usize, 0usize)];
        state[0] = 1;
        while let Some(&mut (b, ref mut k)) = stack.last_mut() {
            if let Some(&s) = succ[b].get(*k) {
                *k += 1;
                match state[s] {
                    0 => {
                        state[s] = 1;
                        stack.push((s, 0));
                    }
                    1 => back[b].push(s),
                    _ => {}
                }
            } else {
                state[b] = 2;
                stack.pop();
            }
        }
        // Pending counts: a block that is not a join has exactly one edge into it, from
        // a block reached first in breadth-first order from the head.
        let mut pending = vec![0u32; n];
        let mut order = vec![0usize];
        let mut placed = vec![false; n];
        placed[0] = true;
        let mut at = 0;
        while at < order.len() {
            let b = order[at];
            for &s in &succ[b] {
                if !placed[s] {
                    placed[s] = true;
                    if !join[s] {
                        pending[s] = pending[b] + blocks[b].len() as u32;
                    }
                    order.push(s);
                }
            }
            at += 1;
        }
        // Stretches: longest path over forward edges (the graph without back edges is
        // acyclic), in reverse depth-first finishing order.
        let mut stretch = vec![0u32; n];
        let mut done = vec![false; n];
        fn longest(
            b: usize,
            blocks: &[Block],
            succ: &[Vec<usize>],
            back: &[Vec<usize>],
            stretch: &mut [u32],
            done: &mut [bool],
        ) -> u32 {
            if done[b] {
                return stretch[b];
            }
            done[b] = true;
            let mut best = 0;
            for &s in &succ[b] {
                if !back[b].contains(&s) {
                    best = best.max(longest(s, blocks, succ, back, stretch, done));
                }
            }
            stretch[b] = blocks[b].len() as u32 + best;
            stretch[b]
        }
        for b in 0..n {
            longest(b, &blocks, &succ, &back, &mut stretch, &mut done);
        }
        Region { entries: vec![0; n], blocks, pending, join, stretch, back, succ, index }
    }

    /// The head block.
    pub fn head(&self) -> &Block {
        &self.blocks[0]
    }

    /// Index of the block starting at `pc`, if it is in the region.
    pub fn block_at(&self, pc: u32) -> Option<usize> {
        self.index.get(&pc).copied()
    }

    /// Guest instructions in all blocks.
    pub fn insns(&self) -> usize {
        self.blocks.iter().map(Block::len).sum()
    }

    /// The region blocks block `b` can continue at.
    pub fn inside_successors(&self, b: usize) -> &[usize] {
        &self.succ[b]
    }

    /// For a block ending in an indirect jump: the pcs of region blocks it may continue
    /// at (guarded by comparing the jump's target), i.e. the target it was seen to take
    /// and return points of calls, in that order.
    pub fn indirect_targets(&self, b: usize) -> Vec<u32> {
        if self.blocks[b].ends_indirect() {
            self.succ[b].iter().map(|&s| self.blocks[s].pc).collect()
        } else {
            Vec::new()
        }
    }

    /// The edge from block `b` to `target`.
    pub fn edge(&self, b: usize, target: u32) -> Edge {
        let inside = self.block_at(target).filter(|s| self.succ[b].contains(s));
        let back = inside.is_some_and(|s| self.back[b].contains(&s));
        Edge { target, inside, back }
    }

    /// Targets of edges that leave the region (each needs an exit slot).
    pub fn exit_targets(&self) -> Vec<u32> {
        let mut out: Vec<u32> = self
            .blocks
            .iter()
            .enumerate()
            .flat_map(|(b, block)| block.exit_targets().into_iter().filter(move |&t| self.edge(b, t).inside.is_none()))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Guest pcs of every load and store.
    pub fn access_pcs(&self) -> Vec<u32> {
        self.blocks.iter().flat_map(Block::access_pcs).collect()
    }
}
