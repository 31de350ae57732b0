//! The guest machine: CPU state, CSRs, memory and streams together, how a run ends
//! ([`Exit`], [`GuestFault`]) and the run's statistics.
//!
//! Every backend runs a [`Machine`]; the interpreter and the translated code change it
//! in exactly the same way, which is what the differential tests check.

use crate::guest::cpu::{Counters, Cpu, CsrFile};
use crate::guest::decode::{decode_insn, insn_len, Inst, Isa};
use crate::guest::disasm::disassemble_word;
use crate::loader::{self, LoadError, DEFAULT_STACK_SIZE, STACK_GUARD, STACK_TOP};
use crate::memory::{MemFault, Memory, RegionKind, PAGE, PERM_R, PERM_W};
use crate::stats::Stats;
use crate::streams::Io;
use std::fmt;

/// Why the guest stopped with a fault. Each kind maps to the signal a native RISC-V
/// Linux process would get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    IllegalInstruction,
    Breakpoint,
    LoadAccess,
    StoreAccess,
    FetchAccess,
    /// A jump or branch to an address that is not 4-byte aligned (2-byte aligned with C).
    FetchMisaligned,
    /// An `lr.w` from an address that is not 4-byte aligned.
    LoadMisaligned,
    /// An `sc.w` or AMO to an address that is not 4-byte aligned.
    StoreMisaligned,
    /// An unknown syscall under `--strict-syscalls`.
    UnknownSyscall(u32),
}

impl FaultKind {
    /// The host signal number a native process would die of.
    pub fn signal(self) -> i32 {
        match self {
            FaultKind::IllegalInstruction => libc::SIGILL,
            FaultKind::Breakpoint => libc::SIGTRAP,
            FaultKind::LoadAccess | FaultKind::StoreAccess | FaultKind::FetchAccess => libc::SIGSEGV,
            FaultKind::FetchMisaligned | FaultKind::LoadMisaligned | FaultKind::StoreMisaligned => libc::SIGBUS,
            FaultKind::UnknownSyscall(_) => libc::SIGSYS,
        }
    }

    fn describe(self) -> String {
        match self {
            FaultKind::IllegalInstruction => "illegal instruction".into(),
            FaultKind::Breakpoint => "ebreak (breakpoint)".into(),
            FaultKind::LoadAccess => "load access fault".into(),
            FaultKind::StoreAccess => "store access fault".into(),
            FaultKind::FetchAccess => "instruction fetch access fault".into(),
            FaultKind::FetchMisaligned => "instruction address misaligned".into(),
            FaultKind::LoadMisaligned => "load address misaligned".into(),
            FaultKind::StoreMisaligned => "store/AMO address misaligned".into(),
            FaultKind::UnknownSyscall(nr) => format!("unknown syscall {nr} (--strict-syscalls)"),
        }
    }
}

/// A guest fault: what, where (pc of the faulting instruction), and the address involved
/// (the data address of a load/store, the target of a fetch; 0 otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestFault {
    pub kind: FaultKind,
    pub pc: u32,
    pub addr: u32,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The program exited (exit syscall or test finisher) with this status.
    Exited(i32),
    Fault(GuestFault),
    /// `--max-insns` was reached after this many instructions.
    InsnLimit(u64),
    /// SIGINT or SIGTERM (the signal number) stopped the run.
    Interrupted(i32),
    /// `--timeout` ended the run.
    Timeout,
}

/// Exit status for `--max-insns` and `--timeout` (as `timeout(1)` uses).
pub const EXIT_INSN_LIMIT: i32 = 124;

/// Warnings kept and printed at most; later ones are only counted (`Stats::warnings`).
pub const MAX_WARNINGS: usize = 100;

impl Exit {
    /// The process exit status rvdbt reports, as a native process would.
    pub fn status(&self) -> i32 {
        match self {
            Exit::Exited(code) => code & 0xff,
            Exit::Fault(f) => 128 + f.kind.signal(),
            Exit::InsnLimit(_) | Exit::Timeout => EXIT_INSN_LIMIT,
            Exit::Interrupted(sig) => 128 + sig,
        }
    }
}

/// Settings that change how the guest machine is built and behaves.
#[derive(Clone, Debug)]
pub struct MachineConfig {
    pub stack_size: u32,
    pub strict_syscalls: bool,
    pub huge_pages: bool,
    /// Map the devices (test finisher, timer, UART).
    pub devices: bool,
    /// Most bytes of guest RAM (segments, stack and heap); `brk` beyond it fails.
    pub max_memory: Option<u64>,
    /// The extensions the guest may use (`--isa`); the rest decode as illegal.
    pub isa: Isa,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            stack_size: DEFAULT_STACK_SIZE,
            strict_syscalls: false,
            huge_pages: true,
            devices: true,
            max_memory: None,
            isa: Isa::default(),
        }
    }
}

/// The reservation an `lr.w` registers (A extension).
///
/// The rule, the same on every backend: an `sc.w` succeeds only if the reservation is
/// valid and its address is the `sc.w`'s. The reservation is cleared by every `sc.w`,
/// by any store or AMO that writes a byte of the reserved word, by every syscall (a
/// context switch, as Linux clears it on every return to user mode), and it lapses
/// [`RESERVATION_INSNS`] instructions after the `lr.w` (an `sc.w` may fail for any
/// reason, and a constrained LR/SC loop is 16 instructions at most, so loops still
/// make progress). Stores only need checking while a reservation is valid, and then
/// the dispatcher interprets (see `jit::dispatch`), so translated code never checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// The reserved (aligned) word.
    pub addr: u32,
    /// The retired count at which the reservation lapses.
    pub until: u64,
}

/// An `ecall` with a syscall number rvdbt does not know, as the host's handler
/// ([`EcallHandler`]) sees it: the number, the arguments (a0 to a5) and the guest's
/// memory, for calls that pass buffers.
pub struct HostCall<'a> {
    pub nr: u32,
    pub args: [u32; 6],
    mem: &'a mut Memory,
}

impl HostCall<'_> {
    /// `len` bytes of guest memory at `addr`, if the guest may read all of them.
    pub fn read(&self, addr: u32, len: u32) -> Result<Vec<u8>, MemFault> {
        self.mem.read_bytes(addr, len)
    }

    /// Writes `bytes` to guest memory at `addr`, if the guest may write all of them
    /// (nothing is written otherwise).
    pub fn write(&mut self, addr: u32, bytes: &[u8]) -> Result<(), MemFault> {
        self.mem.write_bytes(addr, bytes)
    }
}

/// The host's answer to unknown syscalls: `Some(value)` is the call's result (in a0),
/// `None` leaves the call unknown (-ENOSYS with a warning, or the end of the run under
/// `--strict-syscalls`).
pub type EcallHandler = Box<dyn FnMut(&mut HostCall<'_>) -> Option<u32> + Send>;

/// Instructions after an `lr.w` for which its reservation stays valid.
pub const RESERVATION_INSNS: u64 = 256;

/// The whole guest machine. `cpu` comes first so a `*mut Cpu` handed to translated
/// code is also a pointer to the machine.
#[repr(C)]
pub struct Machine {
    pub cpu: Cpu,
    pub csrs: CsrFile,
    pub mem: Memory,
    pub io: Io,
    pub config: MachineConfig,
    pub stats: Stats,
    /// Warnings about the guest's behaviour (also printed at once unless `io.quiet`), the
    /// first [`MAX_WARNINGS`] of them.
    pub warnings: Vec<String>,
    /// Guest pcs of accesses whose state a helper changed, with the change; the
    /// dispatcher recompiles the blocks that hold them.
    pub access_events: Vec<(u32, crate::jit::access::Transition)>,
    /// The `lr.w` reservation, if any (see [`Reservation`]).
    pub reservation: Option<Reservation>,
    /// Answers syscalls rvdbt does not know, before they count as unknown.
    pub ecall_handler: Option<EcallHandler>,
}

impl Machine {
    /// Builds a machine from an ELF image: maps the stack and the segments, places the
    /// heap and the initial stack contents. `args[0]` is the program name.
    pub fn from_elf(
        elf: &[u8],
        args: &[String],
        env: &[String],
        config: MachineConfig,
        io: Io,
    ) -> Result<Machine, LoadError> {
        let mem_err = |e: std::io::Error| LoadError::Memory(e.to_string());
        if config.stack_size < PAGE || config.stack_size > (1 << 30) || !config.stack_size.is_multiple_of(PAGE) {
            return Err(LoadError::Memory(format!(
                "stack size {} must be a multiple of 4096 between 4 KiB and 1 GiB",
                config.stack_size
            )));
        }
        let mut mem = Memory::new(config.huge_pages, config.devices).map_err(mem_err)?;
        mem.isa = config.isa;
        let stack_bottom = STACK_TOP - config.stack_size;
        mem.add_ram(stack_bottom, u64::from(STACK_TOP), PERM_R | PERM_W, "stack").map_err(mem_err)?;
        // Mappings go below the stack's guard gap.
        mem.mmap_top = stack_bottom.saturating_sub(STACK_GUARD);
        let image = loader::load_elf(&mut mem, elf)?;
        // The heap may grow up to the next RAM region above it, leaving one guard page, or
        // below the stack a guard gap of STACK_GUARD, as Linux keeps one (devices in the
        // way are unmapped when it reaches them, see `Memory::set_brk`). A program that
        // ends in the last page of the address space gets no heap.
        if let Ok(heap_start) = u32::try_from(crate::memory::page_up(u64::from(image.end))) {
            let next = mem
                .regions()
                .iter()
                .filter(|r| matches!(r.kind, RegionKind::Ram { .. }))
                .map(|r| r.start)
                .filter(|&s| s >= heap_start)
                .min()
                .unwrap_or(!(PAGE - 1));
            let gap = if next == stack_bottom { STACK_GUARD } else { PAGE };
            mem.set_heap(heap_start, next.saturating_sub(gap).max(heap_start));
        }
        if let Some(max) = config.max_memory {
            let used = mem.ram_bytes();
            if used > max {
                return Err(LoadError::Memory(format!(
                    "the program needs {} KiB of guest memory (segments and stack), more than --max-memory ({} KiB)",
                    used >> 10,
                    max >> 10
                )));
            }
            mem.set_ram_limit(max);
        }
        let sp = loader::build_stack(&mut mem, &image, args, env)?;
        let mut cpu = Cpu::default();
        cpu.pc = image.entry;
        cpu.regs[2] = sp;
        Ok(Machine {
            cpu,
            csrs: CsrFile::with_misa(config.isa.misa()),
            mem,
            io,
            config,
            stats: Stats::default(),
            warnings: Vec::new(),
            access_events: Vec::new(),
            reservation: None,
            ecall_handler: None,
        })
    }

    /// Asks the [`EcallHandler`], if there is one, for the result of unknown syscall `nr`.
    pub fn host_ecall(&mut self, nr: u32, args: [u32; 6]) -> Option<u32> {
        let handler = self.ecall_handler.as_mut()?;
        handler(&mut HostCall { nr, args, mem: &mut self.mem })
    }

    /// Records a warning and, unless quiet, prints it on the host's stderr. Only the
    /// first [`MAX_WARNINGS`] are kept and printed (then one line says so); the rest are
    /// counted, so a guest that repeats a warning in a loop costs no memory.
    /// Is there a valid `lr.w` reservation (set, and not lapsed)?
    pub fn reservation_valid(&self) -> bool {
        self.reservation.is_some_and(|r| self.cpu.retired < r.until)
    }

    /// A store or AMO writes `[addr, addr + bytes)`: it clears a reservation on any of
    /// those bytes.
    pub fn store_seen(&mut self, addr: u32, bytes: u32) {
        if let Some(r) = self.reservation {
            let (a, b) = (u64::from(addr), u64::from(r.addr));
            if a < b + 4 && b < a + u64::from(bytes) {
                self.reservation = None;
            }
        }
    }

    /// Records a warning and, unless quiet, prints it on the host's stderr.
    pub fn warn(&mut self, msg: String) {
        self.stats.warnings += 1;
        if self.warnings.len() < MAX_WARNINGS {
            if !self.io.quiet {
                self.flush_uart();
                crate::diag!("rvdbt: warning: {msg}\n");
            }
            self.warnings.push(msg);
        } else if self.stats.warnings == MAX_WARNINGS as u64 + 1 && !self.io.quiet {
            crate::diag!("rvdbt: warning: more than {MAX_WARNINGS} warnings; the rest are only counted (--stats)\n");
        }
    }

    /// Counter values for CSR reads.
    pub fn counters(&self) -> Counters {
        Counters { retired: self.cpu.retired, mtime: self.mem.mtime() }
    }

    /// Sends bytes written to the UART to the guest's stdout.
    pub fn flush_uart(&mut self) {
        if !self.mem.uart_out.is_empty() {
            let bytes = std::mem::take(&mut self.mem.uart_out);
            self.io.write_all(1, &bytes);
        }
    }

    /// Ends a run: delivers pending output.
    pub fn finish(&mut self) {
        self.flush_uart();
    }

    /// The 32-bit word at `pc`, if it can be read (see [`Machine::insn_at`] for the
    /// instruction there, which may be 2 bytes long).
    pub fn instruction_at(&self, pc: u32) -> Option<u32> {
        self.mem.read_bytes(pc, 4).ok().map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The instruction at `pc` (its bits, and its length: 2 for a compressed one), if
    /// it can be read.
    pub fn insn_at(&self, pc: u32) -> Option<(u32, u32)> {
        let lo = self.mem.read_bytes(pc, 2).ok()?;
        let lo = u16::from_le_bytes([lo[0], lo[1]]);
        if insn_len(lo) == 2 {
            return Some((u32::from(lo), 2));
        }
        let hi = self.mem.read_bytes(pc.wrapping_add(2), 2).ok()?;
        Some((u32::from(lo) | u32::from(u16::from_le_bytes([hi[0], hi[1]])) << 16, 4))
    }

    /// A one-line description of a fault: kind, pc, address, the faulting instruction.
    pub fn describe_fault(&self, f: &GuestFault) -> String {
        let insn = match self.insn_at(f.pc) {
            Some((bits, len)) => {
                let text = disassemble_word(bits, f.pc).replace('\t', " ");
                // An instruction of an extension the run leaves out (--isa) says so.
                let excluded = matches!(decode_insn(self.mem.isa, bits).0, Inst::Illegal(_))
                    && !matches!(decode_insn(Isa::RV32IMAC, bits).0, Inst::Illegal(_));
                let note = if excluded { format!(" (not in {})", self.mem.isa.name()) } else { String::new() };
                let hex = if len == 2 { format!("{bits:04x}") } else { format!("{bits:08x}") };
                format!("{hex}  {text}{note}")
            }
            None => "<not readable>".into(),
        };
        let mut addr = match f.kind {
            FaultKind::LoadAccess
            | FaultKind::StoreAccess
            | FaultKind::FetchAccess
            | FaultKind::FetchMisaligned
            | FaultKind::LoadMisaligned
            | FaultKind::StoreMisaligned => format!(", address {:#010x}", f.addr),
            _ => String::new(),
        };
        let stack_bottom = STACK_TOP - self.config.stack_size;
        let below = stack_bottom.wrapping_sub(f.addr);
        if matches!(f.kind, FaultKind::LoadAccess | FaultKind::StoreAccess)
            && (1..=STACK_GUARD).contains(&below)
            && self.mem.region_of(f.addr).is_none()
        {
            addr += &format!(
                " (stack overflow: {below} bytes below the {} KiB stack; --stack-size sets its size)",
                self.config.stack_size >> 10
            );
        }
        format!("guest {} at pc {:#010x}{addr}: {insn}", f.kind.describe(), f.pc)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Exited(code) => write!(f, "exited with status {code}"),
            Exit::Fault(g) => write!(f, "{} at pc {:#010x}", g.kind.describe(), g.pc),
            Exit::InsnLimit(n) => write!(f, "stopped after {n} instructions (--max-insns)"),
            Exit::Interrupted(sig) => write!(f, "interrupted by signal {sig}"),
            Exit::Timeout => write!(f, "stopped by --timeout"),
        }
    }
}
