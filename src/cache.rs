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
//! When the code budget is exceeded, or on `fence.i`, everything is flushed at once:
//! the JIT module is dropped and rebuilt, its chunks reused (the QEMU "tb_flush" way).

use crate::block::{discover, Block};
use crate::codemem::CodePool;
use crate::lift::{self, HelperIds, JumpCacheEntry, LiftEnv, EXIT_DISPATCH};
use crate::memory::Memory;
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{AbiParam, InstBuilder, Signature, UserFuncName};
use cranelift_codegen::isa::{CallConv, OwnedTargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module};
use std::collections::HashMap;
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
}

impl Default for JitConfig {
    fn default() -> Self {
        JitConfig {
            optimize: true,
            verify: cfg!(debug_assertions),
            max_block_insns: crate::block::DEFAULT_MAX_BLOCK_INSNS,
            code_cache_bytes: 64 << 20,
            near_code: true,
        }
    }
}

/// Why translation failed (a host-side problem, never a guest one).
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    #[error("cannot set up the Cranelift backend: {0}")]
    Setup(String),
    #[error("cannot compile the block at {pc:#010x}: {msg}")]
    Compile { pc: u32, msg: String },
}

/// Addresses of the Rust functions translated code calls.
#[derive(Clone, Copy, Debug)]
pub struct HelperAddrs {
    pub load: [*const u8; 3],
    pub store: [*const u8; 3],
}

const HELPER_NAMES: [&str; 6] =
    ["rvdbt_load_u8", "rvdbt_load_u16", "rvdbt_load_u32", "rvdbt_store_u8", "rvdbt_store_u16", "rvdbt_store_u32"];

/// Entries of the jump cache (a power of two).
const JUMP_CACHE_ENTRIES: usize = 4096;
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

/// The Cranelift translation cache.
pub struct CodeCache {
    config: JitConfig,
    helpers: HelperAddrs,
    pool: CodePool,
    module: Option<JITModule>,
    helper_ids: HelperIds,
    /// System V entry: `extern "sysv64" fn(*mut Cpu, code) -> i64`.
    enter: u64,
    blocks: HashMap<u32, Compiled>,
    slots: Slots,
    jump_cache: Box<[JumpCacheEntry]>,
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
    pub fn new(config: JitConfig, helpers: HelperAddrs) -> Result<CodeCache, JitError> {
        let pool = CodePool::new(config.near_code);
        let mut cache = CodeCache {
            config,
            helpers,
            pool,
            module: None,
            helper_ids: HelperIds { load: [0; 3], store: [0; 3] },
            enter: 0,
            blocks: HashMap::new(),
            slots: Slots { slabs: Vec::new(), used: 0, by_target: HashMap::new(), stub: 0 },
            jump_cache: vec![JumpCacheEntry::EMPTY; JUMP_CACHE_ENTRIES].into_boxed_slice(),
            ctx: Context::new(),
            fctx: FunctionBuilderContext::new(),
            stats: CacheStats::default(),
        };
        cache.rebuild_module()?;
        Ok(cache)
    }

    /// Is translated code placed near the executable (rel32 helper calls)?
    pub fn near(&self) -> bool {
        self.pool.near()
    }

    pub fn pool(&self) -> &CodePool {
        &self.pool
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
        let addrs = self.helpers.load.iter().chain(self.helpers.store.iter());
        for (name, &addr) in HELPER_NAMES.iter().zip(addrs) {
            jb.symbol(*name, addr);
        }
        jb.memory_provider(self.pool.provider());
        let mut module = JITModule::new(jb);
        let frontend = module.isa().frontend_config();
        let setup = |e: &dyn std::fmt::Display| JitError::Setup(e.to_string());
        let (load_sig, store_sig) = lift::helper_signatures(host_cc);
        let mut ids = [0u32; 6];
        for (i, name) in HELPER_NAMES.iter().enumerate() {
            let sig = if i < 3 { &load_sig } else { &store_sig };
            let id = module.declare_function(name, Linkage::Import, sig).map_err(|e| setup(&e))?;
            ids[i] = id.as_u32();
        }
        self.helper_ids = HelperIds { load: [ids[0], ids[1], ids[2]], store: [ids[3], ids[4], ids[5]] };

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
        self.stats.cache_flushes += 1;
        self.rebuild_module()
    }

    /// Has translated code outgrown the budget?
    pub fn over_budget(&self) -> bool {
        self.pool.used_bytes() > self.config.code_cache_bytes
    }

    /// The translation of the block at `pc`, compiling it if needed. `None` when the
    /// instruction at `pc` needs the runtime (or cannot be fetched).
    pub fn lookup(&mut self, mem: &Memory, pc: u32) -> Result<Option<Compiled>, JitError> {
        if let Some(&c) = self.blocks.get(&pc) {
            return Ok(Some(c));
        }
        let block = discover(mem, pc, self.config.max_block_insns);
        if block.is_empty() {
            return Ok(None);
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
        self.slots.link(pc, compiled.code, &mut self.stats.chained_exits);
        let e = &mut self.jump_cache[lift::jump_cache_index(pc, (JUMP_CACHE_ENTRIES - 1) as u32)];
        *e = JumpCacheEntry { pc: u64::from(pc), code: compiled.code };
        Ok(Some(compiled))
    }

    fn compile(&mut self, block: &Block) -> Result<Compiled, JitError> {
        let start = Instant::now();
        let err = |e: &dyn std::fmt::Display| JitError::Compile { pc: block.pc, msg: e.to_string() };
        let module = self.module.as_mut().ok_or_else(|| err(&"no module"))?;
        let env = LiftEnv {
            helpers: self.helper_ids,
            near_calls: self.pool.near(),
            host_call_conv: module.isa().default_call_conv(),
            jump_cache: self.jump_cache.as_ptr() as u64,
            jump_cache_mask: (JUMP_CACHE_ENTRIES - 1) as u32,
            frontend: module.isa().frontend_config(),
        };
        self.ctx.clear();
        self.ctx.func.signature = lift::block_signature();
        let blocks = &self.blocks;
        let slots = &mut self.slots;
        let linked = &mut self.stats.chained_exits;
        let mut slot_for = |target: u32| slots.slot(target, blocks.get(&target).map(|c| c.code), linked) as u64;
        lift::lift_block(&mut self.ctx.func, &mut self.fctx, block, &env, &mut slot_for);
        let id: FuncId = module.declare_anonymous_function(&lift::block_signature()).map_err(|e| err(&e))?;
        module.define_function(id, &mut self.ctx).map_err(|e| err(&e))?;
        module.finalize_definitions().map_err(|e| err(&e))?;
        let code = module.get_finalized_function(id) as u64;
        let size = self.ctx.compiled_code().map_or(0, |c| c.code_info().total_size);
        self.stats.blocks_compiled += 1;
        self.stats.guest_insns_compiled += block.len() as u64;
        self.stats.code_bytes += u64::from(size);
        self.stats.compile_ns += start.elapsed().as_nanos() as u64;
        Ok(Compiled { code, len: block.len() as u32, size })
    }

    /// The translation of the block at `pc`, if compiled (for inspection in tests).
    pub fn compiled(&self, pc: u32) -> Option<Compiled> {
        self.blocks.get(&pc).copied()
    }

    /// Host call convention used for helpers.
    pub fn host_call_conv(&self) -> CallConv {
        self.module.as_ref().map_or(CallConv::SystemV, |m| m.isa().default_call_conv())
    }
}
