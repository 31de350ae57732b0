//! The guest's streams and files: stdin, stdout and stderr (the host's, passed through
//! without buffering, or in-memory buffers for tests and embedders) and the files a
//! guest opened beneath its granted directory. The machine owns them; the syscall layer
//! reads and writes through them.

use crate::host;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const EBADF: i32 = 9;
const EMFILE: i32 = 24;

/// Host memory for one `read` (a longer read returns this much, as reads may).
const MAX_READ_CHUNK: usize = 1 << 20;

/// Where guest output goes.
#[derive(Debug)]
pub enum Sink {
    /// A host file descriptor (1 or 2), written without buffering.
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
    /// The run's stop flag (SIGINT/SIGTERM number, or [`host::TIMEOUT_STOP`]): a
    /// blocking call it interrupts, or a syscall made after it was set, ends the run.
    /// The runner sets it from `RunOptions::interrupt`.
    pub interrupt: Option<Arc<AtomicUsize>>,
}

/// The guest's file descriptors: its standard streams (0, 1, 2) until it closes them,
/// the host files it opened, and the granted directory they are opened in.
#[derive(Debug, Default)]
pub struct Files {
    pub(crate) dir: Option<OwnedFd>,
    /// Host files by guest fd. Slots 0..2 hold a file only once the guest closed the
    /// standard stream there (like Linux, `open` returns the lowest free number).
    open: Vec<Option<OwnedFd>>,
    /// Standard streams that are closed (by the guest, or when rvdbt started).
    std_closed: [bool; 3],
}

/// Guest file descriptors at most (like a small `ulimit -n`).
const MAX_FILES: usize = 1024;

impl Files {
    /// The host descriptor of a file the guest opened.
    pub(crate) fn get(&self, fd: u32) -> Option<RawFd> {
        self.open.get(fd as usize)?.as_ref().map(|f| f.as_raw_fd())
    }

    /// Is `fd` one of the standard streams, still open?
    pub(crate) fn std_open(&self, fd: u32) -> bool {
        fd < 3 && !self.std_closed[fd as usize] && self.get(fd).is_none()
    }

    pub(crate) fn is_free(&self, fd: usize) -> bool {
        self.open.get(fd).is_none_or(Option::is_none) && (fd >= 3 || self.std_closed[fd])
    }

    pub(crate) fn insert(&mut self, file: OwnedFd) -> Result<u32, i32> {
        let fd = (0..MAX_FILES).find(|&i| self.is_free(i)).ok_or(EMFILE)?;
        if self.open.len() <= fd {
            self.open.resize_with(fd + 1, || None);
        }
        self.open[fd] = Some(file);
        Ok(fd as u32)
    }

    pub(crate) fn close(&mut self, fd: u32) -> Result<(), i32> {
        self.open.get_mut(fd as usize).and_then(Option::take).map(drop).ok_or(EBADF)
    }
}

impl Io {
    /// The host's standard streams. A descriptor 0, 1 or 2 that is closed when this is
    /// called stays closed for the guest (`EBADF`), and gets a placeholder so that no file
    /// opened later takes its number: call this before opening other files.
    pub fn host() -> Io {
        let closed = host::reserve_std_fds();
        Io {
            stdin: Source::Host(0),
            stdout: Sink::Host(1),
            stderr: Sink::Host(2),
            quiet: false,
            files: Files { std_closed: closed, ..Files::default() },
            interrupt: None,
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
            interrupt: None,
        }
    }

    /// Connects guest descriptor `fd` (0, 1 or 2) to `file`, which the guest then owns
    /// as a file it opened: reads and writes go to it, and the guest's `close` closes it
    /// (the standard stream there stays closed, as after a `close` and `openat`).
    pub(crate) fn attach(&mut self, fd: u32, file: OwnedFd) {
        let fd = fd as usize;
        assert!(fd < 3, "only the standard descriptors are attached");
        if self.files.open.len() <= fd {
            self.files.open.resize_with(fd + 1, || None);
        }
        self.files.open[fd] = Some(file);
        self.files.std_closed[fd] = true;
    }

    /// Is guest descriptor `fd` (0, 1 or 2) closed?
    pub fn is_closed(&self, fd: u32) -> bool {
        !self.files.std_open(fd) && self.files.get(fd).is_none()
    }

    /// The stop flag's value, if set: a signal number or [`host::TIMEOUT_STOP`].
    pub fn interrupted(&self) -> Option<i32> {
        let v = self.interrupt.as_ref()?.load(Ordering::Relaxed);
        (v != 0).then_some(v as i32)
    }

    pub(crate) fn stop(&self) -> Option<&AtomicUsize> {
        self.interrupt.as_deref()
    }

    /// The host descriptor behind guest descriptor `fd`, if it is a host stream or file.
    pub(crate) fn host_fd(&self, fd: u32) -> Option<RawFd> {
        if let Some(h) = self.files.get(fd) {
            return Some(h);
        }
        if !self.files.std_open(fd) {
            return None;
        }
        match (fd, &self.stdin, &self.stdout, &self.stderr) {
            (0, Source::Host(h), _, _) | (1, _, Sink::Host(h), _) | (2, _, _, Sink::Host(h)) => Some(*h),
            _ => None,
        }
    }

    /// Is `fd` an open guest descriptor?
    pub(crate) fn is_open(&self, fd: u32) -> bool {
        self.files.std_open(fd) || self.files.get(fd).is_some()
    }

    /// One write of `parts` (gathered, as `writev`) to guest descriptor `fd`: the byte
    /// count (maybe partial) or an errno.
    pub(crate) fn write_parts(&mut self, fd: u32, parts: &[&[u8]]) -> Result<usize, i32> {
        if let Some(h) = self.host_fd(fd) {
            let stop = self.stop();
            return match parts {
                [one] => {
                    host::blocking_syscall(stop, libc::SYS_write, [h as usize, one.as_ptr() as usize, one.len(), 0])
                }
                _ => {
                    let iov: Vec<libc::iovec> = parts
                        .iter()
                        .map(|p| libc::iovec { iov_base: p.as_ptr().cast_mut().cast(), iov_len: p.len() })
                        .collect();
                    host::blocking_syscall(stop, libc::SYS_writev, [h as usize, iov.as_ptr() as usize, iov.len(), 0])
                }
            };
        }
        let sink = match fd {
            1 if self.files.std_open(1) => &mut self.stdout,
            2 if self.files.std_open(2) => &mut self.stderr,
            _ => return Err(EBADF),
        };
        match sink {
            Sink::Buffer(buf) => {
                parts.iter().for_each(|p| buf.extend_from_slice(p));
                Ok(parts.iter().map(|p| p.len()).sum())
            }
            Sink::Host(_) => Err(EBADF),
        }
    }

    /// Writes to guest descriptor `fd` as one `write`; returns the bytes written (maybe
    /// fewer than `bytes`) or a negative errno.
    pub fn write(&mut self, fd: u32, bytes: &[u8]) -> i32 {
        match self.write_parts(fd, &[bytes]) {
            Ok(n) => n as i32,
            Err(e) => -e,
        }
    }

    /// Writes all of `bytes` to guest descriptor `fd` (device output: the UART), waiting
    /// on a non-blocking descriptor; gives up on an error or when the run is stopped.
    pub fn write_all(&mut self, fd: u32, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.write_parts(fd, &[bytes]) {
                Ok(n) => bytes = &bytes[n..],
                Err(libc::EAGAIN) => match self.host_fd(fd) {
                    Some(h) => host::wait_writable(h),
                    None => return,
                },
                Err(_) => return,
            }
        }
    }

    /// Reads from guest descriptor `fd` (stdin or an open file); returns the bytes or an
    /// errno.
    pub(crate) fn read(&mut self, fd: u32, len: usize) -> Result<Vec<u8>, i32> {
        if let Some(h) = self.host_fd(fd) {
            return host_read(h, len, self.stop());
        }
        match (&mut self.stdin, fd) {
            (Source::Buffer { data, pos }, 0) if self.files.std_open(0) => {
                let n = len.min(data.len() - *pos);
                let out = data[*pos..*pos + n].to_vec();
                *pos += n;
                Ok(out)
            }
            _ => Err(EBADF),
        }
    }

    /// Closes guest descriptor `fd`. A host standard stream is really closed (a pipe's
    /// reader sees end of file); its number is free for the guest's next `openat`.
    pub fn close(&mut self, fd: u32) -> Result<(), i32> {
        if self.files.get(fd).is_some() {
            return self.files.close(fd);
        }
        if !self.files.std_open(fd) {
            return Err(EBADF);
        }
        if let Some(h) = self.host_fd(fd) {
            host::close_std_fd(h);
        }
        self.files.std_closed[fd as usize] = true;
        Ok(())
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

/// Reads at most `len` bytes (and at most [`MAX_READ_CHUNK`]) from a host descriptor.
fn host_read(fd: RawFd, len: usize, stop: Option<&AtomicUsize>) -> Result<Vec<u8>, i32> {
    let mut buf = vec![0u8; len.min(MAX_READ_CHUNK)];
    let n = host::blocking_syscall(stop, libc::SYS_read, [fd as usize, buf.as_mut_ptr() as usize, buf.len(), 0])?;
    buf.truncate(n);
    Ok(buf)
}
