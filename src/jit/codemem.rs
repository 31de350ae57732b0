//! Code memory: a pool of 2 MiB chunks for translated code, placed near the rvdbt
//! executable's text so translated code reaches the Rust helpers with rel32 calls.
//!
//! The pool implements cranelift-jit's `JITMemoryProvider`. Code chunks are mapped
//! read+write+execute once, so finalizing a block costs nothing (x86 keeps instruction
//! fetch coherent with stores); every function starts on a fresh 64-byte line and the
//! allocator only moves forward, so new code never overwrites a line that may still be
//! executing. Memory is handed back only when the whole translation cache is flushed,
//! at a point where no translated code is on the stack.
//!
//! Placement: chunks are mapped with `MAP_FIXED_NOREPLACE` at hint addresses walking
//! away from the executable in 2 MiB steps, within ±1 GiB. The walk is process-wide
//! (every pool of every guest shares it, and chunks of dropped pools are reused first),
//! so a new pool does not probe the addresses others already hold. If no such address
//! is free (or placement is disabled for a test), chunks go wherever the kernel puts
//! them and the pool reports `near() == false`, so the lifter emits absolute calls
//! instead.
//!
//! Every code chunk of the process is recorded in one registry ([`is_code`]), which the
//! SIGSEGV handler reads to tell translated code from the rest: a lock-free list of
//! segments that grows as chunks are mapped (never dropping one) and is never freed.

use cranelift_jit::{BranchProtection, JITMemoryKind, JITMemoryProvider};
use cranelift_module::ModuleResult;
use std::io;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const CHUNK_SIZE: usize = 2 << 20;
/// How far from the executable a chunk may be placed (keeps every helper within rel32).
const NEAR_WINDOW: usize = 1 << 30;
/// Alignment of every code allocation: a fresh cache line.
const CODE_ALIGN: usize = 64;

struct Chunk {
    base: *mut u8,
    used: usize,
    exec: bool,
    /// Mapped by [`map_near`] (its address goes back to the near-code allocator).
    near: bool,
}

/// The chunks of one pool and the bump position in each.
struct PoolState {
    chunks: Vec<Chunk>,
    /// Bytes handed out since the last reset (code and data).
    used_bytes: usize,
    near: bool,
    try_near: bool,
    /// Chunks that could not be placed near the executable.
    far_chunks: usize,
}

// SAFETY: the raw chunk pointers are owned by the pool and only used under its mutex.
unsafe impl Send for PoolState {}

/// A shared handle to the chunk pool. Cloning shares the pool.
#[derive(Clone)]
pub struct CodePool {
    state: Arc<Mutex<PoolState>>,
}

/// Why code memory refused an allocation, when the translation cache can remedy it
/// (carried inside the `io::Error` the allocation returns; see [`shortage_of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodeMemoryShortage {
    /// Code placed near the executable relies on rel32 calls, and no more chunks can
    /// be placed near it: the cache flushes and rebuilds everything far.
    #[error("no code memory near the executable")]
    NearExhausted,
    /// One translation is larger than a chunk: the cache splits the block.
    #[error("the code of one translation does not fit a {CHUNK_SIZE}-byte chunk")]
    TooLarge,
}

/// The shortage an allocation error reports, if it is one.
pub fn shortage_of(e: &io::Error) -> Option<CodeMemoryShortage> {
    e.get_ref()?.downcast_ref::<CodeMemoryShortage>().copied()
}

/// Slots of one segment of the code-range registry.
const SEGMENT_SLOTS: usize = 256;

/// One segment of the code-range registry: base addresses of code chunks (0 = free)
/// and the next segment. Segments are leaked: once linked they live as long as the
/// process, so the fault handler can walk them at any time.
struct RangeSegment {
    bases: [AtomicUsize; SEGMENT_SLOTS],
    next: AtomicPtr<RangeSegment>,
}

impl RangeSegment {
    const fn new() -> RangeSegment {
        RangeSegment { bases: [const { AtomicUsize::new(0) }; SEGMENT_SLOTS], next: AtomicPtr::new(ptr::null_mut()) }
    }

    /// The segment after this one, if any.
    fn next(&self) -> Option<&'static RangeSegment> {
        // SAFETY: `next` is null or a segment leaked by `register_code`, never freed.
        unsafe { self.next.load(Ordering::Acquire).as_ref() }
    }
}

/// The code-range registry: every code chunk of every translation cache in the process,
/// in a lock-free list of segments that only grows (freed slots are reused). The fault
/// handler reads it without locks or allocation ([`is_code`]).
static CODE_RANGES: RangeSegment = RangeSegment::new();

/// The registry's segments, first to last.
fn segments() -> impl Iterator<Item = &'static RangeSegment> {
    std::iter::successors(Some(&CODE_RANGES), |s| s.next())
}

/// Declares `[base, base + CHUNK_SIZE)` as translated code: takes a free slot, or
/// appends a new segment holding `base` when every slot is taken.
fn register_code(base: usize) {
    for segment in segments() {
        for slot in &segment.bases {
            if slot.compare_exchange(0, base, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                return;
            }
        }
    }
    let fresh = Box::leak(Box::new(RangeSegment::new()));
    fresh.bases[0].store(base, Ordering::Relaxed);
    let mut tail = segments().last().unwrap_or(&CODE_RANGES);
    // Another thread may append first: then try again at the new tail.
    while let Err(next) = tail.next.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: a non-null `next` is a leaked segment, never freed.
        tail = unsafe { &*next };
    }
}

/// Forgets a code chunk registered with [`register_code`].
fn unregister_code(base: usize) {
    for segment in segments() {
        for slot in &segment.bases {
            if slot.compare_exchange(base, 0, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                return;
            }
        }
    }
}

/// Is `pc` inside a code chunk of any pool in the process? Lock-free and
/// allocation-free, for the fault handler.
pub fn is_code(pc: usize) -> bool {
    segments().any(|s| {
        s.bases.iter().any(|b| {
            let base = b.load(Ordering::Relaxed);
            base != 0 && pc.wrapping_sub(base) < CHUNK_SIZE
        })
    })
}

/// Code chunks registered now, in every pool of the process (for tests and diagnostics).
pub fn registered_chunks() -> usize {
    segments().map(|s| s.bases.iter().filter(|b| b.load(Ordering::Relaxed) != 0).count()).sum()
}

/// An address inside the rvdbt executable's text, the anchor for placement.
fn text_anchor() -> usize {
    text_anchor as *const () as usize
}

fn map_chunk(hint: usize, exec: bool) -> Option<*mut u8> {
    let prot =
        if exec { libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC } else { libc::PROT_READ | libc::PROT_WRITE };
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | if hint != 0 { libc::MAP_FIXED_NOREPLACE } else { 0 };
    // SAFETY: an anonymous mapping; with MAP_FIXED_NOREPLACE the kernel refuses rather
    // than replacing an existing mapping, so nothing of ours is clobbered.
    let p = unsafe { libc::mmap(hint as *mut libc::c_void, CHUNK_SIZE, prot, flags, -1, 0) };
    if p == libc::MAP_FAILED {
        return None;
    }
    if hint != 0 && p as usize != hint {
        // An old kernel that ignores MAP_FIXED_NOREPLACE placed it elsewhere.
        // SAFETY: unmapping exactly what we just mapped.
        unsafe { libc::munmap(p, CHUNK_SIZE) };
        return None;
    }
    Some(p.cast())
}

/// The process-wide near-code allocator: which addresses near the executable are worth
/// trying for the next chunk. Every pool of the process maps its chunks through it, so
/// a new pool does not probe again the addresses earlier pools took: it first reuses
/// chunks that dropped pools gave back, then walks on from where the walk stopped.
struct NearSlots {
    /// Index of the next address of the walk that nobody tried yet ([`near_hint`]).
    next_step: usize,
    /// Addresses of chunks that dropped pools unmapped.
    released: Vec<usize>,
}

static NEAR_SLOTS: Mutex<NearSlots> = Mutex::new(NearSlots { next_step: 0, released: Vec::new() });

/// Address `step` of the walk outwards from the executable's text in 2 MiB steps,
/// alternating below and above (the executable's data and heap usually lie above it,
/// so below comes first); None past the ±1 GiB window or below 1 MiB.
fn near_hint(step: usize) -> Option<usize> {
    let anchor = text_anchor() & !(CHUNK_SIZE - 1);
    let distance = (step / 2 + 1) * CHUNK_SIZE;
    if distance >= NEAR_WINDOW {
        return None;
    }
    let hint = if step.is_multiple_of(2) { anchor.checked_sub(distance)? } else { anchor.checked_add(distance)? };
    (hint >= 1 << 20).then_some(hint)
}

/// Maps a chunk within ±1 GiB of the executable's text, or None.
fn map_near(exec: bool) -> Option<*mut u8> {
    let mut slots = NEAR_SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    // A released address may have been taken by another mapping since: then it is
    // dropped from the list.
    while let Some(hint) = slots.released.pop() {
        if let Some(p) = map_chunk(hint, exec) {
            return Some(p);
        }
    }
    const STEPS: usize = 2 * (NEAR_WINDOW / CHUNK_SIZE);
    while slots.next_step < STEPS {
        let step = slots.next_step;
        slots.next_step += 1;
        if let Some(p) = near_hint(step).and_then(|hint| map_chunk(hint, exec)) {
            return Some(p);
        }
    }
    None
}

/// Gives a chunk address that [`map_near`] returned back for reuse (after unmapping it).
fn release_near(base: usize) {
    NEAR_SLOTS.lock().unwrap_or_else(|e| e.into_inner()).released.push(base);
}

/// Is `addr` close enough to every Rust helper for a rel32 call?
pub fn is_near(addr: usize) -> bool {
    addr.abs_diff(text_anchor()) < 2 * NEAR_WINDOW - CHUNK_SIZE
}

impl CodePool {
    /// A new pool. With `near` false, placement near the executable is not attempted
    /// (tests use this to exercise the fallback).
    pub fn new(near: bool) -> CodePool {
        CodePool {
            state: Arc::new(Mutex::new(PoolState {
                chunks: Vec::new(),
                used_bytes: 0,
                near,
                try_near: near,
                far_chunks: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Are all code chunks near the executable (so rel32 helper calls are valid)?
    pub fn near(&self) -> bool {
        self.lock().near
    }

    /// Bytes allocated since the last reset.
    pub fn used_bytes(&self) -> usize {
        self.lock().used_bytes
    }

    /// Number of chunks mapped (code and data).
    pub fn chunk_count(&self) -> usize {
        self.lock().chunks.len()
    }

    /// Chunks that had to be placed far from the executable.
    pub fn far_chunks(&self) -> usize {
        self.lock().far_chunks
    }

    /// Base addresses of the code chunks (for tests and diagnostics).
    pub fn code_chunk_bases(&self) -> Vec<usize> {
        self.lock().chunks.iter().filter(|c| c.exec).map(|c| c.base as usize).collect()
    }

    /// A `JITMemoryProvider` that allocates from this pool.
    pub fn provider(&self) -> Box<dyn JITMemoryProvider + Send> {
        Box::new(PoolProvider { pool: self.clone() })
    }

    /// Forgets all allocations; the chunks are reused for new code. Only call when no
    /// translated code can run any more (the translation cache was dropped).
    pub fn reset(&self) {
        let mut s = self.lock();
        for c in &mut s.chunks {
            c.used = 0;
        }
        s.used_bytes = 0;
    }

    /// Places machine code that `assemble` produces for its final address: `assemble`
    /// gets the address the code will start at and returns at most `max_len` bytes. For
    /// backends that emit position-dependent code (rel32 calls) without a linker.
    pub fn emit<E>(
        &self,
        max_len: usize,
        assemble: impl FnOnce(u64) -> Result<Vec<u8>, E>,
    ) -> Result<Result<u64, E>, io::Error> {
        let base = self.allocate(max_len, CODE_ALIGN, true)?;
        let code = match assemble(base as u64) {
            Ok(code) => code,
            Err(e) => {
                self.give_back(base, max_len, 0);
                return Ok(Err(e));
            }
        };
        if code.len() > max_len {
            self.give_back(base, max_len, 0);
            return Err(io::Error::other(format!("{} bytes of code exceed the {max_len} reserved", code.len())));
        }
        // SAFETY: `base` points at `max_len` bytes of this pool's code memory, reserved
        // above for this call and not yet reachable from any code.
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), base, code.len()) };
        self.give_back(base, max_len, code.len());
        Ok(Ok(base as u64))
    }

    /// Returns the unused tail of the last allocation (`reserved` bytes at `base`, of
    /// which `used` are kept).
    fn give_back(&self, base: *mut u8, reserved: usize, used: usize) {
        let mut s = self.lock();
        let s = &mut *s;
        if let Some(c) =
            s.chunks.iter_mut().find(|c| c.exec && c.base <= base && (base as usize) < c.base as usize + CHUNK_SIZE)
        {
            let end = base as usize - c.base as usize + reserved;
            if c.used == end {
                c.used -= reserved - used;
                s.used_bytes -= reserved - used;
            }
        }
    }

    fn allocate(&self, size: usize, align: usize, exec: bool) -> io::Result<*mut u8> {
        let align = if exec { align.max(CODE_ALIGN) } else { align.max(8) };
        if size > CHUNK_SIZE {
            return Err(io::Error::other(CodeMemoryShortage::TooLarge));
        }
        if !align.is_power_of_two() || align > 4096 {
            return Err(io::Error::other(format!(
                "allocation of {size} bytes aligned to {align} does not fit a chunk"
            )));
        }
        let mut s = self.lock();
        let fits = |c: &Chunk| c.exec == exec && ((c.used + align - 1) & !(align - 1)) + size <= CHUNK_SIZE;
        let index = match s.chunks.iter().position(fits) {
            Some(i) => i,
            None => {
                let base = if s.try_near { map_near(exec) } else { None };
                let placed_near = base.is_some();
                let base = match base {
                    Some(b) => b,
                    None => {
                        if exec && s.near && !s.chunks.iter().all(|c| !c.exec) {
                            // Code already placed near relies on rel32 calls; a far chunk
                            // would break them. The cache flushes and rebuilds far.
                            s.near = false;
                            s.try_near = false;
                            return Err(io::Error::other(CodeMemoryShortage::NearExhausted));
                        }
                        if exec {
                            s.near = false;
                            s.far_chunks += 1;
                        }
                        map_chunk(0, exec).ok_or_else(io::Error::last_os_error)?
                    }
                };
                if exec {
                    register_code(base as usize);
                }
                s.chunks.push(Chunk { base, used: 0, exec, near: placed_near });
                s.chunks.len() - 1
            }
        };
        let c = &mut s.chunks[index];
        let start = (c.used + align - 1) & !(align - 1);
        c.used = start + size;
        s.used_bytes += size;
        // SAFETY: start + size <= CHUNK_SIZE, inside the chunk's mapping.
        Ok(unsafe { s.chunks[index].base.add(start) })
    }
}

impl Drop for PoolState {
    fn drop(&mut self) {
        for c in &self.chunks {
            if c.exec {
                unregister_code(c.base as usize);
            }
            // SAFETY: each chunk was mapped by `map_chunk` with CHUNK_SIZE bytes; the pool
            // is dropped only after every module using it.
            unsafe { libc::munmap(c.base.cast(), CHUNK_SIZE) };
            if c.near {
                release_near(c.base as usize);
            }
        }
    }
}

/// The provider handed to a `JITModule`.
struct PoolProvider {
    pool: CodePool,
}

impl JITMemoryProvider for PoolProvider {
    fn allocate(&mut self, size: usize, align: u64, kind: JITMemoryKind) -> io::Result<*mut u8> {
        let exec = matches!(kind, JITMemoryKind::Executable);
        self.pool.allocate(size, usize::try_from(align).unwrap_or(usize::MAX), exec)
    }

    unsafe fn free_memory(&mut self) {
        // The translation cache resets the whole pool (shared by every backend) once
        // all of them have dropped their code.
    }

    fn finalize(&mut self, _: BranchProtection) -> ModuleResult<()> {
        // Code chunks are already executable and x86 keeps instruction fetch coherent
        // with stores made by this thread.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_land_near_the_executable() {
        let pool = CodePool::new(true);
        let p = pool.allocate(100, 16, true).unwrap();
        assert!(pool.near());
        assert!(is_near(p as usize), "{p:?} vs text {:#x}", text_anchor());
        assert_eq!(p as usize % CODE_ALIGN, 0, "code starts on a fresh cache line");
        let q = pool.allocate(100, 16, true).unwrap();
        assert!(q as usize >= p as usize + 100, "allocations only move forward");
        assert_eq!(pool.code_chunk_bases().len(), 1);
    }

    #[test]
    fn fallback_places_anywhere_and_reports_far() {
        let pool = CodePool::new(false);
        pool.allocate(64, 16, true).unwrap();
        assert!(!pool.near());
        assert_eq!(pool.far_chunks(), 1);
    }

    #[test]
    fn shortages_are_told_from_other_errors() {
        let pool = CodePool::new(true);
        let too_large = pool.allocate(CHUNK_SIZE + 1, 16, true).unwrap_err();
        assert_eq!(shortage_of(&too_large), Some(CodeMemoryShortage::TooLarge));
        let bad_alignment = pool.allocate(64, 8192, true).unwrap_err();
        assert_eq!(shortage_of(&bad_alignment), None, "not a shortage: the error stands");
        assert_eq!(shortage_of(&io::Error::other("no code memory near the executable")), None, "only the type counts");
    }

    #[test]
    fn the_registry_grows_under_concurrent_registration() {
        // Addresses far above anything mapped: no code can fault there.
        let base = |thread: usize, i: usize| 0x7e00_0000_0000 + (thread * 1000 + i) * CHUNK_SIZE;
        const PER_THREAD: usize = SEGMENT_SLOTS + 40;
        std::thread::scope(|s| {
            for t in 0..4 {
                s.spawn(move || (0..PER_THREAD).for_each(|i| register_code(base(t, i))));
            }
        });
        for t in 0..4 {
            for i in 0..PER_THREAD {
                assert!(is_code(base(t, i) + CHUNK_SIZE - 1), "chunk {i} of thread {t} is registered");
            }
        }
        assert!(segments().count() > 4, "past the first segment");
        assert!(!is_code(base(0, PER_THREAD)));
        (0..4).for_each(|t| (0..PER_THREAD).for_each(|i| unregister_code(base(t, i))));
        assert!((0..4).all(|t| (0..PER_THREAD).all(|i| !is_code(base(t, i)))));
    }

    #[test]
    fn reset_reuses_chunks() {
        let pool = CodePool::new(true);
        for _ in 0..100 {
            pool.allocate(40_000, 16, true).unwrap();
        }
        let chunks = pool.chunk_count();
        assert!(chunks >= 2, "4 MB of code needs two chunks");
        pool.reset();
        assert_eq!(pool.used_bytes(), 0);
        pool.allocate(40_000, 16, true).unwrap();
        assert_eq!(pool.chunk_count(), chunks, "no new chunk after reset");
    }
}
