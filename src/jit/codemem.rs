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
//! away from the executable in 2 MiB steps, within ±1 GiB. If no such address is free
//! (or placement is disabled for a test), chunks go wherever the kernel puts them and
//! the pool reports `near() == false`, so the lifter emits absolute calls instead.

use cranelift_jit::{BranchProtection, JITMemoryKind, JITMemoryProvider};
use cranelift_module::ModuleResult;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Code chunks of every translation cache in the process (base addresses, 0 = free).
const MAX_CODE_RANGES: usize = 4096;
static CODE_RANGES: [AtomicUsize; MAX_CODE_RANGES] = [const { AtomicUsize::new(0) }; MAX_CODE_RANGES];
static CODE_RANGE_LEN: AtomicUsize = AtomicUsize::new(0);

/// Declares `[base, base + len)` as translated code (all ranges have the same length).
fn register_code(base: usize, len: usize) {
    CODE_RANGE_LEN.store(len, Ordering::Relaxed);
    for slot in &CODE_RANGES {
        if slot.compare_exchange(0, base, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            return;
        }
    }
    // Too many chunks to track: faults there are not recovered (they crash loudly).
}

/// Forgets a code range registered with [`register_code`].
fn unregister_code(base: usize) {
    for slot in &CODE_RANGES {
        if slot.compare_exchange(base, 0, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            return;
        }
    }
}

/// Is `pc` inside a code chunk of any pool in the process? Lock-free, for the fault
/// handler.
pub fn is_code(pc: usize) -> bool {
    let len = CODE_RANGE_LEN.load(Ordering::Relaxed);
    CODE_RANGES.iter().any(|s| {
        let base = s.load(Ordering::Relaxed);
        base != 0 && pc >= base && pc < base + len
    })
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

/// Maps a chunk within ±1 GiB of the executable's text, or None.
fn map_near(exec: bool) -> Option<*mut u8> {
    let anchor = text_anchor() & !(CHUNK_SIZE - 1);
    let steps = NEAR_WINDOW / CHUNK_SIZE;
    // Walk outwards: below first (the executable's data and heap usually lie above it).
    for i in 1..steps {
        for hint in [anchor.checked_sub(i * CHUNK_SIZE), anchor.checked_add(i * CHUNK_SIZE)].into_iter().flatten() {
            if hint < (1 << 20) {
                continue;
            }
            if let Some(p) = map_chunk(hint, exec) {
                return Some(p);
            }
        }
    }
    None
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
                    register_code(base as usize, CHUNK_SIZE);
                }
                s.chunks.push(Chunk { base, used: 0, exec });
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
