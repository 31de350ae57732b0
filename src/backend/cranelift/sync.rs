//! What translated region code stores to `Cpu` before its inline accesses, so that the
//! fault path can always rebuild the exact guest state: which guest registers are live
//! and which may be dirty at each instruction, and how each inline access syncs (see
//! [`Sync`]): exactly where it is, or by rolling back to a checkpoint.

use crate::guest::decode::Inst;
use crate::jit::block::{is_access, BlockEnd};
use crate::jit::region::Region;
use std::collections::HashMap;

/// Bit of the dirty mask for the running retired total (x0 is never dirty).
pub(super) const RETIRED_BIT: u32 = 1;

/// The dirty registers (and [`RETIRED_BIT`]) left unstored before an inline access
/// `inst`: those live after it, except its own destination (whose old value dies there)
/// and those `forced` out; the running total unless forced.
pub(super) fn kept_dirty(dirty: u32, live_after: u32, inst: &Inst, forced: u32) -> u32 {
    dirty & (live_after | RETIRED_BIT) & !writes(inst) & !forced
}

/// Every guest register (a leaving path stores those it changed).
const ALL_REGS: u32 = !1;

/// Guest registers live after each instruction of each region block: read later before
/// being written, or still to be stored by a path that leaves the region.
pub(super) fn liveness(region: &Region, inline: &dyn Fn(u32) -> bool) -> Vec<Vec<u32>> {
    let n = region.blocks.len();
    let succ: Vec<Vec<usize>> = (0..n).map(|b| region.inside_successors(b).to_vec()).collect();
    // Does a path leave the region at the end of the block (an exit, not a jump inside)?
    let leaves: Vec<bool> = (0..n)
        .map(|b| {
            let block = &region.blocks[b];
            block.end != BlockEnd::Jump
                || block.exit_targets().iter().any(|&t| region.edge(b, t).inside.is_none())
                || matches!(block.insts.last(), Some(Inst::Jalr { .. }))
        })
        .collect();
    let mut live_in = vec![0u32; n];
    let mut live_after: Vec<Vec<u32>> = region.blocks.iter().map(|b| vec![0; b.len()]).collect();
    let mut changed = true;
    while changed {
        changed = false;
        for b in (0..n).rev() {
            let mut live = succ[b].iter().fold(if leaves[b] { ALL_REGS } else { 0 }, |acc, &s| acc | live_in[s]);
            for (i, inst) in region.blocks[b].insts.iter().enumerate().rev() {
                // Loads and stores that call a helper can leave (a refused access).
                let pc = region.blocks[b].pc_of(i);
                if is_access(inst) && !inline(pc) {
                    live |= ALL_REGS;
                }
                live_after[b][i] = live;
                live = (live & !writes(inst)) | reads(inst);
            }
            if live != live_in[b] {
                live_in[b] = live;
                changed = true;
            }
        }
    }
    live_after
}

/// Guest registers whose value on entry the region's code may use: on some path from
/// the head, read by an instruction, or stored to `Cpu` or recovered at a fault while
/// possibly dirty, before the region writes them. Any instruction may sync or leave,
/// storing or recovering what may be dirty there (`dirty_in` at the block's start and
/// what the block wrote since: more than what is dirty after a sync, which is safe).
/// The others need not be loaded on entry.
pub(super) fn entry_live(region: &Region, dirty_in: &[u32]) -> u32 {
    let n = region.blocks.len();
    let mut live_in = vec![0u32; n];
    let mut changed = true;
    while changed {
        changed = false;
        for b in (0..n).rev() {
            let insts = &region.blocks[b].insts;
            let mut dirty_before = Vec::with_capacity(insts.len());
            let mut dirty = dirty_in[b];
            for inst in insts {
                dirty_before.push(dirty);
                dirty |= writes(inst);
            }
            let mut live = region.inside_successors(b).iter().fold(dirty, |acc, &s| acc | live_in[s]);
            for (inst, &d) in insts.iter().zip(&dirty_before).rev() {
                live = (live & !writes(inst)) | reads(inst) | d;
            }
            if live != live_in[b] {
                live_in[b] = live;
                changed = true;
            }
        }
    }
    live_in[0] & ALL_REGS
}

/// Registers an instruction writes, as a mask.
pub(super) fn writes(inst: &Inst) -> u32 {
    inst.dest().map_or(0, |rd| (1u32 << rd) & !1)
}

/// Registers an instruction reads, as a mask.
pub(super) fn reads(inst: &Inst) -> u32 {
    let m = |rs: &[u8]| rs.iter().fold(0u32, |acc, &r| acc | (1 << r)) & !1;
    match *inst {
        Inst::Jalr { rs1, .. } | Inst::Load { rs1, .. } | Inst::OpImm { rs1, .. } => m(&[rs1]),
        Inst::Branch { rs1, rs2, .. }
        | Inst::Store { rs1, rs2, .. }
        | Inst::Op { rs1, rs2, .. }
        | Inst::Amo { rs1, rs2, .. } => m(&[rs1, rs2]),
        _ => 0,
    }
}

/// What may be dirty at the start of each region block: registers written on some path
/// since their last store (stores happen before inline accesses), and the running total
/// after an edge into a join. A fixpoint over the region's edges.
pub(super) fn dirty_sets(
    region: &Region,
    inline: &dyn Fn(u32) -> bool,
    live_after: &[Vec<u32>],
    forced: &HashMap<u32, u32>,
    sync: &[Vec<Sync>],
) -> Vec<u32> {
    let n = region.blocks.len();
    let mut dirty_in = vec![0u32; n];
    let mut changed = true;
    while changed {
        changed = false;
        for b in 0..n {
            let block = &region.blocks[b];
            let mut d = dirty_in[b];
            for (i, inst) in block.insts.iter().enumerate() {
                let pc = block.pc_of(i);
                if is_access(inst) && inline(pc) {
                    d = after_sync(d, live_after[b][i], inst, forced.get(&pc).copied().unwrap_or(0), sync[b][i]);
                }
                d |= writes(inst);
            }
            for &s in region.inside_successors(b) {
                let out = d | if region.join[s] { RETIRED_BIT } else { 0 };
                if dirty_in[s] | out != dirty_in[s] {
                    dirty_in[s] |= out;
                    changed = true;
                }
            }
        }
    }
    dirty_in
}

/// How the fault path finds the exact guest state at an inline access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sync {
    /// Dirty registers it could not recover are stored before the access; the others
    /// are recovered from where the code keeps them (see `lift::Recovery`).
    Exact,
    /// A store that first writes every dirty register, its pc and the retired count to
    /// `Cpu`: a checkpoint, which later loads can roll back to.
    Checkpoint,
    /// Since the last checkpoint (or the region's entry, where `Cpu` is exact too) only
    /// loads and register operations ran, which can run again: the fault resumes at
    /// the checkpoint from `Cpu` as it is, and the access stores nothing.
    Rollback,
}

/// What an instruction is to checkpoints.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An inline load: it can run again.
    Load,
    /// An inline store: a checkpoint, or a barrier.
    Store,
    /// Something that must not run twice: a helper or device access, an AMO.
    Barrier,
    Other,
}

/// Per region block and instruction, how each inline access syncs (other
/// instructions: [`Sync::Exact`], unused); every access exactly without `checkpoints`.
///
/// A checkpoint is valid from the region's entry, and from a checkpoint store, until
/// something that must not run twice: a store without a checkpoint (a load before it
/// may read what it wrote), a helper or device access, an AMO. Loads where a
/// checkpoint is valid on every path in roll back. A store that an inline load can
/// follow before the next barrier may become a checkpoint: it does where that makes
/// fewer stores to `Cpu` than syncing exactly (its own write of every dirty register
/// against the stores the loads after it would make), counting the stores at each
/// instruction as often as the tier below entered its block (`Region::entries`), or,
/// where that is unknown, `8^d` times for an instruction inside `d` loops of the region;
/// either way 8 times more in a block that jumps to itself (an innermost loop). Two
/// greedy searches over the candidates, from all and from none (see the body), and the
/// cheaper plan wins; ties go to fewer checkpoints.
pub(super) fn sync_plan(
    region: &Region,
    inline: &dyn Fn(u32) -> bool,
    live_after: &[Vec<u32>],
    forced: &HashMap<u32, u32>,
    checkpoints: bool,
) -> Vec<Vec<Sync>> {
    let plan: Vec<Vec<Sync>> = region.blocks.iter().map(|bl| vec![Sync::Exact; bl.len()]).collect();
    if !checkpoints {
        return plan;
    }
    let n = region.blocks.len();
    let kinds: Vec<Vec<Kind>> = region
        .blocks
        .iter()
        .map(|block| {
            (0..block.len())
                .map(|i| match block.insts[i] {
                    Inst::Load { .. } | Inst::Store { .. } if !inline(block.pc_of(i)) => Kind::Barrier,
                    Inst::Load { .. } => Kind::Load,
                    Inst::Store { .. } => Kind::Store,
                    Inst::Amo { .. } => Kind::Barrier,
                    _ => Kind::Other,
                })
                .collect()
        })
        .collect();
    let mut preds = vec![Vec::new(); n];
    for b in 0..n {
        for &s in region.inside_successors(b) {
            preds[s].push(b);
        }
    }
    // Can an inline load follow instruction `i` of block `b` before a barrier or store?
    let load_follows = |b: usize, i: usize| {
        let mut seen = vec![false; n];
        let mut work = vec![(b, i + 1)];
        while let Some((b, from)) = work.pop() {
            match kinds[b][from..].iter().find(|k| **k != Kind::Other) {
                Some(Kind::Load) => return true,
                Some(_) => {}
                None => {
                    for &s in region.inside_successors(b) {
                        if !std::mem::replace(&mut seen[s], true) {
                            work.push((s, 0));
                        }
                    }
                }
            }
        }
        false
    };
    // How often each block runs: as the tier below counted it, else estimated from
    // the loops around it. A block that jumps to itself, an innermost loop, counts 8
    // times more either way: the count stops at the tier-up threshold, and a block
    // that tiered up already (counted as reaching it) may have run far more often.
    let self_loop = |b: usize| u32::from(region.inside_successors(b).contains(&b));
    let weights: Vec<u64> = match region.entries.iter().any(|&e| e > 0) {
        true => region.entries.iter().enumerate().map(|(b, &e)| (u64::from(e) + 1) << (3 * self_loop(b))).collect(),
        false => loop_depths(region, &preds)
            .iter()
            .enumerate()
            .map(|(b, &d)| 1u64 << (3 * (d + self_loop(b)).min(6)))
            .collect(),
    };
    let cost = |plan: &[Vec<Sync>]| plan_cost(region, inline, live_after, forced, plan, &weights);
    let candidates: Vec<(usize, usize)> = (0..n)
        .flat_map(|b| (0..region.blocks[b].len()).map(move |i| (b, i)))
        .filter(|&(b, i)| kinds[b][i] == Kind::Store && load_follows(b, i))
        .collect();
    // Two greedy searches, one from every candidate a checkpoint and one from none,
    // each changing one candidate at a time while that does not cost more: two
    // checkpoints that loads roll back to may each be worth keeping only without the
    // other. The cheaper result wins.
    let search = |start: Sync, other: Sync| {
        let mut plan = plan.clone();
        for &(b, i) in &candidates {
            plan[b][i] = start;
        }
        mark_rollbacks(&kinds, &preds, &mut plan);
        let mut best = cost(&plan);
        for &(b, i) in &candidates {
            plan[b][i] = other;
            mark_rollbacks(&kinds, &preds, &mut plan);
            let c = cost(&plan);
            if c < best || (c == best && other == Sync::Exact) {
                best = c;
            } else {
                plan[b][i] = start;
            }
        }
        mark_rollbacks(&kinds, &preds, &mut plan);
        (best, plan)
    };
    let (from_all, all) = search(Sync::Checkpoint, Sync::Exact);
    let (from_none, none) = search(Sync::Exact, Sync::Checkpoint);
    if from_none <= from_all {
        none
    } else {
        all
    }
}

/// Marks the loads of `plan` that roll back: those where a checkpoint is valid on every
/// path in, given its checkpoint stores. A fixpoint from an optimistic start (the head
/// is also entered from outside, where `Cpu` is exact).
fn mark_rollbacks(kinds: &[Vec<Kind>], preds: &[Vec<usize>], plan: &mut [Vec<Sync>]) {
    let n = kinds.len();
    let step = |valid: bool, kind: Kind, sync: Sync| match kind {
        Kind::Store => sync == Sync::Checkpoint,
        Kind::Barrier => false,
        Kind::Load | Kind::Other => valid,
    };
    let mut valid_out = vec![true; n];
    let mut changed = true;
    while changed {
        changed = false;
        for b in 0..n {
            let valid_in = preds[b].iter().all(|&p| valid_out[p]);
            let out = kinds[b].iter().zip(&plan[b]).fold(valid_in, |v, (&k, &s)| step(v, k, s));
            if out != valid_out[b] {
                valid_out[b] = out;
                changed = true;
            }
        }
    }
    for b in 0..n {
        let mut valid = preds[b].iter().all(|&p| valid_out[p]);
        for (i, &kind) in kinds[b].iter().enumerate() {
            if kind == Kind::Load {
                plan[b][i] = if valid { Sync::Rollback } else { Sync::Exact };
            }
            valid = step(valid, kind, plan[b][i]);
        }
    }
}

/// Per region block: how many of the region's loops (the natural loops of its back
/// edges) contain it.
fn loop_depths(region: &Region, preds: &[Vec<usize>]) -> Vec<u32> {
    let n = region.blocks.len();
    let mut depth = vec![0u32; n];
    for t in 0..n {
        for &h in region.inside_successors(t) {
            if !region.edge(t, region.blocks[h].pc).back {
                continue;
            }
            // The loop of the back edge t -> h: h and what reaches t without passing h.
            let mut body = vec![false; n];
            body[h] = true;
            let mut work = vec![t];
            while let Some(b) = work.pop() {
                if !std::mem::replace(&mut body[b], true) {
                    work.extend(&preds[b]);
                }
            }
            for (d, inside) in depth.iter_mut().zip(body) {
                *d += u32::from(inside);
            }
        }
    }
    depth
}

/// The stores to `Cpu` that `plan` makes before inline accesses, each weighted by its
/// block's weight.
fn plan_cost(
    region: &Region,
    inline: &dyn Fn(u32) -> bool,
    live_after: &[Vec<u32>],
    forced: &HashMap<u32, u32>,
    plan: &[Vec<Sync>],
    weights: &[u64],
) -> u64 {
    let dirty_in = dirty_sets(region, inline, live_after, forced, plan);
    let mut total = 0u64;
    for (b, block) in region.blocks.iter().enumerate() {
        let mut d = dirty_in[b];
        for (i, inst) in block.insts.iter().enumerate() {
            let pc = block.pc_of(i);
            if is_access(inst) && inline(pc) {
                let forced = forced.get(&pc).copied().unwrap_or(0);
                let stores = match plan[b][i] {
                    Sync::Exact => {
                        let keep = kept_dirty(d, live_after[b][i], inst, forced);
                        (d & !keep & !RETIRED_BIT).count_ones() + u32::from(d & forced & RETIRED_BIT != 0)
                    }
                    Sync::Checkpoint => (d & !RETIRED_BIT).count_ones() + 2,
                    Sync::Rollback => 0,
                };
                total += u64::from(stores) * weights[b];
                d = after_sync(d, live_after[b][i], inst, forced, plan[b][i]);
            }
            d |= writes(inst);
        }
    }
    total
}

/// What may be dirty after the sync before an inline access (what it stored is clean).
fn after_sync(dirty: u32, live_after: u32, inst: &Inst, forced: u32, sync: Sync) -> u32 {
    match sync {
        Sync::Exact => kept_dirty(dirty, live_after, inst, forced),
        Sync::Checkpoint => RETIRED_BIT,
        Sync::Rollback => dirty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::decode::decode;
    use crate::jit::block::Block;

    const A0: u32 = 10;
    const A1: u32 = 11;
    const A2: u32 = 12;
    const A3: u32 = 13;

    fn addi(rd: u32, rs1: u32, imm: i32) -> u32 {
        ((imm as u32) << 20) | (rs1 << 15) | (rd << 7) | 0x13
    }

    fn add(rd: u32, rs1: u32, rs2: u32) -> u32 {
        (rs2 << 20) | (rs1 << 15) | (rd << 7) | 0x33
    }

    /// `bne rs1, rs2, -8` (back to the block's start from its third instruction).
    fn bne_back_8(rs1: u32, rs2: u32) -> u32 {
        // imm = -8: imm[12|10:5] = 0b1111111, imm[4:1|11] = 0b11001.
        (0x7f << 25) | (rs2 << 20) | (rs1 << 15) | (1 << 12) | (0x19 << 7) | 0x63
    }

    /// The registers whose value on entry `words` (one region block at 0x1000) may use.
    fn live_on_entry(words: &[u32]) -> u32 {
        let insts: Vec<_> = words.iter().map(|&w| decode(w)).collect();
        let lens = vec![4; insts.len()];
        let region = Region::single(Block::new(0x1000, insts, lens, BlockEnd::Jump, 4));
        let inline = |_: u32| true;
        let live_after = liveness(&region, &inline);
        let forced = HashMap::new();
        let sync = sync_plan(&region, &inline, &live_after, &forced, true);
        entry_live(&region, &dirty_sets(&region, &inline, &live_after, &forced, &sync))
    }

    #[test]
    fn a_register_written_before_any_use_is_not_live_on_entry() {
        // a3 = 7; a1 = a1 + a3; a0 = a2 + 0; then a jump out (jal x0, +64).
        let jal = (32 << 21) | 0x6f;
        let live = live_on_entry(&[addi(A3, 0, 7), add(A1, A1, A3), addi(A0, A2, 0), jal]);
        assert_eq!(live, (1 << A1) | (1 << A2));
    }

    #[test]
    fn a_register_dirty_at_a_loop_head_is_live_on_entry() {
        // The same a3 in a loop: the head's a3 is the entry value on the first
        // iteration and the loop's on later ones, and what is dirty there may be
        // stored or recovered, so the entry value is needed.
        let live = live_on_entry(&[addi(A3, 0, 7), add(A1, A1, A3), bne_back_8(A1, A2)]);
        assert_eq!(live, (1 << A1) | (1 << A2) | (1 << A3));
    }
}
