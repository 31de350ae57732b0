//! The lifter: one region of guest blocks (often a single block) to one Cranelift IR
//! function.
//!
//! A region function takes `*mut Cpu` and uses the `tail` calling convention, so an exit
//! with a known target can continue straight into the next translation through its
//! exit slot (`return_call_indirect`), and an indirect jump can continue through the
//! jump cache. Jumps between the region's blocks are jumps inside the function. Guest
//! registers are SSA values, loaded from `Cpu` on entry, passed between the region's
//! blocks as block parameters, and written back at exits (and
//! before some inline accesses, see below); x0 is the constant 0. The retired count and the
//! budget follow the scheme of [`crate::jit::region`]: a running total added to on
//! edges into join blocks, a budget check on entry and on back edges.
//!
//! Memory accesses are lifted by the state of their access record (see `access`):
//! a profiling call (NAIVE), one inline arena access carrying a trap code
//! (COMMITTED(RAM)), a bounds check plus a direct call of the device's function
//! (COMMITTED(device)), or a generic call (VARIABLE).
//!
//! The invariants that make bailing out and fault recovery possible:
//! - every exit, including the cold exit taken when a helper refuses an access, leaves
//!   `Cpu` exactly as the interpreter would have it before the instruction named by
//!   `cpu.pc` (registers, pc, retired count). A refused access exits with
//!   [`EXIT_STEP`]: the interpreter executes that one instruction, raising the guest
//!   fault (or carrying out the device effect) exactly as it would have;
//! - when an inline access faults, the dispatcher rebuilds the exact state from `Cpu` and
//!   the fault map alone, one of two ways (chosen per access by `super::sync`): the
//!   registers written since they were last stored that it could not find in the
//!   faulting code's host registers and frame are stored to `Cpu` before the access, and
//!   its source location names its guest pc and the instructions retired since the
//!   running total (see [`Site`]); or `Cpu` holds a checkpoint (the state at the
//!   region's entry, or at a store that wrote it there first) with only loads and
//!   register operations since, and the fault resumes there.

use super::sync::{dirty_sets, entry_live, kept_dirty, liveness, reads, sync_plan, writes, Sync, RETIRED_BIT};
use crate::guest::decode::{AluOp, AmoOp, BranchOp, Inst, LoadOp, StoreOp};
use crate::jit::abi::{
    ArgKind, Helper, JumpCacheEntry, EXIT_DISPATCH, EXIT_HOT, EXIT_STEP, HELPERS, JUMP_CACHE_MASK, JUMP_CACHE_SHIFT,
    OFFSET_BUDGET_END, OFFSET_PC, OFFSET_REGS, OFFSET_RETIRED,
};
use crate::jit::access::{AccessState, RegionClass};
use crate::jit::block::BlockEnd;
use crate::jit::codegen::{AccessPlan, Op, Step, MAX_STEPS};
use crate::jit::region::Region;
use crate::memory::Device;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{
    self, AbiParam, ExtFuncData, ExternalName, FuncRef, InstBuilder, MemFlagsData, Signature, SourceLoc, TrapCode,
    UserExternalName, Value,
};
use cranelift_codegen::ir::{BlockArg, ValueLabel};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

/// Everything a lift needs besides the region.
pub struct LiftEnv {
    /// Module function ids of the helpers, indexed by [`Helper::index`].
    pub helper_ids: [u32; HELPERS],
    /// Are helpers within rel32 reach of the code (colocated calls)?
    pub near_calls: bool,
    /// The host calling convention of the helpers.
    pub host_call_conv: CallConv,
    /// Base of the jump cache (entries of [`JumpCacheEntry`]).
    pub jump_cache: u64,
    /// The region's tier-up counter, if it has one (see [`crate::jit::codegen::CompileEnv`]).
    pub hot_counter: Option<u64>,
    /// Where the region stores the target of its closing indirect jump, if anywhere
    /// (see [`crate::jit::codegen::CompileEnv`]).
    pub target_cell: Option<u64>,
    /// Host address of guest address 0.
    pub arena_base: u64,
    /// The target's front-end configuration (for `FunctionBuilder::finalize`).
    pub frontend: TargetFrontendConfig,
    /// Stores may be checkpoints and loads roll back to them (else every inline access
    /// syncs exactly; see [`Sync`]).
    pub checkpoints: bool,
}

/// Distinct user trap codes Cranelift offers (1..=250).
pub const TRAP_CODES: u32 = 250;

/// Trap code of the `k`-th inline access of a function: each access has its own while
/// there are at most [`TRAP_CODES`] of them, so a trap names its access even where
/// instruction selection folded the load into another instruction (whose source
/// location is then not the access's).
pub fn inline_trap_code(k: u32) -> TrapCode {
    TrapCode::user(1 + (k % TRAP_CODES) as u8).expect("a valid user trap code")
}

/// The access number of a trap code made by [`inline_trap_code`], if it is one.
pub fn inline_access_of(code: TrapCode) -> Option<u32> {
    (1..=TRAP_CODES as u8).find(|&n| TrapCode::user(n) == Some(code)).map(|n| u32::from(n) - 1)
}

/// The signature of every block and region function.
pub fn block_signature() -> Signature {
    let mut sig = Signature::new(CallConv::Tail);
    sig.params.push(AbiParam::new(I64));
    sig.returns.push(AbiParam::new(I64));
    sig
}

/// The Cranelift signature of a helper, in the host's calling convention.
pub fn helper_signature(h: Helper, cc: CallConv) -> Signature {
    let ty = |k: ArgKind| match k {
        ArgKind::U64 => I64,
        ArgKind::U32 => I32,
    };
    let mut sig = Signature::new(cc);
    sig.params.extend(h.params().iter().map(|&k| AbiParam::new(ty(k))));
    sig.returns.push(AbiParam::new(ty(h.result())));
    sig
}

fn trusted() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// The shape of one guest access.
#[derive(Clone, Copy)]
enum Access {
    Load { rd: u8, width: usize, signed: bool },
    Store { width: usize, value: Value },
}

/// What the source location of an instruction stands for: its guest pc and the
/// instructions retired before it since the running total was last stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Site {
    pub pc: u32,
    pub retired: u32,
}

/// Index of the running retired total among the current labels (guest registers are
/// 1..=31).
const TOTAL: usize = 32;

/// At an inline access (the source location `site`): the dirty guest registers (bit `r`;
/// [`RETIRED_BIT`] for the running total) the code did not store before it, the value
/// label of each one's current value (every SSA value a guest register takes gets a
/// label of its own, so a location found for it is that value's, never an older one's),
/// and those that are constants. For a register whose value is computed from another
/// value by operations with constants, also that value's label and the operations: the
/// optimizer may compute the register's value after the access, or fold it into its
/// uses, while the value it comes from is still kept; else, for one operation of two
/// values, their labels and the operation.
#[derive(Clone, Debug)]
pub struct Recovery {
    pub site: u32,
    pub regs: u32,
    pub labels: Vec<(u8, u32)>,
    pub consts: Vec<(u8, u32)>,
    pub chains: Vec<(u8, u32, Vec<Step>)>,
    /// Registers computed by one operation from two kept values: (register, the first
    /// value's label, the operation, the second value's label).
    pub pairs: Vec<(u8, u32, Op, u32)>,
    /// `Cpu` holds the state at the last checkpoint and the fault resumes there (see
    /// [`Sync::Rollback`]); nothing else is recovered.
    pub rollback: bool,
}

impl Recovery {
    fn rollback(site: u32) -> Recovery {
        Recovery {
            site,
            regs: 0,
            labels: Vec::new(),
            consts: Vec::new(),
            chains: Vec::new(),
            pairs: Vec::new(),
            rollback: true,
        }
    }
}

/// The 32-bit operation a Cranelift opcode computes, for recovering a value at a fault.
fn op_of(opcode: ir::Opcode) -> Option<Op> {
    use ir::Opcode as O;
    Some(match opcode {
        O::Iadd => Op::Add,
        O::Isub => Op::Sub,
        O::Imul => Op::Mul,
        O::Band => Op::And,
        O::Bor => Op::Or,
        O::Bxor => Op::Xor,
        O::Ishl => Op::Shl,
        O::Ushr => Op::Shr,
        O::Sshr => Op::Sar,
        _ => return None,
    })
}

/// A lifted region: the sites its source locations index, and what the fault path must
/// recover at each inline access.
pub struct Lifted {
    pub sites: Vec<Site>,
    /// Is the running total counted from `budget_end` (see [`Lifter::below_end`])? Its
    /// recovered value is then `cpu.retired - cpu.budget_end`.
    pub below_end: bool,
    pub recoveries: Vec<Recovery>,
    /// The site of each inline access, by access number (see [`inline_trap_code`]).
    pub access_sites: Vec<u32>,
}

/// Lifting state for one region.
struct Lifter<'a, 'b> {
    b: FunctionBuilder<'a>,
    env: &'b LiftEnv,
    region: &'b Region,
    /// The region block being lifted, and its Cranelift blocks.
    cur: usize,
    blocks: Vec<ir::Block>,
    cpu: Value,
    /// The running retired total: the count itself, or (see `below_end`) the count
    /// minus `budget_end`.
    total: Value,
    /// Where nothing in the region can change `budget_end` (no access profiles), the
    /// running total counts from it: a negative number that a back edge compares with
    /// the constant `-stretch`, with no bound to load or hold in a register; what stores
    /// the count to `Cpu` adds `budget_end` back. Elsewhere it is the count, and back
    /// edges load `budget_end` again.
    below_end: bool,
    /// Current value of each guest register the region uses (x0 and unused: None).
    vals: [Option<Value>; 32],
    /// Per region block: the registers passed to it as parameters (after the running
    /// total), or `None` for a block with one edge into it, which continues with the
    /// values its predecessor had (see [`block_parameters`]).
    params: Vec<Option<Vec<u8>>>,
    /// Per region block: its immediate dominator (see [`block_parameters`]).
    idom: Vec<Option<usize>>,
    /// Per region block with one edge into it: the state at that edge.
    entry_state: Vec<Option<EdgeState>>,
    /// Per region block: the state at its end (where its edges leave).
    end_state: Vec<Option<EdgeState>>,
    /// The state on entry to the region.
    entry: Option<EdgeState>,
    /// Registers it only reads that are loaded where used (a mask): `Cpu` holds their
    /// values throughout, and x86 folds such a load into the instruction that uses it.
    /// Only when the region uses more than [`MAX_RESIDENT`] registers: below that, each
    /// is loaded once on entry and kept.
    load_at_use: u32,
    /// Registers and sites at inline accesses whose values the fault path recovers
    /// from the machine state (see [`Recovery`]).
    recoveries: Vec<Recovery>,
    /// The site of each inline access, in the order of their trap codes.
    access_sites: Vec<u32>,
    /// The value label of each guest register's current value ([`TOTAL`]: the total).
    labels: [u32; 33],
    next_label: u32,
    /// Per inline access pc: dirty registers (and [`RETIRED_BIT`]) to store before it
    /// even where the fault path could recover them.
    forced: &'b std::collections::HashMap<u32, u32>,
    /// Per region block and instruction: the guest registers live after it.
    live_after: Vec<Vec<u32>>,
    /// Per region block and instruction: how an inline access there syncs.
    sync: Vec<Vec<Sync>>,
    /// Registers (and [`RETIRED_BIT`]) written since they were last stored to `Cpu`.
    dirty: u32,
    /// Per region block: what may be dirty when it starts.
    dirty_in: Vec<u32>,
    /// Plans of the region's accesses, by pc.
    plans: std::collections::HashMap<u32, AccessPlan>,
    /// Helpers imported into this function so far (imported on first use).
    helpers: [Option<FuncRef>; HELPERS],
    tail_sig: ir::SigRef,
    slot_for: &'b mut dyn FnMut(u32) -> u64,
    sites: Vec<Site>,
}

/// Most guest registers a region keeps as values in host registers (x86-64 has 16;
/// the stack and frame pointers and `Cpu` take three, and the code needs temporaries).
const MAX_RESIDENT: u32 = 10;

/// The values guest registers have on an edge into a block without parameters.
#[derive(Clone, Copy)]
struct EdgeState {
    vals: [Option<Value>; 32],
    labels: [u32; 33],
    total: Value,
}

/// How region blocks are lifted: in `order`; per block the registers (of `used`, the
/// registers the region writes) it takes as parameters, or `None` for a block with one
/// edge into it, which continues with its predecessor's values; and per block its
/// immediate dominator (`None` for the head and blocks the head does not reach).
///
/// Joins (the head when something jumps back to it, and blocks with two or more edges
/// in) take the running total and the registers that can arrive with different values:
/// those whose writes have the join in their iterated dominance frontier. Every other
/// register has there the value it had at the end of the join's immediate dominator.
/// So no parameter always receives the same value: Cranelift would remove it, and with
/// it the value label the fault path looks for.
struct BlockParams {
    order: Vec<usize>,
    params: Vec<Option<Vec<u8>>>,
    idom: Vec<Option<usize>>,
}

fn block_parameters(region: &Region, used: &[u8]) -> BlockParams {
    let n = region.blocks.len();
    let succ: Vec<&[usize]> = (0..n).map(|b| region.inside_successors(b)).collect();
    // Breadth first from the head: dominators, and the one predecessor of a block with
    // one edge in, come before the block.
    let mut order = vec![0usize];
    let mut reached = vec![false; n];
    reached[0] = true;
    let mut at = 0;
    while at < order.len() {
        for &s in succ[order[at]] {
            if !reached[s] {
                reached[s] = true;
                order.push(s);
            }
        }
        at += 1;
    }
    let mut preds = vec![Vec::new(); n];
    for b in order.iter().copied() {
        for &s in succ[b] {
            preds[s].push(b);
        }
    }
    // Dominator sets (regions are small), then immediate dominators.
    let mut dom: Vec<Vec<bool>> = (0..n).map(|b| (0..n).map(|d| b != 0 || d == 0).collect()).collect();
    let mut changed = true;
    while changed {
        changed = false;
        for &b in &order[1..] {
            let mut d: Vec<bool> = (0..n).map(|x| preds[b].iter().all(|&p| dom[p][x])).collect();
            d[b] = true;
            if d != dom[b] {
                dom[b] = d;
                changed = true;
            }
        }
    }
    let depth = |b: usize| dom[b].iter().filter(|&&x| x).count();
    let idom: Vec<Option<usize>> = (0..n)
        .map(|b| {
            (reached[b] && b != 0).then(|| (0..n).filter(|&d| d != b && dom[b][d]).max_by_key(|&d| depth(d))).flatten()
        })
        .collect();
    // Dominance frontiers; the head's entry counts as one more edge into it.
    let mut frontier = vec![Vec::new(); n];
    for &b in &order {
        let edges_in = preds[b].len() + usize::from(b == 0);
        if edges_in < 2 {
            continue;
        }
        for &p in &preds[b] {
            let mut runner = Some(p);
            while let Some(x) = runner {
                if Some(x) == idom[b] {
                    break;
                }
                if !frontier[x].contains(&b) {
                    frontier[x].push(b);
                }
                runner = idom[x];
            }
        }
    }
    // Per register, the joins in the iterated frontier of the blocks that write it.
    let block_writes: Vec<u32> =
        region.blocks.iter().map(|b| b.insts.iter().fold(0u32, |acc, i| acc | writes(i))).collect();
    let mut phis = vec![0u32; n];
    for &r in used {
        let bit = 1u32 << r;
        let mut work: Vec<usize> = order.iter().copied().filter(|&b| block_writes[b] & bit != 0).collect();
        while let Some(x) = work.pop() {
            for &y in &frontier[x] {
                if phis[y] & bit == 0 {
                    phis[y] |= bit;
                    work.push(y);
                }
            }
        }
    }
    order.extend((0..n).filter(|&b| !reached[b]));
    let params = (0..n)
        .map(|b| {
            if !reached[b] {
                Some(used.to_vec())
            } else if region.join[b] {
                Some(used.iter().copied().filter(|&r| phis[b] & (1 << r) != 0).collect())
            } else {
                None
            }
        })
        .collect();
    BlockParams { order, params, idom }
}

/// Loads guest register `r` from `Cpu`.
fn load_reg(b: &mut FunctionBuilder, cpu: Value, r: u8) -> Value {
    b.ins().load(I32, trusted(), cpu, OFFSET_REGS + 4 * i32::from(r))
}

/// Builds the IR of `region` into `func` (whose signature must be [`block_signature`]).
/// `slot_for(target)` returns the address of the exit slot to chain through for a
/// jump to `target`; `plan_for(pc)` says how to perform the access at `pc`. With
/// `forced` (per access pc), dirty registers are stored before inline accesses even
/// where the fault path could find them; otherwise only those it cannot recover (see
/// [`Recovery`]) are.
pub fn lift_region(
    func: &mut ir::Function,
    fctx: &mut FunctionBuilderContext,
    region: &Region,
    env: &LiftEnv,
    slot_for: &mut dyn FnMut(u32) -> u64,
    plan_for: &mut dyn FnMut(u32) -> AccessPlan,
    forced: &std::collections::HashMap<u32, u32>,
) -> Lifted {
    func.dfg.collect_debug_info();
    let tail_sig = func.import_signature(block_signature());
    let plans: std::collections::HashMap<u32, AccessPlan> =
        region.access_pcs().into_iter().map(|pc| (pc, plan_for(pc))).collect();
    let inline = |pc: u32| matches!(plans.get(&pc), Some(p) if p.state == AccessState::Committed(RegionClass::Ram));
    let live_after = liveness(region, &inline);
    let sync = sync_plan(region, &inline, &live_after, forced, env.checkpoints);
    let dirty_in = dirty_sets(region, &inline, &live_after, forced, &sync);

    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let cpu = b.block_params(entry)[0];
    let head_pc = region.head().pc;

    // Budget check: return to the dispatcher (pc is already the head's) when the longest
    // stretch before the next check could pass `budget_end`.
    b.set_srcloc(SourceLoc::new(0));
    let retired0 = b.ins().load(I64, trusted(), cpu, OFFSET_RETIRED);
    let budget_end = b.ins().load(I64, trusted(), cpu, OFFSET_BUDGET_END);
    let after = b.ins().iadd_imm_s(retired0, i64::from(region.stretch[0]));
    let over = b.ins().icmp(IntCC::UnsignedGreaterThan, after, budget_end);
    let out_of_budget = b.create_block();
    let body = b.create_block();
    b.set_cold_block(out_of_budget);
    b.ins().brif(over, out_of_budget, &[], body, &[]);
    b.switch_to_block(out_of_budget);
    let code = b.ins().iconst(I64, EXIT_DISPATCH);
    b.ins().return_(&[code]);
    b.switch_to_block(body);

    if let Some(counter) = env.hot_counter {
        // Tier-up counter: at zero, hand the region to the next tier before running it.
        let addr = b.ins().iconst(I64, counter as i64);
        let n = b.ins().load(I32, trusted(), addr, 0);
        let n = b.ins().iadd_imm_s(n, -1);
        b.ins().store(trusted(), n, addr, 0);
        let hot = b.create_block();
        let run = b.create_block();
        b.set_cold_block(hot);
        b.ins().brif(n, run, &[], hot, &[]);
        b.switch_to_block(hot);
        let code = b.ins().iconst(I64, EXIT_HOT);
        b.ins().return_(&[code]);
        b.switch_to_block(run);
    }

    // Every register the region writes is loaded once, on entry, and passed between
    // its blocks (see `block_parameters`); those it only reads are loaded on entry too,
    // or where used. A register whose value on entry nothing can use (written first on
    // every path, see `entry_live`) starts as a constant instead of a load.
    let insts = || region.blocks.iter().flat_map(|bl| bl.insts.iter());
    let mask = insts().fold(0u32, |acc, i| acc | reads(i) | writes(i));
    let written = insts().fold(0u32, |acc, i| acc | writes(i));
    // With more guest registers than the host can hold, those the region only reads
    // are loaded where used rather than held (and spilled) across the whole region.
    let load_at_use = if (mask & !1).count_ones() > MAX_RESIDENT { mask & !written & !1 } else { 0 };
    let live = entry_live(region, &dirty_in);
    let on_entry: Vec<(u8, Value)> = (1..32u8)
        .filter(|r| mask & !load_at_use & (1 << r) != 0)
        .map(|r| (r, if live & (1 << r) != 0 { load_reg(&mut b, cpu, r) } else { b.ins().iconst(I32, 0) }))
        .collect();
    let used: Vec<u8> = (1..32u8).filter(|r| written & (1 << r) != 0).collect();
    let BlockParams { order, params, idom } = block_parameters(region, &used);
    // Only the profiling helpers change `budget_end` while translated code runs. Counts
    // stay far below 2^63, so the difference and signed compares with it are exact.
    let below_end = plans.values().all(|p| !p.state.profiles());
    let total = if below_end { b.ins().isub(retired0, budget_end) } else { retired0 };
    let blocks: Vec<ir::Block> = params
        .iter()
        .map(|p| {
            let blk = b.create_block();
            if let Some(regs) = p {
                b.append_block_param(blk, I64);
                for _ in regs {
                    b.append_block_param(blk, I32);
                }
            }
            blk
        })
        .collect();

    let mut l = Lifter {
        b,
        env,
        region,
        cur: 0,
        blocks,
        cpu,
        total,
        below_end,
        vals: [None; 32],
        params,
        idom,
        entry_state: vec![None; region.blocks.len()],
        end_state: vec![None; region.blocks.len()],
        entry: None,
        load_at_use,
        recoveries: Vec::new(),
        access_sites: Vec::new(),
        labels: [0; 33],
        next_label: 0,
        forced,
        live_after,
        sync,
        dirty: 0,
        dirty_in,
        plans,
        helpers: [None; HELPERS],
        tail_sig,
        slot_for,
        sites: vec![Site { pc: head_pc, retired: 0 }],
    };
    // The entry: into the head's parameters, or (when nothing in the region jumps back
    // to it) straight on with the values just loaded.
    for &(r, v) in &on_entry {
        l.vals[r as usize] = Some(v);
        if written & (1 << r) != 0 {
            l.label(usize::from(r), v);
        }
    }
    l.label(TOTAL, total);
    l.entry = Some(l.state());
    let args = l.pass_to(0);
    l.b.ins().jump(l.blocks[0], &args);
    for cur in order {
        l.cur = cur;
        l.dirty = l.dirty_in[cur];
        l.b.switch_to_block(l.blocks[cur]);
        l.enter_block(cur);
        let block = &region.blocks[cur];
        for (i, inst) in block.insts.iter().enumerate() {
            let site = Site { pc: block.pc_of(i), retired: region.pending[cur] + i as u32 };
            l.b.set_srcloc(SourceLoc::new(l.sites.len() as u32));
            l.sites.push(site);
            l.lift(i, *inst);
        }
        match block.end {
            BlockEnd::Jump => {}
            BlockEnd::Cap => l.edge(block.next_pc(), block.len()),
            BlockEnd::Runtime => {
                let pc = l.iconst(block.next_pc());
                l.exit_return(pc, block.len(), EXIT_DISPATCH);
            }
        }
    }
    l.b.seal_all_blocks();
    l.b.finalize(env.frontend);
    Lifted { sites: l.sites, below_end: l.below_end, recoveries: l.recoveries, access_sites: l.access_sites }
}

impl Lifter<'_, '_> {
    /// The block being lifted.
    fn block(&self) -> &crate::jit::block::Block {
        &self.region.blocks[self.cur]
    }

    /// Takes the current values from the parameters of region block `b`, or from the
    /// one edge into it.
    fn enter_block(&mut self, b: usize) {
        match self.params[b].clone() {
            Some(regs) => {
                // Registers without a parameter have their values from the end of the
                // immediate dominator (the entry's, for the head).
                let base = match self.idom[b] {
                    Some(d) => self.end_state[d],
                    None => self.entry,
                }
                .expect("a dominator is lifted before the blocks it dominates");
                self.vals = base.vals;
                self.labels = base.labels;
                let params = self.b.block_params(self.blocks[b]).to_vec();
                self.total = params[0];
                self.label(TOTAL, self.total);
                for (k, &r) in regs.iter().enumerate() {
                    self.vals[r as usize] = Some(params[k + 1]);
                    self.label(usize::from(r), params[k + 1]);
                }
            }
            None => {
                let state = self.entry_state[b].expect("a block with one edge in is lifted after its predecessor");
                self.vals = state.vals;
                self.labels = state.labels;
                self.total = state.total;
            }
        }
    }

    /// Gives `v`, the new value of guest register `r` (or [`TOTAL`]), a label of its own.
    fn label(&mut self, r: usize, v: Value) {
        self.labels[r] = self.next_label;
        self.b.set_val_label(v, ValueLabel::from_u32(self.next_label));
        self.next_label += 1;
    }

    /// Arguments for a jump to region block `s`: the running total and its registers;
    /// for a block without parameters, none (its state is recorded for it instead).
    fn pass_to(&mut self, s: usize) -> Vec<BlockArg> {
        match &self.params[s] {
            Some(regs) => {
                let mut args: Vec<BlockArg> = vec![self.total.into()];
                args.extend(regs.iter().map(|&r| BlockArg::from(self.vals[r as usize].expect("used register"))));
                args
            }
            None => {
                self.entry_state[s] = Some(self.state());
                Vec::new()
            }
        }
    }

    /// The current values (for a block entered by one edge, or dominated by this one).
    fn state(&self) -> EdgeState {
        EdgeState { vals: self.vals, labels: self.labels, total: self.total }
    }

    fn reg(&mut self, r: u8) -> Value {
        if self.load_at_use & (1 << r) != 0 {
            return load_reg(&mut self.b, self.cpu, r);
        }
        match self.vals[r as usize] {
            Some(v) if r != 0 => v,
            _ => self.b.ins().iconst(I32, 0),
        }
    }

    fn set_reg(&mut self, r: u8, v: Value) {
        if r == 0 {
            return;
        }
        self.vals[r as usize] = Some(v);
        self.label(usize::from(r), v);
        self.dirty |= 1 << r;
    }

    fn iconst(&mut self, v: u32) -> Value {
        self.b.ins().iconst(I32, i64::from(v as i32))
    }

    fn call(&mut self, helper: Helper, args: &[Value]) -> Value {
        let func = match self.helpers[helper.index()] {
            Some(f) => f,
            None => {
                let signature = self.b.import_signature(helper_signature(helper, self.env.host_call_conv));
                let name = self
                    .b
                    .func
                    .declare_imported_user_function(UserExternalName::new(0, self.env.helper_ids[helper.index()]));
                let f = self.b.import_function(ExtFuncData {
                    name: ExternalName::user(name),
                    signature,
                    colocated: self.env.near_calls,
                    patchable: false,
                });
                self.helpers[helper.index()] = Some(f);
                f
            }
        };
        let call = self.b.ins().call(func, args);
        self.b.inst_results(call)[0]
    }

    /// Stores the registers written since their last store (not the running total).
    fn store_dirty(&mut self) {
        for r in 1..32u8 {
            if self.dirty & (1 << r) != 0 {
                let v = self.reg(r);
                self.b.ins().store(trusted(), v, self.cpu, OFFSET_REGS + 4 * i32::from(r));
            }
        }
    }

    /// Before the inline access at instruction `i` (which writes `rd`, if a load): stores
    /// the dirty registers the fault path could not recover, and records where it finds
    /// the others. Recoverable: a register live after the access (its value stays in a
    /// host register or stack slot until then) other than the access's own destination,
    /// or a constant; and the running total.
    fn sync_for_access(&mut self, i: usize, inst: &Inst) {
        let pc = self.block().pc_of(i);
        let forced = self.forced.get(&pc).copied().unwrap_or(0);
        let keep = kept_dirty(self.dirty, self.live_after[self.cur][i], inst, forced);
        if forced & RETIRED_BIT != 0 && self.dirty & RETIRED_BIT != 0 {
            let total = self.total;
            self.store_retired(total);
        }
        let (mut consts, mut chains, mut pairs) = (Vec::new(), Vec::new(), Vec::new());
        for r in 1..32u8 {
            if keep & (1 << r) != 0 {
                let v = self.reg(r);
                if let Some(c) = self.const_of(v) {
                    consts.push((r, c));
                } else if let Some((leaf, steps)) = self.chain_of(v) {
                    let label = self.next_label;
                    self.b.set_val_label(leaf, ValueLabel::from_u32(label));
                    self.next_label += 1;
                    chains.push((r, label, steps));
                } else if let Some((x, op, y)) = self.pair_of(v) {
                    let label = self.next_label;
                    self.b.set_val_label(x, ValueLabel::from_u32(label));
                    self.b.set_val_label(y, ValueLabel::from_u32(label + 1));
                    self.next_label += 2;
                    pairs.push((r, label, op, label + 1));
                }
            }
        }
        let store = self.dirty & !keep & !RETIRED_BIT;
        self.dirty &= !(forced & RETIRED_BIT);
        for r in 1..32u8 {
            if store & (1 << r) != 0 {
                let v = self.reg(r);
                self.b.ins().store(trusted(), v, self.cpu, OFFSET_REGS + 4 * i32::from(r));
            }
        }
        self.dirty &= !store;
        let site = self.sites.len() as u32 - 1;
        let labels = (0..32u8)
            .filter(|r| keep & (1 << r) != 0)
            .map(|r| (r, self.labels[if r == 0 { TOTAL } else { usize::from(r) }]))
            .collect();
        self.recoveries.push(Recovery { site, regs: keep, labels, consts, chains, pairs, rollback: false });
    }

    /// Before the store at instruction `i`: writes every dirty register, its pc and the
    /// retired count to `Cpu`, which then holds the exact state there until a barrier
    /// (see [`sync_plan`]). The running total is marked dirty: `Cpu` now counts past it.
    fn checkpoint(&mut self, i: usize) {
        let pc = self.iconst(self.block().pc_of(i));
        self.write_back(pc, i);
        self.dirty = RETIRED_BIT;
        self.roll_back_to_checkpoint();
    }

    /// The fault at the current inline access resumes at the last checkpoint.
    fn roll_back_to_checkpoint(&mut self) {
        let site = self.sites.len() as u32 - 1;
        self.recoveries.push(Recovery::rollback(site));
    }

    /// Flags of an inline access at the current instruction: a trap code of its own (see
    /// [`inline_trap_code`]).
    fn inline_flags(&mut self) -> MemFlagsData {
        let site = self.sites.len() as u32 - 1;
        let code = inline_trap_code(self.access_sites.len() as u32);
        self.access_sites.push(site);
        MemFlagsData::new().with_trap_code(Some(code))
    }

    /// Flags of an inline store: [`Lifter::inline_flags`], little-endian spelled out.
    /// Cranelift drops a store of the value a load just read from the same place (an
    /// "idempotent store"), but a guest store to a read-only page (text) must fault.
    /// Its alias analysis only matches accesses of the same byte order, so no load
    /// (native order) makes a store (explicitly little-endian, the same bytes on x86)
    /// look idempotent; a store still makes a later identical store idempotent, which
    /// is right (the first one did not fault).
    fn inline_store_flags(&mut self) -> MemFlagsData {
        self.inline_flags().with_endianness(ir::Endianness::Little)
    }

    /// `v` as up to [`MAX_STEPS`] operations with constants applied to another 32-bit
    /// value (the leaf), innermost first; `None` when `v` is not such an operation.
    fn chain_of(&self, v: Value) -> Option<(Value, Vec<Step>)> {
        use ir::{InstructionData as D, Opcode as O};
        let dfg = &self.b.func.dfg;
        let mut steps = Vec::new();
        let mut cur = v;
        while steps.len() < MAX_STEPS {
            let Some(inst) = dfg.value_def(cur).inst() else { break };
            let (op, x, c) = match dfg.insts[inst] {
                D::Binary { opcode, args: [a, b] } => match (self.const_of(a), self.const_of(b)) {
                    (_, Some(c)) => (opcode, a, c),
                    (Some(c), None) if matches!(opcode, O::Iadd | O::Imul | O::Band | O::Bor | O::Bxor) => {
                        (opcode, b, c)
                    }
                    _ => break,
                },
                _ => break,
            };
            let step = match op_of(op) {
                Some(Op::Add) => Step::Add(c),
                Some(Op::Sub) => Step::Add(c.wrapping_neg()),
                Some(Op::Mul) => Step::Mul(c),
                Some(Op::And) => Step::And(c),
                Some(Op::Or) => Step::Or(c),
                Some(Op::Xor) => Step::Xor(c),
                Some(Op::Shl) => Step::Shl(c),
                Some(Op::Shr) => Step::Shr(c),
                Some(Op::Sar) => Step::Sar(c),
                None => break,
            };
            if dfg.value_type(x) != I32 || dfg.value_type(cur) != I32 {
                break;
            }
            steps.push(step);
            cur = x;
        }
        if steps.is_empty() || self.const_of(cur).is_some() {
            return None;
        }
        steps.reverse();
        Some((cur, steps))
    }

    /// `v` as one operation of two values that are not constants (see `chain_of` for
    /// those with a constant), each of which the code may keep when `v` is not.
    fn pair_of(&self, v: Value) -> Option<(Value, Op, Value)> {
        let dfg = &self.b.func.dfg;
        let inst = dfg.value_def(v).inst()?;
        let ir::InstructionData::Binary { opcode, args: [x, y] } = dfg.insts[inst] else { return None };
        let op = op_of(opcode)?;
        let fits = [v, x, y].iter().all(|&w| dfg.value_type(w) == I32 && self.const_of(w).is_none());
        fits.then_some((x, op, y))
    }

    /// The value of `v` if it is a constant.
    fn const_of(&self, v: Value) -> Option<u32> {
        let inst = self.b.func.dfg.value_def(v).inst()?;
        match self.b.func.dfg.insts[inst] {
            ir::InstructionData::UnaryImm { opcode: ir::Opcode::Iconst, imm } => Some(imm.bits() as u32),
            _ => None,
        }
    }

    /// The retired count after `executed` instructions of the current block.
    fn retired_after(&mut self, executed: usize) -> Value {
        let total = self.total;
        let delta = i64::from(self.region.pending[self.cur]) + executed as i64;
        if delta == 0 {
            total
        } else {
            self.b.ins().iadd_imm_s(total, delta)
        }
    }

    /// Stores registers, pc and the retired count (`executed` instructions of the
    /// current block have retired). Leaves `dirty` alone: exits are ends of paths.
    fn write_back(&mut self, pc: Value, executed: usize) {
        self.store_dirty();
        self.b.ins().store(trusted(), pc, self.cpu, OFFSET_PC);
        let retired = self.retired_after(executed);
        self.store_retired(retired);
    }

    /// Stores the running total `total` (or a count derived from it) as `cpu.retired`.
    fn store_retired(&mut self, total: Value) {
        let count = match self.below_end {
            true => {
                let budget_end = self.b.ins().load(I64, trusted(), self.cpu, OFFSET_BUDGET_END);
                self.b.ins().iadd(total, budget_end)
            }
            false => total,
        };
        self.b.ins().store(trusted(), count, self.cpu, OFFSET_RETIRED);
    }

    /// Leaves the region for the dispatcher with `code`.
    fn exit_return(&mut self, pc: Value, executed: usize, code: i64) {
        self.write_back(pc, executed);
        let code = self.b.ins().iconst(I64, code);
        self.b.ins().return_(&[code]);
    }

    /// Continues at a known target through its exit slot.
    fn exit_chain(&mut self, target: u32, executed: usize) {
        let pc = self.iconst(target);
        self.write_back(pc, executed);
        let slot = (self.slot_for)(target);
        let slot = self.b.ins().iconst(I64, slot as i64);
        let code = self.b.ins().load(I64, trusted(), slot, 0);
        let cpu = self.cpu;
        self.b.ins().return_call_indirect(self.tail_sig, code, &[cpu]);
    }

    /// Continues at `target` after `executed` instructions of the current block: a jump
    /// inside the region (bringing the running total up to date on edges into joins,
    /// checking the budget on back edges), or an exit through its slot.
    fn edge(&mut self, target: u32, executed: usize) {
        let e = self.region.edge(self.cur, target);
        let Some(s) = e.inside else {
            self.exit_chain(target, executed);
            return;
        };
        if self.end_state[self.cur].is_none() {
            self.end_state[self.cur] = Some(self.state());
        }
        let saved_total = self.total;
        if self.region.join[s] {
            self.total = self.retired_after(executed);
            self.dirty |= RETIRED_BIT;
        }
        let args = self.pass_to(s);
        if e.back {
            // Leave for the dispatcher (at the target's start) when the stretch from the
            // target could pass the budget, or a helper asked for the dispatcher.
            let total = self.total;
            let stretch = i64::from(self.region.stretch[s]);
            let over = match self.below_end {
                // total - budget_end > -stretch
                true => self.b.ins().icmp_imm_s(IntCC::SignedGreaterThan, total, -stretch),
                false => {
                    let budget_end = self.b.ins().load(I64, trusted(), self.cpu, OFFSET_BUDGET_END);
                    let after = self.b.ins().iadd_imm_s(total, stretch);
                    self.b.ins().icmp(IntCC::UnsignedGreaterThan, after, budget_end)
                }
            };
            let out = self.b.create_block();
            self.b.set_cold_block(out);
            self.b.ins().brif(over, out, &[], self.blocks[s], &args);
            self.b.switch_to_block(out);
            // The running total is the count at the target's start (it is a join).
            self.store_dirty();
            let pc = self.iconst(target);
            self.b.ins().store(trusted(), pc, self.cpu, OFFSET_PC);
            let total = self.total;
            self.store_retired(total);
            let code = self.b.ins().iconst(I64, EXIT_DISPATCH);
            self.b.ins().return_(&[code]);
        } else {
            self.b.ins().jump(self.blocks[s], &args);
        }
        // Other paths out of the current block continue with the total they had.
        self.total = saved_total;
    }

    /// Continues at a computed target through the jump cache, or the dispatcher.
    fn exit_indirect(&mut self, target: Value, executed: usize) {
        self.write_back(target, executed);
        let idx = self.b.ins().ushr_imm_s(target, i64::from(JUMP_CACHE_SHIFT));
        let idx = self.b.ins().band_imm_s(idx, i64::from(JUMP_CACHE_MASK));
        let idx = self.b.ins().uextend(I64, idx);
        let off = self.b.ins().ishl_imm_s(idx, i64::from(JumpCacheEntry::SIZE_SHIFT));
        let entry = self.b.ins().iadd_imm_s(off, self.env.jump_cache as i64);
        let cached = self.b.ins().load(I64, trusted(), entry, 0);
        let target64 = self.b.ins().uextend(I64, target);
        let hit = self.b.ins().icmp(IntCC::Equal, cached, target64);
        let hit_block = self.b.create_block();
        let miss_block = self.b.create_block();
        self.b.ins().brif(hit, hit_block, &[], miss_block, &[]);
        self.b.switch_to_block(hit_block);
        self.b.seal_block(hit_block);
        let code = self.b.ins().load(I64, trusted(), entry, 8);
        let cpu = self.cpu;
        self.b.ins().return_call_indirect(self.tail_sig, code, &[cpu]);
        self.b.switch_to_block(miss_block);
        self.b.seal_block(miss_block);
        let code = self.b.ins().iconst(I64, EXIT_DISPATCH);
        self.b.ins().return_(&[code]);
    }

    /// Branches to a cold exit that hands instruction `i` to the interpreter when
    /// `cond` is true; continues in a fresh block otherwise.
    fn step_if(&mut self, cond: Value, i: usize) {
        let cold = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(cold);
        self.b.ins().brif(cond, cold, &[], cont, &[]);
        self.b.switch_to_block(cold);
        let pc = self.iconst(self.block().pc_of(i));
        self.exit_return(pc, i, EXIT_STEP);
        self.b.switch_to_block(cont);
    }

    /// A helper call for the access (generic or profiling): on refusal, the interpreter
    /// takes over at instruction `i`. Returns the loaded value (zero-extended).
    fn access_call(&mut self, i: usize, access: Access, addr: Value, record: Option<u64>) -> Option<Value> {
        let cpu = self.cpu;
        let rec = record.map(|r| self.b.ins().iconst(I64, r as i64));
        match access {
            Access::Load { width, .. } => {
                let result = match rec {
                    Some(rec) => self.call(Helper::ProfileLoad(width), &[cpu, addr, rec]),
                    None => self.call(Helper::Load(width), &[cpu, addr]),
                };
                let refused = self.b.ins().ushr_imm_s(result, 32);
                self.step_if(refused, i);
                Some(self.b.ins().ireduce(I32, result))
            }
            Access::Store { width, value } => {
                let refused = match rec {
                    Some(rec) => self.call(Helper::ProfileStore(width), &[cpu, addr, value, rec]),
                    None => self.call(Helper::Store(width), &[cpu, addr, value]),
                };
                self.step_if(refused, i);
                None
            }
        }
    }

    /// One inline access to `arena_base + zext(addr)`, marked with the inline trap code.
    fn access_inline(&mut self, i: usize, access: Access, addr: Value) -> Option<Value> {
        let inst = self.block().insts[i];
        match self.sync[self.cur][i] {
            Sync::Exact => self.sync_for_access(i, &inst),
            Sync::Checkpoint => self.checkpoint(i),
            Sync::Rollback => self.roll_back_to_checkpoint(),
        }
        let addr64 = self.b.ins().uextend(I64, addr);
        let host = self.b.ins().iadd_imm_s(addr64, self.env.arena_base as i64);
        let flags = match access {
            Access::Load { .. } => self.inline_flags(),
            Access::Store { .. } => self.inline_store_flags(),
        };
        let ins = self.b.ins();
        match access {
            Access::Load { width: 0, signed: true, .. } => Some(ins.sload8(I32, flags, host, 0)),
            Access::Load { width: 0, signed: false, .. } => Some(ins.uload8(I32, flags, host, 0)),
            Access::Load { width: 1, signed: true, .. } => Some(ins.sload16(I32, flags, host, 0)),
            Access::Load { width: 1, signed: false, .. } => Some(ins.uload16(I32, flags, host, 0)),
            Access::Load { .. } => Some(ins.load(I32, flags, host, 0)),
            Access::Store { width: 0, value } => {
                ins.istore8(flags, value, host, 0);
                None
            }
            Access::Store { width: 1, value } => {
                ins.istore16(flags, value, host, 0);
                None
            }
            Access::Store { value, .. } => {
                ins.store(flags, value, host, 0);
                None
            }
        }
    }

    /// COMMITTED(device): inside the device, a direct call of its function; outside,
    /// the profiling helper (which makes the access VARIABLE).
    fn access_device(&mut self, i: usize, access: Access, addr: Value, dev: Device, record: u64) -> Option<Value> {
        let (base, size) = dev.range();
        let width = match access {
            Access::Load { width, .. } | Access::Store { width, .. } => width,
        };
        let bytes = 1u32 << width;
        let offset = self.b.ins().iadd_imm_s(addr, -i64::from(base as i32));
        let inside = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThanOrEqual, offset, i64::from(size - bytes));
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        let join = self.b.create_block();
        let is_load = matches!(access, Access::Load { .. });
        if is_load {
            self.b.append_block_param(join, I32);
        }
        self.b.set_cold_block(slow);
        self.b.ins().brif(inside, fast, &[], slow, &[]);

        self.b.switch_to_block(fast);
        self.b.seal_block(fast);
        let cpu = self.cpu;
        let width_v = self.b.ins().iconst(I32, width as i64);
        match access {
            Access::Load { .. } => {
                let v = self.call(Helper::DeviceRead(dev.index()), &[cpu, offset, width_v]);
                let v = self.b.ins().ireduce(I32, v);
                self.b.ins().jump(join, &[v.into()]);
            }
            Access::Store { value, .. } => {
                let effect = self.call(Helper::DeviceWrite(dev.index()), &[cpu, offset, width_v, value]);
                self.step_if(effect, i);
                self.b.ins().jump(join, &[]);
            }
        }

        self.b.switch_to_block(slow);
        self.b.seal_block(slow);
        let v = self.access_call(i, access, addr, Some(record));
        let args: Vec<_> = v.into_iter().map(Into::into).collect();
        self.b.ins().jump(join, &args);

        self.b.switch_to_block(join);
        self.b.seal_block(join);
        is_load.then(|| self.b.block_params(join)[0])
    }

    /// Lifts a load or store at instruction `i` as its access plan says.
    fn access(&mut self, i: usize, access: Access, addr: Value) {
        let plan = self.plans[&self.block().pc_of(i)];
        let value = match plan.state {
            AccessState::Variable => self.access_call(i, access, addr, None),
            AccessState::Naive { .. } => self.access_call(i, access, addr, Some(plan.record)),
            AccessState::Committed(RegionClass::Ram) => self.access_inline(i, access, addr),
            AccessState::Committed(RegionClass::Device(dev)) => self.access_device(i, access, addr, dev, plan.record),
        };
        if let (Access::Load { rd, width, signed }, Some(v)) = (access, value) {
            // Helpers return zero-extended values; inline loads are already extended.
            let v = match (plan.state, width, signed) {
                (AccessState::Committed(RegionClass::Ram), _, _) | (_, 2, _) => v,
                (_, 0, true) => {
                    let n = self.b.ins().ireduce(ir::types::I8, v);
                    self.b.ins().sextend(I32, n)
                }
                (_, 1, true) => {
                    let n = self.b.ins().ireduce(ir::types::I16, v);
                    self.b.ins().sextend(I32, n)
                }
                _ => v,
            };
            self.set_reg(rd, v);
        }
    }

    fn alu(&mut self, op: AluOp, a: Value, bv: Value) -> Value {
        let b = &mut self.b;
        match op {
            AluOp::Add => b.ins().iadd(a, bv),
            AluOp::Sub => b.ins().isub(a, bv),
            // Cranelift takes shift amounts modulo the type width, as RISC-V does.
            AluOp::Sll => b.ins().ishl(a, bv),
            AluOp::Srl => b.ins().ushr(a, bv),
            AluOp::Sra => b.ins().sshr(a, bv),
            AluOp::Slt => {
                let c = b.ins().icmp(IntCC::SignedLessThan, a, bv);
                b.ins().uextend(I32, c)
            }
            AluOp::Sltu => {
                let c = b.ins().icmp(IntCC::UnsignedLessThan, a, bv);
                b.ins().uextend(I32, c)
            }
            AluOp::Xor => b.ins().bxor(a, bv),
            AluOp::Or => b.ins().bor(a, bv),
            AluOp::And => b.ins().band(a, bv),
            AluOp::Mul => b.ins().imul(a, bv),
            AluOp::Mulh => b.ins().smulhi(a, bv),
            AluOp::Mulhu => b.ins().umulhi(a, bv),
            AluOp::Mulhsu => {
                let a64 = b.ins().sextend(I64, a);
                let b64 = b.ins().uextend(I64, bv);
                let p = b.ins().imul(a64, b64);
                let hi = b.ins().sshr_imm_s(p, 32);
                b.ins().ireduce(I32, hi)
            }
            AluOp::Div | AluOp::Rem | AluOp::Divu | AluOp::Remu => self.divide(op, a, bv),
        }
    }

    /// RISC-V division and remainder. Cranelift traps on division by zero and on
    /// INT_MIN / -1, which RISC-V defines (all ones or INT_MIN as the quotient, the
    /// dividend or 0 as the remainder): those cases branch to a cold block, so the
    /// common path is the host's divide alone.
    fn divide(&mut self, op: AluOp, a: Value, bv: Value) -> Value {
        let b = &mut self.b;
        let signed = matches!(op, AluOp::Div | AluOp::Rem);
        let zero = b.ins().icmp_imm_s(IntCC::Equal, bv, 0);
        let special = if signed {
            let a_min = b.ins().icmp_imm_s(IntCC::Equal, a, i64::from(i32::MIN));
            let b_neg1 = b.ins().icmp_imm_s(IntCC::Equal, bv, -1);
            let overflow = b.ins().band(a_min, b_neg1);
            b.ins().bor(zero, overflow)
        } else {
            zero
        };
        let (fast, cold, join) = (b.create_block(), b.create_block(), b.create_block());
        b.set_cold_block(cold);
        let result = b.append_block_param(join, I32);
        b.ins().brif(special, cold, &[], fast, &[]);
        b.switch_to_block(fast);
        let r = match op {
            AluOp::Div => b.ins().sdiv(a, bv),
            AluOp::Rem => b.ins().srem(a, bv),
            AluOp::Divu => b.ins().udiv(a, bv),
            _ => b.ins().urem(a, bv),
        };
        b.ins().jump(join, &[r.into()]);
        b.switch_to_block(cold);
        // By zero: the quotient is all ones, the remainder the dividend. INT_MIN / -1
        // (signed only): the quotient is INT_MIN (the dividend), the remainder 0.
        let r = if matches!(op, AluOp::Div | AluOp::Divu) {
            let all_ones = b.ins().iconst(I32, -1);
            b.ins().select(zero, all_ones, a)
        } else {
            let nothing = b.ins().iconst(I32, 0);
            b.ins().select(zero, a, nothing)
        };
        b.ins().jump(join, &[r.into()]);
        b.switch_to_block(join);
        result
    }

    fn lift(&mut self, i: usize, inst: Inst) {
        let pc = self.block().pc_of(i);
        // The next instruction's pc: the link value and a branch's fall-through.
        let next = self.block().pc_of(i + 1);
        match inst {
            Inst::Lui { rd, imm } => {
                let v = self.iconst(imm);
                self.set_reg(rd, v);
            }
            Inst::Auipc { rd, imm } => {
                let v = self.iconst(pc.wrapping_add(imm));
                self.set_reg(rd, v);
            }
            Inst::OpImm { op: AluOp::Add, rd, rs1, imm: 0 } => {
                // mv (and nop): no arithmetic to emit.
                let v = self.reg(rs1);
                self.set_reg(rd, v);
            }
            Inst::OpImm { op, rd, rs1, imm } => {
                let a = self.reg(rs1);
                let b = self.iconst(imm as u32);
                let v = self.alu(op, a, b);
                self.set_reg(rd, v);
            }
            Inst::Op { op, rd, rs1, rs2 } => {
                let a = self.reg(rs1);
                let b = self.reg(rs2);
                let v = self.alu(op, a, b);
                self.set_reg(rd, v);
            }
            Inst::Load { op, rd, rs1, offset } => {
                let base = self.reg(rs1);
                let addr = self.b.ins().iadd_imm_s(base, i64::from(offset));
                let (width, signed) = match op {
                    LoadOp::Lb => (0, true),
                    LoadOp::Lbu => (0, false),
                    LoadOp::Lh => (1, true),
                    LoadOp::Lhu => (1, false),
                    LoadOp::Lw => (2, false),
                };
                self.access(i, Access::Load { rd, width, signed }, addr);
            }
            Inst::Store { op, rs1, rs2, offset } => {
                let base = self.reg(rs1);
                let addr = self.b.ins().iadd_imm_s(base, i64::from(offset));
                let value = self.reg(rs2);
                let width = match op {
                    StoreOp::Sb => 0,
                    StoreOp::Sh => 1,
                    StoreOp::Sw => 2,
                };
                self.access(i, Access::Store { width, value }, addr);
            }
            Inst::Fence { .. } => {}
            Inst::Jal { rd, offset } => {
                let target = pc.wrapping_add(offset as u32);
                if !self.block().aligned(target) {
                    // The interpreter raises the misaligned-target fault.
                    let pcv = self.iconst(pc);
                    self.exit_return(pcv, i, EXIT_STEP);
                    return;
                }
                let link = self.iconst(next);
                self.set_reg(rd, link);
                self.edge(target, i + 1);
            }
            Inst::Jalr { rd, rs1, offset } => {
                let base = self.reg(rs1);
                let sum = self.b.ins().iadd_imm_s(base, i64::from(offset));
                let target = self.b.ins().band_imm_s(sum, -2);
                if self.block().ialign == 4 {
                    // Without C a target at 2 mod 4 faults (with C every target is legal).
                    let misaligned = self.b.ins().band_imm_s(target, 2);
                    self.step_if(misaligned, i);
                }
                let link = self.iconst(next);
                self.set_reg(rd, link);
                if let Some(cell) = self.env.target_cell {
                    let addr = self.b.ins().iconst(I64, cell as i64);
                    self.b.ins().store(trusted(), target, addr, 0);
                }
                // A jump to the target it was seen to take, or a return to a call site,
                // in the region stays inside it.
                for t in self.region.indirect_targets(self.cur) {
                    let same = self.b.ins().icmp_imm_s(IntCC::Equal, target, i64::from(t as i32));
                    let hit = self.b.create_block();
                    let next = self.b.create_block();
                    self.b.ins().brif(same, hit, &[], next, &[]);
                    self.b.switch_to_block(hit);
                    self.edge(t, i + 1);
                    self.b.switch_to_block(next);
                }
                self.exit_indirect(target, i + 1);
            }
            Inst::Branch { op, rs1, rs2, offset } => {
                let a = self.reg(rs1);
                let b = self.reg(rs2);
                let cc = match op {
                    BranchOp::Beq => IntCC::Equal,
                    BranchOp::Bne => IntCC::NotEqual,
                    BranchOp::Blt => IntCC::SignedLessThan,
                    BranchOp::Bge => IntCC::SignedGreaterThanOrEqual,
                    BranchOp::Bltu => IntCC::UnsignedLessThan,
                    BranchOp::Bgeu => IntCC::UnsignedGreaterThanOrEqual,
                };
                let cond = self.b.ins().icmp(cc, a, b);
                let target = pc.wrapping_add(offset as u32);
                let fall = next;
                let aligned = self.block().aligned(target);
                let stays = |t: u32| self.region.edge(self.cur, t).inside.is_some();
                if !stays(fall) && (!aligned || !stays(target)) {
                    // Both ways leave: store the registers once, here, not in each exit.
                    self.store_dirty();
                    self.dirty &= RETIRED_BIT;
                }
                let taken = self.b.create_block();
                let not_taken = self.b.create_block();
                self.b.ins().brif(cond, taken, &[], not_taken, &[]);
                self.b.switch_to_block(taken);
                if !aligned {
                    let pcv = self.iconst(pc);
                    self.exit_return(pcv, i, EXIT_STEP);
                } else {
                    self.edge(target, i + 1);
                }
                self.b.switch_to_block(not_taken);
                self.edge(fall, i + 1);
            }
            Inst::Amo { op, rd, rs1, rs2, .. } => {
                let addr = self.reg(rs1);
                let src = self.reg(rs2);
                self.amo(i, op, rd, addr, src);
            }
            // Instructions that need the runtime never reach the lifter (see block.rs).
            Inst::FenceI
            | Inst::Ecall
            | Inst::Ebreak
            | Inst::Mret
            | Inst::Wfi
            | Inst::Csr { .. }
            | Inst::Lr { .. }
            | Inst::Sc { .. }
            | Inst::Illegal(_) => {
                let pcv = self.iconst(pc);
                self.exit_return(pcv, i, EXIT_STEP);
            }
        }
    }

    /// The value an AMO stores.
    fn amo_value(&mut self, op: AmoOp, old: Value, src: Value) -> Value {
        let ins = self.b.ins();
        match op {
            AmoOp::Swap => src,
            AmoOp::Add => ins.iadd(old, src),
            AmoOp::Xor => ins.bxor(old, src),
            AmoOp::And => ins.band(old, src),
            AmoOp::Or => ins.bor(old, src),
            AmoOp::Min => ins.smin(old, src),
            AmoOp::Max => ins.smax(old, src),
            AmoOp::Minu => ins.umin(old, src),
            AmoOp::Maxu => ins.umax(old, src),
        }
    }

    /// An AMO at instruction `i`, as its access plan says. COMMITTED(RAM): a misaligned
    /// address goes to the interpreter (which raises the fault), else one inline load
    /// and one inline store, both in the fault map (a fault on either leaves memory and
    /// registers unchanged: rd is written after the store). Any other state: the AMO
    /// helper (profiling unless VARIABLE); a refusal goes to the interpreter.
    fn amo(&mut self, i: usize, op: AmoOp, rd: u8, addr: Value, src: Value) {
        let plan = self.plans[&self.block().pc_of(i)];
        let old = match plan.state {
            AccessState::Committed(RegionClass::Ram) => {
                let misaligned = self.b.ins().band_imm_s(addr, 3);
                self.step_if(misaligned, i);
                let inst = self.block().insts[i];
                self.sync_for_access(i, &inst);
                let addr64 = self.b.ins().uextend(I64, addr);
                let host = self.b.ins().iadd_imm_s(addr64, self.env.arena_base as i64);
                let load_flags = self.inline_flags();
                let old = self.b.ins().load(I32, load_flags, host, 0);
                let new = self.amo_value(op, old, src);
                let store_flags = self.inline_store_flags();
                self.b.ins().store(store_flags, new, host, 0);
                old
            }
            state => {
                let record = if state == AccessState::Variable { 0 } else { plan.record };
                let cpu = self.cpu;
                let opv = self.b.ins().iconst(I32, op.index() as i64);
                let rec = self.b.ins().iconst(I64, record as i64);
                let result = self.call(Helper::Amo, &[cpu, addr, src, opv, rec]);
                let refused = self.b.ins().ushr_imm_s(result, 32);
                self.step_if(refused, i);
                self.b.ins().ireduce(I32, result)
            }
        };
        self.set_reg(rd, old);
    }
}
