//! Run-time changes to the memory map: anonymous mappings (`mmap`), unmapping
//! (`munmap`) and permission changes (`mprotect`), page by page, as Linux does them for
//! a single-threaded process.
//!
//! A mapping is a RAM region named `mmap`. Unmapping or re-protecting part of any RAM
//! region (an ELF segment, the stack, a mapping) splits it; neighbours with the same
//! name and permissions are merged again. The brk heap is left alone (its end moves
//! with `brk`): a call that would cut into it fails with `EINVAL`, and the heap in turn
//! never grows over a mapping (`brk` then fails, as on Linux). Devices are not Linux
//! memory: `munmap` and `mprotect` pass over them, and a fixed mapping over one
//! unmaps the device (as the heap does when it grows over one).
//!
//! Where a mapping without a usable address hint goes: the highest free range below
//! the stack (`mmap_top`), else the highest free range above it; never below
//! [`MMAP_MIN_ADDR`] (Linux's `mmap_min_addr`).
//!
//! Every change (unmapping, new permissions, a fixed mapping over old pages, zeroing)
//! counts as a write of the pages it covers: translations of code there are dropped
//! (see `code.rs`).

use super::{page_up, Memory, Region, RegionKind, GUEST_SPACE, PAGE};

/// Lowest address a mapping may start at.
pub const MMAP_MIN_ADDR: u32 = 0x1_0000;
/// Name of the RAM regions `map_anonymous` creates.
pub const MMAP_NAME: &str = "mmap";
/// Mappings never reach into the last page of the address space.
const MAP_TOP: u64 = GUEST_SPACE - PAGE as u64;

/// Why a mapping call failed (each is one errno).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Bad address, length or alignment, or the range cuts into the brk heap.
    Invalid,
    /// No room for the mapping, or (`protect`) part of the range is not mapped.
    NoMemory,
    /// `MAP_FIXED_NOREPLACE` over an existing mapping.
    Exists,
}

/// How `map_anonymous` chooses the address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Anywhere; `hint` (rounded up to a page) if that range is free.
    Hint(u32),
    /// Exactly here, replacing what is there.
    Fixed(u32),
    /// Exactly here, failing if anything is there.
    FixedNoReplace(u32),
}

/// The length of `[start, end)` as a `u32` (the whole address space from 0 saturates,
/// which covers the same pages).
fn span(start: u32, end: u64) -> u32 {
    (end - u64::from(start)).min(u64::from(u32::MAX)) as u32
}

impl Memory {
    /// The page-aligned range `[start, start + page_up(len))`, if it fits the address
    /// space.
    fn page_range(start: u32, len: u32) -> Result<(u32, u64), MapError> {
        if !start.is_multiple_of(PAGE) || len == 0 {
            return Err(MapError::Invalid);
        }
        let end = u64::from(start) + page_up(u64::from(len));
        if end > GUEST_SPACE {
            return Err(MapError::Invalid);
        }
        Ok((start, end))
    }

    /// Does `[start, end)` intersect the brk heap's current region?
    fn cuts_heap(&self, start: u32, end: u64) -> bool {
        self.regions.get(self.heap_index).is_some_and(|h| {
            let (hs, he) = (u64::from(h.start), h.end.max(u64::from(h.start) + u64::from(PAGE)));
            u64::from(start) < he && hs < end
        })
    }

    /// Recomputes `heap_index` after regions were inserted or removed.
    fn reindex_heap(&mut self, heap_start: Option<u32>) {
        if let Some(start) = heap_start {
            self.heap_index =
                self.regions.iter().position(|r| r.start == start && r.name == "heap").unwrap_or(usize::MAX);
        }
    }

    fn heap_start_opt(&self) -> Option<u32> {
        self.regions.get(self.heap_index).map(|r| r.start)
    }

    /// Splits the RAM region containing `addr` (not the heap) so that a region starts at
    /// `addr`.
    fn split_at(&mut self, addr: u32) {
        let Some(i) = self.find(addr) else { return };
        if i == self.heap_index || self.regions[i].start == addr {
            return;
        }
        let RegionKind::Ram { .. } = self.regions[i].kind else { return };
        let mut upper = self.regions[i].clone();
        upper.start = addr;
        self.regions[i].end = u64::from(addr);
        self.regions.insert(i + 1, upper);
        if self.heap_index != usize::MAX && i < self.heap_index {
            self.heap_index += 1;
        }
    }

    /// Merges neighbouring RAM regions of equal name and permissions (never the heap).
    fn coalesce(&mut self) {
        let heap = self.heap_start_opt();
        let mut i = 0;
        while i + 1 < self.regions.len() {
            let (a, b) = (&self.regions[i], &self.regions[i + 1]);
            let mergeable = matches!(a.kind, RegionKind::Ram { .. })
                && a.kind == b.kind
                && a.name == b.name
                && a.end == u64::from(b.start)
                && a.name != "heap";
            if mergeable {
                self.regions[i].end = self.regions[i + 1].end;
                self.regions.remove(i + 1);
            } else {
                i += 1;
            }
        }
        self.reindex_heap(heap);
        self.last_hit.set(0);
    }

    /// Indices of the RAM regions inside `[start, end)` (after splitting at both ends),
    /// the heap excepted.
    fn ram_inside(&self, start: u32, end: u64) -> Vec<usize> {
        (0..self.regions.len())
            .filter(|&i| {
                let r = &self.regions[i];
                i != self.heap_index
                    && matches!(r.kind, RegionKind::Ram { .. })
                    && u64::from(r.start) >= u64::from(start)
                    && r.end <= end
                    && r.end > u64::from(r.start)
            })
            .collect()
    }

    /// Is `[start, end)` free of every region (RAM and devices)?
    fn is_free(&self, start: u32, end: u64) -> bool {
        self.first_overlap(start, end).is_none()
    }

    /// The highest free page-aligned range of `len` bytes inside `[lo, hi)`.
    fn highest_free(&self, len: u64, lo: u64, hi: u64) -> Option<u32> {
        let mut top = hi;
        // Regions in descending order of start; each one below `top` bounds the gap.
        for r in self.regions.iter().rev() {
            if u64::from(r.start) >= top {
                continue;
            }
            let bottom = r.end.max(lo);
            if top >= bottom + len {
                return Some((top - len) as u32);
            }
            top = top.min(u64::from(r.start));
            if top < lo + len {
                return None;
            }
        }
        (top >= lo + len).then(|| (top - len) as u32)
    }

    /// Creates an anonymous, zero-filled mapping of `len` bytes (rounded up to pages)
    /// with `perms`, placed as `placement` says. Returns its address.
    pub fn map_anonymous(&mut self, placement: Placement, len: u32, perms: u8) -> Result<u32, MapError> {
        if len == 0 {
            return Err(MapError::Invalid);
        }
        let size = page_up(u64::from(len));
        let start = match placement {
            Placement::Hint(hint) => {
                let hint = page_up(u64::from(hint));
                let usable = hint >= u64::from(MMAP_MIN_ADDR)
                    && hint + size <= MAP_TOP
                    && self.is_free(hint as u32, hint + size);
                if usable {
                    hint as u32
                } else {
                    let top = u64::from(self.mmap_top);
                    self.highest_free(size, u64::from(MMAP_MIN_ADDR), top)
                        .or_else(|| self.highest_free(size, top, MAP_TOP))
                        .ok_or(MapError::NoMemory)?
                }
            }
            Placement::Fixed(addr) | Placement::FixedNoReplace(addr) => {
                let (start, end) = Self::page_range(addr, len)?;
                if start < MMAP_MIN_ADDR {
                    return Err(MapError::Invalid);
                }
                if self.cuts_heap(start, end) {
                    return Err(MapError::Invalid);
                }
                if !self.is_free(start, end) {
                    if matches!(placement, Placement::FixedNoReplace(_)) {
                        return Err(MapError::Exists);
                    }
                    self.unmap(start, (end - u64::from(start)) as u32)?;
                    self.remove_devices_in(start, end);
                }
                start
            }
        };
        let end = u64::from(start) + size;
        self.add_ram(start, end, perms, MMAP_NAME).map_err(|_| MapError::NoMemory)?;
        self.coalesce();
        Ok(start)
    }

    /// Unmaps the RAM pages of `[start, start + len)` (devices stay; holes are fine).
    pub fn unmap(&mut self, start: u32, len: u32) -> Result<(), MapError> {
        let (start, end) = Self::page_range(start, len)?;
        if self.cuts_heap(start, end) {
            return Err(MapError::Invalid);
        }
        self.code_write(start, span(start, end));
        self.split_at(start);
        if end < GUEST_SPACE {
            self.split_at(end as u32);
        }
        let inside = self.ram_inside(start, end);
        let heap = self.heap_start_opt();
        for &i in inside.iter().rev() {
            let r = self.regions.remove(i);
            self.arena.discard(r.start, r.end).map_err(|_| MapError::NoMemory)?;
        }
        self.reindex_heap(heap);
        self.coalesce();
        Ok(())
    }

    /// Sets the permissions of every page of `[start, start + len)`, all of which must
    /// be mapped RAM (devices in the range are passed over).
    pub fn protect_pages(&mut self, start: u32, len: u32, perms: u8) -> Result<(), MapError> {
        let perms = super::implied_read(perms);
        let (start, end) = Self::page_range(start, len)?;
        if self.cuts_heap(start, end) {
            return Err(MapError::Invalid);
        }
        // Every page must belong to some region.
        let mut at = u64::from(start);
        while at < end {
            let Some(i) = self.find(at as u32) else { return Err(MapError::NoMemory) };
            at = self.regions[i].end;
        }
        self.code_write(start, span(start, end));
        self.split_at(start);
        if end < GUEST_SPACE {
            self.split_at(end as u32);
        }
        for i in self.ram_inside(start, end) {
            let r: &mut Region = &mut self.regions[i];
            r.kind = RegionKind::Ram { perms };
            let (s, e) = (r.start, r.end);
            self.arena.protect(s, e, perms).map_err(|_| MapError::NoMemory)?;
        }
        self.coalesce();
        Ok(())
    }
}

impl Memory {
    /// `MADV_DONTNEED`: the RAM pages of `[start, start + len)` read as zero again
    /// (their contents are dropped; permissions stay).
    pub fn zero_pages(&mut self, start: u32, len: u32) -> Result<(), MapError> {
        let (start, end) = Self::page_range(start, len)?;
        self.code_write(start, span(start, end));
        let spans: Vec<(u32, u64, u8)> = self
            .regions
            .iter()
            .filter_map(|r| match r.kind {
                RegionKind::Ram { perms } if u64::from(r.start) < end && r.end > u64::from(start) => {
                    Some((r.start.max(start), r.end.min(end), perms))
                }
                _ => None,
            })
            .collect();
        for (s, e, perms) in spans {
            self.arena.discard(s, e).map_err(|_| MapError::NoMemory)?;
            self.arena.protect(s, e, perms).map_err(|_| MapError::NoMemory)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemFault, Width, PERM_R, PERM_W, PERM_X};

    fn mem() -> Memory {
        let mut m = Memory::new(false, true).unwrap();
        m.add_ram(0x1_0000, 0x1_2000, PERM_R | PERM_X, "text").unwrap();
        m.add_ram(0x7000_0000, 0x7000_4000, PERM_R | PERM_W, "stack").unwrap();
        m.set_heap(0x1_2000, 0x6000_0000);
        m.mmap_top = 0x7000_0000 - PAGE;
        m
    }

    #[test]
    fn anonymous_mappings_go_below_the_stack_and_are_zeroed() {
        let mut m = mem();
        let a = m.map_anonymous(Placement::Hint(0), 0x1800, PERM_R | PERM_W).unwrap();
        assert_eq!(a, 0x7000_0000 - PAGE - 0x2000, "two pages right below the guard page");
        assert_eq!(m.load(a + 0x1ffc, Width::B4), Ok(0));
        m.store(a, Width::B4, 42).unwrap();
        let b = m.map_anonymous(Placement::Hint(0), 1, PERM_R).unwrap();
        assert_eq!(b, a - PAGE, "the next one goes right below");
        assert_eq!(m.store(b, Width::B1, 1), Err(MemFault::Access), "read-only");
        // A free hint is taken (rounded up to a page).
        let c = m.map_anonymous(Placement::Hint(0x4000_0001), 0x1000, PERM_R | PERM_W).unwrap();
        assert_eq!(c, 0x4000_1000);
        // A hint on a used range is not.
        let d = m.map_anonymous(Placement::Hint(0x1_0000), 0x1000, PERM_R).unwrap();
        assert_ne!(d, 0x1_0000);
    }

    #[test]
    fn fixed_mappings_replace_and_noreplace_refuses() {
        let mut m = mem();
        let a = m.map_anonymous(Placement::Fixed(0x5000_0000), 0x3000, PERM_R | PERM_W).unwrap();
        assert_eq!(a, 0x5000_0000);
        m.store(0x5000_1000, Width::B4, 7).unwrap();
        assert_eq!(m.map_anonymous(Placement::FixedNoReplace(0x5000_1000), 0x1000, PERM_R), Err(MapError::Exists));
        assert_eq!(m.map_anonymous(Placement::Fixed(0x5000_1000), 0x1000, PERM_R), Ok(0x5000_1000));
        assert_eq!(m.load(0x5000_1000, Width::B4), Ok(0), "a fresh page");
        assert_eq!(m.store(0x5000_1000, Width::B4, 1), Err(MemFault::Access));
        assert_eq!(m.load(0x5000_2000, Width::B4), Ok(0));
        assert_eq!(m.map_anonymous(Placement::Fixed(0x5000_0001), 0x1000, PERM_R), Err(MapError::Invalid));
        assert_eq!(m.map_anonymous(Placement::Fixed(0x1_2000), 0x1000, PERM_R), Err(MapError::Invalid), "heap");
    }

    #[test]
    fn unmap_splits() {
        let mut m = mem();
        let a = m.map_anonymous(Placement::Fixed(0x5000_0000), 0x4000, PERM_R | PERM_W).unwrap();
        let n = m.regions().len();
        assert_eq!(m.unmap(a + 0x1000, 0x1000), Ok(()));
        assert_eq!(m.regions().len(), n + 1, "split in two");
        assert_eq!(m.load(a + 0x1000, Width::B1), Err(MemFault::Access));
        assert_eq!(m.load(a + 0x2000, Width::B1), Ok(0));
        assert_eq!(m.unmap(0x1_1000, 0x1000), Ok(()), "half the text");
        assert_eq!(m.fetch(0x1_0000).map(|_| ()), Ok(()));
        assert!(m.fetch(0x1_1000).is_err());
        assert_eq!(m.unmap(0x6000_0000, 0x1000), Ok(()), "nothing there: fine");
        assert_eq!(m.unmap(0x1_2000, 0x1000), Err(MapError::Invalid), "the heap");
        assert_eq!(m.unmap(0x5000_0800, 0x1000), Err(MapError::Invalid), "misaligned");
    }

    #[test]
    fn protect_changes_permissions_page_by_page() {
        let mut m = mem();
        let a = m.map_anonymous(Placement::Fixed(0x5000_0000), 0x3000, PERM_R | PERM_W).unwrap();
        assert_eq!(m.protect_pages(a + 0x1000, 0x1000, PERM_R | PERM_X), Ok(()));
        assert!(m.fetch(a + 0x1000).is_ok());
        assert_eq!(m.store(a + 0x1000, Width::B4, 1), Err(MemFault::Access));
        assert_eq!(m.store(a + 0x2000, Width::B4, 1), Ok(crate::memory::DeviceEffect::None));
        let n = m.regions().len();
        assert_eq!(m.protect_pages(a + 0x1000, 0x1000, PERM_R | PERM_W), Ok(()));
        assert!(m.fetch(a + 0x1000).is_err());
        assert_eq!(m.regions().len(), n - 2, "merged again");
        assert_eq!(m.protect_pages(0x6000_0000, 0x1000, PERM_R), Err(MapError::NoMemory), "unmapped");
    }

    #[test]
    fn the_heap_stops_at_a_mapping() {
        let mut m = mem();
        m.map_anonymous(Placement::Fixed(0x2_0000), 0x1000, PERM_R).unwrap();
        assert_eq!(m.set_brk(0x1_8000), 0x1_8000);
        assert_eq!(m.set_brk(0x2_0800), 0x1_8000, "brk fails where the mapping starts");
    }
}
