//! What every backend shares: block discovery ([`block`]), the per-access state machine
//! ([`access`]), the contract of translated code and the helpers it calls ([`abi`],
//! [`helpers`]), code memory ([`codemem`]), the entry trampoline and fault handler
//! ([`fault`]), the seam to the code generators ([`codegen`]), the translation cache
//! with its exit slots, jump cache, fault map and tiers ([`cache`]), and the dispatcher
//! ([`dispatch`]), the only loop of a translated run; memory shared with translated code
//! ([`shared`]); what lets one see inside: `--dump` ([`dump`]) and `--verify`
//! ([`verify`]).

pub mod abi;
pub mod access;
pub mod block;
pub mod cache;
pub mod codegen;
pub mod codemem;
pub mod dispatch;
pub mod dump;
pub mod fault;
pub mod helpers;
pub mod region;
pub mod shared;
pub mod verify;
pub mod worker;

use access::MemMode;

/// The code generators, by name (`--backend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// x86-64 emitted per guest instruction, no IR.
    Direct,
    /// Cranelift IR, optimized.
    Cranelift,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Direct => "direct",
            BackendKind::Cranelift => "cranelift",
        }
    }
}

/// Settings of a translated run.
#[derive(Clone, Debug)]
pub struct JitConfig {
    /// Entries of a block's code in one tier before the next tier compiles it.
    pub tier_up: u32,
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
    /// What `--dump` shows of each translation and of the events that change them.
    pub dump: dump::DumpSet,
    /// Where the dump goes (rvdbt's stderr when `None`).
    pub dump_file: Option<std::path::PathBuf>,
    /// Interpret a block this many times before compiling it (0: compile at once).
    pub compile_after: u32,
    /// Compile tiers above the first on their own thread.
    pub compile_thread: bool,
    /// Tiers above the first compile hot regions (loops, paths) rather than blocks.
    pub regions: bool,
    /// Cap on the blocks of a region.
    pub max_region_blocks: usize,
    /// Cranelift code writes its state to `Cpu` at some stores (checkpoints) and a
    /// fault in a load after one resumes there; off: every inline access makes the
    /// exact state recoverable where it is (see the lifter's `Sync`).
    pub checkpoints: bool,
    /// A deliberately broken lifting, to show that `--verify` catches one: every
    /// register-register `add` is translated as a `sub`. Never set outside tests.
    pub planted_bug: bool,
    /// Most host code bytes of one translation (at most a code chunk): a block whose
    /// code is larger is split, a larger region is left to the tier below.
    pub max_translation_bytes: usize,
}

/// Default of [`JitConfig::compile_after`].
pub const DEFAULT_COMPILE_AFTER: u32 = 16;
/// Default of [`JitConfig::tier_up`].
pub const DEFAULT_TIER_UP: u32 = 5000;

impl Default for JitConfig {
    fn default() -> Self {
        JitConfig {
            tier_up: DEFAULT_TIER_UP,
            optimize: true,
            verify: cfg!(debug_assertions),
            max_block_insns: block::DEFAULT_MAX_BLOCK_INSNS,
            code_cache_bytes: 64 << 20,
            near_code: true,
            mem: MemMode::Adaptive,
            commit_after: 3,
            dump: dump::DumpSet::default(),
            dump_file: None,
            compile_after: DEFAULT_COMPILE_AFTER,
            compile_thread: true,
            regions: true,
            max_region_blocks: region::DEFAULT_MAX_REGION_BLOCKS,
            checkpoints: true,
            planted_bug: false,
            max_translation_bytes: codemem::CHUNK_SIZE,
        }
    }
}

/// Why translation failed (a host-side problem, never a guest one).
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    #[error("cannot set up the translator: {0}")]
    Setup(String),
    #[error("cannot compile the block at {pc:#010x}: {msg}")]
    Compile { pc: u32, msg: String },
    /// Code memory refused the translation for a reason the cache remedies.
    #[error("code memory: {0}")]
    CodeMemory(#[from] codemem::CodeMemoryShortage),
    #[error("internal error: {0}")]
    Internal(String),
    /// `--verify` found translated code disagreeing with the interpreter.
    #[error("--verify: {0}")]
    Mismatch(String),
}
