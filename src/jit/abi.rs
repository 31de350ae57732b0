//! The contract between translated code (of any backend) and the runtime: how a block is
//! entered and left, the exit codes, the helpers it may call, the jump cache layout.
//!
//! A translated block is machine code with this contract, whichever backend emitted it:
//!
//! - it is entered with `rdi` = `*mut Cpu` and a return address on top of the stack
//!   (`rsp` ≡ 8 mod 16), by the entry trampoline or by a tail jump from another block;
//! - it returns an exit code ([`EXIT_DISPATCH`], [`EXIT_STEP`], [`EXIT_HOT`]) in `rax` with
//!   `ret`, or continues into another block by a tail jump (the stack as it found it,
//!   `rdi` = `*mut Cpu`);
//! - it preserves `rbx`, `rbp` and `r12`–`r15`.
//!
//! This is Cranelift's `tail` calling convention on x86-64 for one pointer argument and
//! one integer result (arguments in the System V registers, the System V callee-saved
//! set, results from `rax`; see `cranelift-codegen`'s `isa/x64/abi.rs`), and equally the
//! System V convention for such a function, so the trampoline can call any block and
//! blocks of different backends can chain into each other.
//!
//! On every exit `Cpu` is exact: registers, `pc` (where to go on) and the retired count.

use crate::guest::cpu::Cpu;

/// Return to the dispatcher; `cpu.pc` says where to go on.
pub const EXIT_DISPATCH: i64 = 0;
/// Execute the instruction at `cpu.pc` with the interpreter, then go on.
pub const EXIT_STEP: i64 = 1;
/// Returned by the trampoline when an inline access faulted (never by translated code).
pub const EXIT_FAULT: i64 = 2;
/// The block at `cpu.pc` ran often enough to be compiled by the next tier; nothing of it
/// has executed yet.
pub const EXIT_HOT: i64 = 3;

/// The kind of a helper argument or result (helpers use the host's C convention).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// A 64-bit value: a pointer (`*mut Cpu`, an access record) or a `u64` result.
    U64,
    /// A 32-bit value: a guest address, offset, width index or value.
    U32,
}

/// The Rust functions translated code calls. Widths are indexed 0, 1, 2 for 1, 2, 4
/// bytes; devices by [`crate::memory::Device::index`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Helper {
    /// Generic load: `(cpu, addr) -> u64`: the zero-extended value, or bit 32 set when
    /// the access is refused.
    Load(usize),
    /// Generic store: `(cpu, addr, value) -> u32`: non-zero when refused (or when it has
    /// an effect the dispatcher must carry out).
    Store(usize),
    /// Profiling load: as `Load`, plus the access record: `(cpu, addr, rec) -> u64`.
    ProfileLoad(usize),
    /// Profiling store: as `Store`, plus the record: `(cpu, addr, value, rec) -> u32`.
    ProfileStore(usize),
    /// A device's read function: `(cpu, offset, width index) -> u64`.
    DeviceRead(usize),
    /// A device's write function: `(cpu, offset, width index, value) -> u32`, non-zero
    /// when the write has an effect the dispatcher must carry out.
    DeviceWrite(usize),
    /// An AMO through the generic path: `(cpu, addr, value, op index, rec) -> u64`: the
    /// old value, or bit 32 set when refused (misaligned, no access, or a device
    /// effect; memory is then unchanged or the interpreter repeats the AMO exactly).
    /// Profiles the access when `rec` is not null. Ops by
    /// [`crate::guest::decode::AmoOp::index`].
    Amo,
}

/// Number of helpers.
pub const HELPERS: usize = 19;

impl Helper {
    /// Every helper, in [`Helper::index`] order.
    pub const ALL: [Helper; HELPERS] = [
        Helper::Load(0),
        Helper::Load(1),
        Helper::Load(2),
        Helper::Store(0),
        Helper::Store(1),
        Helper::Store(2),
        Helper::ProfileLoad(0),
        Helper::ProfileLoad(1),
        Helper::ProfileLoad(2),
        Helper::ProfileStore(0),
        Helper::ProfileStore(1),
        Helper::ProfileStore(2),
        Helper::DeviceRead(0),
        Helper::DeviceRead(1),
        Helper::DeviceRead(2),
        Helper::DeviceWrite(0),
        Helper::DeviceWrite(1),
        Helper::DeviceWrite(2),
        Helper::Amo,
    ];

    /// Position in [`Helper::ALL`].
    pub fn index(self) -> usize {
        match self {
            Helper::Load(i) => i,
            Helper::Store(i) => 3 + i,
            Helper::ProfileLoad(i) => 6 + i,
            Helper::ProfileStore(i) => 9 + i,
            Helper::DeviceRead(i) => 12 + i,
            Helper::DeviceWrite(i) => 15 + i,
            Helper::Amo => 18,
        }
    }

    /// Symbol name (for code generators that link by name).
    pub fn name(self) -> String {
        format!("rvdbt_helper_{}", self.index())
    }

    /// Parameter kinds; the first is always `*mut Cpu`.
    pub fn params(self) -> &'static [ArgKind] {
        use ArgKind::*;
        match self {
            Helper::Load(_) => &[U64, U32],
            Helper::Store(_) => &[U64, U32, U32],
            Helper::ProfileLoad(_) => &[U64, U32, U64],
            Helper::ProfileStore(_) => &[U64, U32, U32, U64],
            Helper::DeviceRead(_) => &[U64, U32, U32],
            Helper::DeviceWrite(_) => &[U64, U32, U32, U32],
            Helper::Amo => &[U64, U32, U32, U32, U64],
        }
    }

    /// Result kind.
    pub fn result(self) -> ArgKind {
        match self {
            Helper::Load(_) | Helper::ProfileLoad(_) | Helper::DeviceRead(_) | Helper::Amo => ArgKind::U64,
            Helper::Store(_) | Helper::ProfileStore(_) | Helper::DeviceWrite(_) => ArgKind::U32,
        }
    }
}

/// One entry of the `jalr` jump cache: a guest pc and its translated code.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct JumpCacheEntry {
    /// Guest pc, or 1 (never a jump target) when empty.
    pub pc: u64,
    pub code: u64,
}

impl JumpCacheEntry {
    pub const EMPTY: JumpCacheEntry = JumpCacheEntry { pc: 1, code: 0 };
    /// log2 of the entry size (translated code scales the index by it).
    pub const SIZE_SHIFT: u8 = 4;
}

/// Entries of the jump cache (a power of two).
pub const JUMP_CACHE_ENTRIES: usize = 4096;
/// Mask applied to `pc >> JUMP_CACHE_SHIFT` to index the jump cache.
pub const JUMP_CACHE_MASK: u32 = (JUMP_CACHE_ENTRIES - 1) as u32;
/// The jump cache is indexed by `pc >> 1`: with compressed code, targets 2 bytes apart
/// (a return address and a function entry, say) must not share an entry.
pub const JUMP_CACHE_SHIFT: u8 = 1;

/// Jump cache index of a guest pc.
pub fn jump_cache_index(pc: u32) -> usize {
    ((pc >> JUMP_CACHE_SHIFT) & JUMP_CACHE_MASK) as usize
}

/// Offsets of the `Cpu` fields translated code reads and writes.
pub use crate::guest::cpu::{OFFSET_BUDGET_END, OFFSET_PC, OFFSET_REGS, OFFSET_RETIRED};

/// Offset of guest register `r` in `Cpu`.
pub const fn reg_offset(r: u8) -> i32 {
    OFFSET_REGS + 4 * r as i32
}

const _: () = assert!(std::mem::size_of::<JumpCacheEntry>() == 1 << JumpCacheEntry::SIZE_SHIFT);
const _: () = assert!(std::mem::align_of::<Cpu>() >= 8);
