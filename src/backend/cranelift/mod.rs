//! The Cranelift backend: lifts a block to Cranelift IR ([`lift`]) and compiles it
//! through `cranelift-jit` into the shared code memory (the pool is the module's memory
//! provider). Helpers are declared once per module and called with rel32 calls when the
//! code is near them.

pub mod lift;
mod sync;

use crate::jit::abi::{Helper, HELPERS};
use crate::jit::codegen::{
    Backend, CompileEnv, InlineAccess, Place, Step, Translation, ValueLoc, MAX_STEPS, RECOVER_RETIRED,
    RECOVER_RETIRED_BELOW_END,
};
use crate::jit::codemem::{shortage_of, CodePool};
use crate::jit::helpers;
use crate::jit::region::Region;
use crate::jit::JitError;
use cranelift_codegen::ir::ValueLabel;
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_codegen::LabelValueLoc;
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, ModuleError};
use lift::LiftEnv;
use std::collections::HashMap;

/// Compiles of a region that may move registers the fault path cannot find to stores.
const MAX_RECOVERY_ROUNDS: usize = 4;

/// Settings of the Cranelift backend.
#[derive(Clone, Copy, Debug)]
pub struct CraneliftConfig {
    /// `opt_level=speed` (else `none`).
    pub optimize: bool,
    /// Run Cranelift's IR verifier on every function.
    pub verify: bool,
    /// Faults in loads may resume at a checkpoint (see [`crate::jit::JitConfig::checkpoints`]).
    pub checkpoints: bool,
}

/// The Cranelift code generator.
pub struct CraneliftBackend {
    config: CraneliftConfig,
    pool: CodePool,
    module: Option<JITModule>,
    helper_ids: [u32; HELPERS],
    ctx: Context,
    fctx: FunctionBuilderContext,
    /// Per inline access pc: registers the fault path could not find there in an
    /// earlier compile. Regions overlap (a hot loop is part of the regions grown from
    /// each of its hot blocks), so a new region starts with these stored, which saves
    /// it most of its compile rounds.
    learned: HashMap<u32, u32>,
}

/// Bound on the access pcs [`CraneliftBackend::learned`] remembers.
const MAX_LEARNED: usize = 1 << 16;

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
            learned: HashMap::new(),
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
            jb.symbol(h.name(), helpers::address(h));
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

impl CraneliftBackend {
    /// Compiles `region`, storing the `forced` registers before the inline accesses at
    /// those pcs; `Err` lists, per access pc, the registers the fault path could not
    /// find there.
    fn compile_with(
        &mut self,
        region: &Region,
        env: &mut CompileEnv<'_>,
        forced: &HashMap<u32, u32>,
    ) -> Result<Result<Translation, Vec<(u32, u32)>>, JitError> {
        let err = |e: &dyn std::fmt::Display| JitError::Compile { pc: region.head().pc, msg: e.to_string() };
        let module = self.module.as_mut().ok_or_else(|| err(&"no module"))?;
        let lift_env = LiftEnv {
            helper_ids: self.helper_ids,
            near_calls: env.near,
            host_call_conv: module.isa().default_call_conv(),
            jump_cache: env.jump_cache,
            hot_counter: env.hot_counter,
            target_cell: env.target_cell,
            frontend: module.isa().frontend_config(),
            arena_base: env.arena_base,
            checkpoints: self.config.checkpoints,
        };
        self.ctx.clear();
        self.ctx.func.signature = lift::block_signature();
        let lifted = lift::lift_region(
            &mut self.ctx.func,
            &mut self.fctx,
            region,
            &lift_env,
            env.slot_for,
            env.plan_for,
            forced,
        );
        let ir = env.ir.then(|| self.ctx.func.display().to_string());
        let id: FuncId = module.declare_anonymous_function(&lift::block_signature()).map_err(|e| err(&e))?;
        module.define_function(id, &mut self.ctx).map_err(|e| match &e {
            ModuleError::Allocation { err: io } => shortage_of(io).map_or_else(|| err(&e), JitError::CodeMemory),
            _ => err(&e),
        })?;
        module.finalize_definitions().map_err(|e| err(&e))?;
        let code = module.get_finalized_function(id) as u64;
        let compiled = self.ctx.compiled_code().ok_or_else(|| err(&"no compiled code"))?;
        // Every inline access, by host address, with its site (the source location set
        // for each guest instruction indexes the sites) and where the registers it did
        // not store are when it faults.
        let srclocs = compiled.buffer.get_srclocs_sorted();
        let ranges = &compiled.value_labels_ranges;
        let mut inline_accesses = Vec::new();
        let mut missing = Vec::new();
        let unique = lifted.access_sites.len() <= lift::TRAP_CODES as usize;
        for trap in compiled.buffer.traps() {
            let Some(k) = lift::inline_access_of(trap.code) else { continue };
            // The trap code names the access; with more accesses than codes, the source
            // location does (and must agree with the code).
            let index = if unique {
                lifted.access_sites.get(k as usize).copied()
            } else {
                srclocs.iter().find(|l| l.start <= trap.offset && trap.offset < l.end).map(|l| l.loc.bits()).filter(
                    |i| lifted.access_sites.iter().position(|s| s == i).map(|p| p as u32 % lift::TRAP_CODES) == Some(k),
                )
            };
            let Some(index) = index else {
                return Err(err(&"an inline access the fault map cannot place (too many accesses in one region)"));
            };
            let site = lifted.sites.get(index as usize).ok_or_else(|| err(&"inline access without a site"))?;
            let mut recover = Vec::new();
            let rec = lifted.recoveries.iter().find(|r| r.site == index);
            let rollback = rec.is_some_and(|r| r.rollback);
            if let Some(rec) = rec {
                for r in 0..32u8 {
                    if rec.regs & (1 << r) == 0 {
                        continue;
                    }
                    let reg = match (r, lifted.below_end) {
                        (0, false) => RECOVER_RETIRED,
                        (0, true) => RECOVER_RETIRED_BELOW_END,
                        _ => r,
                    };
                    let label = rec.labels.iter().find(|(lr, _)| *lr == r).map_or(u32::MAX, |&(_, l)| l);
                    if let Some(&(_, c)) = rec.consts.iter().find(|(cr, _)| *cr == r) {
                        recover.push((reg, ValueLoc::Const(c)));
                        continue;
                    }
                    let place_of = |label: u32| {
                        let found = ranges.get(&ValueLabel::from_u32(label)).and_then(|rs| {
                            rs.iter().find(|x| x.start <= trap.offset && trap.offset < x.end).map(|x| x.loc)
                        });
                        match found {
                            Some(LabelValueLoc::Reg(preg)) => preg.to_real_reg().map(|real| Place::Gpr(real.hw_enc())),
                            Some(LabelValueLoc::CFAOffset(off)) => i32::try_from(off).ok().map(Place::Cfa),
                            None => None,
                        }
                    };
                    // Where the value is; else, computed from the value it comes from.
                    let place = place_of(label).map(ValueLoc::At).or_else(|| {
                        let (_, leaf, steps) = rec.chains.iter().find(|(cr, ..)| *cr == r)?;
                        let mut fixed = [Step::Add(0); MAX_STEPS];
                        fixed[..steps.len()].copy_from_slice(steps);
                        Some(ValueLoc::Computed(place_of(*leaf)?, fixed, steps.len() as u8))
                    });
                    let place = place.or_else(|| {
                        let &(_, x, op, y) = rec.pairs.iter().find(|(pr, ..)| *pr == r)?;
                        Some(ValueLoc::Combined(place_of(x)?, op, place_of(y)?))
                    });
                    match place {
                        Some(place) => recover.push((reg, place)),
                        None => missing.push((site.pc, 1u32 << r)),
                    }
                }
            }
            inline_accesses.push(InlineAccess {
                host: code + u64::from(trap.offset),
                pc: site.pc,
                retired: site.retired,
                recover,
                rollback,
            });
        }
        if !missing.is_empty() {
            return Ok(Err(missing));
        }
        let size = compiled.code_info().total_size;
        Ok(Ok(Translation { code, size, inline_accesses, ir, full_sync: false, recompiles: 0 }))
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
        // Where the fault path would miss a register (computed after the access, or not
        // kept), store it before that access and compile again; after a few rounds,
        // store every changed register before every inline access.
        let mut forced: HashMap<u32, u32> =
            region.access_pcs().into_iter().filter_map(|pc| Some((pc, *self.learned.get(&pc)?))).collect();
        for round in 0..MAX_RECOVERY_ROUNDS {
            match self.compile_with(region, env, &forced)? {
                Ok(t) => return Ok(Translation { recompiles: round as u32, ..t }),
                Err(missing) => {
                    if self.learned.len() > MAX_LEARNED {
                        self.learned.clear();
                    }
                    for (pc, regs) in missing {
                        *forced.entry(pc).or_insert(0) |= regs;
                        *self.learned.entry(pc).or_insert(0) |= regs;
                    }
                }
            }
        }
        let all = region.access_pcs().into_iter().map(|pc| (pc, u32::MAX)).collect();
        match self.compile_with(region, env, &all)? {
            Ok(t) => Ok(Translation { full_sync: true, recompiles: MAX_RECOVERY_ROUNDS as u32, ..t }),
            Err(_) => {
                Err(JitError::Compile { pc: region.head().pc, msg: "no recovery needed, yet none possible".into() })
            }
        }
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
