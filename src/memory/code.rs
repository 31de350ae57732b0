//! Code-write detection: which guest pages hold translated code, and the pages written
//! since (whose translations are stale).
//!
//! The translation cache marks the pages each translation was decoded from. A marked
//! page that the guest may write gets a read-only host mapping in the arena, so an
//! inline store from translated code faults there (the dispatcher then drops the
//! page's translations and repeats the store in the interpreter); every other write to
//! guest RAM (the generic path, syscalls, changes of the map) goes through
//! [`Memory`], which checks the page's bit. The first write to a marked page clears the
//! mark, gives the page its guest permissions back and lists it in
//! [`Memory::code_written`]; until the page is translated again, writes to it cost
//! nothing more. Read-only code pages need no host change and unmarked pages no
//! check beyond one bit.

use super::{Memory, RegionKind, GUEST_SPACE, PAGE, PERM_W};

/// Guest pages in the 4 GiB address space.
const PAGES: usize = (GUEST_SPACE / PAGE as u64) as usize;

/// One bit per guest page: does it hold translated code? Allocated on first use.
#[derive(Default)]
pub(super) struct CodePages {
    bits: Vec<u64>,
}

impl CodePages {
    fn get(&self, page: u32) -> bool {
        self.bits.get(page as usize / 64).is_some_and(|w| w & (1 << (page % 64)) != 0)
    }

    fn set(&mut self, page: u32, on: bool) {
        if self.bits.is_empty() {
            if !on {
                return;
            }
            self.bits = vec![0; PAGES / 64];
        }
        let (w, b) = (page as usize / 64, 1u64 << (page % 64));
        if on {
            self.bits[w] |= b;
        } else {
            self.bits[w] &= !b;
        }
    }
}

/// The guest pages `[addr, addr + len)` touches (`len` > 0).
fn pages(addr: u32, len: u32) -> std::ops::RangeInclusive<u32> {
    let last = (u64::from(addr) + u64::from(len.max(1)) - 1).min(GUEST_SPACE - 1);
    addr / PAGE..=(last / u64::from(PAGE)) as u32
}

impl Memory {
    /// Marks the pages of guest bytes `[start, end)` as holding translated code (the
    /// caller decoded code from them). Writable ones become read-only on the host.
    pub fn mark_code(&mut self, start: u32, end: u64) -> std::io::Result<()> {
        if end <= u64::from(start) {
            return Ok(());
        }
        let len = (end - u64::from(start)).min(GUEST_SPACE) as u32;
        for page in pages(start, len) {
            if self.code_pages.get(page) {
                continue;
            }
            let at = page * PAGE;
            if let Some(RegionKind::Ram { perms }) = self.region_of(at).map(|r| r.kind) {
                if perms & PERM_W != 0 {
                    self.arena.protect(at, u64::from(at) + u64::from(PAGE), perms & !PERM_W)?;
                }
                self.code_pages.set(page, true);
            }
        }
        Ok(())
    }

    /// Does `[addr, addr + len)` touch a page that holds translated code?
    pub fn holds_code(&self, addr: u32, len: u32) -> bool {
        !self.code_pages.bits.is_empty() && pages(addr, len).any(|p| self.code_pages.get(p))
    }

    /// `[addr, addr + len)` is about to be written or remapped: every marked page in it
    /// loses its mark, gets its guest permissions back on the host and is listed in
    /// `code_written`.
    pub(super) fn code_write(&mut self, addr: u32, len: u32) {
        if !self.holds_code(addr, len) {
            return;
        }
        for page in pages(addr, len) {
            if !self.code_pages.get(page) {
                continue;
            }
            self.code_pages.set(page, false);
            self.code_written.push(page * PAGE);
            let at = page * PAGE;
            if let Some(RegionKind::Ram { perms }) = self.region_of(at).map(|r| r.kind) {
                if perms & PERM_W != 0 {
                    // Cannot fail for a page that was mprotected before (same mapping,
                    // same kind of change); if it did, a later write through this path
                    // would fault loudly rather than go unseen.
                    let _ = self.arena.protect(at, u64::from(at) + u64::from(PAGE), perms);
                }
            }
        }
    }

    /// Does a host write fault at guest address `addr` come from a page marked as
    /// holding code that the guest may write (a code write, not a guest fault)?
    pub fn is_code_write_fault(&self, addr: u32) -> bool {
        self.holds_code(addr, 1)
            && matches!(self.region_of(addr).map(|r| r.kind), Some(RegionKind::Ram { perms }) if perms & PERM_W != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{Width, PERM_R, PERM_X};

    #[test]
    fn a_write_to_a_code_page_unmarks_it_once_and_reports_it() {
        let mut m = Memory::new(false, false).unwrap();
        m.add_ram(0x1_0000, 0x1_3000, PERM_R | PERM_W | PERM_X, "rwx").unwrap();
        m.mark_code(0x1_0ffe, 0x1_1002).unwrap();
        assert!(m.holds_code(0x1_0000, 1) && m.holds_code(0x1_1000, 4));
        assert!(!m.holds_code(0x1_2000, 4), "only the pages of the code");
        assert!(m.is_code_write_fault(0x1_0004));
        m.store(0x1_2000, Width::B4, 1).unwrap();
        assert!(m.code_written.is_empty(), "an unmarked page");
        m.store(0x1_0ffe, Width::B4, 0x1234_5678).unwrap();
        assert_eq!(m.code_written, vec![0x1_0000, 0x1_1000], "a store across both marked pages");
        assert_eq!(m.load(0x1_0ffe, Width::B4), Ok(0x1234_5678));
        assert!(!m.holds_code(0x1_0000, 0x2000));
        m.store(0x1_1000, Width::B1, 1).unwrap();
        assert_eq!(m.code_written.len(), 2, "the next write costs nothing");
        // The host mapping is writable again: a raw write does not fault.
        // SAFETY: inside guest RAM the test mapped read+write.
        unsafe { m.arena_base().add(0x1_0000).write_volatile(7) };
        assert_eq!(m.load(0x1_0000, Width::B1), Ok(7));
    }

    #[test]
    fn syscall_writes_and_map_changes_count_as_code_writes() {
        let mut m = Memory::new(false, false).unwrap();
        m.add_ram(0x1_0000, 0x1_4000, PERM_R | PERM_W | PERM_X, "rwx").unwrap();
        m.mark_code(0x1_0000, 0x1_4000).unwrap();
        m.write_bytes(0x1_0010, b"abc").unwrap();
        assert_eq!(m.code_written, vec![0x1_0000]);
        m.protect_pages(0x1_1000, 0x1000, PERM_R | PERM_X).unwrap();
        m.unmap(0x1_2000, 0x1000).unwrap();
        m.zero_pages(0x1_3000, 0x1000).unwrap();
        assert_eq!(m.code_written, vec![0x1_0000, 0x1_1000, 0x1_2000, 0x1_3000]);
        assert!(!m.is_code_write_fault(0x1_1000), "no longer marked");
    }

    #[test]
    fn read_only_code_pages_keep_their_mapping() {
        let mut m = Memory::new(false, false).unwrap();
        m.add_ram(0x1_0000, 0x1_1000, PERM_R | PERM_X, "text").unwrap();
        m.mark_code(0x1_0000, 0x1_0010).unwrap();
        assert!(m.holds_code(0x1_0000, 4));
        assert!(!m.is_code_write_fault(0x1_0000), "a store there is a guest fault");
        assert!(m.store(0x1_0000, Width::B4, 0).is_err());
        assert!(m.code_written.is_empty());
    }
}
