//! The seam between the translation cache and the code generators. A code generator
//! turns one guest block into machine code in the shared code memory, honouring the block
//! contract of [`crate::jit::abi`], and lists the inline accesses in it for the fault map.
//! Everything else (which blocks, the access states, exit slots, the jump cache,
//! linking, invalidation, flushing) is the translation cache's ([`crate::jit::cache`]).

use crate::jit::access::AccessState;
use crate::jit::codemem::CodePool;
use crate::jit::region::Region;
use crate::jit::JitError;

/// How translated code performs one access, and the record that profiling updates.
#[derive(Clone, Copy, Debug)]
pub struct AccessPlan {
    pub state: AccessState,
    /// Address of the access's `AccessRecord` (passed to profiling helpers).
    pub record: u64,
}

/// What the translation cache provides to compile one block.
pub struct CompileEnv<'a> {
    /// Host address of guest address 0.
    pub arena_base: u64,
    /// Base of the jump cache ([`crate::jit::abi::JumpCacheEntry`] entries, indexed by
    /// `(pc >> JUMP_CACHE_SHIFT) & JUMP_CACHE_MASK`).
    pub jump_cache: u64,
    /// Is every code chunk within rel32 reach of the helpers?
    pub near: bool,
    /// The code memory to place the code in.
    pub pool: &'a CodePool,
    /// When set: the address of a `u32` counter the block decrements on every entry;
    /// when it reaches zero the block exits with [`crate::jit::abi::EXIT_HOT`] before
    /// executing anything (so a higher tier can take over).
    pub hot_counter: Option<u64>,
    /// When set (a block that ends in an indirect jump, below the last tier): the
    /// address of a `u32` cell the block stores the jump's target to, so that the
    /// regions the next tier forms can follow it (see [`crate::jit::region::Region::form`]).
    pub target_cell: Option<u64>,
    /// Keep the intermediate form as text ([`Translation::ir`]) for `--dump clif`.
    pub ir: bool,
    /// The exit slot (an 8-byte cell holding code to continue at) for a jump to `target`.
    pub slot_for: &'a mut dyn FnMut(u32) -> u64,
    /// How to perform the access at guest `pc`.
    pub plan_for: &'a mut dyn FnMut(u32) -> AccessPlan,
}

/// A compiled block.
#[derive(Clone, Debug, Default)]
pub struct Translation {
    /// Host address of the code.
    pub code: u64,
    /// Bytes of host code.
    pub size: u32,
    /// Every inline guest access (the fault map).
    pub inline_accesses: Vec<InlineAccess>,
    /// The backend's intermediate form as text (Cranelift IR), when asked for.
    pub ir: Option<String>,
    /// The code stores every changed guest register before every inline access,
    /// because the fault path could not have recovered some of them.
    pub full_sync: bool,
    /// Compiles of this translation before this one that were dropped because the
    /// fault path could not have found some register (the next one stores it).
    pub recompiles: u32,
}

/// Where the fault path finds a guest register's value that translated code did not
/// store to `Cpu` before an inline access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueLoc {
    /// In a host register or stack slot.
    At(Place),
    /// A constant.
    Const(u32),
    /// Computed from the 32-bit value at a host register or stack slot by the first
    /// `len` steps, in order: the code computes the register's value after the access
    /// (or not at all, where it folded it into its uses), from a value it keeps.
    Computed(Place, [Step; MAX_STEPS], u8),
    /// Computed by one operation from the 32-bit values at two places: the code
    /// computes the register's value after the access from two values it keeps.
    Combined(Place, Op, Place),
}

/// Where a value is when an inline access faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// A host general register, by x86 encoding (0 = rax ... 15 = r15).
    Gpr(u8),
    /// A stack slot at this offset from the canonical frame address (`rbp + 16`).
    Cfa(i32),
}

/// Most steps of a [`ValueLoc::Computed`].
pub const MAX_STEPS: usize = 3;

/// One 32-bit operation with a constant (shift amounts are taken mod 32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Add(u32),
    Mul(u32),
    And(u32),
    Or(u32),
    Xor(u32),
    Shl(u32),
    Shr(u32),
    Sar(u32),
}

impl Step {
    /// Applies the step to `x`.
    pub fn apply(self, x: u32) -> u32 {
        let (op, c) = match self {
            Step::Add(c) => (Op::Add, c),
            Step::Mul(c) => (Op::Mul, c),
            Step::And(c) => (Op::And, c),
            Step::Or(c) => (Op::Or, c),
            Step::Xor(c) => (Op::Xor, c),
            Step::Shl(c) => (Op::Shl, c),
            Step::Shr(c) => (Op::Shr, c),
            Step::Sar(c) => (Op::Sar, c),
        };
        op.apply(x, c)
    }
}

/// A 32-bit operation of two values (shift amounts are taken mod 32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    And,
    Or,
    Xor,
    Shl,
    Shr,
    Sar,
}

impl Op {
    /// `x op y`.
    pub fn apply(self, x: u32, y: u32) -> u32 {
        match self {
            Op::Add => x.wrapping_add(y),
            Op::Sub => x.wrapping_sub(y),
            Op::Mul => x.wrapping_mul(y),
            Op::And => x & y,
            Op::Or => x | y,
            Op::Xor => x ^ y,
            Op::Shl => x << (y & 31),
            Op::Shr => x >> (y & 31),
            Op::Sar => ((x as i32) >> (y & 31)) as u32,
        }
    }
}

/// Guest "register" number that stands for the running retired total in a recovery
/// list (its value is the count `cpu.retired` should hold).
pub const RECOVER_RETIRED: u8 = 32;
/// Like [`RECOVER_RETIRED`], for code that counts from the budget's end: the value is
/// `cpu.retired - cpu.budget_end` (negative while within the budget).
pub const RECOVER_RETIRED_BELOW_END: u8 = 33;

/// An inline guest access in translated code: what the fault path needs to make `Cpu`
/// exact when it faults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlineAccess {
    /// Host address of the instruction that can fault.
    pub host: u64,
    /// Guest pc of the access.
    pub pc: u32,
    /// Instructions retired before it that `cpu.retired` (after recovery) does not
    /// count yet.
    pub retired: u32,
    /// Guest registers (or [`RECOVER_RETIRED`], [`RECOVER_RETIRED_BELOW_END`]) whose current values are not in `Cpu`,
    /// and where they are when the access faults.
    pub recover: Vec<(u8, ValueLoc)>,
    /// `Cpu` holds the exact state at an earlier point of the same entry, with only
    /// loads and register operations since, which can run again: the fault resumes
    /// there (`cpu.pc` and `cpu.retired` say where), `retired` and `recover` are unused.
    pub rollback: bool,
}

/// A code generator (see `crate::backend` for the ones there are).
pub trait Backend {
    /// The name used in statistics and on the command line.
    fn name(&self) -> &'static str;

    /// Can it compile regions of more than one block?
    fn regions(&self) -> bool {
        false
    }

    /// Translates `region` (of one block unless [`Backend::regions`]) into code memory.
    fn compile(&mut self, region: &Region, env: &mut CompileEnv<'_>) -> Result<Translation, JitError>;

    /// Forgets all code (the cache resets the code memory next). Called only when no
    /// translated code is running.
    fn flush(&mut self) -> Result<(), JitError>;
}
