//! Memory-management and process-information system calls for programs built by stock
//! toolchains and runtimes: `mmap` (anonymous mappings, hinted or fixed), `munmap`,
//! `mprotect`, `madvise`, `riscv_flush_icache`, `uname`, `getrandom` and
//! `set_tid_address`.
//!
//! The map itself changes in [`crate::memory`] (`map.rs`). A change of pages that hold
//! translated code counts as a write of them: the memory lists them and the dispatcher
//! drops their translations (and only theirs) before running guest code again.

use super::{SysResult, EFAULT, EINVAL};
use crate::machine::Machine;
use crate::memory::{MapError, Placement, PERM_R, PERM_W, PERM_X};

pub const SYS_SET_TID_ADDRESS: u32 = 96;
pub const SYS_UNAME: u32 = 160;
pub const SYS_MUNMAP: u32 = 215;
/// `mmap` on RV32 (the kernel's `mmap2`: the offset is in 4096-byte pages).
pub const SYS_MMAP: u32 = 222;
pub const SYS_MPROTECT: u32 = 226;
pub const SYS_MADVISE: u32 = 233;
pub const SYS_RISCV_FLUSH_ICACHE: u32 = 259;
pub const SYS_GETRANDOM: u32 = 278;

const ENOMEM: i32 = 12;
const ENODEV: i32 = 19;
const EEXIST: i32 = 17;

const PROT_READ: u32 = 1;
const PROT_WRITE: u32 = 2;
const PROT_EXEC: u32 = 4;
/// PROT_SEM and the grows-down/up flags are accepted and ignored.
const PROT_IGNORED: u32 = 0x8 | 0x0100_0000 | 0x0200_0000;

const MAP_SHARED: u32 = 0x01;
const MAP_PRIVATE: u32 = 0x02;
const MAP_SHARED_VALIDATE: u32 = 0x03;
const MAP_FIXED: u32 = 0x10;
const MAP_ANONYMOUS: u32 = 0x20;
const MAP_FIXED_NOREPLACE: u32 = 0x10_0000;

const MADV_DONTNEED: u32 = 4;

fn errno(e: MapError) -> i32 {
    match e {
        MapError::Invalid => EINVAL,
        MapError::NoMemory => ENOMEM,
        MapError::Exists => EEXIST,
    }
}

/// Guest page permissions of a `PROT_*` set (write and execute imply read, as Linux
/// maps them on RISC-V).
fn perms(prot: u32) -> Result<u8, i32> {
    if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_IGNORED) != 0 {
        return Err(EINVAL);
    }
    let mut p = 0;
    if prot & PROT_READ != 0 {
        p |= PERM_R;
    }
    if prot & PROT_WRITE != 0 {
        p |= PERM_W | PERM_R;
    }
    if prot & PROT_EXEC != 0 {
        p |= PERM_X | PERM_R;
    }
    Ok(p)
}

/// mmap(addr, len, prot, flags, fd, pgoff): anonymous mappings only (private or
/// shared: with one process they are the same).
pub(super) fn sys_mmap(m: &mut Machine, addr: u32, len: u32, prot: u32, flags: u32) -> SysResult {
    let perms = perms(prot)?;
    if !matches!(flags & 3, MAP_SHARED | MAP_PRIVATE | MAP_SHARED_VALIDATE) || len == 0 {
        return Err(EINVAL);
    }
    if flags & MAP_ANONYMOUS == 0 {
        m.warn("mmap of a file is not supported (anonymous mappings only), returning -ENODEV".into());
        return Err(ENODEV);
    }
    let placement = if flags & MAP_FIXED_NOREPLACE != 0 {
        Placement::FixedNoReplace(addr)
    } else if flags & MAP_FIXED != 0 {
        Placement::Fixed(addr)
    } else {
        Placement::Hint(addr)
    };
    let start = m.mem.map_anonymous(placement, len, perms).map_err(errno)?;
    Ok(start as i32)
}

pub(super) fn sys_munmap(m: &mut Machine, addr: u32, len: u32) -> SysResult {
    m.mem.unmap(addr, len).map_err(errno)?;
    Ok(0)
}

pub(super) fn sys_mprotect(m: &mut Machine, addr: u32, len: u32, prot: u32) -> SysResult {
    let perms = perms(prot)?;
    if len == 0 {
        return if addr.is_multiple_of(crate::memory::PAGE) { Ok(0) } else { Err(EINVAL) };
    }
    m.mem.protect_pages(addr, len, perms).map_err(errno)?;
    Ok(0)
}

/// madvise: `MADV_DONTNEED` zero-fills the pages (as it does for private anonymous
/// memory); every other advice is accepted and ignored.
pub(super) fn sys_madvise(m: &mut Machine, addr: u32, len: u32, advice: u32) -> SysResult {
    if !addr.is_multiple_of(crate::memory::PAGE) {
        return Err(EINVAL);
    }
    if advice == MADV_DONTNEED && len != 0 {
        m.mem.zero_pages(addr, len).map_err(errno)?;
    }
    Ok(0)
}

/// riscv_flush_icache(start, end, flags): nothing to do. Every write to a page that
/// holds translated code has already dropped that page's translations (see
/// `memory/code.rs`), so what runs next is always the code in memory.
pub(super) fn sys_riscv_flush_icache(_m: &mut Machine, _start: u32, _end: u32, flags: u32) -> SysResult {
    // SYS_RISCV_FLUSH_ICACHE_LOCAL (1) is the only flag.
    if flags & !1 != 0 {
        return Err(EINVAL);
    }
    Ok(0)
}

/// uname: `struct utsname` (six 65-byte fields), machine `riscv32`.
pub(super) fn sys_uname(m: &mut Machine, buf: u32) -> SysResult {
    let fields = ["Linux", "rvdbt", "6.1.0", "#1 SMP rvdbt", "riscv32", "(none)"];
    let mut out = vec![0u8; 65 * fields.len()];
    for (i, f) in fields.iter().enumerate() {
        out[65 * i..65 * i + f.len()].copy_from_slice(f.as_bytes());
    }
    m.mem.write_bytes(buf, &out).map_err(|_| EFAULT)?;
    Ok(0)
}

/// getrandom(buf, len, flags): bytes from the host's getrandom (at most 1 MiB a call).
pub(super) fn sys_getrandom(m: &mut Machine, buf: u32, len: u32, flags: u32) -> SysResult {
    // GRND_NONBLOCK, GRND_RANDOM, GRND_INSECURE.
    if flags & !7 != 0 {
        return Err(EINVAL);
    }
    let mut bytes = vec![0u8; len.min(1 << 20) as usize];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: fills the tail of a buffer we own, of the length we pass.
        let n = unsafe { libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0) };
        if n <= 0 {
            break;
        }
        filled += n as usize;
    }
    bytes.truncate(filled);
    m.mem.write_bytes(buf, &bytes).map_err(|_| EFAULT)?;
    Ok(bytes.len() as i32)
}

/// set_tid_address: the thread id (the one thread is the process: pid 1).
pub(super) fn sys_set_tid_address(_m: &mut Machine, _tidptr: u32) -> SysResult {
    // One thread: its id is the process id, which `getpid` reports.
    Ok(std::process::id() as i32)
}
