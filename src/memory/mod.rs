//! Guest memory: the 4 GiB host arena and the guest memory map (RAM regions and devices).
//!
//! The arena reserves 4 GiB plus a guard of host address space with `PROT_NONE`, so
//! `arena_base + zext(addr)` can never leave the reservation; it sits below 2 GiB where
//! that address space is free, so translated code adds the base as a 32-bit displacement
//! (`[addr + base]`) instead of holding a 64-bit constant in a register. RAM regions are made
//! accessible inside it with the permissions the guest sees (read-only code and rodata);
//! device pages and holes stay `PROT_NONE`, which is what makes inline accesses from
//! translated code safe: anything that is not RAM faults.
//!
//! The memory map answers `region_of(addr)` and implements the generic access path used
//! by the interpreter and by the translated code's helper calls. Guest permission
//! violations come back as [`MemFault`]s, never as host faults.

use crate::guest::decode::Isa;
use std::ptr;

mod code;
mod map;
pub use map::{MapError, Placement, MMAP_MIN_ADDR, MMAP_NAME};

/// Size of the guest address space.
pub const GUEST_SPACE: u64 = 1 << 32;
/// Guard above the 4 GiB so a misaligned access at the very top stays in the reservation.
pub const ARENA_GUARD: u64 = 64 * 1024;
/// Guest (and host) page size.
pub const PAGE: u32 = 4096;

pub const PERM_R: u8 = 1;
pub const PERM_W: u8 = 2;
pub const PERM_X: u8 = 4;

/// SiFive test finisher (QEMU `virt`).
pub const TEST_FINISHER_BASE: u32 = 0x0010_0000;
pub const TEST_FINISHER_SIZE: u32 = 0x1000;
/// CLINT-style timer (QEMU `virt`); `mtime` at +0xBFF8, `mtimecmp` at +0x4000.
pub const CLINT_BASE: u32 = 0x0200_0000;
pub const CLINT_SIZE: u32 = 0x1_0000;
/// 16550 UART subset (QEMU `virt`).
pub const UART_BASE: u32 = 0x1000_0000;
pub const UART_SIZE: u32 = 0x100;

/// `mtime` ticks per second (QEMU `virt` runs its CLINT at 10 MHz).
pub const MTIME_HZ: u64 = 10_000_000;

/// The devices of the memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    TestFinisher,
    Clint,
    Uart,
}

impl Device {
    pub const ALL: [Device; 3] = [Device::TestFinisher, Device::Clint, Device::Uart];

    /// Guest address range of the device: (base, size).
    pub fn range(self) -> (u32, u32) {
        match self {
            Device::TestFinisher => (TEST_FINISHER_BASE, TEST_FINISHER_SIZE),
            Device::Clint => (CLINT_BASE, CLINT_SIZE),
            Device::Uart => (UART_BASE, UART_SIZE),
        }
    }

    /// Position in [`Device::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Device::TestFinisher => "test-finisher",
            Device::Clint => "clint",
            Device::Uart => "uart",
        }
    }
}

/// What lives in a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegionKind {
    Ram { perms: u8 },
    Device(Device),
}

/// One contiguous range of the guest address space, `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: u32,
    /// Exclusive end; a u64 so a region may end at 4 GiB.
    pub end: u64,
    pub kind: RegionKind,
    pub name: String,
}

impl Region {
    pub fn contains(&self, addr: u32, size: u32) -> bool {
        addr >= self.start && u64::from(addr) + u64::from(size) <= self.end
    }
}

/// Why a generic access failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemFault {
    /// No region, or a region whose permissions forbid the access.
    Access,
}

/// Access widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    B1 = 1,
    B2 = 2,
    B4 = 4,
}

impl Width {
    pub fn bytes(self) -> u32 {
        self as u32
    }
}

/// Side effects a device write asks the machine to carry out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceEffect {
    None,
    /// The test finisher was told to stop the machine with this exit code.
    Exit(i32),
}

/// Guest permissions as RAM holds them: execute implies read, as Linux maps pages on
/// RISC-V. (Instruction fetch reads through the same host mapping as loads, so an
/// execute-only page would have to be host-readable, and an inline load from it
/// would then succeed where the interpreter refuses it.)
pub(crate) fn implied_read(perms: u8) -> u8 {
    if perms & PERM_X != 0 {
        perms | PERM_R
    } else {
        perms
    }
}

/// The 4 GiB + guard reservation of host address space that backs all guest RAM.
pub struct Arena {
    base: *mut u8,
}

// SAFETY: the arena is a plain memory reservation; it has no thread affinity.
unsafe impl Send for Arena {}

impl Arena {
    fn reserve() -> std::io::Result<Arena> {
        if let Some(arena) = Arena::reserve_low() {
            return Ok(arena);
        }
        // Reserve one huge page more than needed and keep the part that starts on a
        // huge-page boundary: guest ranges aligned to 2 MiB are then aligned in the host
        // too, which transparent huge pages need.
        let len = (GUEST_SPACE + ARENA_GUARD) as usize;
        let slack = HUGE_PAGE as usize;
        // SAFETY: an anonymous private PROT_NONE mapping at an address of the kernel's
        // choosing; it aliases nothing.
        let raw = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len + slack,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let head = (raw as usize).next_multiple_of(slack) - raw as usize;
        // SAFETY: both ranges are the unused ends of the reservation just made.
        unsafe {
            if head > 0 {
                libc::munmap(raw, head);
            }
            if slack - head > 0 {
                libc::munmap(raw.cast::<u8>().add(head + len).cast(), slack - head);
            }
        }
        // SAFETY: `head` < `slack`, inside the reservation.
        Ok(Arena { base: unsafe { raw.cast::<u8>().add(head) } })
    }

    /// Tries to reserve the arena at one of a few fixed addresses below 2 GiB, where the
    /// base fits an x86-64 signed 32-bit displacement: translated code then addresses
    /// guest memory as `[zext(addr) + base]` in one instruction, without a 64-bit
    /// constant in a register. `None` when every candidate is taken (another arena, a
    /// non-PIE host, valgrind), or the kernel ignores `MAP_FIXED_NOREPLACE`.
    fn reserve_low() -> Option<Arena> {
        let len = (GUEST_SPACE + ARENA_GUARD) as usize;
        for base in LOW_ARENA_BASES {
            // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping: the call
            // fails (or, on kernels without the flag, returns another address, which is
            // unmapped at once) when anything lives in the range.
            let raw = unsafe {
                libc::mmap(
                    base as *mut libc::c_void,
                    len,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED_NOREPLACE,
                    -1,
                    0,
                )
            };
            if raw == libc::MAP_FAILED {
                continue;
            }
            if raw as usize == base {
                return Some(Arena { base: raw.cast() });
            }
            // SAFETY: a mapping this call just made, at an address we did not ask for.
            unsafe { libc::munmap(raw, len) };
        }
        None
    }

    pub fn base(&self) -> *mut u8 {
        self.base
    }

    /// Sets the host protection of guest pages `[start, end)` (page aligned).
    fn protect(&self, start: u32, end: u64, perms: u8) -> std::io::Result<()> {
        let mut prot = libc::PROT_NONE;
        if perms & PERM_R != 0 {
            prot |= libc::PROT_READ;
        }
        if perms & PERM_W != 0 {
            prot |= libc::PROT_READ | libc::PROT_WRITE;
        }
        // SAFETY: [start, end) lies inside the reservation (end <= 4 GiB) and is page
        // aligned; only guest memory changes protection.
        let rc =
            unsafe { libc::mprotect(self.base.add(start as usize).cast(), (end - u64::from(start)) as usize, prot) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Replaces guest pages `[start, end)` by fresh inaccessible zero pages.
    fn discard(&self, start: u32, end: u64) -> std::io::Result<()> {
        // SAFETY: MAP_FIXED over a sub-range of our own reservation; nothing else lives there.
        let p = unsafe {
            libc::mmap(
                self.base.add(start as usize).cast(),
                (end - u64::from(start)) as usize,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Asks for transparent huge pages on `[start, end)`.
    fn advise_huge(&self, start: u32, end: u64) {
        // SAFETY: advisory only, on our own mapping.
        unsafe {
            libc::madvise(self.base.add(start as usize).cast(), (end - u64::from(start)) as usize, libc::MADV_HUGEPAGE);
        }
    }

    /// Backs the huge-page-aligned `[start, end)` by huge pages now (`MADV_COLLAPSE`,
    /// Linux 6.1 and later): a heap that grows a little at a time is touched before a
    /// whole aligned huge page lies inside it, so its page faults only ever get small
    /// pages. Best effort: where the kernel cannot, the pages stay small.
    fn collapse_huge(&self, start: u32, end: u64) {
        // SAFETY: advisory only, on our own mapping; the contents are kept.
        unsafe {
            libc::madvise(self.base.add(start as usize).cast(), (end - u64::from(start)) as usize, libc::MADV_COLLAPSE);
        }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the reservation made in `reserve`.
        unsafe {
            libc::munmap(self.base.cast(), (GUEST_SPACE + ARENA_GUARD) as usize);
        }
    }
}

/// Device state that lives beside the map.
#[derive(Debug)]
struct DeviceState {
    mtimecmp: u64,
    msip: u32,
    uart_regs: [u8; 8],
    start: std::time::Instant,
}

/// Bytes the UART produced that the machine still has to send to the guest's stdout.
pub type UartOutput = Vec<u8>;

/// The guest memory map over the arena.
pub struct Memory {
    arena: Arena,
    /// Sorted by start, non-overlapping.
    regions: Vec<Region>,
    heap_index: usize,
    heap_limit: u32,
    /// The program break. The heap region ends at the page that holds it: as on Linux,
    /// the rest of that page is accessible too.
    brk: u32,
    devices: DeviceState,
    /// UART bytes written since the last drain.
    pub uart_out: UartOutput,
    huge_pages: bool,
    /// Index of the region the last lookup found.
    last_hit: std::cell::Cell<usize>,
    /// Devices the brk heap grew over (and so unmapped), not yet seen by the runtime.
    pub devices_removed: Vec<Device>,
    /// Most bytes of guest RAM (all RAM regions together) the heap may grow to.
    ram_limit: u64,
    /// What instruction fetch reads: with C, instructions are 2 or 4 bytes long at
    /// 2-byte aligned addresses (see [`Memory::fetch_insn`]).
    pub isa: Isa,
    /// Mappings without an address go to the highest free range below this (see
    /// `map.rs`); the machine sets it below the stack.
    pub mmap_top: u32,
    /// Pages that hold translated code (see `code.rs`).
    code_pages: code::CodePages,
    /// Pages that held translated code and were written (or remapped) since: their
    /// translations are stale. The dispatcher drains it.
    pub code_written: Vec<u32>,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory").field("regions", &self.regions).finish()
    }
}

/// The size (and alignment) of an x86-64 huge page.
const HUGE_PAGE: u64 = 2 << 20;
/// Where [`Arena::reserve_low`] tries to put the arena: 2 MiB aligned (for huge pages)
/// and below 2 GiB (a signed 32-bit displacement).
const LOW_ARENA_BASES: [usize; 7] =
    [0x1000_0000, 0x2000_0000, 0x3000_0000, 0x4000_0000, 0x5000_0000, 0x6000_0000, 0x7000_0000];
/// RAM regions of at least this size ask for transparent huge pages.
const HUGE_PAGE_MIN: u64 = HUGE_PAGE;

/// The aligned huge pages that a region growing from `[start, old_end)` to
/// `[start, new_end)` covers whole for the first time, as one range.
fn newly_whole_huge_pages(start: u64, old_end: u64, new_end: u64) -> Option<(u64, u64)> {
    let first =
        start.next_multiple_of(HUGE_PAGE).max((old_end + 1).saturating_sub(HUGE_PAGE).next_multiple_of(HUGE_PAGE));
    let last = new_end & !(HUGE_PAGE - 1);
    (first < last).then_some((first, last))
}

pub fn page_down(addr: u64) -> u64 {
    addr & !(u64::from(PAGE) - 1)
}

pub fn page_up(addr: u64) -> u64 {
    (addr + u64::from(PAGE) - 1) & !(u64::from(PAGE) - 1)
}

impl Memory {
    /// An empty map over a fresh arena, with the devices or without them.
    pub fn new(huge_pages: bool, devices: bool) -> std::io::Result<Memory> {
        let regions = Device::ALL
            .iter()
            .filter(|_| devices)
            .map(|&dev| (dev.range(), dev))
            .map(|((start, size), dev)| Region {
                start,
                end: u64::from(start) + u64::from(size),
                kind: RegionKind::Device(dev),
                name: dev.name().to_string(),
            })
            .collect();
        Ok(Memory {
            arena: Arena::reserve()?,
            regions,
            heap_index: usize::MAX,
            heap_limit: 0,
            brk: 0,
            devices: DeviceState { mtimecmp: u64::MAX, msip: 0, uart_regs: [0; 8], start: std::time::Instant::now() },
            uart_out: Vec::new(),
            huge_pages,
            last_hit: std::cell::Cell::new(0),
            devices_removed: Vec::new(),
            ram_limit: u64::MAX,
            isa: Isa::default(),
            mmap_top: 0x7000_0000,
            code_pages: code::CodePages::default(),
            code_written: Vec::new(),
        })
    }

    pub fn arena_base(&self) -> *mut u8 {
        self.arena.base()
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The first region that intersects `[start, end)`, if any.
    pub fn first_overlap(&self, start: u32, end: u64) -> Option<&Region> {
        self.regions.iter().find(|r| u64::from(r.start) < end && r.end > u64::from(start))
    }

    /// Adds a RAM region over page-aligned `[start, end)`, zero filled, with `perms`.
    /// The caller has checked that it overlaps nothing.
    pub fn add_ram(&mut self, start: u32, end: u64, perms: u8, name: &str) -> std::io::Result<()> {
        let perms = implied_read(perms);
        debug_assert!(start.is_multiple_of(PAGE) && end.is_multiple_of(u64::from(PAGE)) && end <= GUEST_SPACE);
        debug_assert!(self.first_overlap(start, end).is_none());
        self.arena.protect(start, end, perms)?;
        if self.huge_pages && end - u64::from(start) >= HUGE_PAGE_MIN {
            self.arena.advise_huge(start, end);
        }
        let region = Region { start, end, kind: RegionKind::Ram { perms }, name: name.to_string() };
        let at = self.regions.partition_point(|r| r.start < start);
        self.regions.insert(at, region);
        if self.heap_index != usize::MAX && at <= self.heap_index {
            self.heap_index += 1;
        }
        Ok(())
    }

    /// Copies bytes into guest RAM regardless of guest permissions (loader use).
    /// Returns false if any byte is outside RAM.
    pub fn write_initial(&mut self, addr: u32, bytes: &[u8]) -> std::io::Result<bool> {
        let end = u64::from(addr) + bytes.len() as u64;
        let mut a = u64::from(addr);
        while a < end {
            let Some(i) = self.find(a as u32) else {
                return Ok(false);
            };
            let r = &self.regions[i];
            let RegionKind::Ram { perms } = r.kind else {
                return Ok(false);
            };
            let chunk_end = end.min(r.end);
            let (rs, re) = (r.start, r.end);
            self.arena.protect(rs, re, PERM_R | PERM_W)?;
            let off = (a - u64::from(addr)) as usize;
            let len = (chunk_end - a) as usize;
            // SAFETY: [a, chunk_end) is inside a RAM region that is now host-writable,
            // and inside the arena reservation.
            unsafe {
                ptr::copy_nonoverlapping(bytes[off..].as_ptr(), self.arena.base().add(a as usize), len);
            }
            self.arena.protect(rs, re, perms)?;
            a = chunk_end;
        }
        Ok(true)
    }

    /// Declares the brk heap: it starts empty at `start` and may grow up to `limit`.
    pub fn set_heap(&mut self, start: u32, limit: u32) {
        let region = Region {
            start,
            end: u64::from(start),
            kind: RegionKind::Ram { perms: PERM_R | PERM_W },
            name: "heap".to_string(),
        };
        let at = self.regions.partition_point(|r| r.start < start);
        self.regions.insert(at, region);
        self.heap_index = at;
        self.heap_limit = limit;
        self.brk = start;
    }

    /// Bytes of guest RAM mapped now: segments, stack and heap.
    pub fn ram_bytes(&self) -> u64 {
        self.regions
            .iter()
            .filter(|r| matches!(r.kind, RegionKind::Ram { .. }))
            .map(|r| r.end - u64::from(r.start))
            .sum()
    }

    /// Caps guest RAM (`--max-memory`): `brk` beyond it fails, as under a Linux limit.
    pub fn set_ram_limit(&mut self, bytes: u64) {
        self.ram_limit = bytes;
    }

    /// Current program break (end of the heap region).
    pub fn brk(&self) -> u32 {
        self.brk
    }

    pub fn heap_start(&self) -> u32 {
        self.regions.get(self.heap_index).map_or(0, |r| r.start)
    }

    /// Moves the program break like Linux `brk`: returns the new break, or the old one
    /// when the request cannot be met.
    pub fn set_brk(&mut self, new_brk: u32) -> u32 {
        let Some(heap) = self.regions.get(self.heap_index) else {
            return 0;
        };
        let (start, old_top, old_brk) = (heap.start, heap.end, self.brk);
        if new_brk < start || new_brk > self.heap_limit {
            return old_brk;
        }
        let new_top = page_up(u64::from(new_brk));
        let ram_in_the_way = self.regions.iter().enumerate().any(|(i, r)| {
            i != self.heap_index
                && matches!(r.kind, RegionKind::Ram { .. })
                && u64::from(r.start) < new_top
                && r.end > old_top
        });
        let over_limit = new_top > old_top && self.ram_bytes() + (new_top - old_top) > self.ram_limit;
        if over_limit || (new_top > old_top && ram_in_the_way) {
            // Over --max-memory, or a mapping (mmap) is in the way: brk fails, as on Linux.
            return old_brk;
        }
        if new_top > old_top {
            // Linux programs know no devices: the heap takes over their address ranges.
            self.remove_devices_in(old_top as u32, new_top);
        }
        let ok = if new_top > old_top {
            if self.huge_pages && new_top - u64::from(start) >= HUGE_PAGE_MIN {
                self.arena.advise_huge(start, new_top);
            }
            let ok = self.arena.protect(old_top as u32, new_top, PERM_R | PERM_W).is_ok();
            if ok && self.huge_pages {
                if let Some((first, last)) = newly_whole_huge_pages(u64::from(start), old_top, new_top) {
                    self.arena.collapse_huge(first as u32, last);
                }
            }
            ok
        } else if new_top < old_top {
            self.arena.discard(new_top as u32, old_top).is_ok()
        } else {
            true
        };
        if !ok {
            return old_brk;
        }
        self.regions[self.heap_index].end = new_top;
        self.brk = new_brk;
        new_brk
    }

    /// Unmaps every device that intersects `[start, end)` and records it in
    /// `devices_removed`.
    fn remove_devices_in(&mut self, start: u32, end: u64) {
        let heap_start = self.heap_start();
        let before = self.devices_removed.len();
        self.regions.retain(|r| match r.kind {
            RegionKind::Device(d) if u64::from(r.start) < end && r.end > u64::from(start) => {
                self.devices_removed.push(d);
                false
            }
            _ => true,
        });
        if self.devices_removed.len() != before {
            self.heap_index =
                self.regions.iter().position(|r| r.start == heap_start && r.name == "heap").unwrap_or(usize::MAX);
        }
    }

    /// Index of the region holding `addr`.
    fn find(&self, addr: u32) -> Option<usize> {
        // Most accesses hit the same region as the one before.
        let last = self.last_hit.get();
        if let Some(r) = self.regions.get(last) {
            if addr >= r.start && u64::from(addr) < r.end {
                return Some(last);
            }
        }
        let i = self.regions.partition_point(|r| r.start <= addr);
        let i = i.checked_sub(1)?;
        let hit = u64::from(addr) < self.regions[i].end;
        if hit {
            self.last_hit.set(i);
        }
        hit.then_some(i)
    }

    /// The region holding `addr`.
    pub fn region_of(&self, addr: u32) -> Option<&Region> {
        self.find(addr).map(|i| &self.regions[i])
    }

    /// Is `[addr, addr+size)` RAM with all of `perms`?
    pub fn ram_allows(&self, addr: u32, size: u32, perms: u8) -> bool {
        match self.find(addr) {
            Some(i) => {
                let r = &self.regions[i];
                match r.kind {
                    RegionKind::Ram { perms: p } if p & perms == perms => {
                        r.contains(addr, size)
                            || (r.end <= u64::from(u32::MAX)
                                && self.ram_allows(
                                    r.end as u32,
                                    (u64::from(addr) + u64::from(size) - r.end) as u32,
                                    perms,
                                ))
                    }
                    _ => false,
                }
            }
            None => false,
        }
    }

    /// Fetches an instruction word (needs execute permission).
    pub fn fetch(&self, addr: u32) -> Result<u32, MemFault> {
        if !self.ram_allows(addr, 4, PERM_X) {
            return Err(MemFault::Access);
        }
        Ok(self.ram_read(addr, Width::B4))
    }

    /// Fetches the instruction at `pc` (execute permission): its bits and its length.
    /// With C, the first 16-bit parcel says the length (2 or 4); the second parcel of a
    /// 4-byte instruction is fetched on its own, so an instruction may straddle a page
    /// or a region end, and a fault on its second half reports that half's address,
    /// as RISC-V reports the address of the portion of an instruction that faulted.
    /// Without C, a whole aligned word is fetched. `Err` holds the faulting address.
    pub fn fetch_insn(&self, pc: u32) -> Result<(u32, u32), u32> {
        if !self.isa.c {
            return self.fetch(pc).map(|w| (w, 4)).map_err(|_| pc);
        }
        // Usually all four bytes are fetchable: one check.
        if self.ram_allows(pc, 4, PERM_X) {
            let word = self.ram_read(pc, Width::B4);
            return Ok(if word & 3 == 3 { (word, 4) } else { (word & 0xffff, 2) });
        }
        if !self.ram_allows(pc, 2, PERM_X) {
            return Err(pc);
        }
        let lo = self.ram_read(pc, Width::B2);
        if lo & 3 != 3 {
            return Ok((lo, 2));
        }
        let hi_addr = pc.wrapping_add(2);
        if !self.ram_allows(hi_addr, 2, PERM_X) {
            return Err(hi_addr);
        }
        Ok((lo | (self.ram_read(hi_addr, Width::B2) << 16), 4))
    }

    fn ram_read(&self, addr: u32, width: Width) -> u32 {
        // SAFETY: the caller checked that [addr, addr+width) is readable guest RAM, so it
        // is host-readable inside the arena.
        unsafe {
            let p = self.arena.base().add(addr as usize);
            match width {
                Width::B1 => u32::from(*p),
                Width::B2 => u32::from(ptr::read_unaligned(p.cast::<u16>())),
                Width::B4 => ptr::read_unaligned(p.cast::<u32>()),
            }
        }
    }

    fn ram_write(&mut self, addr: u32, width: Width, value: u32) {
        // SAFETY: the caller checked that [addr, addr+width) is writable guest RAM and
        // unmarked any code page in it (`code_write`), so it is host-writable inside the
        // arena.
        unsafe {
            let p = self.arena.base().add(addr as usize);
            match width {
                Width::B1 => *p = value as u8,
                Width::B2 => ptr::write_unaligned(p.cast::<u16>(), value as u16),
                Width::B4 => ptr::write_unaligned(p.cast::<u32>(), value),
            }
        }
    }

    /// The device holding all of the access, and the offset in it.
    fn device_at(&self, addr: u32, width: Width) -> Option<(Device, u32)> {
        let r = &self.regions[self.find(addr)?];
        match r.kind {
            RegionKind::Device(dev) if r.contains(addr, width.bytes()) => Some((dev, addr - r.start)),
            _ => None,
        }
    }

    /// Generic load (zero-extended to 32 bits).
    pub fn load(&mut self, addr: u32, width: Width) -> Result<u32, MemFault> {
        if self.ram_allows(addr, width.bytes(), PERM_R) {
            return Ok(self.ram_read(addr, width));
        }
        let (dev, off) = self.device_at(addr, width).ok_or(MemFault::Access)?;
        Ok(self.device_read(dev, off, width))
    }

    /// Generic store (the low `width` bytes of `value`).
    pub fn store(&mut self, addr: u32, width: Width, value: u32) -> Result<DeviceEffect, MemFault> {
        if self.ram_allows(addr, width.bytes(), PERM_W) {
            self.code_write(addr, width.bytes());
            self.ram_write(addr, width, value);
            return Ok(DeviceEffect::None);
        }
        let (dev, off) = self.device_at(addr, width).ok_or(MemFault::Access)?;
        Ok(self.device_write(dev, off, width, value))
    }

    /// Reads guest bytes for a syscall (needs read permission on RAM).
    pub fn read_bytes(&self, addr: u32, len: u32) -> Result<Vec<u8>, MemFault> {
        if len == 0 {
            return Ok(Vec::new());
        }
        if !self.ram_allows(addr, len, PERM_R) {
            return Err(MemFault::Access);
        }
        let mut out = vec![0u8; len as usize];
        // SAFETY: [addr, addr+len) is readable guest RAM inside the arena.
        unsafe {
            ptr::copy_nonoverlapping(self.arena.base().add(addr as usize), out.as_mut_ptr(), len as usize);
        }
        Ok(out)
    }

    /// The guest bytes `[addr, addr+len)` as a host slice, without copying, if they are
    /// RAM with all of `perms` (syscall buffers: a guest `write` goes straight from here).
    pub fn ram_slice(&self, addr: u32, len: u32, perms: u8) -> Option<&[u8]> {
        if len == 0 {
            return Some(&[]);
        }
        if !self.ram_allows(addr, len, perms | PERM_R) {
            return None;
        }
        // SAFETY: [addr, addr+len) is readable guest RAM inside the arena, so host-readable;
        // the slice borrows `self`, and guest memory changes only through `&mut Memory` or
        // translated code, which does not run while a syscall holds the borrow.
        Some(unsafe { std::slice::from_raw_parts(self.arena.base().add(addr as usize), len as usize) })
    }

    /// Writes guest bytes for a syscall (needs write permission on RAM).
    pub fn write_bytes(&mut self, addr: u32, bytes: &[u8]) -> Result<(), MemFault> {
        if bytes.is_empty() {
            return Ok(());
        }
        let len = u32::try_from(bytes.len()).map_err(|_| MemFault::Access)?;
        if !self.ram_allows(addr, len, PERM_W) {
            return Err(MemFault::Access);
        }
        self.code_write(addr, len);
        // SAFETY: [addr, addr+len) is writable guest RAM inside the arena (and host
        // writable: `code_write` gave code pages their permissions back).
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), self.arena.base().add(addr as usize), bytes.len());
        }
        Ok(())
    }

    /// Current `mtime` value.
    pub fn mtime(&self) -> u64 {
        let ns = self.devices.start.elapsed().as_nanos() as u64;
        ns / (1_000_000_000 / MTIME_HZ)
    }

    /// Reads a device register at offset `off` (the caller checked the range).
    pub fn device_read(&mut self, dev: Device, off: u32, width: Width) -> u32 {
        let shift = (off & 3) * 8;
        let word = match dev {
            Device::TestFinisher => 0,
            Device::Clint => match off & !3 {
                0x0 => self.devices.msip,
                0x4000 => self.devices.mtimecmp as u32,
                0x4004 => (self.devices.mtimecmp >> 32) as u32,
                0xbff8 => self.mtime() as u32,
                0xbffc => (self.mtime() >> 32) as u32,
                _ => 0,
            },
            Device::Uart => {
                return match off {
                    // LSR: transmitter holding register empty + transmitter empty.
                    5 => 0x60,
                    // RBR: no input.
                    0 => 0,
                    o if (o as usize) < self.devices.uart_regs.len() => u32::from(self.devices.uart_regs[o as usize]),
                    _ => 0,
                };
            }
        };
        let v = word >> shift;
        match width {
            Width::B1 => v & 0xff,
            Width::B2 => v & 0xffff,
            Width::B4 => v,
        }
    }

    /// Writes a device register at offset `off` (the caller checked the range).
    pub fn device_write(&mut self, dev: Device, off: u32, width: Width, value: u32) -> DeviceEffect {
        match dev {
            Device::TestFinisher => {
                if off == 0 && width == Width::B4 {
                    match value & 0xffff {
                        0x5555 => return DeviceEffect::Exit(0),
                        0x3333 => return DeviceEffect::Exit((value >> 16) as i32),
                        _ => {}
                    }
                }
            }
            Device::Clint => {
                let set_lo = |old: u64| (old & !0xffff_ffff) | u64::from(value);
                let set_hi = |old: u64| (old & 0xffff_ffff) | (u64::from(value) << 32);
                if width == Width::B4 {
                    match off {
                        0x0 => self.devices.msip = value & 1,
                        0x4000 => self.devices.mtimecmp = set_lo(self.devices.mtimecmp),
                        0x4004 => self.devices.mtimecmp = set_hi(self.devices.mtimecmp),
                        _ => {}
                    }
                }
            }
            Device::Uart => match off {
                0 => self.uart_out.push(value as u8),
                o if (o as usize) < self.devices.uart_regs.len() => {
                    self.devices.uart_regs[o as usize] = value as u8;
                }
                _ => {}
            },
        }
        DeviceEffect::None
    }

    /// A hash of all RAM contents (FNV-1a over each region's bytes), for tests that
    /// compare final memory between backends.
    pub fn ram_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for r in &self.regions {
            let RegionKind::Ram { perms } = r.kind else {
                continue;
            };
            if perms & PERM_R == 0 || r.end == u64::from(r.start) {
                continue;
            }
            let bytes = self.read_bytes(r.start, (r.end - u64::from(r.start)) as u32).unwrap_or_default();
            for b in bytes {
                h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem_with_ram() -> Memory {
        let mut m = Memory::new(false, true).unwrap();
        m.add_ram(0x1_0000, 0x1_2000, PERM_R | PERM_X, "text").unwrap();
        m.add_ram(0x1_2000, 0x1_3000, PERM_R | PERM_W, "data").unwrap();
        m.set_heap(0x1_3000, 0x10_0000_u32 * 16);
        m
    }

    #[test]
    fn region_lookup_and_permissions() {
        let mut m = mem_with_ram();
        assert!(m.region_of(0x1_0000).is_some());
        assert!(m.region_of(0xffff).is_none());
        assert_eq!(m.store(0x1_0000, Width::B4, 1), Err(MemFault::Access), "text is read-only");
        assert_eq!(m.store(0x1_2000, Width::B4, 0xdead_beef), Ok(DeviceEffect::None));
        assert_eq!(m.load(0x1_2000, Width::B2), Ok(0xbeef));
        assert_eq!(m.load(0x1_2001, Width::B2), Ok(0xadbe), "misaligned load works");
        assert_eq!(m.fetch(0x1_2000), Err(MemFault::Access), "data is not executable");
        assert_eq!(m.load(0x4000_0000, Width::B1), Err(MemFault::Access));
    }

    #[test]
    fn access_spanning_two_ram_regions_is_allowed_when_both_permit() {
        let mut m = mem_with_ram();
        // text [..0x12000) is R+X, data [0x12000..) is R+W: a load across the seam reads.
        assert!(m.load(0x1_1ffe, Width::B4).is_ok());
        // ... a store across the seam needs W on both sides.
        assert_eq!(m.store(0x1_1ffe, Width::B4, 0), Err(MemFault::Access));
        // ... and an access running off the end of RAM faults.
        assert_eq!(m.store(0x1_2ffe, Width::B4, 0), Err(MemFault::Access));
    }

    #[test]
    fn brk_grows_and_shrinks_with_zeroed_pages() {
        let mut m = mem_with_ram();
        assert_eq!(m.brk(), 0x1_3000);
        assert_eq!(m.set_brk(0x1_5010), 0x1_5010);
        m.store(0x1_5000, Width::B4, 7).unwrap();
        assert_eq!(m.load(0x1_5000, Width::B4), Ok(7));
        assert_eq!(m.load(0x1_5010, Width::B1), Ok(0), "beyond brk, in its page (as on Linux)");
        assert_eq!(m.load(0x1_6000, Width::B1), Err(MemFault::Access), "beyond brk's page");
        assert_eq!(m.set_brk(0x1_3000), 0x1_3000);
        assert_eq!(m.load(0x1_5000, Width::B4), Err(MemFault::Access));
        assert_eq!(m.set_brk(0x1_6000), 0x1_6000);
        assert_eq!(m.load(0x1_5000, Width::B4), Ok(0), "regrown heap is zeroed");
        assert_eq!(m.set_brk(0x1000), 0x1_6000, "below heap start: unchanged");
        assert_eq!(m.set_brk(0xffff_0000), 0x1_6000, "beyond limit: unchanged");
    }

    #[test]
    fn the_arena_starts_on_a_huge_page_boundary() {
        for _ in 0..4 {
            let m = Memory::new(true, false).unwrap();
            assert_eq!(m.arena_base() as u64 % HUGE_PAGE, 0);
        }
    }

    #[test]
    fn a_growing_heap_collapses_each_huge_page_once_it_covers_it_whole() {
        const MIB: u64 = 1 << 20;
        // A heap from 0x13000: [0, 2 MiB) starts below it, [2 MiB, 4 MiB) is the first.
        assert_eq!(newly_whole_huge_pages(0x1_3000, 0x1_3000, 2 * MIB), None);
        assert_eq!(newly_whole_huge_pages(0x1_3000, 2 * MIB, 4 * MIB - 0x1000), None);
        assert_eq!(newly_whole_huge_pages(0x1_3000, 4 * MIB - 0x1000, 4 * MIB), Some((2 * MIB, 4 * MIB)));
        assert_eq!(newly_whole_huge_pages(0x1_3000, 4 * MIB, 6 * MIB - 0x1000), None, "already whole");
        assert_eq!(newly_whole_huge_pages(0x1_3000, 5 * MIB, 6 * MIB), Some((4 * MIB, 6 * MIB)));
        assert_eq!(newly_whole_huge_pages(0x1_3000, 3 * MIB, 9 * MIB + 5), Some((2 * MIB, 8 * MIB)));
        assert_eq!(newly_whole_huge_pages(2 * MIB, 2 * MIB, 4 * MIB), Some((2 * MIB, 4 * MIB)), "an aligned start");
        // Growth keeps the contents of a collapsed heap.
        let mut m = Memory::new(true, false).unwrap();
        m.add_ram(0x1_0000, 0x1_3000, PERM_R | PERM_W, "data").unwrap();
        m.set_heap(0x1_3000, 0x1000_0000);
        assert_eq!(m.set_brk(0x1_3000 + 0x1_0000), 0x2_3000);
        m.store(0x2_0000, Width::B4, 0x1234_5678).unwrap();
        assert_eq!(m.set_brk(0x40_1000), 0x40_1000);
        assert_eq!(m.load(0x2_0000, Width::B4), Ok(0x1234_5678));
        assert_eq!(m.load(0x3f_fffc, Width::B4), Ok(0));
    }

    #[test]
    fn ram_limit_caps_brk() {
        let mut m = mem_with_ram(); // 12 KiB of text and data
        m.set_ram_limit(0x3000 + 0x4000);
        assert_eq!(m.set_brk(0x1_7000), 0x1_7000, "up to the limit");
        assert_eq!(m.set_brk(0x1_7001), 0x1_7000, "one page more is refused");
        assert_eq!(m.ram_bytes(), 0x7000);
        assert_eq!(m.set_brk(0x1_4000), 0x1_4000, "shrinking always works");
    }

    #[test]
    fn ram_slice_is_guest_memory_without_a_copy() {
        let mut m = mem_with_ram();
        m.store(0x1_2ffe, Width::B2, 0x4241).unwrap();
        assert_eq!(m.ram_slice(0x1_2ffe, 2, PERM_R), Some(&b"AB"[..]));
        assert_eq!(m.ram_slice(0x1_2ffe, 3, PERM_R), None, "runs off RAM");
        assert_eq!(m.ram_slice(0x1_0000, 4, PERM_W), None, "text is not writable");
        assert_eq!(m.ram_slice(0x4000_0000, 0, PERM_R), Some(&[][..]), "empty is always fine");
    }

    #[test]
    fn heap_growing_over_a_device_unmaps_it() {
        let mut m = Memory::new(false, true).unwrap();
        m.add_ram(0x1_0000, 0x1_1000, PERM_R | PERM_X, "text").unwrap();
        m.set_heap(0x1_1000, 0x7000_0000);
        assert_eq!(m.set_brk(0x20_0000), 0x20_0000, "the heap grows past the test finisher");
        assert_eq!(m.devices_removed, vec![Device::TestFinisher]);
        assert_eq!(m.store(TEST_FINISHER_BASE, Width::B4, 0x5555), Ok(DeviceEffect::None), "plain RAM now");
        assert_eq!(m.load(TEST_FINISHER_BASE, Width::B4), Ok(0x5555));
        assert_eq!(m.brk(), 0x20_0000);
        assert_eq!(m.set_brk(0x1_2000), 0x1_2000, "and shrinks again");
        assert_eq!(m.load(TEST_FINISHER_BASE, Width::B4), Err(MemFault::Access));
    }

    #[test]
    fn no_devices() {
        let mut m = Memory::new(false, false).unwrap();
        assert_eq!(m.store(UART_BASE, Width::B1, 0), Err(MemFault::Access));
        assert!(m.regions().is_empty());
    }

    #[test]
    fn devices_respond() {
        let mut m = mem_with_ram();
        assert_eq!(m.load(UART_BASE + 5, Width::B1), Ok(0x60));
        assert_eq!(m.store(UART_BASE, Width::B1, u32::from(b'x')), Ok(DeviceEffect::None));
        assert_eq!(m.uart_out, b"x");
        assert_eq!(m.store(TEST_FINISHER_BASE, Width::B4, 0x5555), Ok(DeviceEffect::Exit(0)));
        assert_eq!(m.store(TEST_FINISHER_BASE, Width::B4, (3 << 16) | 0x3333), Ok(DeviceEffect::Exit(3)));
        let t0 = m.load(CLINT_BASE + 0xbff8, Width::B4).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let t1 = m.load(CLINT_BASE + 0xbff8, Width::B4).unwrap();
        assert!(t1 > t0, "mtime advances");
        assert_eq!(m.load(UART_BASE + UART_SIZE, Width::B1), Err(MemFault::Access), "past the UART");
    }
}
