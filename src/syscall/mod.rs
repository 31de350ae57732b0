//! Linux RISC-V system calls for the guest (`ecall`: a7 = number, a0..a5 = arguments,
//! result in a0, negative errno on failure), and the guest's standard streams.
//!
//! Guests see stdin, stdout and stderr, and — only when the user grants a directory
//! (`--dir`) — files inside that directory: `openat` resolves every path beneath it
//! (the kernel's `openat2` with `RESOLVE_BENEATH`, so neither `..`, absolute paths nor
//! symlinks lead out). Streams are either the host's (the `rvdbt` command) or
//! in-memory buffers (tests, and anyone embedding the library).

pub mod mm;

use crate::machine::{Exit, FaultKind, GuestFault, Machine};
use crate::memory::MemFault;
use std::io::Write;
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
pub const SYS_CLOCK_GETTIME: u32 = 113;
pub const SYS_GETTIMEOFDAY: u32 = 169;
pub const SYS_GETPID: u32 = 172;
pub const SYS_BRK: u32 = 214;
pub const SYS_CLOCK_GETTIME64: u32 = 403;

const EBADF: i32 = 9;
const EACCES: i32 = 13;
const ENAMETOOLONG: i32 = 36;
const EMFILE: i32 = 24;
const EFAULT: i32 = 14;
const EINVAL: i32 = 22;
const ESPIPE: i32 = 29;
const ENOSYS: i32 = 38;

/// Where guest output goes.
#[derive(Debug)]
pub enum Sink {
    /// A host file descriptor (1 or 2).
    Host(i32),
    /// Collected in memory.
    Buffer(Vec<u8>),
}

/// Where guest input comes from.
#[derive(Debug)]
pub enum Source {
    Host(i32),
    Buffer { data: Vec<u8>, pos: usize },
}

/// The guest's three standard streams.
#[derive(Debug)]
pub struct Io {
    pub stdin: Source,
    pub stdout: Sink,
    pub stderr: Sink,
    /// Warnings about the guest (unknown syscalls) go to the host's stderr unless quiet.
    pub quiet: bool,
    /// The granted directory and the files opened in it.
    pub files: Files,
}

/// Host files a guest may use: the granted directory and the guest's open files, by
/// guest fd (3 and up).
#[derive(Debug, Default)]
pub struct Files {
    dir: Option<OwnedFd>,
    open: Vec<Option<OwnedFd>>,
}

/// Guest file descriptors at most (like a small `ulimit -n`).
const MAX_FILES: usize = 1024;

impl Files {
    fn get(&self, fd: u32) -> Option<RawFd> {
        let i = (fd as usize).checked_sub(3)?;
        self.open.get(i)?.as_ref().map(|f| f.as_raw_fd())
    }

    fn insert(&mut self, fd: OwnedFd) -> Result<u32, i32> {
        let i = match self.open.iter().position(Option::is_none) {
            Some(i) => i,
            None if self.open.len() < MAX_FILES => {
                self.open.push(None);
                self.open.len() - 1
            }
            None => return Err(EMFILE),
        };
        self.open[i] = Some(fd);
        Ok(i as u32 + 3)
    }

    fn close(&mut self, fd: u32) -> Result<(), i32> {
        let i = (fd as usize).checked_sub(3).ok_or(EBADF)?;
        self.open.get_mut(i).and_then(Option::take).map(drop).ok_or(EBADF)
    }
}

impl Io {
    /// The host's standard streams.
    pub fn host() -> Io {
        Io {
            stdin: Source::Host(0),
            stdout: Sink::Host(1),
            stderr: Sink::Host(2),
            quiet: false,
            files: Files::default(),
        }
    }

    /// Lets the guest open files beneath `dir` (which becomes its working directory).
    pub fn grant_dir(&mut self, dir: &std::path::Path) -> std::io::Result<()> {
        let f = std::fs::File::open(dir)?;
        if !f.metadata()?.is_dir() {
            return Err(std::io::Error::other(format!("{} is not a directory", dir.display())));
        }
        self.files.dir = Some(f.into());
        Ok(())
    }

    /// In-memory streams with the given stdin.
    pub fn buffered(stdin: Vec<u8>) -> Io {
        Io {
            stdin: Source::Buffer { data: stdin, pos: 0 },
            stdout: Sink::Buffer(Vec::new()),
            stderr: Sink::Buffer(Vec::new()),
            quiet: true,
            files: Files::default(),
        }
    }

    fn sink(&mut self, fd: u32) -> Option<&mut Sink> {
        match fd {
            1 => Some(&mut self.stdout),
            2 => Some(&mut self.stderr),
            _ => None,
        }
    }

    /// Writes to guest fd 1 or 2; returns bytes written or a negative errno.
    pub fn write(&mut self, fd: u32, bytes: &[u8]) -> i32 {
        match self.sink(fd) {
            Some(Sink::Buffer(buf)) => {
                buf.extend_from_slice(bytes);
                bytes.len() as i32
            }
            Some(Sink::Host(hfd)) => {
                let r = if *hfd == 1 { std::io::stdout().write_all(bytes) } else { std::io::stderr().write_all(bytes) };
                match r {
                    Ok(()) => bytes.len() as i32,
                    Err(e) => -e.raw_os_error().unwrap_or(EBADF),
                }
            }
            None => -EBADF,
        }
    }

    /// Reads from guest fd 0; returns the bytes or a negative errno.
    /// Reads from guest fd 0 or an open file; returns the bytes or a negative errno.
    fn read(&mut self, fd: u32, len: usize) -> Result<Vec<u8>, i32> {
        if let Some(host) = self.files.get(fd) {
            return host_read(host, len);
        }
        if fd != 0 {
            return Err(EBADF);
        }
        match &mut self.stdin {
            Source::Buffer { data, pos } => {
                let n = len.min(data.len() - *pos);
                let out = data[*pos..*pos + n].to_vec();
                *pos += n;
                Ok(out)
            }
            Source::Host(hfd) => host_read(*hfd, len),
        }
    }

    pub fn flush(&mut self) {
        if let Sink::Host(_) = self.stdout {
            let _ = std::io::stdout().flush();
        }
    }

    /// The collected stdout of a buffered machine.
    pub fn stdout_bytes(&self) -> &[u8] {
        match &self.stdout {
            Sink::Buffer(b) => b,
            Sink::Host(_) => &[],
        }
    }

    /// The collected stderr of a buffered machine.
    pub fn stderr_bytes(&self) -> &[u8] {
        match &self.stderr {
            Sink::Buffer(b) => b,
            Sink::Host(_) => &[],
        }
    }
}

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

/// Executes the `ecall` at `cpu.pc` (which has already retired). Returns `Err` when the
/// program exits or the syscall is refused under `--strict-syscalls`.
pub fn handle_ecall(m: &mut Machine) -> Result<(), Exit> {
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
        SYS_CLOSE => {
            if a[0] <= 2 {
                Ok(0)
            } else {
                m.io.files.close(a[0]).map(|()| 0)
            }
        }
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
        SYS_GETPID => Ok(1),
        mm::SYS_MMAP => mm::sys_mmap(m, a[0], a[1], a[2], a[3]),
        mm::SYS_MUNMAP => mm::sys_munmap(m, a[0], a[1]),
        mm::SYS_MPROTECT => mm::sys_mprotect(m, a[0], a[1], a[2]),
        mm::SYS_MADVISE => mm::sys_madvise(m, a[0], a[1], a[2]),
        mm::SYS_RISCV_FLUSH_ICACHE => mm::sys_riscv_flush_icache(m, a[0], a[1], a[2]),
        mm::SYS_UNAME => mm::sys_uname(m, a[0]),
        mm::SYS_GETRANDOM => mm::sys_getrandom(m, a[0], a[1], a[2]),
        mm::SYS_SET_TID_ADDRESS => mm::sys_set_tid_address(m, a[0]),
        SYS_CLOCK_GETTIME | SYS_CLOCK_GETTIME64 => match guest_clock(a[0]) {
            None => Err(EINVAL),
            Some(clock) => {
                let (s, ns) = host_time(clock);
                let bytes = if nr == SYS_CLOCK_GETTIME64 {
                    le_words(&[s as u32, (s >> 32) as u32, ns as u32, 0])
                } else {
                    le_words(&[s as u32, ns as u32])
                };
                m.mem.write_bytes(a[1], &bytes).map(|_| 0).map_err(fault_to_errno)
            }
        },
        SYS_GETTIMEOFDAY => {
            let (s, ns) = host_time(libc::CLOCK_REALTIME);
            let tv =
                if a[0] != 0 { m.mem.write_bytes(a[0], &le_words(&[s as u32, (ns / 1000) as u32])) } else { Ok(()) };
            let tz = if a[1] != 0 { m.mem.write_bytes(a[1], &le_words(&[0, 0])) } else { Ok(()) };
            tv.and(tz).map(|_| 0).map_err(fault_to_errno)
        }
        _ => {
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
        Err(errno) => -errno,
    };
    m.cpu.set_reg(10, a0 as u32);
    Ok(())
}

/// Reads at most `len` bytes (and at most 1 MiB) from a host descriptor.
fn host_read(fd: RawFd, len: usize) -> Result<Vec<u8>, i32> {
    let mut buf = vec![0u8; len.min(1 << 20)];
    // SAFETY: reads into a buffer we own, of the length we pass.
    let n = host_result(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })?;
    buf.truncate(n);
    Ok(buf)
}

/// The result of a host call that returns -1 and sets errno.
fn host_result(r: isize) -> Result<usize, i32> {
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(EBADF))
    } else {
        Ok(r as usize)
    }
}

/// openat(dirfd, path, flags, mode), beneath the granted directory only.
fn sys_openat(m: &mut Machine, dirfd: u32, path: u32, flags: u32, mode: u32) -> SysResult {
    const AT_FDCWD: u32 = -100i32 as u32;
    // Flags with the same values on RISC-V and x86-64 Linux (asm-generic).
    const ALLOWED: u32 = 0o3 | 0o100 | 0o200 | 0o1000 | 0o2000 | 0o4000 | 0o200000 | 0o400000 | 0o2000000;
    let Some(dir) = m.io.files.dir.as_ref().map(|d| d.as_raw_fd()) else {
        return Err(EACCES);
    };
    let base = if dirfd == AT_FDCWD { dir } else { m.io.files.get(dirfd).ok_or(EBADF)? };
    if flags & !ALLOWED != 0 {
        return Err(EINVAL);
    }
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
        mode: u64::from(mode & 0o777),
        resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2 reads the NUL-terminated name and the open_how we own; it
    // returns a new file descriptor that we take ownership of below.
    let r = unsafe {
        libc::syscall(libc::SYS_openat2, base, name.as_ptr(), &how as *const OpenHow, std::mem::size_of::<OpenHow>())
    };
    let host = host_result(r as isize)?;
    // SAFETY: `host` is a file descriptor openat2 just returned, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(host as RawFd) };
    m.io.files.insert(fd).map(|g| g as i32)
}

/// _llseek(fd, offset_high, offset_low, result, whence): lseek on RV32 Linux.
fn sys_llseek(m: &mut Machine, fd: u32, high: u32, low: u32, result: u32, whence: u32) -> SysResult {
    if fd <= 2 {
        return Err(ESPIPE);
    }
    let host = m.io.files.get(fd).ok_or(EBADF)?;
    let offset = ((u64::from(high) << 32) | u64::from(low)) as i64;
    // SAFETY: lseek on a descriptor we own.
    let pos = unsafe { libc::lseek(host, offset, whence as i32) };
    let pos = host_result(pos as isize)?;
    m.mem.write_bytes(result, &(pos as u64).to_le_bytes()).map_err(fault_to_errno)?;
    Ok(0)
}

fn sys_write(m: &mut Machine, fd: u32, buf: u32, len: u32) -> SysResult {
    if let Some(host) = m.io.files.get(fd) {
        let bytes = m.mem.read_bytes(buf, len).map_err(fault_to_errno)?;
        // SAFETY: writes from a buffer we own to a descriptor we own.
        let n = unsafe { libc::write(host, bytes.as_ptr().cast(), bytes.len()) };
        return host_result(n).map(|n| n as i32);
    }
    if fd != 1 && fd != 2 {
        return Err(EBADF);
    }
    let bytes = m.mem.read_bytes(buf, len).map_err(fault_to_errno)?;
    m.flush_uart();
    let n = m.io.write(fd, &bytes);
    if n < 0 {
        Err(-n)
    } else {
        Ok(n)
    }
}

fn sys_writev(m: &mut Machine, fd: u32, iov: u32, count: u32) -> SysResult {
    if count > 1024 {
        return Err(EINVAL);
    }
    let table = m.mem.read_bytes(iov, count * 8).map_err(fault_to_errno)?;
    let mut total = 0i32;
    for entry in table.chunks_exact(8) {
        let base = u32::from_le_bytes(entry[0..4].try_into().unwrap_or_default());
        let len = u32::from_le_bytes(entry[4..8].try_into().unwrap_or_default());
        total += sys_write(m, fd, base, len)?;
    }
    Ok(total)
}

fn sys_read(m: &mut Machine, fd: u32, buf: u32, len: u32) -> SysResult {
    let file = m.io.files.get(fd);
    if fd != 0 && file.is_none() {
        return Err(EBADF);
    }
    if len == 0 {
        return Ok(0);
    }
    // Check the destination first, so a bad pointer does not consume input.
    if !m.mem.ram_allows(buf, len, crate::memory::PERM_W) {
        return Err(EFAULT);
    }
    if file.is_none() {
        m.io.flush();
    }
    let bytes = m.io.read(fd, len as usize)?;
    m.mem.write_bytes(buf, &bytes).map_err(fault_to_errno)?;
    Ok(bytes.len() as i32)
}

/// fstat (fstat64 on RV32) in the 32-bit asm-generic `struct stat64` layout (104 bytes):
/// the host's mode and size; in-memory streams look like character devices.
fn sys_fstat(m: &mut Machine, fd: u32, statbuf: u32) -> SysResult {
    let host_fd = match (fd, &m.io.stdin, &m.io.stdout, &m.io.stderr) {
        (0, Source::Host(h), _, _) | (1, _, Sink::Host(h), _) | (2, _, _, Sink::Host(h)) => Some(*h),
        (0..=2, ..) => None,
        _ => Some(m.io.files.get(fd).ok_or(EBADF)?),
    };
    let mut mode: u32 = 0o020620; // S_IFCHR | rw--w----
    let mut size: u64 = 0;
    if let Some(h) = host_fd {
        // SAFETY: fstat writes one `struct stat` we own.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::fstat(h, &mut st) } == 0 {
            mode = st.st_mode;
            size = st.st_size as u64;
        }
    }
    let mut buf = [0u8; 104];
    buf[16..20].copy_from_slice(&mode.to_le_bytes()); // st_mode
    buf[20..24].copy_from_slice(&1u32.to_le_bytes()); // st_nlink
    buf[48..56].copy_from_slice(&size.to_le_bytes()); // st_size
    buf[56..60].copy_from_slice(&4096u32.to_le_bytes()); // st_blksize
    m.mem.write_bytes(statbuf, &buf).map_err(fault_to_errno)?;
    Ok(0)
}
