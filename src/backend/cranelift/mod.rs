//! The Cranelift backend: lifts a block to Cranelift IR ([`lift`]) and compiles it
//! through `cranelift-jit` into the shared code memory (the pool is the module's memory
//! provider). Helpers are declared once per module and called with rel32 calls when the
//! code is near them.

pub mod lift;

use crate::jit::abi::{Helper, HELPERS};
use crate::jit::codegen::{Backend, CompileEnv, InlineAccess, Translation};
use crate::jit::codemem::CodePool;
use crate::jit::region::Region;
use crate::jit::JitError;
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module};
use lift::LiftEnv;

/// Settings of the Cranelift backend.
#[derive(Clone, Copy, Debug)]
pub struct CraneliftConfig {
    /// `opt_level=speed` (else `none`).
    pub optimize: bool,
    /// Run Cranelift's IR verifier on every function.
    pub verify: bool,
}

/// The Cranelift code generator.
pub struct CraneliftBackend {
    config: CraneliftConfig,
    pool: CodePool,
    module: Option<JITModule>,
    helper_ids: [u32; HELPERS],
    ctx: Context,
    fctx: FunctionBuilderContext,
}

fn build_isa(config: &CraneliftConfig) -> Result<OwnedTargetIsa, JitError> {
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

impl CraneliftBackend {
    /// A backend that places its code in `pool`.
    pub fn new(config: CraneliftConfig, pool: CodePool) -> Result<CraneliftBackend, JitError> {
        let mut backend = CraneliftBackend {
            config,
            pool,
            module: None,
            helper_ids: [0; HELPERS],
            ctx: Context::new(),
            fctx: FunctionBuilderContext::new(),
        };
        backend.rebuild_module()?;
        Ok(backend)
    }

    /// A fresh JIT module with the helpers declared.
    fn rebuild_module(&mut self) -> Result<(), JitError> {
        let isa = build_isa(&self.config)?;
        let host_cc = isa.default_call_conv();
        let mut jb = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
        for h in Helper::ALL {
            jb.symbol(h.name(), h.address());
        }
        jb.memory_provider(self.pool.provider());
        let mut module = JITModule::new(jb);
        let setup = |e: &dyn std::fmt::Display| JitError::Setup(e.to_string());
        for h in Helper::ALL {
            let sig = lift::helper_signature(h, host_cc);
            let id = module.declare_function(&h.name(), Linkage::Import, &sig).map_err(|e| setup(&e))?;
            self.helper_ids[h.index()] = id.as_u32();
        }
        self.module = Some(module);
        Ok(())
    }
}

impl Backend for CraneliftBackend {
    fn name(&self) -> &'static str {
        "cranelift"
    }

    fn regions(&self) -> bool {
        true
    }

    fn compile(&mut self, region: &Region, env: &mut CompileEnv<'_>) -> Result<Translation, JitError> {
        let err = |e: &dyn std::fmt::Display| JitError::Compile { pc: region.head().pc, msg: e.to_string() };
        let module = self.module.as_mut().ok_or_else(|| err(&"no module"))?;
        let lift_env = LiftEnv {
            helper_ids: self.helper_ids,
            near_calls: env.near,
            host_call_conv: module.isa().default_call_conv(),
            jump_cache: env.jump_cache,
            hot_counter: env.hot_counter,
            frontend: module.isa().frontend_config(),
            arena_base: env.arena_base,
        };
        self.ctx.clear();
        self.ctx.func.signature = lift::block_signature();
        let sites =
            lift::lift_region(&mut self.ctx.func, &mut self.fctx, region, &lift_env, env.slot_for, env.plan_for);
        let clif = env.listing.then(|| self.ctx.func.display().to_string());
        self.ctx.set_disasm(env.listing);
        let id: FuncId = module.declare_anonymous_function(&lift::block_signature()).map_err(|e| err(&e))?;
        module.define_function(id, &mut self.ctx).map_err(|e| err(&e))?;
        module.finalize_definitions().map_err(|e| err(&e))?;
        let code = module.get_finalized_function(id) as u64;
        let compiled = self.ctx.compiled_code().ok_or_else(|| err(&"no compiled code"))?;
        // Every inline access, by host address, with its site (the source location set
        // for each guest instruction indexes the sites).
        let srclocs = compiled.buffer.get_srclocs_sorted();
        let mut inline_accesses = Vec::new();
        for trap in compiled.buffer.traps().iter().filter(|t| t.code == lift::inline_trap_code()) {
            let loc = srclocs.iter().find(|l| l.start <= trap.offset && trap.offset < l.end);
            let site = loc
                .and_then(|l| sites.get(l.loc.bits() as usize))
                .ok_or_else(|| err(&"inline access without source location"))?;
            inline_accesses.push(InlineAccess {
                host: code + u64::from(trap.offset),
                pc: site.pc,
                retired: site.retired,
            });
        }
        let listing = clif
            .map(|clif| format!("--- Cranelift IR\n{clif}--- host code\n{}", compiled.vcode.as_deref().unwrap_or("")));
        Ok(Translation { code, size: compiled.code_info().total_size, inline_accesses, listing })
    }

    fn flush(&mut self) -> Result<(), JitError> {
        if let Some(module) = self.module.take() {
            // SAFETY: the cache flushes only between block executions: no code from this
            // module is on the stack, and the cache forgets every pointer into it before
            // any code runs again.
            unsafe { module.free_memory() };
        }
        self.rebuild_module()
    }
}
