//! The direct backend: x86-64 machine code emitted per guest instruction from fixed
//! templates, with no IR and no register allocation, the way QEMU's TCG, dynarmic and
//! Winch trade run speed for compile latency.
//!
//! Code shape (the block contract is in [`crate::jit::abi`]):
//!
//! - `rbx` holds `*mut Cpu` for the whole block (saved on entry, restored at every exit);
//!   guest registers live in `Cpu` and each instruction loads its operands into `eax`,
//!   `ecx`, `edx` and stores its result, so `Cpu` is exact before every instruction and
//!   an inline access needs no write-back to be fault-exact;
//! - `cpu.retired` keeps the count at block entry until an exit adds what ran;
//! - the entry checks the budget and, below the last tier, counts down the tier-up
//!   counter; a closing indirect jump that is not a return stores its target for the
//!   regions the next tier forms;
//! - memory accesses follow their access state exactly as the Cranelift backend does:
//!   profiling or generic helper calls (a refused access exits to the interpreter for
//!   that instruction), inline arena accesses (listed for the fault map), or a bounds
//!   check plus a direct call of a device;
//! - exits store `pc` and the retired count, then tail-jump through an exit slot or the
//!   jump cache, or return an exit code. Cold exits are placed after the block's code.

use crate::guest::decode::{AluOp, AmoOp, BranchOp, Inst, LoadOp, StoreOp};
use crate::jit::abi::{
    reg_offset, Helper, JumpCacheEntry, EXIT_DISPATCH, EXIT_HOT, EXIT_STEP, JUMP_CACHE_MASK, JUMP_CACHE_SHIFT,
    OFFSET_BUDGET_END, OFFSET_PC, OFFSET_RETIRED,
};
use crate::jit::access::{AccessState, RegionClass};
use crate::jit::block::{Block, BlockEnd};
use crate::jit::codegen::{Backend, CompileEnv, InlineAccess, Translation};
use crate::jit::codemem::shortage_of;
use crate::jit::helpers;
use crate::jit::region::Region;
use crate::jit::JitError;
use crate::memory::Device;
use dynasmrt::x64::X64Relocation;
use dynasmrt::{dynasm, DynamicLabel, DynasmApi, DynasmLabelApi, VecAssembler};

/// Upper bound of host code bytes per guest instruction (the device access template
/// with its slow path and cold exit is the longest, about 110 bytes).
const MAX_BYTES_PER_INSN: usize = 192;
/// Upper bound of the fixed part of a block (entry, checks, final exit).
const MAX_BYTES_FIXED: usize = 256;

/// The direct x86-64 code generator. It keeps no state between blocks.
#[derive(Debug, Default)]
pub struct DirectBackend;

impl DirectBackend {
    pub fn new() -> DirectBackend {
        DirectBackend
    }
}

impl Backend for DirectBackend {
    fn name(&self) -> &'static str {
        "direct"
    }

    fn compile(&mut self, region: &Region, env: &mut CompileEnv<'_>) -> Result<Translation, JitError> {
        let block = region.head();
        let err = |msg: String| JitError::Compile { pc: block.pc, msg };
        if region.blocks.len() != 1 {
            return Err(err("the direct backend compiles single blocks".into()));
        }
        let max_len = MAX_BYTES_FIXED + MAX_BYTES_PER_INSN * block.len();
        let pool = env.pool;
        let mut inline_accesses = Vec::new();
        let mut size = 0;
        let placed = pool.emit(max_len, |base| {
            let mut e = Emitter {
                ops: VecAssembler::new(base as usize),
                base,
                env: &mut *env,
                block,
                cold: Vec::new(),
                inline: Vec::new(),
            };
            e.block()?;
            inline_accesses = e.inline;
            let code = e.ops.finalize().map_err(|e| err(format!("assembling: {e}")))?;
            size = code.len();
            Ok::<_, JitError>(code)
        });
        let code = placed.map_err(|e| match shortage_of(&e) {
            Some(shortage) => JitError::CodeMemory(shortage),
            None => err(format!("code memory: {e}")),
        })??;
        Ok(Translation { code, size: size as u32, inline_accesses, ir: None, full_sync: false, recompiles: 0 })
    }

    fn flush(&mut self) -> Result<(), JitError> {
        Ok(())
    }
}

/// Scratch registers by x86 encoding.
const EAX: u8 = 0;
const ECX: u8 = 1;
const EDX: u8 = 2;

/// The shape of one guest access.
#[derive(Clone, Copy)]
enum Access {
    Load { rd: u8, width: usize, signed: bool },
    Store { width: usize, rs2: u8 },
}

impl Access {
    fn width(self) -> usize {
        match self {
            Access::Load { width, .. } | Access::Store { width, .. } => width,
        }
    }
}

/// Emits one block.
struct Emitter<'a, 'e> {
    ops: VecAssembler<X64Relocation>,
    base: u64,
    env: &'a mut CompileEnv<'e>,
    block: &'a Block,
    /// Cold exits that hand instruction `index` to the interpreter, placed at the end.
    cold: Vec<(DynamicLabel, usize)>,
    /// Inline accesses.
    inline: Vec<InlineAccess>,
}

impl Emitter<'_, '_> {
    fn block(&mut self) -> Result<(), JitError> {
        let len = self.block.len() as i32;
        let out = self.ops.new_dynamic_label();
        dynasm!(self.ops
            ; .arch x64
            ; push rbx
            ; mov rbx, rdi
            // Budget: return to the dispatcher (pc is already this block's) when running
            // the whole block could pass `budget_end`.
            ; mov rax, QWORD [rbx + OFFSET_RETIRED]
            ; add rax, len
            ; cmp rax, QWORD [rbx + OFFSET_BUDGET_END]
            ; ja =>out
        );
        let hot = self.env.hot_counter.map(|counter| {
            let hot = self.ops.new_dynamic_label();
            dynasm!(self.ops
                ; .arch x64
                ; mov rax, QWORD counter as i64
                ; sub DWORD [rax], 1
                ; jz =>hot
            );
            hot
        });
        for (i, inst) in self.block.insts.iter().enumerate() {
            self.inst(i, *inst)?;
        }
        match self.block.end {
            BlockEnd::Jump => {}
            BlockEnd::Cap => self.exit_chain(self.block.next_pc(), self.block.len()),
            BlockEnd::Runtime => self.exit_return(self.block.next_pc(), self.block.len(), EXIT_DISPATCH),
        }
        // Cold code.
        dynasm!(self.ops ; .arch x64 ; =>out ; xor eax, eax ; pop rbx ; ret);
        if let Some(hot) = hot {
            dynasm!(self.ops ; .arch x64 ; =>hot ; mov eax, EXIT_HOT as i32 ; pop rbx ; ret);
        }
        for (label, i) in std::mem::take(&mut self.cold) {
            dynasm!(self.ops ; .arch x64 ; =>label);
            self.exit_return(self.block.pc_of(i), i, EXIT_STEP);
        }
        Ok(())
    }

    /// Loads guest register `r` into scratch register `reg`.
    // dynasm converts dynamic register operands with `.into()`.
    #[allow(clippy::useless_conversion)]
    fn load(&mut self, reg: u8, r: u8) {
        if r == 0 {
            dynasm!(self.ops ; .arch x64 ; xor Rd(reg), Rd(reg));
        } else {
            dynasm!(self.ops ; .arch x64 ; mov Rd(reg), DWORD [rbx + reg_offset(r)]);
        }
    }

    /// Stores scratch register `reg` to guest register `rd` (nothing for x0).
    #[allow(clippy::useless_conversion)]
    fn store(&mut self, rd: u8, reg: u8) {
        if rd != 0 {
            dynasm!(self.ops ; .arch x64 ; mov DWORD [rbx + reg_offset(rd)], Rd(reg));
        }
    }

    /// Writes pc and the retired count (`executed` instructions of the block ran).
    fn write_back(&mut self, pc: u32, executed: usize) {
        dynasm!(self.ops ; .arch x64 ; mov DWORD [rbx + OFFSET_PC], pc as i32);
        self.add_retired(executed);
    }

    fn add_retired(&mut self, executed: usize) {
        if executed > 0 {
            dynasm!(self.ops ; .arch x64 ; add QWORD [rbx + OFFSET_RETIRED], executed as i32);
        }
    }

    /// Leaves the block for the dispatcher with `code`.
    fn exit_return(&mut self, pc: u32, executed: usize, code: i64) {
        self.write_back(pc, executed);
        dynasm!(self.ops ; .arch x64 ; mov eax, code as i32 ; pop rbx ; ret);
    }

    /// Continues at a known target through its exit slot.
    fn exit_chain(&mut self, target: u32, executed: usize) {
        self.write_back(target, executed);
        let slot = (self.env.slot_for)(target);
        dynasm!(self.ops
            ; .arch x64
            ; mov rdi, rbx
            ; mov rax, QWORD slot as i64
            ; pop rbx
            ; jmp QWORD [rax]
        );
    }

    /// Continues at the target in `eax` through the jump cache, or the dispatcher.
    fn exit_indirect(&mut self, executed: usize) {
        let miss = self.ops.new_dynamic_label();
        if let Some(cell) = self.env.target_cell {
            dynasm!(self.ops ; .arch x64 ; mov rcx, QWORD cell as i64 ; mov DWORD [rcx], eax);
        }
        dynasm!(self.ops ; .arch x64 ; mov DWORD [rbx + OFFSET_PC], eax);
        self.add_retired(executed);
        dynasm!(self.ops
            ; .arch x64
            ; mov ecx, eax
            ; shr ecx, JUMP_CACHE_SHIFT as i8
            ; and ecx, JUMP_CACHE_MASK as i32
            ; shl rcx, JumpCacheEntry::SIZE_SHIFT as i8
            ; mov rdx, QWORD self.env.jump_cache as i64
            ; add rdx, rcx
            ; cmp QWORD [rdx], rax
            ; jne =>miss
            ; mov rdi, rbx
            ; pop rbx
            ; jmp QWORD [rdx + 8]
            ; =>miss
            ; xor eax, eax
            ; pop rbx
            ; ret
        );
    }

    /// A cold exit that hands instruction `i` to the interpreter.
    fn step_label(&mut self, i: usize) -> DynamicLabel {
        let label = self.ops.new_dynamic_label();
        self.cold.push((label, i));
        label
    }

    /// Calls a helper (arguments already in `rdi`, `esi`, `edx`, `rcx`/`ecx`). The stack
    /// is 16-byte aligned here (the entry pushed `rbx` onto an 8-mod-16 stack).
    fn call(&mut self, helper: Helper) -> Result<(), JitError> {
        let addr = helpers::address(helper) as i64;
        if self.env.near {
            let rel = addr - (self.base as i64 + self.ops.offset().0 as i64 + 5);
            if i32::try_from(rel).is_err() {
                return Err(JitError::Compile { pc: self.block.pc, msg: "helper out of rel32 reach".into() });
            }
            let target = addr as usize;
            dynasm!(self.ops ; .arch x64 ; call extern target);
        } else {
            dynasm!(self.ops ; .arch x64 ; mov rax, QWORD addr ; call rax);
        }
        Ok(())
    }

    /// Computes `rs1 + offset` into `eax`.
    fn address(&mut self, rs1: u8, offset: i32) {
        self.load(EAX, rs1);
        if offset != 0 {
            dynasm!(self.ops ; .arch x64 ; add eax, offset);
        }
    }

    /// Sign-extends a helper's zero-extended result in `eax` as the load needs.
    fn extend(&mut self, width: usize, signed: bool) {
        match (width, signed) {
            (0, true) => dynasm!(self.ops ; .arch x64 ; movsx eax, al),
            (1, true) => dynasm!(self.ops ; .arch x64 ; movsx eax, ax),
            _ => {}
        }
    }

    /// A helper call for the access with the address in `eax` (generic, or profiling
    /// with `record`); a refusal hands instruction `i` to the interpreter. A load's
    /// value ends up in `rd`.
    fn access_call(&mut self, i: usize, access: Access, record: Option<u64>) -> Result<(), JitError> {
        let step = self.step_label(i);
        dynasm!(self.ops ; .arch x64 ; mov esi, eax ; mov rdi, rbx);
        match access {
            Access::Load { rd, width, signed } => {
                let helper = match record {
                    Some(rec) => {
                        dynasm!(self.ops ; .arch x64 ; mov rdx, QWORD rec as i64);
                        Helper::ProfileLoad(width)
                    }
                    None => Helper::Load(width),
                };
                self.call(helper)?;
                dynasm!(self.ops ; .arch x64 ; bt rax, 32 ; jc =>step);
                self.extend(width, signed);
                self.store(rd, EAX);
            }
            Access::Store { width, rs2 } => {
                self.load(EDX, rs2);
                let helper = match record {
                    Some(rec) => {
                        dynasm!(self.ops ; .arch x64 ; mov rcx, QWORD rec as i64);
                        Helper::ProfileStore(width)
                    }
                    None => Helper::Store(width),
                };
                self.call(helper)?;
                dynasm!(self.ops ; .arch x64 ; test eax, eax ; jnz =>step);
            }
        }
        Ok(())
    }

    /// Lists the next instruction, an inline access of instruction `i`, in the fault map
    /// (guest registers are always in `Cpu`: nothing to recover).
    fn note_inline(&mut self, i: usize) {
        let host = self.base + self.ops.offset().0 as u64;
        self.inline.push(InlineAccess {
            host,
            pc: self.block.pc_of(i),
            retired: i as u32,
            recover: Vec::new(),
            rollback: false,
        });
    }

    /// One inline access to `arena_base + zext(eax)`, listed for the fault map.
    fn access_inline(&mut self, i: usize, access: Access) {
        dynasm!(self.ops ; .arch x64 ; mov rcx, QWORD self.env.arena_base as i64);
        if let Access::Store { rs2, .. } = access {
            self.load(EDX, rs2);
        }
        self.note_inline(i);
        match access {
            Access::Load { rd, width, signed } => {
                match (width, signed) {
                    (0, true) => dynasm!(self.ops ; .arch x64 ; movsx eax, BYTE [rcx + rax]),
                    (0, false) => dynasm!(self.ops ; .arch x64 ; movzx eax, BYTE [rcx + rax]),
                    (1, true) => dynasm!(self.ops ; .arch x64 ; movsx eax, WORD [rcx + rax]),
                    (1, false) => dynasm!(self.ops ; .arch x64 ; movzx eax, WORD [rcx + rax]),
                    _ => dynasm!(self.ops ; .arch x64 ; mov eax, DWORD [rcx + rax]),
                }
                self.store(rd, EAX);
            }
            Access::Store { width: 0, .. } => dynasm!(self.ops ; .arch x64 ; mov BYTE [rcx + rax], dl),
            Access::Store { width: 1, .. } => dynasm!(self.ops ; .arch x64 ; mov WORD [rcx + rax], dx),
            Access::Store { .. } => dynasm!(self.ops ; .arch x64 ; mov DWORD [rcx + rax], edx),
        }
    }

    /// COMMITTED(device): inside the device, a direct call of its function; outside,
    /// the profiling helper (which makes the access VARIABLE).
    fn access_device(&mut self, i: usize, access: Access, dev: Device, record: u64) -> Result<(), JitError> {
        let (base, size) = dev.range();
        let bytes = 1u32 << access.width();
        let slow = self.ops.new_dynamic_label();
        let done = self.ops.new_dynamic_label();
        dynasm!(self.ops
            ; .arch x64
            ; mov esi, eax
            ; sub esi, base as i32
            ; cmp esi, (size - bytes) as i32
            ; ja =>slow
            ; mov rdi, rbx
            ; mov edx, access.width() as i32
        );
        match access {
            Access::Load { rd, width, signed } => {
                self.call(Helper::DeviceRead(dev.index()))?;
                self.extend(width, signed);
                self.store(rd, EAX);
            }
            Access::Store { rs2, .. } => {
                self.load(ECX, rs2);
                self.call(Helper::DeviceWrite(dev.index()))?;
                let step = self.step_label(i);
                dynasm!(self.ops ; .arch x64 ; test eax, eax ; jnz =>step);
            }
        }
        dynasm!(self.ops ; .arch x64 ; jmp =>done ; =>slow);
        self.access_call(i, access, Some(record))?;
        dynasm!(self.ops ; .arch x64 ; =>done);
        Ok(())
    }

    /// A load or store at instruction `i`, with its address in `eax`, as its access plan
    /// says.
    fn access(&mut self, i: usize, access: Access) -> Result<(), JitError> {
        let plan = (self.env.plan_for)(self.block.pc_of(i));
        match plan.state {
            AccessState::Variable => self.access_call(i, access, None),
            AccessState::Naive { .. } => self.access_call(i, access, Some(plan.record)),
            AccessState::Committed(RegionClass::Ram) => {
                self.access_inline(i, access);
                Ok(())
            }
            AccessState::Committed(RegionClass::Device(dev)) => self.access_device(i, access, dev, plan.record),
        }
    }

    /// `eax = eax op ecx`.
    fn alu(&mut self, op: AluOp) {
        match op {
            AluOp::Add => dynasm!(self.ops ; .arch x64 ; add eax, ecx),
            AluOp::Sub => dynasm!(self.ops ; .arch x64 ; sub eax, ecx),
            // x86 masks 32-bit shift counts to 5 bits, as RISC-V does.
            AluOp::Sll => dynasm!(self.ops ; .arch x64 ; shl eax, cl),
            AluOp::Srl => dynasm!(self.ops ; .arch x64 ; shr eax, cl),
            AluOp::Sra => dynasm!(self.ops ; .arch x64 ; sar eax, cl),
            AluOp::Slt => dynasm!(self.ops ; .arch x64 ; cmp eax, ecx ; setl al ; movzx eax, al),
            AluOp::Sltu => dynasm!(self.ops ; .arch x64 ; cmp eax, ecx ; setb al ; movzx eax, al),
            AluOp::Xor => dynasm!(self.ops ; .arch x64 ; xor eax, ecx),
            AluOp::Or => dynasm!(self.ops ; .arch x64 ; or eax, ecx),
            AluOp::And => dynasm!(self.ops ; .arch x64 ; and eax, ecx),
            AluOp::Mul => dynasm!(self.ops ; .arch x64 ; imul eax, ecx),
            AluOp::Mulh => dynasm!(self.ops ; .arch x64 ; imul ecx ; mov eax, edx),
            AluOp::Mulhu => dynasm!(self.ops ; .arch x64 ; mul ecx ; mov eax, edx),
            AluOp::Mulhsu => dynasm!(self.ops
                ; .arch x64
                // Signed times unsigned fits in 64 bits: |a| <= 2^31, b < 2^32.
                ; movsxd rax, eax
                ; mov ecx, ecx
                ; imul rax, rcx
                ; sar rax, 32
            ),
            AluOp::Div | AluOp::Rem => {
                // RISC-V: x / 0 = -1, x % 0 = x; INT_MIN / -1 = INT_MIN, INT_MIN % -1 = 0.
                let (zero, normal, done) =
                    (self.ops.new_dynamic_label(), self.ops.new_dynamic_label(), self.ops.new_dynamic_label());
                dynasm!(self.ops
                    ; .arch x64
                    ; test ecx, ecx
                    ; jz =>zero
                    ; cmp ecx, -1
                    ; jne =>normal
                    ; cmp eax, i32::MIN
                    ; jne =>normal
                );
                if op == AluOp::Rem {
                    dynasm!(self.ops ; .arch x64 ; xor eax, eax);
                }
                dynasm!(self.ops ; .arch x64 ; jmp =>done ; =>normal ; cdq ; idiv ecx);
                if op == AluOp::Rem {
                    dynasm!(self.ops ; .arch x64 ; mov eax, edx);
                }
                dynasm!(self.ops ; .arch x64 ; jmp =>done ; =>zero);
                if op == AluOp::Div {
                    dynasm!(self.ops ; .arch x64 ; mov eax, -1);
                }
                dynasm!(self.ops ; .arch x64 ; =>done);
            }
            AluOp::Divu | AluOp::Remu => {
                let (zero, done) = (self.ops.new_dynamic_label(), self.ops.new_dynamic_label());
                dynasm!(self.ops ; .arch x64 ; test ecx, ecx ; jz =>zero ; xor edx, edx ; div ecx);
                if op == AluOp::Remu {
                    dynasm!(self.ops ; .arch x64 ; mov eax, edx);
                }
                dynasm!(self.ops ; .arch x64 ; jmp =>done ; =>zero);
                if op == AluOp::Divu {
                    dynasm!(self.ops ; .arch x64 ; mov eax, -1);
                }
                dynasm!(self.ops ; .arch x64 ; =>done);
            }
        }
    }

    /// An AMO at instruction `i` with its address in `eax`, as its access plan says
    /// (see the Cranelift lifter's `amo`): COMMITTED(RAM) is an alignment check, an
    /// inline load into `r8d`, the new value in `r9d` and an inline store (both in the
    /// fault map), then rd = the old value; other states call the AMO helper.
    fn amo(&mut self, i: usize, op: AmoOp, rd: u8, rs2: u8) -> Result<(), JitError> {
        let plan = (self.env.plan_for)(self.block.pc_of(i));
        let step = self.step_label(i);
        if plan.state == AccessState::Committed(RegionClass::Ram) {
            dynasm!(self.ops ; .arch x64 ; test al, 3 ; jnz =>step ; mov rcx, QWORD self.env.arena_base as i64);
            self.load(EDX, rs2);
            self.note_inline(i);
            dynasm!(self.ops ; .arch x64 ; mov r8d, DWORD [rcx + rax] ; mov r9d, r8d);
            match op {
                AmoOp::Swap => dynasm!(self.ops ; .arch x64 ; mov r9d, edx),
                AmoOp::Add => dynasm!(self.ops ; .arch x64 ; add r9d, edx),
                AmoOp::Xor => dynasm!(self.ops ; .arch x64 ; xor r9d, edx),
                AmoOp::And => dynasm!(self.ops ; .arch x64 ; and r9d, edx),
                AmoOp::Or => dynasm!(self.ops ; .arch x64 ; or r9d, edx),
                AmoOp::Min => dynasm!(self.ops ; .arch x64 ; cmp r8d, edx ; cmovg r9d, edx),
                AmoOp::Max => dynasm!(self.ops ; .arch x64 ; cmp r8d, edx ; cmovl r9d, edx),
                AmoOp::Minu => dynasm!(self.ops ; .arch x64 ; cmp r8d, edx ; cmova r9d, edx),
                AmoOp::Maxu => dynasm!(self.ops ; .arch x64 ; cmp r8d, edx ; cmovb r9d, edx),
            }
            self.note_inline(i);
            dynasm!(self.ops ; .arch x64 ; mov DWORD [rcx + rax], r9d);
            if rd != 0 {
                dynasm!(self.ops ; .arch x64 ; mov DWORD [rbx + reg_offset(rd)], r8d);
            }
            return Ok(());
        }
        let record = if plan.state == AccessState::Variable { 0 } else { plan.record };
        dynasm!(self.ops ; .arch x64 ; mov esi, eax ; mov rdi, rbx);
        self.load(EDX, rs2);
        dynasm!(self.ops
            ; .arch x64
            ; mov ecx, op.index() as i32
            ; mov r8, QWORD record as i64
        );
        self.call(Helper::Amo)?;
        dynasm!(self.ops ; .arch x64 ; bt rax, 32 ; jc =>step);
        self.store(rd, EAX);
        Ok(())
    }

    fn inst(&mut self, i: usize, inst: Inst) -> Result<(), JitError> {
        let pc = self.block.pc_of(i);
        // The next instruction's pc: the link value and a branch's fall-through.
        let next = self.block.pc_of(i + 1);
        match inst {
            Inst::Lui { rd, imm } => {
                if rd != 0 {
                    dynasm!(self.ops ; .arch x64 ; mov DWORD [rbx + reg_offset(rd)], imm as i32);
                }
            }
            Inst::Auipc { rd, imm } => {
                if rd != 0 {
                    dynasm!(self.ops ; .arch x64 ; mov DWORD [rbx + reg_offset(rd)], pc.wrapping_add(imm) as i32);
                }
            }
            Inst::OpImm { op, rd, rs1, imm } => {
                if rd == 0 {
                    return Ok(());
                }
                self.load(EAX, rs1);
                match op {
                    AluOp::Add if imm == 0 => {}
                    AluOp::Add => dynasm!(self.ops ; .arch x64 ; add eax, imm),
                    AluOp::Xor => dynasm!(self.ops ; .arch x64 ; xor eax, imm),
                    AluOp::Or => dynasm!(self.ops ; .arch x64 ; or eax, imm),
                    AluOp::And => dynasm!(self.ops ; .arch x64 ; and eax, imm),
                    AluOp::Sll => dynasm!(self.ops ; .arch x64 ; shl eax, (imm & 31) as i8),
                    AluOp::Srl => dynasm!(self.ops ; .arch x64 ; shr eax, (imm & 31) as i8),
                    AluOp::Sra => dynasm!(self.ops ; .arch x64 ; sar eax, (imm & 31) as i8),
                    _ => {
                        dynasm!(self.ops ; .arch x64 ; mov ecx, imm);
                        self.alu(op);
                    }
                }
                self.store(rd, EAX);
            }
            Inst::Op { op, rd, rs1, rs2 } => {
                if rd == 0 {
                    return Ok(());
                }
                self.load(EAX, rs1);
                self.load(ECX, rs2);
                self.alu(op);
                self.store(rd, EAX);
            }
            Inst::Load { op, rd, rs1, offset } => {
                let (width, signed) = match op {
                    LoadOp::Lb => (0, true),
                    LoadOp::Lbu => (0, false),
                    LoadOp::Lh => (1, true),
                    LoadOp::Lhu => (1, false),
                    LoadOp::Lw => (2, false),
                };
                self.address(rs1, offset);
                self.access(i, Access::Load { rd, width, signed })?;
            }
            Inst::Store { op, rs1, rs2, offset } => {
                let width = match op {
                    StoreOp::Sb => 0,
                    StoreOp::Sh => 1,
                    StoreOp::Sw => 2,
                };
                self.address(rs1, offset);
                self.access(i, Access::Store { width, rs2 })?;
            }
            Inst::Fence { .. } => {}
            Inst::Amo { op, rd, rs1, rs2, .. } => {
                self.load(EAX, rs1);
                self.amo(i, op, rd, rs2)?;
            }
            Inst::Jal { rd, offset } => {
                let target = pc.wrapping_add(offset as u32);
                if !self.block.aligned(target) {
                    // The interpreter raises the misaligned-target fault.
                    self.exit_return(pc, i, EXIT_STEP);
                    return Ok(());
                }
                if rd != 0 {
                    dynasm!(self.ops ; .arch x64 ; mov DWORD [rbx + reg_offset(rd)], next as i32);
                }
                self.exit_chain(target, i + 1);
            }
            Inst::Jalr { rd, rs1, offset } => {
                self.address(rs1, offset);
                dynasm!(self.ops ; .arch x64 ; and eax, -2);
                if self.block.ialign == 4 {
                    // Without C a target at 2 mod 4 faults (with C every target is legal).
                    let step = self.step_label(i);
                    dynasm!(self.ops ; .arch x64 ; test al, 2 ; jnz =>step);
                }
                if rd != 0 {
                    dynasm!(self.ops ; .arch x64 ; mov DWORD [rbx + reg_offset(rd)], next as i32);
                }
                self.exit_indirect(i + 1);
            }
            Inst::Branch { op, rs1, rs2, offset } => {
                self.load(EAX, rs1);
                self.load(ECX, rs2);
                let taken = self.ops.new_dynamic_label();
                dynasm!(self.ops ; .arch x64 ; cmp eax, ecx);
                match op {
                    BranchOp::Beq => dynasm!(self.ops ; .arch x64 ; je =>taken),
                    BranchOp::Bne => dynasm!(self.ops ; .arch x64 ; jne =>taken),
                    BranchOp::Blt => dynasm!(self.ops ; .arch x64 ; jl =>taken),
                    BranchOp::Bge => dynasm!(self.ops ; .arch x64 ; jge =>taken),
                    BranchOp::Bltu => dynasm!(self.ops ; .arch x64 ; jb =>taken),
                    BranchOp::Bgeu => dynasm!(self.ops ; .arch x64 ; jae =>taken),
                }
                self.exit_chain(next, i + 1);
                dynasm!(self.ops ; .arch x64 ; =>taken);
                let target = pc.wrapping_add(offset as u32);
                if !self.block.aligned(target) {
                    self.exit_return(pc, i, EXIT_STEP);
                } else {
                    self.exit_chain(target, i + 1);
                }
            }
            // Instructions that need the runtime never reach a backend (see block.rs).
            Inst::FenceI
            | Inst::Ecall
            | Inst::Ebreak
            | Inst::Mret
            | Inst::Wfi
            | Inst::Csr { .. }
            | Inst::Lr { .. }
            | Inst::Sc { .. }
            | Inst::Illegal(_) => {
                self.exit_return(pc, i, EXIT_STEP);
            }
        }
        Ok(())
    }
}
