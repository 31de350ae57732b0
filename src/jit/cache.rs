//! The translation cache: which guest blocks have code, from which tier, and everything
//! chaining and recovery need, for every backend.
//!
//! - `blocks`: guest pc -> translated code and its tier.
//! - Exit slots: one 8-byte cell per jump target pc, shared by every block exit that
//!   jumps there. A slot holds the address of the target's code, or of the
//!   return-to-dispatcher stub until the target is compiled. Linking a target (or
//!   moving it to a higher tier) is one store into its slot: emitted code is never
//!   patched.
//! - The jump cache: a direct-mapped table (guest pc -> code) that `jalr` consults
//!   before it returns to the dispatcher.
//! - Access records (the per-access state machine, see `access`) and the fault map:
//!   host address of every inline access -> its guest pc and block.
//! - Tiers: a block is interpreted `compile_after` times, then compiled by the first
//!   code generator; code of every tier but the last counts its entries and, after
//!   `tier_up` of them, exits so that the next tier compiles the block. The old code
//!   stays valid (and reachable) until the new code is linked.
//!
//! A block whose access changed state, or whose guest code was written (see
//! `memory/code.rs`: the cache marks the pages each translation is decoded from), is
//! invalidated (its slot and jump cache entry go back to the dispatcher, its fault-map
//! entries are dropped) and recompiled on its next entry; its old code stays in
//! memory, unreachable, until the next flush. `fence.i` needs nothing: stale code is
//! gone as soon as it is written.
//!
//! The budget (`--code-cache`) bounds the code, and separately the bookkeeping: access
//! records, fault-map entries and warm-up counts, counted at their approximate host
//! size (with at least [`BOOKKEEPING_FLOOR`] for them). When either is exceeded
//! everything is flushed at once: every backend drops its code and the code memory is
//! reused (the QEMU "tb_flush" way). Access records survive a flush (what was learned
//! about an access stays true), except when the bookkeeping is what overflowed: then
//! it starts over, records included (an access relearns its state).

use crate::guest::decode::{AluOp, Inst};
use crate::jit::abi::{jump_cache_index, JumpCacheEntry, JUMP_CACHE_ENTRIES};
use crate::jit::access::{count_states, AccessRecord, AccessState, RegionClass, Transition};
use crate::jit::block::{self, Block, BlockEnd};
use crate::jit::codegen::{AccessPlan, Backend, CompileEnv, Translation, ValueLoc};
use crate::jit::codemem::{CodeMemoryShortage, CodePool};
use crate::jit::dump::{self, state_name, Dump};
use crate::jit::region::Region;
use crate::jit::shared::{SharedBox, SharedCells};
use crate::jit::worker::{BackendFactory, Done, Request, Worker};
use crate::jit::{JitConfig, JitError};
use crate::memory::{Device, Memory, PAGE};
use crate::stats::{BackendStats, CacheStats, StateCounts};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

/// Cells per slab; slabs never move, so cell addresses stay valid until a flush.
const SLAB_CELLS: usize = 1024;

/// Fixed-address cells that translated code reads or writes (exit slots, tier-up
/// counters, targets of indirect jumps), allocated in slabs and all forgotten at once.
struct Cells<T: Copy + Default> {
    slabs: Vec<SharedCells<T>>,
    used: usize,
}

impl<T: Copy + Default> Cells<T> {
    fn new() -> Self {
        Cells { slabs: Vec::new(), used: 0 }
    }

    fn alloc(&mut self, value: T) -> *mut T {
        if self.used == self.slabs.len() * SLAB_CELLS {
            self.slabs.push(SharedCells::new(SLAB_CELLS, T::default()));
        }
        let (slab, i) = (&self.slabs[self.used / SLAB_CELLS], self.used % SLAB_CELLS);
        slab.set(i, value);
        self.used += 1;
        slab.cell(i)
    }

    /// The value of the cell `alloc` handed out as the `index`-th.
    fn get(&self, index: usize) -> T {
        self.slabs[index / SLAB_CELLS].get(index % SLAB_CELLS)
    }

    /// Sets the cell `alloc` handed out as the `index`-th.
    fn set(&self, index: usize, value: T) {
        self.slabs[index / SLAB_CELLS].set(index % SLAB_CELLS, value);
    }

    /// Forgets every cell (the slabs are reused). Only when no code can use them.
    fn clear(&mut self) {
        self.used = 0;
    }
}

/// Exit slots, per target pc.
struct Slots {
    cells: Cells<u64>,
    by_target: HashMap<u32, *mut u64>,
    stub: u64,
}

impl Slots {
    /// The slot for `target`, created pointing at `code` (or the stub).
    fn slot(&mut self, target: u32, code: Option<u64>, linked: &mut u64) -> *mut u64 {
        if let Some(&s) = self.by_target.get(&target) {
            return s;
        }
        if code.is_some() {
            *linked += 1;
        }
        let slot = self.cells.alloc(code.unwrap_or(self.stub));
        self.by_target.insert(target, slot);
        slot
    }

    /// Points the slot of `target` (if any) at `code`.
    fn set(&mut self, target: u32, code: u64) {
        if let Some(&s) = self.by_target.get(&target) {
            // SAFETY: a cell of a live slab (`SharedCells`, only ever reached through
            // raw pointers), until `clear`; no translated code runs meanwhile.
            unsafe { s.write(code) };
        }
    }

    fn clear(&mut self) {
        self.by_target.clear();
        self.cells.clear();
    }
}

/// The cache's entry for one access: the record translated code and the helpers
/// update (at a fixed address), and the blocks translated with the access in them.
struct Record {
    shared: SharedBox<AccessRecord>,
    /// Start pcs of the blocks (or region heads) translated with this access in them.
    blocks: Vec<u32>,
}

impl Record {
    fn new(pc: u32, config: &JitConfig) -> Record {
        Record { shared: SharedBox::new(AccessRecord::new(pc, config.mem, config.commit_after)), blocks: Vec::new() }
    }
}

/// Where an inline access lives: its guest pc, the block (or region head) it was
/// compiled in, the instructions retired before it that `cpu.retired` does not count
/// yet when it faults, and where the guest registers not yet stored are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultSite {
    pub pc: u32,
    pub block: u32,
    pub retired: u32,
    pub recover: Box<[(u8, ValueLoc)]>,
    /// Resume at the checkpoint in `Cpu` (see `InlineAccess::rollback`).
    pub rollback: bool,
}

/// A translated block, as the dispatcher enters it.
#[derive(Clone, Copy, Debug)]
pub struct Compiled {
    pub code: u64,
    /// The most guest instructions it runs before it checks the budget again (the
    /// block's length for a block).
    pub len: u32,
    /// Host code bytes.
    pub size: u32,
    /// Index of the code generator (its tier) that compiled it.
    pub tier: u8,
    /// Does it end with a branch or jump (so that the pc it leaves for starts a dynamic
    /// block, see [`crate::jit::block::ends_block`])? Meaningful for single blocks.
    pub ends_with_jump: bool,
}

/// A code generator of one tier, as the cache is given it.
pub enum TierSpec {
    /// Compiles on the dispatcher's thread.
    Inline(Box<dyn Backend>),
    /// Compiles on its own thread (not for the first tier): the block keeps running its
    /// lower-tier code until the new code arrives.
    /// `regions`: the code generator compiles regions of several blocks.
    Background { name: &'static str, regions: bool, make: BackendFactory },
}

enum Tier {
    Inline(Box<dyn Backend>),
    Background { name: &'static str, regions: bool, worker: Worker },
}

impl Tier {
    fn name(&self) -> &'static str {
        match self {
            Tier::Inline(b) => b.name(),
            Tier::Background { name, .. } => name,
        }
    }

    fn regions(&self) -> bool {
        match self {
            Tier::Inline(b) => b.regions(),
            Tier::Background { regions, .. } => *regions,
        }
    }
}

/// The translation cache of one machine.
pub struct CodeCache {
    config: JitConfig,
    arena_base: u64,
    pool: CodePool,
    /// Code generators by tier.
    tiers: Vec<Tier>,
    /// Flushes so far (requests to a compile thread made before a flush are void).
    epoch: u64,
    blocks: HashMap<u32, Compiled>,
    slots: Slots,
    counters: Cells<u32>,
    /// The tier-up counter of the translation at each pc that has one, by index in
    /// `counters`: entries left before it tiers up.
    counter_of: HashMap<u32, usize>,
    /// The cell where the translation at each pc that has one stores the target of its
    /// closing indirect jump, by index in `counters` (0 until it runs).
    target_of: HashMap<u32, usize>,
    /// Blocks inside regions queued for a compile thread, other than their heads (see
    /// [`CodeCache::tier_up`]).
    covered: HashSet<u32>,
    jump_cache: SharedCells<JumpCacheEntry>,
    records: HashMap<u32, Record>,
    fault_map: BTreeMap<u64, FaultSite>,
    /// Blocks dropped for recompilation (they start again at the first tier).
    invalidated: HashSet<u32>,
    /// Executions of not yet compiled blocks, by start pc.
    hotness: HashMap<u32, u32>,
    /// `--dump`: translations and events, as text.
    dump: Option<Dump>,
    /// Debugger breakpoints: blocks end before them (never run past one).
    breakpoints: BTreeSet<u32>,
    /// Heads of the translations (blocks and regions) decoded from each guest page, by
    /// page address; an entry may name a head that is gone since.
    code_pages: HashMap<u32, Vec<u32>>,
    /// Heads filed in `code_pages`, all pages together.
    code_page_entries: usize,
    pub stats: CacheStats,
}

/// Approximate host bytes of one access record (its allocation, its map entry and the
/// list of its blocks), counted against the cache budget.
const RECORD_BYTES: usize = 128;
/// Approximate host bytes of one fault-map entry (with its recovery list).
const FAULT_SITE_BYTES: usize = 96;
/// Approximate host bytes of one warm-up count or page entry.
const COUNT_BYTES: usize = 24;
/// The least the bookkeeping may hold whatever the budget.
pub const BOOKKEEPING_FLOOR: usize = 1 << 20;

/// How much the cache keeps besides code (`CodeCache::bookkeeping`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bookkeeping {
    pub access_records: usize,
    pub fault_sites: usize,
    /// Blocks counted while still interpreted.
    pub warm_blocks: usize,
    /// Translations filed under the guest pages they were decoded from (one per page
    /// and translation).
    pub code_pages: usize,
}

impl Bookkeeping {
    /// Approximate host bytes of it all.
    pub fn bytes(&self) -> usize {
        self.access_records * RECORD_BYTES
            + self.fault_sites * FAULT_SITE_BYTES
            + (self.warm_blocks + self.code_pages) * COUNT_BYTES
    }
}

impl CodeCache {
    /// A cache for the machine whose guest arena starts at host address `arena_base`,
    /// compiling with `tiers` (in order) into `pool`.
    pub fn new(
        config: JitConfig,
        pool: CodePool,
        specs: Vec<TierSpec>,
        arena_base: u64,
    ) -> Result<CodeCache, JitError> {
        if specs.is_empty() || specs.len() > usize::from(u8::MAX) {
            return Err(JitError::Setup(format!("{} code generators (1 to 255 allowed)", specs.len())));
        }
        let mut tiers = Vec::new();
        for (i, spec) in specs.into_iter().enumerate() {
            tiers.push(match spec {
                TierSpec::Inline(b) => Tier::Inline(b),
                TierSpec::Background { .. } if i == 0 => {
                    return Err(JitError::Setup("the first tier compiles on the dispatcher's thread".into()))
                }
                TierSpec::Background { name, regions, make } => {
                    Tier::Background { name, regions, worker: Worker::start(name, make, pool.clone())? }
                }
            });
        }
        let stats = CacheStats {
            by_backend: tiers.iter().map(|t| (t.name(), BackendStats::default())).collect(),
            ..CacheStats::default()
        };
        let dump = match config.dump.any() {
            false => None,
            true => Some(Dump::create(config.dump, config.dump_file.as_deref()).map_err(|e| {
                let file = config.dump_file.as_deref().unwrap_or("stderr".as_ref()).display();
                JitError::Setup(format!("cannot create the dump file {file}: {e}"))
            })?),
        };
        let mut cache = CodeCache {
            config,
            arena_base,
            pool,
            tiers,
            epoch: 0,
            blocks: HashMap::new(),
            slots: Slots { cells: Cells::new(), by_target: HashMap::new(), stub: 0 },
            counters: Cells::new(),
            counter_of: HashMap::new(),
            target_of: HashMap::new(),
            covered: HashSet::new(),
            jump_cache: SharedCells::new(JUMP_CACHE_ENTRIES, JumpCacheEntry::EMPTY),
            records: HashMap::new(),
            fault_map: BTreeMap::new(),
            invalidated: HashSet::new(),
            hotness: HashMap::new(),
            dump,
            breakpoints: BTreeSet::new(),
            code_pages: HashMap::new(),
            code_page_entries: 0,
            stats,
        };
        cache.emit_stub()?;
        Ok(cache)
    }

    /// The return-to-dispatcher stub every unlinked slot points at: `xor eax, eax; ret`
    /// (`EXIT_DISPATCH`; the exit that jumped here has stored `pc`).
    fn emit_stub(&mut self) -> Result<(), JitError> {
        const _: () = assert!(crate::jit::abi::EXIT_DISPATCH == 0);
        let setup = |e: &dyn std::fmt::Display| JitError::Setup(format!("code memory: {e}"));
        let stub = self.pool.emit(16, |_| Ok::<_, JitError>(vec![0x31, 0xc0, 0xc3])).map_err(|e| setup(&e))??;
        self.slots.stub = stub;
        Ok(())
    }

    /// Flushes so far: code memory holds the same code while this stays the same.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The translation `block` entered at `pc` when the cache was at `epoch`, as
    /// `--verify` prints it: the guest code from `pc` and the host code.
    pub fn describe(&self, mem: &Memory, pc: u32, block: &Compiled, epoch: u64) -> String {
        let name = self.tiers.get(usize::from(block.tier)).map_or("?", Tier::name);
        let mut out = format!("the translation entered ({name}, host {:#x}, {} bytes):\n", block.code, block.size);
        let guest = self.discover(mem, pc, self.config.max_block_insns);
        for (i, inst) in guest.insts.iter().enumerate() {
            let at = guest.pc_of(i);
            out += &format!("  {at:08x}  {}\n", crate::guest::disasm::disassemble(inst, at).replace('\t', " "));
        }
        if epoch != self.epoch {
            out += "  (its host code is gone: the cache was flushed since it ran)\n";
            return out;
        }
        let accesses: Vec<(u64, u32)> =
            self.fault_map.range(block.code..block.code + u64::from(block.size)).map(|(&h, s)| (h, s.pc)).collect();
        // SAFETY: no flush since the block ran (checked above): its code is still mapped
        // and unchanged (dropped translations stay in memory until a flush).
        let bytes = unsafe { std::slice::from_raw_parts(block.code as *const u8, block.size as usize) };
        out + &dump::host_listing(bytes, block.code, &accesses)
    }

    /// The block at `pc`, cut before the first breakpoint after its start.
    fn discover(&self, mem: &Memory, pc: u32, max_insns: usize) -> Block {
        let mut b = block::discover(mem, pc, max_insns);
        if let Some(cut) = (1..b.len()).find(|&i| self.breakpoints.contains(&b.pc_of(i))) {
            b.truncate(cut);
        }
        b
    }

    /// Sets the debugger's breakpoints: from now on no translation runs past one (the
    /// translations made before are dropped when the set changes).
    pub fn set_breakpoints(&mut self, breakpoints: &BTreeSet<u32>) -> Result<(), JitError> {
        if *breakpoints != self.breakpoints {
            self.breakpoints = breakpoints.clone();
            self.flush("the debugger changed breakpoints")?;
        }
        Ok(())
    }

    /// Cap on guest instructions per block.
    pub fn max_block_insns(&self) -> usize {
        self.config.max_block_insns
    }

    /// Is translated code placed near the executable (rel32 helper calls)?
    pub fn near(&self) -> bool {
        self.pool.near()
    }

    /// Drops every translation and resets the code memory, for `reason` (which the
    /// dump's events show). Only call from the dispatcher, when no translated code is
    /// running.
    pub fn flush(&mut self, reason: &str) -> Result<(), JitError> {
        self.event(format_args!("flush  {reason}"));
        for t in &mut self.tiers {
            match t {
                Tier::Inline(b) => b.flush()?,
                // Waits for the compile thread; what it finished meanwhile is void.
                Tier::Background { worker, .. } => drop(worker.flush()?),
            }
        }
        self.epoch += 1;
        self.pool.reset();
        self.blocks.clear();
        self.slots.clear();
        self.counters.clear();
        self.counter_of.clear();
        self.target_of.clear();
        self.covered.clear();
        self.jump_cache.fill(JumpCacheEntry::EMPTY);
        self.fault_map.clear();
        self.invalidated.clear();
        for r in self.records.values_mut() {
            r.blocks.clear();
        }
        self.code_pages.clear();
        self.code_page_entries = 0;
        self.stats.cache_flushes += 1;
        self.emit_stub()
    }

    /// The budget is exceeded: flushes, and forgets the bookkeeping too (warm-up counts
    /// and access records: accesses relearn their states).
    fn start_over(&mut self) -> Result<(), JitError> {
        let reason = format!(
            "the bookkeeping is over its limit ({} bytes); access records are forgotten too",
            self.bookkeeping().bytes()
        );
        self.flush(&reason)?;
        self.records.clear();
        self.hotness.clear();
        Ok(())
    }

    /// The translation of the block at `pc`, compiling it once it has been asked for
    /// more than `compile_after` times. `None`: interpret it this time (still cold, or
    /// the instruction at `pc` needs the runtime or cannot be fetched).
    pub fn lookup(&mut self, mem: &mut Memory, pc: u32) -> Result<Option<Compiled>, JitError> {
        if let Some(&c) = self.blocks.get(&pc) {
            return Ok(Some(c));
        }
        if self.bookkeeping_over() {
            // Interpreted code grows the bookkeeping too (warm-up counts, the records
            // of the accesses it profiles).
            self.start_over()?;
        }
        if self.invalidated.remove(&pc) {
            let c = self.translate(mem, pc, 0)?;
            self.stats.recompiles += u64::from(c.is_some());
            return Ok(c);
        }
        if self.config.compile_after > 0 {
            let count = self.hotness.entry(pc).or_insert(0);
            if *count < self.config.compile_after {
                *count += 1;
                return Ok(None);
            }
        }
        self.translate(mem, pc, 0)
    }

    /// Should the interpreter profile the accesses of the block at `pc` (feed their
    /// records)? Those of translated blocks (an access handed back to the interpreter)
    /// and those of blocks in their last `commit_after` interpretations before they are
    /// compiled: enough to commit an access before its first translation, and no
    /// record at all for code that never gets warm.
    pub fn profiles(&self, pc: u32) -> bool {
        let (after, commit) = (self.config.compile_after, self.config.commit_after);
        self.blocks.contains_key(&pc) || self.hotness.get(&pc).is_none_or(|&n| n.saturating_add(commit) > after)
    }

    /// The block at `pc` exited as hot: the next tier compiles it and takes its place
    /// (at once, or when its compile thread is done).
    ///
    /// A block inside a region queued for a compile thread gets hot at about the same
    /// time as that region's head (they run in the same loop): until the region comes
    /// back, its tier-up counter starts again (16 times longer, at least 4096) instead
    /// of forming one more region around the same loop. When it comes back, the
    /// counters of the blocks inside it start again: what still enters them is outside
    /// the region (a side entry), and a block that gets hot that way heads a region of
    /// its own.
    pub fn tier_up(&mut self, mem: &mut Memory, pc: u32) -> Result<(), JitError> {
        let Some(&c) = self.blocks.get(&pc) else { return Ok(()) };
        let next = c.tier + 1;
        let Some(tier) = self.tiers.get(usize::from(next)) else { return Ok(()) };
        if let (true, Some(&i)) = (self.covered.contains(&pc), self.counter_of.get(&pc)) {
            // Each time costs a trip through the dispatcher: not too often.
            self.counters.set(i, self.config.tier_up.max(1).saturating_mul(16).max(4096));
            self.stats.tier_ups_deferred += 1;
            return Ok(());
        }
        let background = matches!(tier, Tier::Background { .. });
        let region = if self.config.regions && tier.regions() && self.breakpoints.is_empty() {
            let (blocks, counters, target_of) = (&self.blocks, &self.counters, &self.target_of);
            let taken = |t: u32| blocks.contains_key(&t);
            let seen_target = |b: u32| target_of.get(&b).map(|&i| counters.get(i));
            Region::form(mem, pc, self.config.max_block_insns, self.config.max_region_blocks, &taken, &seen_target)
        } else {
            Some(self.discover(mem, pc, self.config.max_block_insns)).filter(|b| !b.is_empty()).map(Region::single)
        };
        let Some(mut region) = region else { return Ok(()) };
        region.entries = self.entries_of(&region);
        if self.dumps_events() {
            let (from, to) = (self.tiers[usize::from(c.tier)].name(), self.tiers[usize::from(next)].name());
            let (n, insns) = (region.blocks.len(), region.insns());
            let on = if background { "queued for the compile thread" } else { "compiled now" };
            self.event(format_args!(
                "tier-up  block {pc:#010x} {from} -> {to}: {n} blocks, {insns} guest instructions, {on}"
            ));
        }
        if background {
            self.covered.extend(region.blocks[1..].iter().map(|b| b.pc));
            self.request(mem, region, next, c.code)
        } else {
            match self.translate_region(mem, region, next) {
                // Too large for one translation: the blocks keep their code.
                Err(JitError::CodeMemory(CodeMemoryShortage::TooLarge)) => Ok(()),
                r => {
                    r?;
                    self.stats.tier_ups += 1;
                    Ok(())
                }
            }
        }
    }

    /// Queues `region` for the compile thread of `tier`; `replaces` is the current code
    /// of its head.
    fn request(&mut self, mem: &mut Memory, mut region: Region, tier: u8, replaces: u64) -> Result<(), JitError> {
        if self.config.planted_bug {
            plant_bug(&mut region);
        }
        if self.make_room()? {
            // The block is compiled again from the first tier.
            return Ok(());
        }
        // A write to the region's code from now on drops its head, which voids the
        // request when it comes back.
        self.note_code(mem, &region)?;
        let hot_counter = self.hot_counter(tier, region.head().pc);
        let target_cell = self.target_cell(tier, &region);
        let mut slots = HashMap::new();
        for target in region.exit_targets() {
            let code = self.blocks.get(&target).map(|c| c.code);
            slots.insert(target, self.slots.slot(target, code, &mut self.stats.chained_exits) as u64);
        }
        let head = region.head().pc;
        let plans = region.access_pcs().into_iter().map(|a| (a, self.plan(a, head))).collect();
        let request = Request {
            region,
            replaces,
            epoch: self.epoch,
            arena_base: self.arena_base,
            jump_cache: self.jump_cache.base() as u64,
            near: self.pool.near(),
            hot_counter,
            target_cell,
            ir: self.config.dump.clif,
            slots,
            plans,
        };
        let Some(Tier::Background { worker, .. }) = self.tiers.get_mut(usize::from(tier)) else {
            return Err(JitError::Internal(format!("tier {tier} has no compile thread")));
        };
        worker.request(request)
    }

    /// Links in what compile threads have finished. Cheap when nothing is queued.
    pub fn poll(&mut self) -> Result<(), JitError> {
        let queued = |t: &Tier| matches!(t, Tier::Background { worker, .. } if worker.in_flight > 0);
        if !self.tiers.iter().any(queued) {
            return Ok(());
        }
        for t in 0..self.tiers.len() {
            while let Some(done) = match &mut self.tiers[t] {
                Tier::Background { worker, .. } => worker.try_take(),
                Tier::Inline(_) => None,
            } {
                if let Done::Compiled { request, result, compile_ns } = done {
                    self.install(t as u8, *request, result, compile_ns)?;
                }
            }
        }
        Ok(())
    }

    /// Links in a translation made by the compile thread of `tier`, unless the block
    /// changed meanwhile (invalidated, recompiled, flushed).
    fn install(
        &mut self,
        tier: u8,
        request: Request,
        result: Result<Translation, JitError>,
        compile_ns: u64,
    ) -> Result<(), JitError> {
        let region = &request.region;
        // The blocks inside count their entries afresh (linked in, only those from
        // outside the region).
        for b in &region.blocks[1..] {
            if let (true, Some(&i)) = (self.covered.remove(&b.pc), self.counter_of.get(&b.pc)) {
                self.counters.set(i, self.config.tier_up.max(1));
            }
        }
        let t = match self.within_cap(result) {
            Ok(t) => t,
            // Near code memory ran out on the compile thread: start over with far code.
            Err(JitError::CodeMemory(CodeMemoryShortage::NearExhausted)) => {
                return self.flush("code memory near the executable is used up; far code from now on")
            }
            // Too large for one translation: the region's blocks keep their code.
            Err(JitError::CodeMemory(CodeMemoryShortage::TooLarge)) => return Ok(()),
            Err(e) => return Err(e),
        };
        self.count(self.tiers[usize::from(tier)].name(), region, &t, compile_ns);
        let current = self.blocks.get(&region.head().pc).map(|c| c.code);
        if request.epoch != self.epoch || current != Some(request.replaces) {
            let head = region.head().pc;
            self.event(format_args!("dropped  tier-up of block {head:#010x}: the block changed while it compiled"));
            return Ok(());
        }
        // The code was written by another thread: serialize this one before running it
        // (cross-modifying code; the new code's lines were never executed here).
        std::arch::x86_64::__cpuid(0);
        self.link(region, t, tier);
        self.stats.tier_ups += 1;
        Ok(())
    }

    /// A tier-up counter for the code at `pc` compiled by `tier`, when there is a next
    /// tier.
    fn hot_counter(&mut self, tier: u8, pc: u32) -> Option<u64> {
        if !self.has_next(tier) {
            self.counter_of.remove(&pc);
            return None;
        }
        self.counter_of.insert(pc, self.counters.used);
        Some(self.counters.alloc(self.config.tier_up.max(1)) as u64)
    }

    /// A cell for the target of the indirect jump that closes a one-block `region`
    /// compiled by `tier`, when there is a next tier (whose regions follow that target).
    /// Not for returns: a function called from several places returns to each in turn,
    /// and a region that holds the call follows the return to its own call site.
    fn target_cell(&mut self, tier: u8, region: &Region) -> Option<u64> {
        let head = region.head();
        if !self.has_next(tier) || region.blocks.len() != 1 || !head.ends_indirect() || head.ends_in_return() {
            return None;
        }
        self.target_of.insert(head.pc, self.counters.used);
        Some(self.counters.alloc(0) as u64)
    }

    /// Is there a tier above `tier`?
    fn has_next(&self, tier: u8) -> bool {
        usize::from(tier) + 1 < self.tiers.len()
    }

    /// How often the tier below entered each block of `region` (at most `tier_up`): from
    /// the tier-up counter of its translation, which counts down and wraps past zero; a
    /// block without one has tiered up already.
    fn entries_of(&self, region: &Region) -> Vec<u32> {
        let tier_up = self.config.tier_up.max(1);
        let entered = |pc: u32| match self.counter_of.get(&pc) {
            Some(&i) => tier_up.checked_sub(self.counters.get(i)).unwrap_or(tier_up),
            None => tier_up,
        };
        region.blocks.iter().map(|b| entered(b.pc)).collect()
    }

    /// The plan for the access at `pc` in the block at `block_pc` (creating its record).
    fn plan(&mut self, pc: u32, block_pc: u32) -> AccessPlan {
        plan_of(&mut self.records, &self.config, pc, block_pc)
    }

    /// Counts one translation in the statistics.
    fn count(&mut self, name: &'static str, region: &Region, t: &Translation, compile_ns: u64) {
        let insns = region.insns() as u64;
        let one = BackendStats { blocks: 1, guest_insns: insns, compile_ns, code_bytes: u64::from(t.size) };
        self.stats.record(name, one);
        self.stats.full_sync_translations += u64::from(t.full_sync);
        self.stats.recovery_recompiles += u64::from(t.recompiles);
        if region.blocks.len() > 1 {
            self.stats.regions_compiled += 1;
            self.stats.region_blocks += region.blocks.len() as u64;
            self.stats.region_compile_ns += compile_ns;
        }
    }

    /// Makes `t` the code of the region's head: the fault map, the block table, its exit
    /// slot and jump cache entry.
    fn link(&mut self, region: &Region, t: Translation, tier: u8) -> Compiled {
        let pc = region.head().pc;
        if let Some(old) = self.blocks.get(&pc).copied() {
            // The code it replaces is unreachable from now on.
            self.forget_sites(old);
        }
        for a in &t.inline_accesses {
            let site = FaultSite {
                pc: a.pc,
                block: pc,
                retired: a.retired,
                recover: a.recover.clone().into(),
                rollback: a.rollback,
            };
            self.fault_map.insert(a.host, site);
        }
        if let Some(dump) = &mut self.dump {
            dump.translation(region, self.tiers[usize::from(tier)].name(), &t);
        }
        let ends_with_jump = region.head().end == BlockEnd::Jump;
        let compiled = Compiled { code: t.code, len: region.stretch[0], size: t.size, tier, ends_with_jump };
        self.blocks.insert(pc, compiled);
        if self.slots.by_target.contains_key(&pc) {
            self.slots.set(pc, compiled.code);
            self.stats.chained_exits += 1;
        }
        self.jump_cache.set(jump_cache_index(pc), JumpCacheEntry { pc: u64::from(pc), code: compiled.code });
        compiled
    }

    /// Compiles the block at `pc` with tier `tier` and links it in.
    /// A block whose code is too large for one translation is split: its first half
    /// is compiled (and halved again, as often as needed), the rest is a block of its
    /// own.
    fn translate(&mut self, mem: &mut Memory, pc: u32, tier: u8) -> Result<Option<Compiled>, JitError> {
        let mut cap = self.config.max_block_insns;
        loop {
            let block = self.discover(mem, pc, cap);
            if block.is_empty() {
                return Ok(None);
            }
            let len = block.len();
            match self.translate_region(mem, Region::single(block), tier) {
                Err(JitError::CodeMemory(CodeMemoryShortage::TooLarge)) if len > 1 => {
                    cap = len / 2;
                    self.stats.blocks_split += 1;
                }
                r => return r.map(Some),
            }
        }
    }

    /// Makes room before adding code: a flush when the code is over the budget, and one
    /// that forgets the bookkeeping too when that is over its limit (a code flush keeps
    /// the access records: what was learned stays true). Returns whether it flushed.
    fn make_room(&mut self) -> Result<bool, JitError> {
        if self.bookkeeping_over() {
            self.start_over()?;
        } else if self.pool.used_bytes() > self.config.code_cache_bytes {
            self.flush(&self.budget_reason())?;
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    /// Is the bookkeeping over its limit: the budget, but at least [`BOOKKEEPING_FLOOR`]
    /// (so that a tiny budget does not flush at every block for the records of the one
    /// translation just made)?
    fn bookkeeping_over(&self) -> bool {
        self.bookkeeping().bytes() > self.config.code_cache_bytes.max(BOOKKEEPING_FLOOR)
    }

    /// How much the cache keeps besides code; bounded by the budget with the code.
    pub fn bookkeeping(&self) -> Bookkeeping {
        Bookkeeping {
            access_records: self.records.len(),
            fault_sites: self.fault_map.len(),
            warm_blocks: self.hotness.len(),
            code_pages: self.code_page_entries,
        }
    }

    /// Marks the guest pages `region` was decoded from (see `memory/code.rs`) and
    /// files its head under each, so that a write there drops the translation.
    fn note_code(&mut self, mem: &mut Memory, region: &Region) -> Result<(), JitError> {
        let head = region.head().pc;
        for b in &region.blocks {
            let end = u64::from(b.pc) + u64::from(b.next_pc().wrapping_sub(b.pc));
            mem.mark_code(b.pc, end)
                .map_err(|e| JitError::Internal(format!("cannot write-protect guest code at {:#010x}: {e}", b.pc)))?;
            let last = (end - 1).min(u64::from(u32::MAX)) as u32;
            for page in b.pc / PAGE..=last / PAGE {
                self.code_pages.entry(page * PAGE).or_default().push(head);
                self.code_page_entries += 1;
            }
        }
        Ok(())
    }

    /// Guest code on the page at `page` was written: every translation decoded from it
    /// is dropped (and recompiled, from what memory holds now, on its next entry).
    pub fn code_written(&mut self, page: u32) {
        if let Some(heads) = self.code_pages.remove(&page) {
            self.code_page_entries -= heads.len();
            self.stats.code_pages_invalidated += 1;
            for head in heads {
                self.invalidate(head);
            }
        }
    }

    /// Compiles `region` with the inline code generator of `tier` and links it in.
    fn translate_region(&mut self, mem: &mut Memory, mut region: Region, tier: u8) -> Result<Compiled, JitError> {
        if self.config.planted_bug {
            plant_bug(&mut region);
        }
        // Nothing translated runs while the dispatcher compiles.
        self.make_room()?;
        let (t, compile_ns) = match self.compile(&region, tier) {
            Err(JitError::CodeMemory(CodeMemoryShortage::NearExhausted)) => {
                // Code memory near the executable ran out during this compile: start
                // over with far code (absolute helper calls). Any other error stands.
                self.flush("code memory near the executable is used up; far code from now on")?;
                self.compile(&region, tier)?
            }
            r => r?,
        };
        // After any flush above, which forgets the pages of translations.
        self.note_code(mem, &region)?;
        self.count(self.tiers[usize::from(tier)].name(), &region, &t, compile_ns);
        Ok(self.link(&region, t, tier))
    }

    /// A translation larger than `max_translation_bytes` is refused as too large (its
    /// code stays unused in code memory until the next flush).
    fn within_cap(&self, result: Result<Translation, JitError>) -> Result<Translation, JitError> {
        match result {
            Ok(t) if t.size as usize > self.config.max_translation_bytes => {
                Err(JitError::CodeMemory(CodeMemoryShortage::TooLarge))
            }
            r => r,
        }
    }

    /// Compiles `region` with the inline code generator of `tier`.
    fn compile(&mut self, region: &Region, tier: u8) -> Result<(Translation, u64), JitError> {
        let start = Instant::now();
        let hot_counter = self.hot_counter(tier, region.head().pc);
        let target_cell = self.target_cell(tier, region);
        let blocks = &self.blocks;
        let slots = &mut self.slots;
        let linked = &mut self.stats.chained_exits;
        let mut slot_for = |target: u32| slots.slot(target, blocks.get(&target).map(|c| c.code), linked) as u64;
        let (records, config) = (&mut self.records, &self.config);
        let head = region.head().pc;
        let mut plan_for = |pc: u32| plan_of(records, config, pc, head);
        let mut env = CompileEnv {
            arena_base: self.arena_base,
            jump_cache: self.jump_cache.base() as u64,
            near: self.pool.near(),
            pool: &self.pool,
            hot_counter,
            target_cell,
            ir: self.config.dump.clif,
            slot_for: &mut slot_for,
            plan_for: &mut plan_for,
        };
        let Some(Tier::Inline(backend)) = self.tiers.get_mut(usize::from(tier)) else {
            return Err(JitError::Internal(format!("tier {tier} does not compile inline")));
        };
        let t = backend.compile(region, &mut env);
        Ok((self.within_cap(t)?, start.elapsed().as_nanos() as u64))
    }

    /// Drops the translation of the block at `pc` so its next entry recompiles it. Its
    /// old code stays in memory (nothing still running is overwritten).
    pub fn invalidate(&mut self, pc: u32) {
        if let Some(old) = self.blocks.remove(&pc) {
            self.forget_sites(old);
            self.counter_of.remove(&pc);
            self.target_of.remove(&pc);
            self.invalidated.insert(pc);
            self.slots.set(pc, self.slots.stub);
            let i = jump_cache_index(pc);
            if self.jump_cache.get(i).pc == u64::from(pc) {
                self.jump_cache.set(i, JumpCacheEntry::EMPTY);
            }
        }
    }

    /// Drops the fault-map entries of `code`, which no longer runs.
    fn forget_sites(&mut self, code: Compiled) {
        let range = code.code..code.code + u64::from(code.size);
        let sites: Vec<u64> = self.fault_map.range(range).map(|(&rip, _)| rip).collect();
        for rip in sites {
            self.fault_map.remove(&rip);
        }
    }

    /// The access record at `access_pc` made transition `t` in a helper (profiling in
    /// translated code): recompile every block holding it.
    pub fn access_changed(&mut self, access_pc: u32, t: Transition) {
        self.recompile_access(access_pc, t, "translated code");
    }

    /// Drops every block holding the access at `access_pc`, which made transition `t`
    /// (seen by `who`).
    fn recompile_access(&mut self, access_pc: u32, t: Transition, who: &str) {
        let blocks = self.records.get(&access_pc).map(|r| r.blocks.clone()).unwrap_or_default();
        if self.dumps_events() {
            let to = self.records.get(&access_pc).map_or("?".into(), |r| state_name(r.shared.get().state));
            let from = transition_source(t);
            let recompile = match blocks.is_empty() {
                true => String::new(),
                false => format!("; recompile blocks {}", dump::pcs(&blocks)),
            };
            self.event(format_args!("access  {access_pc:#010x} {from} -> {to}, seen by {who}{recompile}"));
        }
        for b in blocks {
            self.invalidate(b);
        }
    }

    /// An observation of the access at `pc` made outside translated code (by the
    /// interpreter). A state change recompiles the blocks that hold the access.
    pub fn observe(&mut self, pc: u32, class: Option<RegionClass>) -> Option<Transition> {
        let config = &self.config;
        let rec = self.records.entry(pc).or_insert_with(|| Record::new(pc, config));
        let t = rec.shared.get_mut().observe(class)?;
        self.recompile_access(pc, t, "the interpreter");
        Some(t)
    }

    /// The inline access at host address `rip`, if there is one.
    pub fn fault_site(&self, rip: u64) -> Option<FaultSite> {
        self.fault_map.get(&rip).cloned()
    }

    /// An inline access at host address `rip` faulted on host address `addr`: the access
    /// becomes VARIABLE and its blocks are recompiled. Returns where the access is, or
    /// None if `rip` is not an inline access (a translator bug).
    pub fn inline_fault(&mut self, rip: u64, addr: u64) -> Option<(FaultSite, Option<Transition>)> {
        let site = self.fault_map.get(&rip)?.clone();
        let transition = self.records.get_mut(&site.pc).and_then(|r| r.shared.get_mut().make_variable());
        let guest = addr.wrapping_sub(self.arena_base);
        self.event(format_args!(
            "fault  host code {rip:#x} on guest address {guest:#010x}: inline access {:#010x} in block {:#010x}",
            site.pc, site.block
        ));
        if let Some(t) = transition {
            self.recompile_access(site.pc, t, "the fault handler");
        }
        self.invalidate(site.block);
        Some((site, transition))
    }

    /// Are events dumped?
    fn dumps_events(&self) -> bool {
        self.dump.as_ref().is_some_and(|d| d.what().events)
    }

    /// Writes a `--dump events` line.
    pub fn event(&mut self, text: std::fmt::Arguments<'_>) {
        if let Some(dump) = &mut self.dump {
            dump.event(text);
        }
    }

    /// Why the cache is flushed when its budget is used up.
    fn budget_reason(&self) -> String {
        format!(
            "the code cache is full ({} bytes used, budget {})",
            self.pool.used_bytes(),
            self.config.code_cache_bytes
        )
    }

    /// A device was unmapped: accesses committed to it become VARIABLE and every
    /// translation (some call the device directly) is dropped.
    pub fn device_removed(&mut self, dev: Device) -> Result<Vec<Transition>, JitError> {
        let mut transitions = Vec::new();
        for r in self.records.values_mut() {
            let r = r.shared.get_mut();
            if r.state == AccessState::Committed(RegionClass::Device(dev)) {
                transitions.extend(r.make_variable());
            }
        }
        self.flush(&format!("device {} unmapped (the heap grew over it)", dev.name()))?;
        Ok(transitions)
    }

    /// Counts of access records per state.
    pub fn access_states(&self) -> StateCounts {
        count_states(self.records.values().map(|r| r.shared.get()))
    }

    /// The access record of the load/store at guest `pc`, if it was translated.
    pub fn access_record(&self, pc: u32) -> Option<&AccessRecord> {
        self.records.get(&pc).map(|r| r.shared.get())
    }
}

/// [`JitConfig::planted_bug`]: every register-register `add` of `region` is translated
/// as a `sub`.
fn plant_bug(region: &mut Region) {
    for inst in region.blocks.iter_mut().flat_map(|b| b.insts.iter_mut()) {
        if let Inst::Op { op: op @ AluOp::Add, .. } = inst {
            *op = AluOp::Sub;
        }
    }
}

/// The state an access left in transition `t`, as the dump writes it.
fn transition_source(t: Transition) -> &'static str {
    match t {
        Transition::NaiveToCommitted | Transition::NaiveToVariable => "NAIVE",
        Transition::CommittedToVariable => "COMMITTED",
    }
}

/// The plan for the access at `pc` in the block at `block_pc`: its record's state
/// (the record is created on first use and remembers the block).
fn plan_of(records: &mut HashMap<u32, Record>, config: &JitConfig, pc: u32, block_pc: u32) -> AccessPlan {
    let rec = records.entry(pc).or_insert_with(|| Record::new(pc, config));
    if !rec.blocks.contains(&block_pc) {
        rec.blocks.push(block_pc);
    }
    AccessPlan { state: rec.shared.get().state, record: rec.shared.addr() as u64 }
}
