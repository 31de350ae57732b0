//! Linux RISC-V system calls for the guest (`ecall`: a7 = number, a0..a5 = arguments,
//! result in a0, negative errno on failure), and the guest's standard streams.
//!
//! Guests see stdin, stdout and stderr, and — only when the user grants a directory
//! (`--dir`) — files inside that directory: `openat` resolves every path beneath it
//! (the kernel's `openat2` with `RESOLVE_BENEATH`, so neither `..`, absolute paths nor
//! symlinks lead out). Streams are either the host's (the `rvdbt` command) or
//! in-memory buffers (tests, and anyone embedding the library).
//!
//! Host streams and files are passed through: a guest `write` is one `write(2)` on the
//! host descriptor, straight from guest memory (no copy, no buffer), and the guest gets
//! the host's result — a partial count, `-EAGAIN`, `-ENOSPC`, `-EBADF`; a broken pipe
//! raises SIGPIPE as it would natively. Blocking calls (`read`, `write`, `openat`) are
//! interrupted by a stop signal or `--timeout` (see [`crate::host`]), which ends the run.

pub mod mm;

pub use crate::streams::{Files, Io, Sink, Source};

use crate::host;
use crate::machine::{Exit, FaultKind, GuestFault, Machine};
use crate::memory::{MemFault, PERM_R, PERM_W};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub const SYS_OPENAT: u32 = 56;
pub const SYS_CLOSE: u32 = 57;
pub const SYS_LSEEK: u32 = 62;
pub const SYS_READ: u32 = 63;
pub const SYS_WRITE: u32 = 64;
pub const SYS_WRITEV: u32 = 66;
pub const SYS_FSTAT: u32 = 80;
pub const SYS_EXIT: u32 = 93;
pub const SYS_EXIT_GROUP: u32 = 94;
pub const SYS_GETPID: u32 = 172;
pub const SYS_BRK: u32 = 214;
pub const SYS_CLOCK_GETTIME64: u32 = 403;

const EBADF: i32 = 9;
const EINTR: i32 = 4;
const EACCES: i32 = 13;
const ENAMETOOLONG: i32 = 36;
const EFAULT: i32 = 14;
const EINVAL: i32 = 22;
const ESPIPE: i32 = 29;
const ENOSYS: i32 = 38;

/// Linux moves at most this many bytes in one read or write (`MAX_RW_COUNT`).
const MAX_RW_COUNT: u32 = 0x7fff_f000;
/// At most this many buffers in one `writev` (`UIO_MAXIOV`).
const MAX_IOV: u32 = 1024;

fn host_time(clock: libc::clockid_t) -> (i64, i64) {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec, ts.tv_nsec)
}

fn guest_clock(id: u32) -> Option<libc::clockid_t> {
    match id {
        0 => Some(libc::CLOCK_REALTIME),
        1 => Some(libc::CLOCK_MONOTONIC),
        2 => Some(libc::CLOCK_PROCESS_CPUTIME_ID),
        3 => Some(libc::CLOCK_THREAD_CPUTIME_ID),
        4 => Some(libc::CLOCK_MONOTONIC_RAW),
        5 => Some(libc::CLOCK_REALTIME_COARSE),
        6 => Some(libc::CLOCK_MONOTONIC_COARSE),
        7 => Some(libc::CLOCK_BOOTTIME),
        _ => None,
    }
}

fn le_words(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// The result of one syscall, before it is written to a0.
type SysResult = Result<i32, i32>;

fn fault_to_errno(_: MemFault) -> i32 {
    EFAULT
}

/// Executes the `ecall` at `cpu.pc` (the interpreter retires it afterwards, unless it
/// faulted). Returns `Err` when the
/// program exits, the syscall is refused under `--strict-syscalls`, or the run's stop
/// flag is set (before the call, or while it blocked).
pub fn handle_ecall(m: &mut Machine) -> Result<(), Exit> {
    // A stop signal that arrived since the last check ends the run before the call takes
    // effect, as a signal delivered to a native process would.
    if let Some(sig) = m.io.interrupted() {
        return Err(Exit::Interrupted(sig));
    }
    let nr = m.cpu.reg(17);
    let a: [u32; 6] = std::array::from_fn(|i| m.cpu.reg(10 + i as u8));
    m.stats.syscalls += 1;
    let result: SysResult = match nr {
        SYS_EXIT | SYS_EXIT_GROUP => {
            m.flush_uart();
            return Err(Exit::Exited(a[0] as i32));
        }
        SYS_WRITE => sys_write(m, a[0], a[1], a[2]),
        SYS_WRITEV => sys_writev(m, a[0], a[1], a[2]),
        SYS_READ => sys_read(m, a[0], a[1], a[2]),
        SYS_OPENAT => sys_openat(m, a[0], a[1], a[2], a[3]),
        SYS_CLOSE => m.io.close(a[0]).map(|()| 0),
        SYS_LSEEK => sys_llseek(m, a[0], a[1], a[2], a[3], a[4]),
        SYS_FSTAT => sys_fstat(m, a[0], a[1]),
        SYS_BRK => {
            let before = m.mem.devices_removed.len();
            let brk = m.mem.set_brk(a[0]);
            let grown_over: Vec<String> = m.mem.devices_removed[before..]
                .iter()
                .map(|d| format!("the heap grew over the {} device at {:#010x}; it is unmapped", d.name(), d.range().0))
                .collect();
            for msg in grown_over {
                m.warn(msg);
            }
            Ok(brk as i32)
        }
        SYS_GETPID => Ok(std::process::id() as i32),
        mm::SYS_MMAP => mm::sys_mmap(m, a[0], a[1], a[2], a[3]),
        mm::SYS_MUNMAP => mm::sys_munmap(m, a[0], a[1]),
        mm::SYS_MPROTECT => mm::sys_mprotect(m, a[0], a[1], a[2]),
        mm::SYS_MADVISE => mm::sys_madvise(m, a[0], a[1], a[2]),
        mm::SYS_RISCV_FLUSH_ICACHE => mm::sys_riscv_flush_icache(m, a[0], a[1], a[2]),
        mm::SYS_UNAME => mm::sys_uname(m, a[0]),
        mm::SYS_GETRANDOM => mm::sys_getrandom(m, a[0], a[1], a[2]),
        mm::SYS_SET_TID_ADDRESS => mm::sys_set_tid_address(m, a[0]),
        // RV32 Linux has only the 64-bit time calls (no clock_gettime 113, gettimeofday 169).
        SYS_CLOCK_GETTIME64 => match guest_clock(a[0]) {
            None => Err(EINVAL),
            Some(clock) => {
                let (s, ns) = host_time(clock);
                let bytes = le_words(&[s as u32, (s >> 32) as u32, ns as u32, 0]);
                m.mem.write_bytes(a[1], &bytes).map(|_| 0).map_err(fault_to_errno)
            }
        },
        _ => {
            if let Some(value) = m.host_ecall(nr, a) {
                m.cpu.set_reg(10, value);
                return Ok(());
            }
            if m.config.strict_syscalls {
                return Err(Exit::Fault(GuestFault { kind: FaultKind::UnknownSyscall(nr), pc: m.cpu.pc, addr: 0 }));
            }
            m.warn(format!("unknown syscall {nr} at pc {:#010x}, returning -ENOSYS", m.cpu.pc));
            m.stats.unknown_syscalls += 1;
            Err(ENOSYS)
        }
    };
    let a0 = match result {
        Ok(v) => v,
        Err(errno) => {
            // A blocking call was interrupted by a stop signal or --timeout: the run ends.
            if let (EINTR, Some(sig)) = (errno, m.io.interrupted()) {
                return Err(Exit::Interrupted(sig));
            }
            -errno
        }
    };
    m.cpu.set_reg(10, a0 as u32);
    Ok(())
}

/// The result of a host call that returns -1 and sets errno.
fn host_result(r: isize) -> Result<usize, i32> {
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(EBADF))
    } else {
        Ok(r as usize)
    }
}

/// openat(dirfd, path, flags, mode), beneath the granted directory only. Flags and mode
/// are cleaned up as Linux's `openat` does before it opens (`build_open_how`): unknown
/// flags are dropped, `O_PATH` keeps only the flags that go with it, and the mode counts
/// only when the call may create a file. The flag values are the same on RISC-V and
/// x86-64 Linux (asm-generic).
fn sys_openat(m: &mut Machine, dirfd: u32, path: u32, flags: u32, mode: u32) -> SysResult {
    const AT_FDCWD: u32 = -100i32 as u32;
    const VALID_OPEN_FLAGS: u32 = 0o37777703;
    const O_CREAT: u32 = 0o100;
    const O_TMPFILE: u32 = 0o20000000;
    const O_PATH: u32 = 0o10000000;
    const O_PATH_FLAGS: u32 = 0o200000 | 0o400000 | O_PATH | 0o2000000; // O_DIRECTORY | O_NOFOLLOW | O_PATH | O_CLOEXEC
    let Some(dir) = m.io.files.dir.as_ref().map(|d| d.as_raw_fd()) else {
        return Err(EACCES);
    };
    let base = if dirfd == AT_FDCWD { dir } else { m.io.files.get(dirfd).ok_or(EBADF)? };
    let mut flags = flags & VALID_OPEN_FLAGS;
    if flags & O_PATH != 0 {
        flags &= O_PATH_FLAGS;
    }
    let mode = if flags & (O_CREAT | O_TMPFILE) != 0 { mode & 0o7777 } else { 0 };
    let mut name = Vec::new();
    loop {
        let chunk = m.mem.read_bytes(path.wrapping_add(name.len() as u32), 1).map_err(fault_to_errno)?;
        if chunk[0] == 0 {
            break;
        }
        if name.len() >= 4096 {
            return Err(ENAMETOOLONG);
        }
        name.push(chunk[0]);
    }
    let name = std::ffi::CString::new(name).map_err(|_| EINVAL)?;
    /// The kernel's `struct open_how`.
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags: u64::from(flags | libc::O_CLOEXEC as u32),
        mode: u64::from(mode),
        resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
    };
    // openat2 reads the NUL-terminated name and the open_how we own; opening a FIFO
    // blocks until a writer comes (or a stop signal interrupts it).
    let host = host::blocking_syscall(
        m.io.stop(),
        libc::SYS_openat2,
        [base as usize, name.as_ptr() as usize, &how as *const OpenHow as usize, std::mem::size_of::<OpenHow>()],
    )?;
    // SAFETY: `host` is a file descriptor openat2 just returned, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(host as RawFd) };
    m.io.files.insert(fd).map(|g| g as i32)
}

/// _llseek(fd, offset_high, offset_low, result, whence): lseek on RV32 Linux.
fn sys_llseek(m: &mut Machine, fd: u32, high: u32, low: u32, result: u32, whence: u32) -> SysResult {
    let Some(host) = m.io.host_fd(fd) else {
        // In-memory streams cannot seek, as pipes cannot.
        return Err(if m.io.is_open(fd) { ESPIPE } else { EBADF });
    };
    let offset = ((u64::from(high) << 32) | u64::from(low)) as i64;
    // SAFETY: lseek on a descriptor of the guest's.
    let pos = unsafe { libc::lseek(host, offset, whence as i32) };
    let pos = host_result(pos as isize)?;
    m.mem.write_bytes(result, &(pos as u64).to_le_bytes()).map_err(fault_to_errno)?;
    Ok(0)
}

/// write(fd, buf, len): one host `write` straight from guest memory; the host's count
/// (maybe partial) or errno is the guest's.
fn sys_write(m: &mut Machine, fd: u32, buf: u32, len: u32) -> SysResult {
    if !m.io.is_open(fd) {
        return Err(EBADF);
    }
    m.flush_uart();
    let len = len.min(MAX_RW_COUNT);
    let Machine { mem, io, .. } = m;
    let bytes = if len == 0 { &[][..] } else { mem.ram_slice(buf, len, PERM_R).ok_or(EFAULT)? };
    io.write_parts(fd, &[bytes]).map(|n| n as i32)
}

/// writev(fd, iov, count): one host `writev` over the guest buffers. As on qemu, a bad
/// buffer after the first ends the list there (the ones before it are written).
fn sys_writev(m: &mut Machine, fd: u32, iov: u32, count: u32) -> SysResult {
    if !m.io.is_open(fd) {
        return Err(EBADF);
    }
    if count > MAX_IOV {
        return Err(EINVAL);
    }
    if count == 0 {
        return Ok(0);
    }
    let table = m.mem.read_bytes(iov, count * 8).map_err(fault_to_errno)?;
    let entries: Vec<(u32, u32)> = table
        .chunks_exact(8)
        .map(|e| (u32::from_le_bytes([e[0], e[1], e[2], e[3]]), u32::from_le_bytes([e[4], e[5], e[6], e[7]])))
        .collect();
    // Lengths are ssize_t: a negative one is invalid.
    if entries.iter().any(|&(_, len)| (len as i32) < 0) {
        return Err(EINVAL);
    }
    m.flush_uart();
    let Machine { mem, io, .. } = m;
    let mut parts: Vec<&[u8]> = Vec::with_capacity(entries.len());
    let mut total = 0u32;
    for (base, len) in entries {
        let len = len.min(MAX_RW_COUNT - total);
        if len == 0 {
            continue;
        }
        match mem.ram_slice(base, len, PERM_R) {
            Some(bytes) => parts.push(bytes),
            None if parts.is_empty() => return Err(EFAULT),
            None => break,
        }
        total += len;
    }
    if parts.is_empty() {
        parts.push(&[]);
    }
    io.write_parts(fd, &parts).map(|n| n as i32)
}

fn sys_read(m: &mut Machine, fd: u32, buf: u32, len: u32) -> SysResult {
    if !m.io.is_open(fd) {
        return Err(EBADF);
    }
    if len == 0 {
        return Ok(0);
    }
    // Check the destination first, so a bad pointer does not consume input.
    if !m.mem.ram_allows(buf, len, PERM_W) {
        return Err(EFAULT);
    }
    // A prompt sent to the UART appears before the program waits for input.
    m.flush_uart();
    let bytes = m.io.read(fd, len as usize)?;
    m.mem.write_bytes(buf, &bytes).map_err(fault_to_errno)?;
    Ok(bytes.len() as i32)
}

/// fstat (fstat64 on RV32) in the 32-bit asm-generic `struct stat64` layout (104 bytes):
/// the host's mode and size; in-memory streams look like character devices.
fn sys_fstat(m: &mut Machine, fd: u32, statbuf: u32) -> SysResult {
    if !m.io.is_open(fd) {
        return Err(EBADF);
    }
    let mut mode: u32 = 0o020620; // S_IFCHR | rw--w----
    let mut size: u64 = 0;
    if let Some(h) = m.io.host_fd(fd) {
        // SAFETY: fstat writes one `struct stat` we own.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::fstat(h, &mut st) } != 0 {
            return Err(host_result(-1).err().unwrap_or(EBADF));
        }
        mode = st.st_mode;
        size = st.st_size as u64;
    }
    let mut buf = [0u8; 104];
    buf[16..20].copy_from_slice(&mode.to_le_bytes()); // st_mode
    buf[20..24].copy_from_slice(&1u32.to_le_bytes()); // st_nlink
    buf[48..56].copy_from_slice(&size.to_le_bytes()); // st_size
    buf[56..60].copy_from_slice(&4096u32.to_le_bytes()); // st_blksize
    m.mem.write_bytes(statbuf, &buf).map_err(fault_to_errno)?;
    Ok(0)
}
