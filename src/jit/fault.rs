//! The fault path: the entry trampoline into translated code and the SIGSEGV/SIGBUS
//! handler that turns a host fault of an inline guest access into an ordinary return.
//!
//! The trampoline (System V) saves the callee-saved registers, records its stack pointer
//! in a thread-local, and calls the block (whose contract, shared by every backend, is in
//! [`crate::jit::abi`]). When an inline access in
//! translated code touches a page that is not guest RAM, the kernel delivers SIGSEGV.
//! The handler checks that the faulting instruction is translated code and the address
//! lies in this thread's guest arena; then it stores the faulting RIP and rewrites
//! only RIP and RSP in the interrupted context so that execution resumes in the
//! trampoline's exit path, which returns [`EXIT_FAULT`]. The dispatcher — ordinary
//! Rust code, not the signal handler — maps the RIP to the access through the fault
//! map and repairs the state.
//!
//! Nothing else is swallowed. A SIGSEGV/SIGBUS that was sent (by `kill`, `sigqueue`,
//! `tgkill`: `si_code <= 0`) kills the process with that signal at once, without
//! running any more guest code: the default action is restored and the signal raised
//! again. A real fault outside translated code or outside the running guest's arena
//! goes to the handler that was installed before ours (the Rust runtime's stack overflow
//! reporter) or to the default action, so a bug in the translator still crashes loudly.

use crate::guest::cpu::Cpu;
use crate::jit::abi::EXIT_FAULT;
use std::cell::{Cell, RefCell};
use std::sync::{Once, OnceLock};

core::arch::global_asm!(
    ".text",
    ".globl rvdbt_trampoline",
    ".p2align 4",
    "rvdbt_trampoline:",
    // rdi = cpu, rsi = code, rdx = where to save rsp
    "push rbp",
    "mov rbp, rsp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "sub rsp, 8",
    "mov [rdx], rsp",
    "call rsi",
    "2:",
    "add rsp, 8",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
    ".globl rvdbt_fault_resume",
    ".p2align 4",
    "rvdbt_fault_resume:",
    "mov rax, 2",
    "jmp 2b",
);

extern "C" {
    fn rvdbt_trampoline(cpu: *mut Cpu, code: u64, saved_rsp: *mut usize) -> i64;
    fn rvdbt_fault_resume();
}

thread_local! {
    /// Stack pointer of the innermost trampoline on this thread.
    static SAVED_RSP: Cell<usize> = const { Cell::new(0) };
    /// Guest arena of the machine running on this thread: (base, length).
    static ARENA: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// Host pc and data address of the last recovered fault.
    static FAULT: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// Registers and frame of the last recovered fault.
    static CONTEXT: RefCell<FaultContext> = const { RefCell::new(FaultContext::EMPTY) };
}

static PREVIOUS: [OnceLock<libc::sigaction>; 2] = [OnceLock::new(), OnceLock::new()];
static INSTALL: Once = Once::new();

fn previous_for(sig: libc::c_int) -> Option<&'static libc::sigaction> {
    match sig {
        libc::SIGSEGV => PREVIOUS[0].get(),
        libc::SIGBUS => PREVIOUS[1].get(),
        _ => None,
    }
}

/// Hands a fault that is not ours to the handler installed before ours.
///
/// # Safety
/// Called from the signal handler with the kernel's arguments.
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let Some(prev) = previous_for(sig) else {
        // SAFETY: resetting to the default action; returning re-executes the faulting
        // instruction, which then kills the process with the signal.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
        return;
    };
    let handler = prev.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // SAFETY: as above, restore the previous disposition and let the fault repeat.
        unsafe { libc::sigaction(sig, prev, std::ptr::null_mut()) };
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed for exactly this signal with
        // SA_SIGINFO, so it takes these three arguments.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(handler) };
        f(sig, info, ctx);
    } else {
        // SAFETY: a plain one-argument handler.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        f(sig);
    }
}

/// Dies of `sig` as if no handler were installed: default action, unblocked, raised.
fn die_of(sig: libc::c_int) -> ! {
    // SAFETY: restoring the default action and raising the signal on this thread; the
    // default action of SIGSEGV/SIGBUS terminates the process.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
        // Not reached: the signal terminated the process.
        libc::_exit(128 + sig)
    }
}

extern "C" fn handle_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    if code <= 0 {
        // Sent by a process (SI_USER, SI_QUEUE, SI_TKILL, ...), not raised by an access:
        // whatever its address field says, nothing faulted, so nothing can be resumed.
        die_of(sig);
    }
    // SAFETY: the kernel passes a valid siginfo and ucontext to an SA_SIGINFO handler.
    let (uc, addr) = unsafe { (&mut *ctx.cast::<libc::ucontext_t>(), (*info).si_addr() as usize) };
    let rip = uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
    let (arena, arena_len) = ARENA.with(Cell::get);
    let saved_rsp = SAVED_RSP.with(Cell::get);
    let ours = saved_rsp != 0 && addr.wrapping_sub(arena) < arena_len && crate::jit::codemem::is_code(rip);
    if !ours {
        // SAFETY: forwarding the kernel's own arguments.
        unsafe { chain(sig, info, ctx) };
        return;
    }
    FAULT.with(|f| f.set((rip, addr)));
    // Keep what translated code held in registers and its frame: values the fault path
    // recovers guest registers from (the frame is reused once the trampoline returns).
    CONTEXT.with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            c.capture(&uc.uc_mcontext.gregs);
        }
    });
    uc.uc_mcontext.gregs[libc::REG_RSP as usize] = saved_rsp as i64;
    uc.uc_mcontext.gregs[libc::REG_RIP as usize] = rvdbt_fault_resume as *const () as usize as i64;
}

/// Installs the SIGSEGV/SIGBUS handler (once per process) and gives this thread an
/// alternate signal stack.
///
/// The handler runs with the signal blocked (no `SA_NODEFER`): it never jumps out, it
/// only rewrites the interrupted context and returns, and the kernel unblocks the
/// signal again on that return. A fault inside the handler itself (a bug) is therefore
/// not delivered to it again but kills the process, which is what should happen.
pub fn install() {
    INSTALL.call_once(|| {
        for (i, sig) in [libc::SIGSEGV, libc::SIGBUS].into_iter().enumerate() {
            // SAFETY: a zeroed sigaction is a valid "no handler" value; we fill in the
            // handler, SA_SIGINFO | SA_ONSTACK and an empty mask, and keep the old one.
            unsafe {
                let mut new: libc::sigaction = std::mem::zeroed();
                new.sa_sigaction = handle_fault as *const () as usize;
                new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut new.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &new, &mut old) == 0 {
                    let _ = PREVIOUS[i].set(old);
                }
            }
        }
    });
    ALT_STACK.with(|s| {
        let mut stack = s.take();
        if stack.is_none() {
            stack = AltStack::new();
        }
        s.set(stack);
    });
}

/// Usable bytes of the alternate signal stack rvdbt gives a thread.
const ALT_STACK_SIZE: usize = 64 * 1024;
/// The inaccessible page below it: a handler that overflows the stack faults there
/// instead of writing over whatever is mapped below.
const ALT_STACK_GUARD: usize = 4096;

/// The alternate signal stack of one thread (the fault handler runs on it: the
/// faulting code's stack may be the one that overflowed). Unmapped when the thread
/// ends, after the kernel is told to stop using it.
struct AltStack {
    /// Start of the mapping (the guard page), and its whole length.
    base: *mut libc::c_void,
    len: usize,
}

impl AltStack {
    /// Maps a guarded stack and installs it, unless the thread already has an alternate
    /// stack (of someone else's) big enough. None when there is nothing of ours to keep.
    fn new() -> Option<AltStack> {
        // SAFETY: querying the current alternate stack into a zeroed struct.
        let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe { libc::sigaltstack(std::ptr::null(), &mut current) };
        if current.ss_flags & libc::SS_DISABLE == 0 && current.ss_size >= ALT_STACK_SIZE {
            return None;
        }
        let len = ALT_STACK_SIZE + ALT_STACK_GUARD;
        // SAFETY: a fresh private anonymous mapping at an address of the kernel's choice.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        let stack = AltStack { base, len };
        // SAFETY: the range above the guard page lies inside the mapping just made.
        let usable = unsafe { base.cast::<u8>().add(ALT_STACK_GUARD).cast::<libc::c_void>() };
        // SAFETY: as above; the guard page stays PROT_NONE.
        if unsafe { libc::mprotect(usable, ALT_STACK_SIZE, libc::PROT_READ | libc::PROT_WRITE) } != 0 {
            return None; // `stack` is dropped: unmapped.
        }
        let st = libc::stack_t { ss_sp: usable, ss_flags: 0, ss_size: ALT_STACK_SIZE };
        // SAFETY: installs a stack that stays mapped until `drop` uninstalls it.
        if unsafe { libc::sigaltstack(&st, std::ptr::null_mut()) } != 0 {
            return None;
        }
        Some(stack)
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: querying this thread's alternate stack into a zeroed struct.
        let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe { libc::sigaltstack(std::ptr::null(), &mut current) };
        let ours = current.ss_sp.cast::<u8>().wrapping_sub(ALT_STACK_GUARD) == self.base.cast::<u8>();
        if ours {
            if current.ss_flags & libc::SS_ONSTACK != 0 {
                // Running on it (cannot happen: the handler never ends a thread): keep it.
                return;
            }
            let off = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
            // SAFETY: disables the alternate stack of this thread, which is ours.
            unsafe { libc::sigaltstack(&off, std::ptr::null_mut()) };
        }
        // SAFETY: unmaps exactly the mapping made in `new`, which the kernel no longer
        // uses as this thread's signal stack.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

thread_local! {
    /// This thread's alternate signal stack, if rvdbt made it.
    static ALT_STACK: Cell<Option<AltStack>> = const { Cell::new(None) };
}

/// The usable range `(start, length)` of the alternate signal stack rvdbt gave this
/// thread, if it did (the guard page lies right below `start`).
pub fn alt_stack() -> Option<(usize, usize)> {
    ALT_STACK.with(|s| {
        let stack = s.take();
        let range = stack.as_ref().map(|st| (st.base as usize + ALT_STACK_GUARD, st.len - ALT_STACK_GUARD));
        s.set(stack);
        range
    })
}

/// Bytes of the faulting frame kept (from its stack pointer up to its canonical frame
/// address, `rbp + 16`).
const FRAME_COPY: usize = 4096;

/// The host machine state when an inline access faulted: the general registers, by x86
/// encoding, and a copy of the faulting function's frame.
pub struct FaultContext {
    pub gprs: [u64; 16],
    rsp: u64,
    frame: [u8; FRAME_COPY],
    frame_len: usize,
}

impl FaultContext {
    const EMPTY: FaultContext = FaultContext { gprs: [0; 16], rsp: 0, frame: [0; FRAME_COPY], frame_len: 0 };

    /// Copies the registers and the frame out of a signal context (in the handler).
    fn capture(&mut self, gregs: &[libc::greg_t; 23]) {
        // x86 encoding order: rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..r15.
        let order = [
            libc::REG_RAX,
            libc::REG_RCX,
            libc::REG_RDX,
            libc::REG_RBX,
            libc::REG_RSP,
            libc::REG_RBP,
            libc::REG_RSI,
            libc::REG_RDI,
            libc::REG_R8,
            libc::REG_R9,
            libc::REG_R10,
            libc::REG_R11,
            libc::REG_R12,
            libc::REG_R13,
            libc::REG_R14,
            libc::REG_R15,
        ];
        for (i, r) in order.into_iter().enumerate() {
            self.gprs[i] = gregs[r as usize] as u64;
        }
        let (rsp, cfa) = (self.gprs[4], self.gprs[5].wrapping_add(16));
        self.rsp = rsp;
        self.frame_len = 0;
        let len = cfa.wrapping_sub(rsp) as usize;
        if len <= FRAME_COPY {
            // SAFETY: `rsp..cfa` is the interrupted function's frame on this thread's
            // stack (the handler runs on the alternate stack), mapped and not changing
            // while the handler runs.
            unsafe { std::ptr::copy_nonoverlapping(rsp as *const u8, self.frame.as_mut_ptr(), len) };
            self.frame_len = len;
        }
    }

    /// The 8 bytes at `offset` from the canonical frame address, if they were kept.
    pub fn frame_u64(&self, offset: i64) -> Option<u64> {
        let at = self.gprs[5].wrapping_add(16).wrapping_add(offset as u64).wrapping_sub(self.rsp) as usize;
        let bytes = self.frame.get(at..at.checked_add(8)?).filter(|_| at + 8 <= self.frame_len)?;
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    }
}

/// Calls `f` with the context of the last recovered fault on this thread.
pub fn with_fault_context<R>(f: impl FnOnce(&FaultContext) -> R) -> R {
    CONTEXT.with(|c| f(&c.borrow()))
}

/// What one entry into translated code ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryResult {
    /// The exit code translated code returned.
    Exit(i64),
    /// An inline access faulted at host pc `rip` on host address `addr`.
    Fault { rip: usize, addr: usize },
}

/// Runs the translated block at `code` (see [`crate::jit::abi`] for its contract)
/// through the trampoline; `arena` is the guest arena `(base, len)` of this machine.
///
/// # Safety
/// `code` must be live translated code for the machine behind `cpu`, which must stay
/// valid and otherwise unused for the duration of the call.
pub unsafe fn enter(cpu: *mut Cpu, code: u64, arena: (usize, usize)) -> EntryResult {
    // An entry made while another one runs on this thread (a helper that runs a
    // guest) must leave the outer entry's state as it found it.
    let outer_arena = ARENA.with(|a| a.replace(arena));
    let outer_rsp = SAVED_RSP.with(Cell::get);
    let saved = SAVED_RSP.with(|s| s.as_ptr());
    // SAFETY: the caller guarantees `code` and `cpu`; the trampoline preserves every
    // callee-saved register, also on the fault path.
    let code = unsafe { rvdbt_trampoline(cpu, code, saved) };
    SAVED_RSP.with(|s| s.set(outer_rsp));
    ARENA.with(|a| a.set(outer_arena));
    if code == EXIT_FAULT {
        let (rip, addr) = FAULT.with(Cell::get);
        EntryResult::Fault { rip, addr }
    } else {
        EntryResult::Exit(code)
    }
}
