//! rvdbt as a host process: its own messages, SIGPIPE, the stop signals (SIGINT, SIGTERM,
//! `--timeout`), blocking system calls that those signals interrupt, and closed standard
//! descriptors.
//!
//! - rvdbt's own messages (fault diagnostics, warnings, statistics, `--print-code`) go
//!   through [`eprint()`]: to a private duplicate of the stderr rvdbt started with (so a guest
//!   that closes or reuses its fd 2 does not receive them), never buffered, never a panic
//!   and never SIGPIPE when stderr is closed or broken. A lost message never changes the
//!   exit status.
//! - SIGPIPE: guest writes go straight to the host descriptor, so a write to a broken pipe
//!   kills rvdbt with SIGPIPE exactly as it kills a native process; the `rvdbt` command
//!   undoes the Rust runtime's `SIG_IGN` ([`restore_sigpipe`]) unless SIGPIPE was already
//!   ignored when rvdbt started (then the guest gets `-EPIPE`, as a native process would).
//! - SIGINT/SIGTERM ([`install_stop_signals`]) set a stop flag, installed without
//!   `SA_RESTART`. Blocking system calls made for the guest go through [`blocking_syscall`],
//!   which runs the call with [`safe_syscall`]: the flag is checked in the same few
//!   instructions that enter the kernel, and a signal that arrives between the check and
//!   the `syscall` instruction makes the handler skip the call (qemu's `safe_syscall`), so a
//!   stop signal can never be lost while the guest blocks.
//! - `--timeout` ([`start_timeout`]) sets the same flag to [`TIMEOUT_STOP`] from a timer
//!   thread and sends SIGTERM to the run thread to interrupt a blocking call.
//! - Guests embedded in another program ([`crate::engine`]), many per process on many
//!   threads, leave SIGINT/SIGTERM alone: each has its own stop flag, and stopping one
//!   sets its flag and sends [`wake_signal`] to the thread running it ([`wake_thread`]),
//!   whose handler interrupts a blocking call the same way.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

/// Value of the stop flag for `--timeout` (not a signal number).
pub const TIMEOUT_STOP: usize = 1 << 16;

/// Where rvdbt's own messages go (-1: nowhere). The library writes to fd 2; the `rvdbt`
/// command points this at a private duplicate ([`init_diagnostics`]).
static DIAG_FD: AtomicI32 = AtomicI32::new(2);

/// Sends rvdbt's own messages to a private duplicate of the current stderr (or nowhere if
/// stderr is closed). Call once at startup, after [`reserve_std_fds`].
pub fn init_diagnostics(stderr_closed: bool) {
    let fd = if stderr_closed {
        -1
    } else {
        // SAFETY: duplicating a descriptor; the copy is ours for the life of the process.
        let dup = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3) };
        if dup < 0 {
            2
        } else {
            dup
        }
    };
    DIAG_FD.store(fd, Ordering::Relaxed);
}

/// Writes one of rvdbt's own messages to its stderr. Never panics, never raises SIGPIPE
/// (SIGPIPE is blocked while writing and a resulting one is consumed); a closed or broken
/// stderr loses the message.
pub fn eprint(text: &str) {
    let fd = DIAG_FD.load(Ordering::Relaxed);
    if fd < 0 || text.is_empty() {
        return;
    }
    // SAFETY: plain signal-mask manipulation and writes from a buffer we own; the sets are
    // initialised by sigemptyset before use.
    unsafe {
        let mut pipe_set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pipe_set);
        libc::sigaddset(&mut pipe_set, libc::SIGPIPE);
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe_set, &mut old);
        let mut rest = text.as_bytes();
        let mut broken = false;
        while !rest.is_empty() {
            let n = libc::write(fd, rest.as_ptr().cast(), rest.len());
            if n >= 0 {
                rest = &rest[n as usize..];
                continue;
            }
            match errno() {
                libc::EINTR => {}
                libc::EAGAIN => wait_writable(fd),
                e => {
                    broken = e == libc::EPIPE;
                    break;
                }
            }
        }
        if broken {
            // The failed write raised SIGPIPE for this thread; take it back.
            let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            libc::sigtimedwait(&pipe_set, std::ptr::null_mut(), &zero);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
}

/// Formats and writes one of rvdbt's own messages (see [`eprint()`]).
#[macro_export]
macro_rules! diag {
    ($($arg:tt)*) => {
        $crate::host::eprint(&format!($($arg)*))
    };
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Waits until `fd` can take more bytes (a non-blocking descriptor that returned EAGAIN).
pub fn wait_writable(fd: i32) {
    let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
    // SAFETY: poll on one pollfd we own.
    unsafe { libc::poll(&mut p, 1, -1) };
}

/// Was SIGPIPE ignored when the process started ([`record_startup`])?
static SIGPIPE_WAS_IGNORED: AtomicBool = AtomicBool::new(false);
/// Standard descriptors (bit n: fd n) that were closed when the process started.
static STD_CLOSED_AT_START: AtomicU8 = AtomicU8::new(0);

/// Records what the process inherited and the Rust runtime changes before `main`:
/// SIGPIPE's disposition (it sets SIG_IGN) and closed descriptors 0, 1, 2 (it opens
/// `/dev/null` there). The `rvdbt` command calls this from a constructor, before the
/// runtime starts; it makes only async-signal-safe calls.
pub fn record_startup() {
    // SAFETY: querying a disposition into a zeroed sigaction, and descriptor flags.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        let ignored =
            libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN;
        SIGPIPE_WAS_IGNORED.store(ignored, Ordering::Relaxed);
        let mut closed = 0;
        for fd in 0..3 {
            if libc::fcntl(fd, libc::F_GETFD) == -1 && errno() == libc::EBADF {
                closed |= 1 << fd;
            }
        }
        STD_CLOSED_AT_START.store(closed, Ordering::Relaxed);
    }
}

/// Restores SIGPIPE's default action (the Rust runtime ignores it), unless it was already
/// ignored when the process started ([`record_startup`]): then it stays ignored, as it
/// would for a native program started the same way.
pub fn restore_sigpipe() {
    if !SIGPIPE_WAS_IGNORED.load(Ordering::Relaxed) {
        // SAFETY: setting a signal's disposition to its default.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
}

/// Makes sure descriptors 0, 1 and 2 are open (a closed one gets `/dev/null`, read-only,
/// as a placeholder, so no file rvdbt opens later lands there). Returns which ones were
/// closed, now or when the process started ([`record_startup`]): for the guest they stay
/// closed (`EBADF`). Call before opening anything else.
pub fn reserve_std_fds() -> [bool; 3] {
    let at_start = STD_CLOSED_AT_START.load(Ordering::Relaxed);
    let mut closed = [false; 3];
    for (fd, c) in closed.iter_mut().enumerate() {
        let was_closed = at_start & (1 << fd) != 0;
        let fd = fd as i32;
        // SAFETY: F_GETFD only queries the descriptor.
        let open_now = unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1 || errno() != libc::EBADF;
        *c = was_closed || !open_now;
        if open_now {
            continue;
        }
        // SAFETY: opening /dev/null; the descriptor is deliberately kept as a placeholder.
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
            if null >= 0 && null != fd {
                libc::dup2(null, fd);
                libc::close(null);
            }
        }
    }
    closed
}

/// Closes host descriptor `fd` (0, 1 or 2) for the guest: the file is released (a pipe's
/// reader sees end of file), and `/dev/null` takes the number so nothing else lands there.
pub fn close_std_fd(fd: i32) {
    // SAFETY: replacing (or closing) a standard descriptor that only the guest's stream uses.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, fd);
            libc::close(null);
        } else {
            libc::close(fd);
        }
    }
}

core::arch::global_asm!(
    ".text",
    ".globl rvdbt_safe_syscall",
    ".p2align 4",
    "rvdbt_safe_syscall:",
    // rdi = stop flag, rsi = number, rdx, rcx, r8, r9 = arguments 1 to 4
    "mov r11, rdi",
    "mov rax, rsi",
    "mov rdi, rdx",
    "mov rsi, rcx",
    "mov rdx, r8",
    "mov r10, r9",
    ".globl rvdbt_safe_syscall_start",
    "rvdbt_safe_syscall_start:",
    "cmp qword ptr [r11], 0",
    "jne rvdbt_safe_syscall_stopped",
    "syscall",
    ".globl rvdbt_safe_syscall_end",
    "rvdbt_safe_syscall_end:",
    "ret",
    ".globl rvdbt_safe_syscall_stopped",
    "rvdbt_safe_syscall_stopped:",
    "mov rax, -4", // -EINTR
    "ret",
);

extern "C" {
    fn rvdbt_safe_syscall(stop: *const AtomicUsize, nr: i64, a1: usize, a2: usize, a3: usize, a4: usize) -> isize;
    fn rvdbt_safe_syscall_start();
    fn rvdbt_safe_syscall_end();
    fn rvdbt_safe_syscall_stopped();
}

/// A stop flag that is never set (runs without one).
static NEVER: AtomicUsize = AtomicUsize::new(0);

/// Runs system call `nr` unless `stop` is set (then, or when a signal interrupts the call,
/// it returns `-EINTR`). The raw kernel result: a value or `-errno`.
pub fn safe_syscall(stop: Option<&AtomicUsize>, nr: i64, args: [usize; 4]) -> isize {
    let stop = stop.unwrap_or(&NEVER);
    // SAFETY: the caller's arguments are passed to the kernel unchanged; the callers in
    // this crate pass only buffers they own or guest RAM they checked.
    unsafe { rvdbt_safe_syscall(stop, nr, args[0], args[1], args[2], args[3]) }
}

/// A blocking system call for the guest: retried when a signal interrupts it, unless the
/// stop flag is set, in which case `Err(EINTR)` tells the caller to end the run.
pub fn blocking_syscall(stop: Option<&AtomicUsize>, nr: i64, args: [usize; 4]) -> Result<usize, i32> {
    loop {
        let r = safe_syscall(stop, nr, args);
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = -r as i32;
        if e != libc::EINTR || stop.is_some_and(|s| s.load(Ordering::Relaxed) != 0) {
            return Err(e);
        }
    }
}

/// The stop flag the SIGINT/SIGTERM handler sets (a leaked `Arc`, live forever). This
/// and [`RUN_TID`] belong to the `rvdbt` command, which runs one guest per process;
/// embedded guests ([`crate::engine`]) are stopped one by one with [`wake_thread`].
static STOP_FLAG: AtomicPtr<AtomicUsize> = AtomicPtr::new(std::ptr::null_mut());
/// The thread that runs the guest (signals that land elsewhere are forwarded to it).
static RUN_TID: AtomicI32 = AtomicI32::new(0);

/// The calling thread's kernel thread id.
pub fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// In a signal handler: if the interrupted thread is between the stop-flag check of
/// [`safe_syscall`] and its `syscall` instruction, makes it skip the call, which then
/// returns `-EINTR` (the flag, set before the signal was sent, is seen by the caller).
fn skip_pending_syscall(ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid ucontext to an SA_SIGINFO handler.
    let uc = unsafe { &mut *ctx.cast::<libc::ucontext_t>() };
    let rip = uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
    let (start, end) = (rvdbt_safe_syscall_start as *const () as usize, rvdbt_safe_syscall_end as *const () as usize);
    if (start..end).contains(&rip) {
        uc.uc_mcontext.gregs[libc::REG_RIP as usize] = rvdbt_safe_syscall_stopped as *const () as usize as i64;
    }
}

extern "C" fn on_stop_signal(sig: libc::c_int, _info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is thread-local; the handler restores it.
    let saved_errno = unsafe { *libc::__errno_location() };
    let flag = STOP_FLAG.load(Ordering::Acquire);
    if !flag.is_null() {
        // SAFETY: the flag is a leaked Arc that lives forever. A timeout (or an earlier
        // signal) that is already recorded wins.
        let _ = unsafe { &*flag }.compare_exchange(0, sig as usize, Ordering::AcqRel, Ordering::Relaxed);
    }
    let run = RUN_TID.load(Ordering::Relaxed);
    if run != 0 && run != gettid() {
        // SAFETY: async-signal-safe system calls; the run thread must see the signal too
        // to leave a blocking call.
        unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), run, sig) };
    }
    skip_pending_syscall(ctx);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved_errno };
}

/// Installs the SIGINT/SIGTERM handler: it stores the signal number in `flag` (unless the
/// flag is already set) and interrupts blocking calls made through [`blocking_syscall`]
/// on the calling thread, which becomes the run thread.
/// For the `rvdbt` command, which runs one guest per process: a later call replaces the
/// flag and run thread of an earlier one. Embedded guests leave SIGINT/SIGTERM to the
/// embedding program and are stopped with [`crate::engine::StopHandle`].
pub fn install_stop_signals(flag: &Arc<AtomicUsize>) -> std::io::Result<()> {
    // Leaked on purpose: the handler may read the flag at any time, also one installed by
    // an earlier call.
    STOP_FLAG.store(Arc::into_raw(Arc::clone(flag)).cast_mut(), Ordering::Release);
    RUN_TID.store(gettid(), Ordering::Relaxed);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction filled in with our handler and an empty mask;
        // no SA_RESTART, so blocking calls return EINTR.
        let rc = unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_stop_signal as *const () as usize;
            act.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(sig, &act, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Ends the run after `after` (`--timeout`): a timer thread sets `flag` to
/// [`TIMEOUT_STOP`] (unless a signal set it first) and sends SIGTERM to the run thread,
/// whose handler ([`install_stop_signals`], which must be installed) interrupts a blocking
/// call.
pub fn start_timeout(flag: Arc<AtomicUsize>, after: std::time::Duration) -> std::io::Result<()> {
    let run = RUN_TID.load(Ordering::Relaxed);
    if run == 0 {
        return Err(std::io::Error::other("the stop signal handler is not installed"));
    }
    std::thread::Builder::new().name("rvdbt-timeout".into()).spawn(move || {
        // SAFETY: blocking the stop signals in this thread only, so that the kernel
        // delivers them to the run thread.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        std::thread::sleep(after);
        if flag.compare_exchange(0, TIMEOUT_STOP, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            // SAFETY: signalling a thread of our own process; its handler is installed.
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), run, libc::SIGTERM) };
        }
    })?;
    Ok(())
}

/// The signal [`wake_thread`] sends: the third-highest real-time signal, which nothing
/// else in rvdbt uses. An embedding program must leave it to rvdbt.
pub fn wake_signal() -> i32 {
    libc::SIGRTMAX() - 2
}

extern "C" fn on_wake_signal(_sig: libc::c_int, _info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is thread-local; the handler restores it.
    let saved_errno = unsafe { *libc::__errno_location() };
    skip_pending_syscall(ctx);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved_errno };
}

/// Installs the handler of [`wake_signal`] (once per process): it only interrupts a
/// blocking call made through [`blocking_syscall`] on the thread it is sent to, which
/// then ends its run if its own stop flag is set and retries the call otherwise, so a
/// wake that reaches the wrong thread or comes late changes nothing.
pub fn install_wake_signal() -> std::io::Result<()> {
    static INSTALLED: std::sync::OnceLock<Result<(), i32>> = std::sync::OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        // SAFETY: a zeroed sigaction filled in with our handler and an empty mask; no
        // SA_RESTART, so a blocking call returns EINTR.
        let rc = unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_wake_signal as *const () as usize;
            act.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(wake_signal(), &act, std::ptr::null_mut())
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(errno())
        }
    });
    result.map_err(std::io::Error::from_raw_os_error)
}

/// Interrupts a blocking call on thread `tid` of this process (see
/// [`install_wake_signal`], which must have been called). The caller sets that run's
/// stop flag first.
pub fn wake_thread(tid: i32) {
    // SAFETY: signalling a thread of our own process; the handler is installed.
    unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, wake_signal()) };
}
