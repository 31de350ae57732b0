//! The seam between the translation cache and the code generators. A code generator
//! turns one guest block into machine code in the shared code memory, honouring the block
//! contract of [`crate::jit::abi`], and lists the inline accesses in it for the fault map.
//! Everything else (which blocks, the access states, exit slots, the jump cache,
//! linking, invalidation, flushing) is the translation cache's ([`crate::jit::cache`]).

use crate::jit::access::AccessState;
use crate::jit::block::Block;
use crate::jit::codemem::CodePool;
use crate::jit::JitError;

/// How translated code performs one access, and the record that profiling updates.
#[derive(Clone, Copy, Debug)]
pub struct AccessPlan {
    pub state: AccessState,
    /// Address of the access's `AccessRecord` (passed to profiling helpers).
    pub record: u64,
}

/// What the translation cache provides to compile one block.
pub struct CompileEnv<'a> {
    /// Host address of guest address 0.
    pub arena_base: u64,
    /// Base of the jump cache ([`crate::jit::abi::JumpCacheEntry`] entries, indexed by
    /// `(pc >> JUMP_CACHE_SHIFT) & JUMP_CACHE_MASK`).
    pub jump_cache: u64,
    /// Is every code chunk within rel32 reach of the helpers?
    pub near: bool,
    /// The code memory to place the code in.
    pub pool: &'a CodePool,
    /// When set: the address of a `u32` counter the block decrements on every entry;
    /// when it reaches zero the block exits with [`crate::jit::abi::EXIT_HOT`] before
    /// executing anything (so a higher tier can take over).
    pub hot_counter: Option<u64>,
    /// Produce a listing (IR, host code) for `--print-code`.
    pub listing: bool,
    /// The exit slot (an 8-byte cell holding code to continue at) for a jump to `target`.
    pub slot_for: &'a mut dyn FnMut(u32) -> u64,
    /// How to perform the access at guest `pc`.
    pub plan_for: &'a mut dyn FnMut(u32) -> AccessPlan,
}

/// A compiled block.
#[derive(Clone, Debug, Default)]
pub struct Translation {
    /// Host address of the code.
    pub code: u64,
    /// Bytes of host code.
    pub size: u32,
    /// Every inline guest access: (host address of the faulting instruction, index of
    /// the guest instruction in the block).
    pub inline_accesses: Vec<(u64, u32)>,
    /// The listing, when asked for: the backend's intermediate form and host code.
    pub listing: Option<String>,
}

/// A code generator (see `crate::backend` for the ones there are).
pub trait Backend {
    /// The name used in statistics and on the command line.
    fn name(&self) -> &'static str;

    /// Translates `block` (not empty) into code memory.
    fn compile(&mut self, block: &Block, env: &mut CompileEnv<'_>) -> Result<Translation, JitError>;

    /// Forgets all code (the cache resets the code memory next). Called only when no
    /// translated code is running.
    fn flush(&mut self) -> Result<(), JitError>;
}
