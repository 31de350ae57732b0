//! The translation cache: compiles guest blocks through Cranelift into code memory and
//! keeps what chaining needs.
//!
//! - `blocks`: guest pc -> translated code.
//! - Exit slots: one 8-byte cell per jump target pc, shared by every block exit that
//!   jumps there. A slot holds the address of the target's code, or of the
//!   return-to-dispatcher stub until the target is compiled. Linking a target is one
//!   store into its slot: emitted code is never patched.
//! - The jump cache: a direct-mapped table (guest pc -> code) that `jalr` consults
//!   before it returns to the dispatcher.
//!
//! - Access records (the per-access state machine, see `access`) and the fault map:
//!   host address of every inline access -> its guest pc and block.
//!
//! A block whose access changed state is invalidated (its slot and jump cache entry go
//! back to the dispatcher) and recompiled on its next entry; its old code stays in
//! memory, unreachable, until the next flush. When the code budget is exceeded, or on
//! `fence.i`, everything is flushed at once: the JIT module is dropped and rebuilt, its
//! chunks reused (the QEMU "tb_flush" way). Access records survive flushes: what was
//! learned about an access stays true.

use crate::access::{AccessRecord, AccessState, MemMode, RegionClass, StateCounts, Transition};
use crate::block::{discover, Block};
use crate::codemem::CodePool;
use crate::lift::{self, AccessPlan, Helper, JumpCacheEntry, LiftEnv, EXIT_DISPATCH};
use crate::memory::{Device, Memory};
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{AbiParam, InstBuilder, Signature, UserFuncName};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

/// Settings of the Cranelift backend.
#[derive(Clone, Debug)]
pub struct JitConfig {
    /// Cranelift `opt_level=speed` (else `none`).
    pub optimize: bool,
    /// Run Cranelift's IR verifier on every function.
    pub verify: bool,
    /// Cap on guest instructions per block.
    pub max_block_insns: usize,
    /// Flush everything when translated code and data exceed this many bytes.
    pub code_cache_bytes: usize,
    /// Place code near the executable (rel32 helper calls); false forces the fallback.
    pub near_code: bool,
    /// How memory accesses start (`--mem`).
    pub mem: MemMode,
    /// N of the state machine: observations of one region that commit an access.
    pub commit_after: u32,
    /// Print every compiled block on stderr: guest code, Cranelift IR, host code.
    pub print_code: bool,
    /// Interpret a block this many times before compiling it (0: compile at once).
    pub compile_after: u32,
}

impl Default for JitConfig {
    fn default() -> Self {
        JitConfig {
            optimize: true,
            verify: cfg!(debug_assertions),
            max_block_insns: crate::block::DEFAULT_MAX_BLOCK_INSNS,
            code_cache_bytes: 64 << 20,
            near_code: true,
            mem: MemMode::Adaptive,
            commit_after: 3,
            print_code: false,
            compile_after: DEFAULT_COMPILE_AFTER,
        }
    }
}

/// Default of [`JitConfig::compile_after`].
pub const DEFAULT_COMPILE_AFTER: u32 = 16;

/// Why translation failed (a host-side problem, never a guest one).
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    #[error("cannot set up the Cranelift backend: {0}")]
    Setup(String),
    #[error("cannot compile the block at {pc:#010x}: {msg}")]
    Compile { pc: u32, msg: String },
    #[error("internal error: {0}")]
    Internal(String),
}

/// Addresses of the Rust functions translated code calls, indexed by [`Helper::index`].
pub type HelperAddrs = [*const u8; 18];

/// Entries of the jump cache (a power of two).
const JUMP_CACHE_ENTRIES: usize = 4096;
const JUMP_CACHE_MASK: u32 = (JUMP_CACHE_ENTRIES - 1) as u32;
/// Slots per slab; slabs never move, so slot addresses stay valid until a flush.
const SLAB_SLOTS: usize = 1024;

/// Counters the cache keeps for `--stats`.
#[derive(Clone, Debug, Default)]
pub struct CacheStats {
    pub blocks_compiled: u64,
    pub guest_insns_compiled: u64,
    pub compile_ns: u64,
    pub code_bytes: u64,
    pub cache_flushes: u64,
    /// Exit slots pointed at translated code (chaining links made).
    pub chained_exits: u64,
    /// Blocks compiled again after an access in them changed state.
    pub recompiles: u64,
}

/// Where an inline access lives: its guest pc and the block it was compiled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultSite {
    pub pc: u32,
    pub block: u32,
}

/// A compiled block.
#[derive(Clone, Copy, Debug)]
pub struct Compiled {
    pub code: u64,
    /// Guest instructions in the block.
    pub len: u32,
    /// Host code bytes.
    pub size: u32,
}

/// Exit slots, per target pc.
struct Slots {
    slabs: Vec<Box<[u64; SLAB_SLOTS]>>,
    used: usize,
    by_target: HashMap<u32, *mut u64>,
    stub: u64,
}

impl Slots {
    /// The slot for `target`, created pointing at `code` (or the stub).
    fn slot(&mut self, target: u32, code: Option<u64>, linked: &mut u64) -> *mut u64 {
        if let Some(&s) = self.by_target.get(&target) {
            return s;
        }
        if self.used == self.slabs.len() * SLAB_SLOTS {
            self.slabs.push(Box::new([0; SLAB_SLOTS]));
        }
        let slab = &mut self.slabs[self.used / SLAB_SLOTS];
        let slot: *mut u64 = &mut slab[self.used % SLAB_SLOTS];
        self.used += 1;
        let value = match code {
            Some(c) => {
                *linked += 1;
                c
            }
            None => self.stub,
        };
        // SAFETY: `slot` points into a live slab owned by `self`.
        unsafe { slot.write(value) };
        self.by_target.insert(target, slot);
        slot
    }

    /// Points the slot of `target` (if any) back at the stub.
    fn unlink(&mut self, target: u32) {
        if let Some(&s) = self.by_target.get(&target) {
            // SAFETY: slots live as long as their slab, until `clear`.
            unsafe { s.write(self.stub) };
        }
    }

    /// Points the slot of `target` (if any) at `code`.
    fn link(&mut self, target: u32, code: u64, linked: &mut u64) {
        if let Some(&s) = self.by_target.get(&target) {
            // SAFETY: slots live as long as their slab, until `clear`.
            unsafe { s.write(code) };
            *linked += 1;
        }
    }

    fn clear(&mut self) {
        self.by_target.clear();
        self.used = 0;
    }
}

/// `--print-code`: one compiled block on stderr.
fn print_block(block: &Block, clif: &str, host: &str, code: u64) {
    let mut out = format!("=== block {:#010x} ({} guest instructions) at host {code:#x}\n", block.pc, block.len());
    for (i, inst) in block.insts.iter().enumerate() {
        let pc = block.pc_of(i);
        out += &format!("  {pc:08x}  {}\n", crate::disasm::disassemble(inst, pc).replace('\t', " "));
    }
    out += "--- Cranelift IR\n";
    out += clif;
    out += "--- host code\n";
    out += host;
    crate::diag!("{out}\n");
}

/// The Cranelift translation cache.
pub struct CodeCache {
    config: JitConfig,
    helpers: HelperAddrs,
    arena_base: u64,
    pool: CodePool,
    module: Option<JITModule>,
    helper_ids: [u32; 18],
    /// System V entry: `extern "sysv64" fn(*mut Cpu, code) -> i64`.
    enter: u64,
    blocks: HashMap<u32, Compiled>,
    slots: Slots,
    jump_cache: Box<[JumpCacheEntry]>,
    records: HashMap<u32, Box<AccessRecord>>,
    fault_map: BTreeMap<u64, FaultSite>,
    /// Blocks dropped for recompilation (to count recompiles).
    invalidated: HashSet<u32>,
    /// Executions of not yet compiled blocks, by start pc.
    hotness: HashMap<u32, u32>,
    ctx: Context,
    fctx: FunctionBuilderContext,
    pub stats: CacheStats,
}

fn build_isa(config: &JitConfig) -> Result<OwnedTargetIsa, JitError> {
    let setup = |e: &dyn std::fmt::Display| JitError::Setup(e.to_string());
    let mut flags = settings::builder();
    let set = |flags: &mut settings::Builder, k: &str, v: &str| flags.set(k, v).map_err(|e| setup(&e));
    set(&mut flags, "opt_level", if config.optimize { "speed" } else { "none" })?;
    set(&mut flags, "enable_verifier", if config.verify { "true" } else { "false" })?;
    // Tail calls on x86-64 need frame pointers.
    set(&mut flags, "preserve_frame_pointers", "true")?;
    set(&mut flags, "is_pic", "false")?;
    set(&mut flags, "unwind_info", "false")?;
    let isa_builder = cranelift_native::builder().map_err(|e| setup(&e))?;
    isa_builder.finish(settings::Flags::new(flags)).map_err(|e| setup(&e))
}

impl CodeCache {
    /// A cache for the machine whose guest arena starts at host address `arena_base`.
    pub fn new(config: JitConfig, helpers: HelperAddrs, arena_base: u64) -> Result<CodeCache, JitError> {
        let pool = CodePool::new(config.near_code);
        let mut cache = CodeCache {
            config,
            helpers,
            arena_base,
            pool,
            module: None,
            helper_ids: [0; 18],
            enter: 0,
            blocks: HashMap::new(),
            slots: Slots { slabs: Vec::new(), used: 0, by_target: HashMap::new(), stub: 0 },
            jump_cache: vec![JumpCacheEntry::EMPTY; JUMP_CACHE_ENTRIES].into_boxed_slice(),
            records: HashMap::new(),
            fault_map: BTreeMap::new(),
            invalidated: HashSet::new(),
            hotness: HashMap::new(),
            ctx: Context::new(),
            fctx: FunctionBuilderContext::new(),
            stats: CacheStats::default(),
        };
        cache.rebuild_module()?;
        Ok(cache)
    }

    /// Cap on guest instructions per block.
    pub fn max_block_insns(&self) -> usize {
        self.config.max_block_insns
    }

    /// Is translated code placed near the executable (rel32 helper calls)?
    pub fn near(&self) -> bool {
        self.pool.near()
    }

    /// Address of the System V entry function.
    pub fn enter_fn(&self) -> u64 {
        self.enter
    }

    /// Creates a fresh JIT module with the helpers declared and the stub and entry
    /// functions compiled.
    fn rebuild_module(&mut self) -> Result<(), JitError> {
        let isa = build_isa(&self.config)?;
        let host_cc = isa.default_call_conv();
        let mut jb = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
        for h in Helper::ALL {
            jb.symbol(h.name(), self.helpers[h.index()]);
        }
        jb.memory_provider(self.pool.provider());
        let mut module = JITModule::new(jb);
        let frontend = module.isa().frontend_config();
        let setup = |e: &dyn std::fmt::Display| JitError::Setup(e.to_string());
        for h in Helper::ALL {
            let id =
                module.declare_function(&h.name(), Linkage::Import, &h.signature(host_cc)).map_err(|e| setup(&e))?;
            self.helper_ids[h.index()] = id.as_u32();
        }

        // The return-to-dispatcher stub every unlinked slot points at.
        let tail_sig = lift::block_signature();
        let stub_id = module.declare_anonymous_function(&tail_sig).map_err(|e| setup(&e))?;
        self.ctx.clear();
        self.ctx.func.signature = tail_sig.clone();
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let blk = b.create_block();
            b.append_block_params_for_function_params(blk);
            b.switch_to_block(blk);
            b.seal_block(blk);
            let code = b.ins().iconst(I64, EXIT_DISPATCH);
            b.ins().return_(&[code]);
            b.finalize(frontend);
        }
        module.define_function(stub_id, &mut self.ctx).map_err(|e| setup(&e))?;

        // The System V entry: calls a block with the tail convention.
        let mut enter_sig = Signature::new(host_cc);
        enter_sig.params.extend([AbiParam::new(I64), AbiParam::new(I64)]);
        enter_sig.returns.push(AbiParam::new(I64));
        let enter_id = module.declare_anonymous_function(&enter_sig).map_err(|e| setup(&e))?;
        self.ctx.clear();
        self.ctx.func.signature = enter_sig;
        self.ctx.func.name = UserFuncName::default();
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let tail_ref = b.import_signature(tail_sig);
            let blk = b.create_block();
            b.append_block_params_for_function_params(blk);
            b.switch_to_block(blk);
            b.seal_block(blk);
            let (cpu, code) = (b.block_params(blk)[0], b.block_params(blk)[1]);
            let call = b.ins().call_indirect(tail_ref, code, &[cpu]);
            let result = b.inst_results(call)[0];
            b.ins().return_(&[result]);
            b.finalize(frontend);
        }
        module.define_function(enter_id, &mut self.ctx).map_err(|e| setup(&e))?;
        module.finalize_definitions().map_err(|e| setup(&e))?;
        self.slots.stub = module.get_finalized_function(stub_id) as u64;
        self.enter = module.get_finalized_function(enter_id) as u64;
        self.module = Some(module);
        Ok(())
    }

    /// Drops every translation and rebuilds the module. Only call from the dispatcher,
    /// when no translated code is running.
    pub fn flush(&mut self) -> Result<(), JitError> {
        if let Some(module) = self.module.take() {
            // SAFETY: the dispatcher calls this between block executions: no code from
            // this module is on the stack, and every pointer into it (blocks, slots,
            // jump cache) is forgotten below before any code runs again.
            unsafe { module.free_memory() };
        }
        self.blocks.clear();
        self.slots.clear();
        self.jump_cache.fill(JumpCacheEntry::EMPTY);
        self.fault_map.clear();
        self.invalidated.clear();
        for r in self.records.values_mut() {
            r.blocks.clear();
        }
        self.stats.cache_flushes += 1;
        self.rebuild_module()
    }

    /// The translation of the block at `pc`, compiling it once it has been asked for
    /// more than `compile_after` times. `None`: interpret it this time (still cold, or
    /// the instruction at `pc` needs the runtime or cannot be fetched).
    pub fn lookup(&mut self, mem: &Memory, pc: u32) -> Result<Option<Compiled>, JitError> {
        if let Some(&c) = self.blocks.get(&pc) {
            return Ok(Some(c));
        }
        if self.config.compile_after > 0 {
            let count = self.hotness.entry(pc).or_insert(0);
            if *count < self.config.compile_after {
                *count += 1;
                return Ok(None);
            }
        }
        let block = discover(mem, pc, self.config.max_block_insns);
        if block.is_empty() {
            return Ok(None);
        }
        if self.pool.used_bytes() > self.config.code_cache_bytes {
            // Over budget: drop everything before adding more (nothing translated runs
            // while the dispatcher looks a block up).
            self.flush()?;
        }
        let compiled = match self.compile(&block) {
            Ok(c) => c,
            Err(_) if !self.pool.near() && self.config.near_code => {
                // Code memory near the executable ran out: start over with far code.
                self.flush()?;
                self.compile(&block)?
            }
            Err(e) => return Err(e),
        };
        self.blocks.insert(pc, compiled);
        if self.invalidated.remove(&pc) {
            self.stats.recompiles += 1;
        }
        self.slots.link(pc, compiled.code, &mut self.stats.chained_exits);
        *self.jump_entry(pc) = JumpCacheEntry { pc: u64::from(pc), code: compiled.code };
        Ok(Some(compiled))
    }

    fn compile(&mut self, block: &Block) -> Result<Compiled, JitError> {
        let start = Instant::now();
        let err = |e: &dyn std::fmt::Display| JitError::Compile { pc: block.pc, msg: e.to_string() };
        let module = self.module.as_mut().ok_or_else(|| err(&"no module"))?;
        let env = LiftEnv {
            helper_ids: self.helper_ids,
            near_calls: self.pool.near(),
            host_call_conv: module.isa().default_call_conv(),
            jump_cache: self.jump_cache.as_ptr() as u64,
            jump_cache_mask: JUMP_CACHE_MASK,
            frontend: module.isa().frontend_config(),
            arena_base: self.arena_base,
        };
        self.ctx.clear();
        self.ctx.func.signature = lift::block_signature();
        let blocks = &self.blocks;
        let slots = &mut self.slots;
        let linked = &mut self.stats.chained_exits;
        let mut slot_for = |target: u32| slots.slot(target, blocks.get(&target).map(|c| c.code), linked) as u64;
        let records = &mut self.records;
        let (mode, commit_after) = (self.config.mem, self.config.commit_after);
        let mut plan_for = |pc: u32| {
            let rec = records.entry(pc).or_insert_with(|| Box::new(AccessRecord::new(pc, mode, commit_after)));
            if !rec.blocks.contains(&block.pc) {
                rec.blocks.push(block.pc);
            }
            AccessPlan { state: rec.state, record: &mut **rec as *mut AccessRecord as u64 }
        };
        lift::lift_block(&mut self.ctx.func, &mut self.fctx, block, &env, &mut slot_for, &mut plan_for);
        let clif = self.config.print_code.then(|| self.ctx.func.display().to_string());
        self.ctx.set_disasm(self.config.print_code);
        let id: FuncId = module.declare_anonymous_function(&lift::block_signature()).map_err(|e| err(&e))?;
        module.define_function(id, &mut self.ctx).map_err(|e| err(&e))?;
        module.finalize_definitions().map_err(|e| err(&e))?;
        let code = module.get_finalized_function(id) as u64;
        let compiled = self.ctx.compiled_code().ok_or_else(|| err(&"no compiled code"))?;
        let size = compiled.code_info().total_size;
        // The fault map: every inline access, by host address, with its guest pc
        // (from the source location set for each guest instruction).
        let srclocs = compiled.buffer.get_srclocs_sorted();
        for trap in compiled.buffer.traps().iter().filter(|t| t.code == lift::inline_trap_code()) {
            let loc = srclocs.iter().find(|l| l.start <= trap.offset && trap.offset < l.end);
            let pc = loc.map(|l| l.loc.bits()).ok_or_else(|| err(&"inline access without source location"))?;
            self.fault_map.insert(code + u64::from(trap.offset), FaultSite { pc, block: block.pc });
        }
        if let Some(clif) = clif {
            print_block(block, &clif, compiled.vcode.as_deref().unwrap_or(""), code);
        }
        self.stats.blocks_compiled += 1;
        self.stats.guest_insns_compiled += block.len() as u64;
        self.stats.code_bytes += u64::from(size);
        self.stats.compile_ns += start.elapsed().as_nanos() as u64;
        Ok(Compiled { code, len: block.len() as u32, size })
    }

    /// The jump cache entry of guest `pc`.
    fn jump_entry(&mut self, pc: u32) -> &mut JumpCacheEntry {
        &mut self.jump_cache[lift::jump_cache_index(pc, JUMP_CACHE_MASK)]
    }

    /// Drops the translation of the block at `pc` so its next entry recompiles it. Its
    /// old code stays in memory (nothing still running is overwritten).
    pub fn invalidate(&mut self, pc: u32) {
        if self.blocks.remove(&pc).is_some() {
            self.invalidated.insert(pc);
            self.slots.unlink(pc);
            let e = self.jump_entry(pc);
            if e.pc == u64::from(pc) {
                *e = JumpCacheEntry::EMPTY;
            }
        }
    }

    /// An access record changed state (in a helper): recompile every block holding it.
    pub fn access_changed(&mut self, access_pc: u32) {
        let blocks = self.records.get(&access_pc).map(|r| r.blocks.clone()).unwrap_or_default();
        for b in blocks {
            self.invalidate(b);
        }
    }

    /// An observation of the access at `pc` made outside translated code (by the
    /// interpreter). A state change recompiles the blocks that hold the access.
    pub fn observe(&mut self, pc: u32, class: Option<RegionClass>) -> Option<Transition> {
        let (mode, commit_after) = (self.config.mem, self.config.commit_after);
        let rec = self.records.entry(pc).or_insert_with(|| Box::new(AccessRecord::new(pc, mode, commit_after)));
        let t = rec.observe(class)?;
        self.access_changed(pc);
        Some(t)
    }

    /// An inline access at host address `rip` faulted: the access becomes VARIABLE and
    /// its blocks are recompiled. Returns where the access is, or None if `rip` is not an
    /// inline access (a translator bug).
    pub fn inline_fault(&mut self, rip: u64) -> Option<(FaultSite, Option<Transition>)> {
        let site = *self.fault_map.get(&rip)?;
        let transition = self.records.get_mut(&site.pc).and_then(|r| r.make_variable());
        self.access_changed(site.pc);
        self.invalidate(site.block);
        Some((site, transition))
    }

    /// A device was unmapped: accesses committed to it become VARIABLE and every
    /// translation (some call the device directly) is dropped.
    pub fn device_removed(&mut self, dev: Device) -> Result<Vec<Transition>, JitError> {
        let mut transitions = Vec::new();
        for r in self.records.values_mut() {
            if r.state == AccessState::Committed(RegionClass::Device(dev)) {
                transitions.extend(r.make_variable());
            }
        }
        self.flush()?;
        Ok(transitions)
    }

    /// Counts of access records per state.
    pub fn access_states(&self) -> StateCounts {
        StateCounts::of(self.records.values().map(|r| &**r))
    }

    /// The access record of the load/store at guest `pc`, if it was translated.
    pub fn access_record(&self, pc: u32) -> Option<&AccessRecord> {
        self.records.get(&pc).map(|r| &**r)
    }
}
