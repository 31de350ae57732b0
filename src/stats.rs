//! The counters a run reports (`--stats`, `--stats-json`). The machine owns them; the
//! syscall layer, the helpers and the translation cache add to them.

/// Counters of one code generator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendStats {
    pub blocks: u64,
    pub guest_insns: u64,
    pub compile_ns: u64,
    pub code_bytes: u64,
}

impl BackendStats {
    pub fn add(&mut self, other: &BackendStats) {
        self.blocks += other.blocks;
        self.guest_insns += other.guest_insns;
        self.compile_ns += other.compile_ns;
        self.code_bytes += other.code_bytes;
    }
}

/// Counters the translation cache keeps.
#[derive(Clone, Debug, Default)]
pub struct CacheStats {
    /// Translations, their guest instructions, compile time and code bytes per code
    /// generator, by backend name, in tier order ([`CacheStats::total`] sums them).
    pub by_backend: Vec<(&'static str, BackendStats)>,
    pub cache_flushes: u64,
    /// Exit slots pointed at translated code (chaining links made).
    pub chained_exits: u64,
    /// Blocks compiled again after an access in them changed state.
    pub recompiles: u64,
    /// Blocks compiled again by a higher tier because they became hot.
    pub tier_ups: u64,
    /// Tier-ups put off because the block was inside a region formed already.
    pub tier_ups_deferred: u64,
    /// Translations of more than one block (regions), the blocks in them, and the time
    /// spent compiling them (also counted in the totals above).
    pub regions_compiled: u64,
    pub region_blocks: u64,
    pub region_compile_ns: u64,
    /// Translations that store every changed guest register before every inline access
    /// (the fault path could not have found some of them).
    pub full_sync_translations: u64,
    /// Compiles done again to store registers the fault path could not find at an
    /// inline access (see `backend::cranelift`).
    pub recovery_recompiles: u64,
    /// Blocks whose code was too large for one translation and were split.
    pub blocks_split: u64,
    /// Guest pages whose translations were dropped because their code was written.
    pub code_pages_invalidated: u64,
}

impl CacheStats {
    /// The counters of every code generator together.
    pub fn total(&self) -> BackendStats {
        let mut t = BackendStats::default();
        for (_, b) in &self.by_backend {
            t.add(b);
        }
        t
    }

    /// Counts one translation by `backend`.
    pub fn record(&mut self, backend: &'static str, one: BackendStats) {
        match self.by_backend.iter_mut().find(|(name, _)| *name == backend) {
            Some((_, s)) => s.add(&one),
            None => self.by_backend.push((backend, one)),
        }
    }
}

/// Counts of state changes of access records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransitionCounts {
    pub naive_to_committed: u64,
    pub naive_to_variable: u64,
    pub committed_to_variable: u64,
}

/// Counts of access records per state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounts {
    pub naive: u64,
    pub committed_ram: u64,
    pub committed_device: u64,
    pub variable: u64,
}

/// Counts of a `--verify` run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyStats {
    /// Entries into translated code checked against the interpreter.
    pub entries: u64,
    /// Guest instructions translated code ran in them.
    pub insns: u64,
    /// Entries not made because the interpreter could not run ahead over the first
    /// block (a device access, a fault): those blocks were interpreted.
    pub skipped: u64,
}

/// Everything `--stats` reports besides the run's outcome.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub syscalls: u64,
    pub unknown_syscalls: u64,
    /// Warnings about the guest, also those beyond the ones kept (`Machine::warnings`).
    pub warnings: u64,
    /// The translation cache's counters (blocks, compile time, flushes, ...).
    pub cache: CacheStats,
    pub dispatcher_entries: u64,
    /// Was translated code placed near the executable (rel32 helper calls)?
    pub near_code: bool,
    /// Access records per state at the end of the run.
    pub accesses: StateCounts,
    pub transitions: TransitionCounts,
    /// Inline accesses that faulted and were repaired.
    pub faults_handled: u64,
    /// Of those, inline stores into a page that holds translated code.
    pub code_write_faults: u64,
    /// Of those, the ones that resumed at the last checkpoint (`Cpu` as it was) rather
    /// than at the access.
    pub faults_rolled_back: u64,
    /// Guest registers (and retired totals) the fault path took from the faulting code's
    /// host registers and frame.
    pub registers_recovered: u64,
    /// Of those, the ones computed from another value the code kept (see
    /// `ValueLoc::Computed`).
    pub registers_computed: u64,
    /// `--verify`: what was checked.
    pub verify: VerifyStats,
}
