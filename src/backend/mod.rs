//! The code generators. Each turns a guest block into machine code behind the seam of
//! [`crate::jit::codegen::Backend`]:
//!
//! - [`cranelift`]: lifts to Cranelift IR and compiles it: slow to compile, fast code;
//! - [`direct`]: emits x86-64 per guest instruction, no IR: fast to compile.
//!
//! Adding a backend is one new folder with a type that implements the trait, and one
//! arm in [`create`].

pub mod cranelift;
pub mod direct;

use crate::jit::cache::TierSpec;
use crate::jit::codegen::Backend;
use crate::jit::codemem::CodePool;
use crate::jit::{BackendKind, JitConfig, JitError};

/// A code generator of `kind` that places its code in `pool`.
pub fn create(kind: BackendKind, config: &JitConfig, pool: &CodePool) -> Result<Box<dyn Backend>, JitError> {
    Ok(match kind {
        BackendKind::Cranelift => Box::new(cranelift::CraneliftBackend::new(
            cranelift::CraneliftConfig {
                optimize: config.optimize,
                verify: config.verify,
                checkpoints: config.checkpoints,
            },
            pool.clone(),
        )?),
        BackendKind::Direct => Box::new(direct::DirectBackend::new()),
    })
}

/// The tiers of a translated run: the first compiles on the dispatcher's thread, the
/// others on their own threads when `config.compile_thread` is set.
pub fn tiers(kinds: &[BackendKind], config: &JitConfig, pool: &CodePool) -> Result<Vec<TierSpec>, JitError> {
    let mut out = Vec::new();
    for (i, &kind) in kinds.iter().enumerate() {
        out.push(if i > 0 && config.compile_thread {
            let (config, pool) = (config.clone(), pool.clone());
            let regions = kind == BackendKind::Cranelift;
            TierSpec::Background { name: kind.name(), regions, make: Box::new(move || create(kind, &config, &pool)) }
        } else {
            TierSpec::Inline(create(kind, config, pool)?)
        });
    }
    Ok(out)
}
