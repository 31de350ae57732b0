//! The lifter: one guest block to one Cranelift IR function.
//!
//! A block function takes `*mut Cpu` and uses the `tail` calling convention, so a
//! block exit with a known target can continue straight into the next block through its
//! exit slot (`return_call_indirect`), and an indirect jump can continue through the
//! jump cache. Guest registers are `Variable`s, loaded from `Cpu` on first use and
//! written back at exits; x0 is the constant 0.
//!
//! Memory accesses are lifted by the state of their access record (see `access`):
//! a profiling call (NAIVE), one inline arena access carrying a trap code
//! (COMMITTED(RAM)), a bounds check plus a direct call of the device's function
//! (COMMITTED(device)), or a generic call (VARIABLE).
//!
//! The invariants that make bailing out and fault recovery possible:
//! - every exit, including the cold exit taken when a helper refuses an access, leaves
//!   `Cpu` exactly as the interpreter would have it before the instruction named by
//!   `cpu.pc` (registers, pc, retired count). A refused access exits with
//!   [`EXIT_STEP`]: the interpreter executes that one instruction, raising the guest
//!   fault (or carrying out the device effect) exactly as it would have;
//! - before every inline access, registers written since the last write-back are stored
//!   to `Cpu`, and `cpu.retired` always holds the count at block entry, so when the
//!   access faults the dispatcher completes the state from the fault map alone.

use crate::guest::decode::{AluOp, AmoOp, BranchOp, Inst, LoadOp, StoreOp};
use crate::jit::abi::{
    ArgKind, Helper, JumpCacheEntry, EXIT_DISPATCH, EXIT_HOT, EXIT_STEP, HELPERS, INLINE_TRAP_CODE, JUMP_CACHE_MASK,
    JUMP_CACHE_SHIFT, OFFSET_BUDGET_END, OFFSET_PC, OFFSET_REGS, OFFSET_RETIRED,
};
use crate::jit::access::{AccessState, RegionClass};
use crate::jit::block::{Block, BlockEnd};
use crate::jit::codegen::AccessPlan;
use crate::memory::Device;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{
    self, AbiParam, ExtFuncData, ExternalName, FuncRef, InstBuilder, MemFlagsData, Signature, SourceLoc, TrapCode,
    UserExternalName, Value,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};

/// Everything a lift needs besides the block.
pub struct LiftEnv {
    /// Module function ids of the helpers, indexed by [`Helper::index`].
    pub helper_ids: [u32; HELPERS],
    /// Are helpers within rel32 reach of the code (colocated calls)?
    pub near_calls: bool,
    /// The host calling convention of the helpers.
    pub host_call_conv: CallConv,
    /// Base of the jump cache (entries of [`JumpCacheEntry`]).
    pub jump_cache: u64,
    /// The block's tier-up counter, if it has one (see [`crate::jit::codegen::CompileEnv`]).
    pub hot_counter: Option<u64>,
    /// Host address of guest address 0.
    pub arena_base: u64,
    /// The target's front-end configuration (for `FunctionBuilder::finalize`).
    pub frontend: TargetFrontendConfig,
}

/// Trap code of inline guest accesses (the fault map finds them by it).
pub fn inline_trap_code() -> TrapCode {
    TrapCode::user(INLINE_TRAP_CODE).expect("a valid user trap code")
}

/// The signature of every block function.
pub fn block_signature() -> Signature {
    let mut sig = Signature::new(CallConv::Tail);
    sig.params.push(AbiParam::new(I64));
    sig.returns.push(AbiParam::new(I64));
    sig
}

/// The Cranelift signature of a helper, in the host's calling convention.
pub fn helper_signature(h: Helper, cc: CallConv) -> Signature {
    let ty = |k: ArgKind| match k {
        ArgKind::U64 => I64,
        ArgKind::U32 => I32,
    };
    let mut sig = Signature::new(cc);
    sig.params.extend(h.params().iter().map(|&k| AbiParam::new(ty(k))));
    sig.returns.push(AbiParam::new(ty(h.result())));
    sig
}

fn trusted() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// The shape of one guest access.
#[derive(Clone, Copy)]
enum Access {
    Load { rd: u8, width: usize, signed: bool },
    Store { width: usize, value: Value },
}

/// Lifting state for one block.
struct Lifter<'a, 'b> {
    b: FunctionBuilder<'a>,
    env: &'b LiftEnv,
    block: &'b Block,
    cpu: Value,
    retired0: Value,
    regs: [Variable; 32],
    /// Registers with a definition on the current path.
    loaded: u32,
    /// Registers written since they were last stored to `Cpu`.
    dirty: u32,
    /// A retired count computed on the main path, before a two-way exit: (executed, value).
    retired_before_exit: Option<(usize, Value)>,
    /// Helpers imported into this function so far (imported on first use).
    helpers: [Option<FuncRef>; HELPERS],
    tail_sig: ir::SigRef,
    slot_for: &'b mut dyn FnMut(u32) -> u64,
    plan_for: &'b mut dyn FnMut(u32) -> AccessPlan,
}

/// Builds the IR of `block` into `func` (whose signature must be [`block_signature`]).
/// `slot_for(target)` returns the address of the exit slot to chain through for a
/// jump to `target`; `plan_for(pc)` says how to perform the access at `pc`.
pub fn lift_block(
    func: &mut ir::Function,
    fctx: &mut FunctionBuilderContext,
    block: &Block,
    env: &LiftEnv,
    slot_for: &mut dyn FnMut(u32) -> u64,
    plan_for: &mut dyn FnMut(u32) -> AccessPlan,
) {
    let tail_sig = func.import_signature(block_signature());

    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let cpu = b.block_params(entry)[0];
    let regs = std::array::from_fn(|_| b.declare_var(I32));

    // Budget check: return to the dispatcher (pc is already this block's) when running
    // the whole block could pass `budget_end`.
    b.set_srcloc(SourceLoc::new(block.pc));
    let retired0 = b.ins().load(I64, trusted(), cpu, OFFSET_RETIRED);
    let budget_end = b.ins().load(I64, trusted(), cpu, OFFSET_BUDGET_END);
    let after = b.ins().iadd_imm_s(retired0, block.len() as i64);
    let over = b.ins().icmp(IntCC::UnsignedGreaterThan, after, budget_end);
    let out_of_budget = b.create_block();
    let body = b.create_block();
    b.set_cold_block(out_of_budget);
    b.ins().brif(over, out_of_budget, &[], body, &[]);
    b.switch_to_block(out_of_budget);
    b.seal_block(out_of_budget);
    let code = b.ins().iconst(I64, EXIT_DISPATCH);
    b.ins().return_(&[code]);
    b.switch_to_block(body);
    b.seal_block(body);

    if let Some(counter) = env.hot_counter {
        // Tier-up counter: at zero, hand the block to the next tier before running it.
        let addr = b.ins().iconst(I64, counter as i64);
        let n = b.ins().load(I32, trusted(), addr, 0);
        let n = b.ins().iadd_imm_s(n, -1);
        b.ins().store(trusted(), n, addr, 0);
        let hot = b.create_block();
        let run = b.create_block();
        b.set_cold_block(hot);
        b.ins().brif(n, run, &[], hot, &[]);
        b.switch_to_block(hot);
        b.seal_block(hot);
        let code = b.ins().iconst(I64, EXIT_HOT);
        b.ins().return_(&[code]);
        b.switch_to_block(run);
        b.seal_block(run);
    }

    let mut l = Lifter {
        b,
        env,
        block,
        cpu,
        retired0,
        regs,
        loaded: 0,
        dirty: 0,
        retired_before_exit: None,
        helpers: [None; HELPERS],
        tail_sig,
        slot_for,
        plan_for,
    };
    for (i, inst) in block.insts.iter().enumerate() {
        l.b.set_srcloc(SourceLoc::new(block.pc_of(i)));
        l.lift(i, *inst);
    }
    match block.end {
        BlockEnd::Jump => {}
        BlockEnd::Cap => l.exit_chain(block.next_pc(), block.len()),
        BlockEnd::Runtime => {
            let pc = l.iconst(block.next_pc());
            l.exit_return(pc, block.len(), EXIT_DISPATCH);
        }
    }
    l.b.finalize(env.frontend);
}

impl Lifter<'_, '_> {
    fn reg(&mut self, r: u8) -> Value {
        if r == 0 {
            return self.b.ins().iconst(I32, 0);
        }
        let bit = 1u32 << r;
        if self.loaded & bit == 0 {
            let v = self.b.ins().load(I32, trusted(), self.cpu, OFFSET_REGS + 4 * i32::from(r));
            self.b.def_var(self.regs[r as usize], v);
            self.loaded |= bit;
        }
        self.b.use_var(self.regs[r as usize])
    }

    fn set_reg(&mut self, r: u8, v: Value) {
        if r == 0 {
            return;
        }
        self.b.def_var(self.regs[r as usize], v);
        self.loaded |= 1 << r;
        self.dirty |= 1 << r;
    }

    fn iconst(&mut self, v: u32) -> Value {
        self.b.ins().iconst(I32, i64::from(v as i32))
    }

    fn call(&mut self, helper: Helper, args: &[Value]) -> Value {
        let func = match self.helpers[helper.index()] {
            Some(f) => f,
            None => {
                let signature = self.b.import_signature(helper_signature(helper, self.env.host_call_conv));
                let name = self
                    .b
                    .func
                    .declare_imported_user_function(UserExternalName::new(0, self.env.helper_ids[helper.index()]));
                let f = self.b.import_function(ExtFuncData {
                    name: ExternalName::user(name),
                    signature,
                    colocated: self.env.near_calls,
                    patchable: false,
                });
                self.helpers[helper.index()] = Some(f);
                f
            }
        };
        let call = self.b.ins().call(func, args);
        self.b.inst_results(call)[0]
    }

    /// Stores the registers written since their last store.
    fn store_dirty(&mut self) {
        for r in 1..32u8 {
            if self.dirty & (1 << r) != 0 {
                let v = self.b.use_var(self.regs[r as usize]);
                self.b.ins().store(trusted(), v, self.cpu, OFFSET_REGS + 4 * i32::from(r));
            }
        }
    }

    /// On the main path: makes `Cpu`'s registers current (before an access that can fault).
    fn sync(&mut self) {
        self.store_dirty();
        self.dirty = 0;
    }

    /// Stores registers, pc and the retired count (`executed` instructions of this block
    /// have retired). Leaves `dirty` alone: exits are ends of paths.
    fn write_back(&mut self, pc: Value, executed: usize) {
        self.store_dirty();
        self.b.ins().store(trusted(), pc, self.cpu, OFFSET_PC);
        let retired = match self.retired_before_exit {
            Some((n, v)) if n == executed => v,
            _ => self.b.ins().iadd_imm_s(self.retired0, executed as i64),
        };
        self.b.ins().store(trusted(), retired, self.cpu, OFFSET_RETIRED);
    }

    /// Leaves the block for the dispatcher with `code`.
    fn exit_return(&mut self, pc: Value, executed: usize, code: i64) {
        self.write_back(pc, executed);
        let code = self.b.ins().iconst(I64, code);
        self.b.ins().return_(&[code]);
    }

    /// Continues at a known target through its exit slot.
    fn exit_chain(&mut self, target: u32, executed: usize) {
        let pc = self.iconst(target);
        self.write_back(pc, executed);
        let slot = (self.slot_for)(target);
        let slot = self.b.ins().iconst(I64, slot as i64);
        let code = self.b.ins().load(I64, trusted(), slot, 0);
        let cpu = self.cpu;
        self.b.ins().return_call_indirect(self.tail_sig, code, &[cpu]);
    }

    /// Continues at a computed target through the jump cache, or the dispatcher.
    fn exit_indirect(&mut self, target: Value, executed: usize) {
        self.write_back(target, executed);
        let idx = self.b.ins().ushr_imm_s(target, i64::from(JUMP_CACHE_SHIFT));
        let idx = self.b.ins().band_imm_s(idx, i64::from(JUMP_CACHE_MASK));
        let idx = self.b.ins().uextend(I64, idx);
        let off = self.b.ins().ishl_imm_s(idx, i64::from(JumpCacheEntry::SIZE_SHIFT));
        let entry = self.b.ins().iadd_imm_s(off, self.env.jump_cache as i64);
        let cached = self.b.ins().load(I64, trusted(), entry, 0);
        let target64 = self.b.ins().uextend(I64, target);
        let hit = self.b.ins().icmp(IntCC::Equal, cached, target64);
        let hit_block = self.b.create_block();
        let miss_block = self.b.create_block();
        self.b.ins().brif(hit, hit_block, &[], miss_block, &[]);
        self.b.switch_to_block(hit_block);
        self.b.seal_block(hit_block);
        let code = self.b.ins().load(I64, trusted(), entry, 8);
        let cpu = self.cpu;
        self.b.ins().return_call_indirect(self.tail_sig, code, &[cpu]);
        self.b.switch_to_block(miss_block);
        self.b.seal_block(miss_block);
        let code = self.b.ins().iconst(I64, EXIT_DISPATCH);
        self.b.ins().return_(&[code]);
    }

    /// Branches to a cold exit that hands instruction `i` to the interpreter when
    /// `cond` is true; continues in a fresh block otherwise.
    fn step_if(&mut self, cond: Value, i: usize) {
        let cold = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(cold);
        self.b.ins().brif(cond, cold, &[], cont, &[]);
        self.b.switch_to_block(cold);
        self.b.seal_block(cold);
        let pc = self.iconst(self.block.pc_of(i));
        self.exit_return(pc, i, EXIT_STEP);
        self.b.switch_to_block(cont);
        self.b.seal_block(cont);
    }

    /// A helper call for the access (generic or profiling): on refusal, the interpreter
    /// takes over at instruction `i`. Returns the loaded value (zero-extended).
    fn access_call(&mut self, i: usize, access: Access, addr: Value, record: Option<u64>) -> Option<Value> {
        let cpu = self.cpu;
        let rec = record.map(|r| self.b.ins().iconst(I64, r as i64));
        match access {
            Access::Load { width, .. } => {
                let result = match rec {
                    Some(rec) => self.call(Helper::ProfileLoad(width), &[cpu, addr, rec]),
                    None => self.call(Helper::Load(width), &[cpu, addr]),
                };
                let refused = self.b.ins().ushr_imm_s(result, 32);
                self.step_if(refused, i);
                Some(self.b.ins().ireduce(I32, result))
            }
            Access::Store { width, value } => {
                let refused = match rec {
                    Some(rec) => self.call(Helper::ProfileStore(width), &[cpu, addr, value, rec]),
                    None => self.call(Helper::Store(width), &[cpu, addr, value]),
                };
                self.step_if(refused, i);
                None
            }
        }
    }

    /// One inline access to `arena_base + zext(addr)`, marked with the inline trap code.
    fn access_inline(&mut self, access: Access, addr: Value) -> Option<Value> {
        self.sync();
        let addr64 = self.b.ins().uextend(I64, addr);
        let host = self.b.ins().iadd_imm_s(addr64, self.env.arena_base as i64);
        let flags = MemFlagsData::new().with_trap_code(Some(inline_trap_code()));
        let ins = self.b.ins();
        match access {
            Access::Load { width: 0, signed: true, .. } => Some(ins.sload8(I32, flags, host, 0)),
            Access::Load { width: 0, signed: false, .. } => Some(ins.uload8(I32, flags, host, 0)),
            Access::Load { width: 1, signed: true, .. } => Some(ins.sload16(I32, flags, host, 0)),
            Access::Load { width: 1, signed: false, .. } => Some(ins.uload16(I32, flags, host, 0)),
            Access::Load { .. } => Some(ins.load(I32, flags, host, 0)),
            Access::Store { width: 0, value } => {
                ins.istore8(flags, value, host, 0);
                None
            }
            Access::Store { width: 1, value } => {
                ins.istore16(flags, value, host, 0);
                None
            }
            Access::Store { value, .. } => {
                ins.store(flags, value, host, 0);
                None
            }
        }
    }

    /// COMMITTED(device): inside the device, a direct call of its function; outside,
    /// the profiling helper (which makes the access VARIABLE).
    fn access_device(&mut self, i: usize, access: Access, addr: Value, dev: Device, record: u64) -> Option<Value> {
        let (base, size) = dev.range();
        let width = match access {
            Access::Load { width, .. } | Access::Store { width, .. } => width,
        };
        let bytes = 1u32 << width;
        let offset = self.b.ins().iadd_imm_s(addr, -i64::from(base as i32));
        let inside = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThanOrEqual, offset, i64::from(size - bytes));
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        let join = self.b.create_block();
        let is_load = matches!(access, Access::Load { .. });
        if is_load {
            self.b.append_block_param(join, I32);
        }
        self.b.set_cold_block(slow);
        self.b.ins().brif(inside, fast, &[], slow, &[]);

        self.b.switch_to_block(fast);
        self.b.seal_block(fast);
        let cpu = self.cpu;
        let width_v = self.b.ins().iconst(I32, width as i64);
        match access {
            Access::Load { .. } => {
                let v = self.call(Helper::DeviceRead(dev.index()), &[cpu, offset, width_v]);
                let v = self.b.ins().ireduce(I32, v);
                self.b.ins().jump(join, &[v.into()]);
            }
            Access::Store { value, .. } => {
                let effect = self.call(Helper::DeviceWrite(dev.index()), &[cpu, offset, width_v, value]);
                self.step_if(effect, i);
                self.b.ins().jump(join, &[]);
            }
        }

        self.b.switch_to_block(slow);
        self.b.seal_block(slow);
        let v = self.access_call(i, access, addr, Some(record));
        let args: Vec<_> = v.into_iter().map(Into::into).collect();
        self.b.ins().jump(join, &args);

        self.b.switch_to_block(join);
        self.b.seal_block(join);
        is_load.then(|| self.b.block_params(join)[0])
    }

    /// Lifts a load or store at instruction `i` as its access plan says.
    fn access(&mut self, i: usize, access: Access, addr: Value) {
        let plan = (self.plan_for)(self.block.pc_of(i));
        let value = match plan.state {
            AccessState::Variable => self.access_call(i, access, addr, None),
            AccessState::Naive { .. } => self.access_call(i, access, addr, Some(plan.record)),
            AccessState::Committed(RegionClass::Ram) => self.access_inline(access, addr),
            AccessState::Committed(RegionClass::Device(dev)) => self.access_device(i, access, addr, dev, plan.record),
        };
        if let (Access::Load { rd, width, signed }, Some(v)) = (access, value) {
            // Helpers return zero-extended values; inline loads are already extended.
            let v = match (plan.state, width, signed) {
                (AccessState::Committed(RegionClass::Ram), _, _) | (_, 2, _) => v,
                (_, 0, true) => {
                    let n = self.b.ins().ireduce(ir::types::I8, v);
                    self.b.ins().sextend(I32, n)
                }
                (_, 1, true) => {
                    let n = self.b.ins().ireduce(ir::types::I16, v);
                    self.b.ins().sextend(I32, n)
                }
                _ => v,
            };
            self.set_reg(rd, v);
        }
    }

    fn alu(&mut self, op: AluOp, a: Value, bv: Value) -> Value {
        let b = &mut self.b;
        match op {
            AluOp::Add => b.ins().iadd(a, bv),
            AluOp::Sub => b.ins().isub(a, bv),
            // Cranelift takes shift amounts modulo the type width, as RISC-V does.
            AluOp::Sll => b.ins().ishl(a, bv),
            AluOp::Srl => b.ins().ushr(a, bv),
            AluOp::Sra => b.ins().sshr(a, bv),
            AluOp::Slt => {
                let c = b.ins().icmp(IntCC::SignedLessThan, a, bv);
                b.ins().uextend(I32, c)
            }
            AluOp::Sltu => {
                let c = b.ins().icmp(IntCC::UnsignedLessThan, a, bv);
                b.ins().uextend(I32, c)
            }
            AluOp::Xor => b.ins().bxor(a, bv),
            AluOp::Or => b.ins().bor(a, bv),
            AluOp::And => b.ins().band(a, bv),
            AluOp::Mul => b.ins().imul(a, bv),
            AluOp::Mulh => b.ins().smulhi(a, bv),
            AluOp::Mulhu => b.ins().umulhi(a, bv),
            AluOp::Mulhsu => {
                let a64 = b.ins().sextend(I64, a);
                let b64 = b.ins().uextend(I64, bv);
                let p = b.ins().imul(a64, b64);
                let hi = b.ins().sshr_imm_s(p, 32);
                b.ins().ireduce(I32, hi)
            }
            AluOp::Div | AluOp::Rem => {
                // Cranelift traps on division by zero and INT_MIN / -1; RISC-V does not.
                let zero = b.ins().icmp_imm_s(IntCC::Equal, bv, 0);
                let a_min = b.ins().icmp_imm_s(IntCC::Equal, a, i64::from(i32::MIN));
                let b_neg1 = b.ins().icmp_imm_s(IntCC::Equal, bv, -1);
                let overflow = b.ins().band(a_min, b_neg1);
                let special = b.ins().bor(zero, overflow);
                let one = b.ins().iconst(I32, 1);
                let divisor = b.ins().select(special, one, bv);
                if op == AluOp::Div {
                    // x / 1 = INT_MIN for the overflow case; all ones for division by zero.
                    let q = b.ins().sdiv(a, divisor);
                    let all_ones = b.ins().iconst(I32, -1);
                    b.ins().select(zero, all_ones, q)
                } else {
                    // x % 1 = 0 for the overflow case; the dividend for division by zero.
                    let r = b.ins().srem(a, divisor);
                    b.ins().select(zero, a, r)
                }
            }
            AluOp::Divu | AluOp::Remu => {
                let zero = b.ins().icmp_imm_s(IntCC::Equal, bv, 0);
                let one = b.ins().iconst(I32, 1);
                let divisor = b.ins().select(zero, one, bv);
                if op == AluOp::Divu {
                    let q = b.ins().udiv(a, divisor);
                    let all_ones = b.ins().iconst(I32, -1);
                    b.ins().select(zero, all_ones, q)
                } else {
                    let r = b.ins().urem(a, divisor);
                    b.ins().select(zero, a, r)
                }
            }
        }
    }

    fn lift(&mut self, i: usize, inst: Inst) {
        let pc = self.block.pc_of(i);
        // The next instruction's pc: the link value and a branch's fall-through.
        let next = self.block.pc_of(i + 1);
        match inst {
            Inst::Lui { rd, imm } => {
                let v = self.iconst(imm);
                self.set_reg(rd, v);
            }
            Inst::Auipc { rd, imm } => {
                let v = self.iconst(pc.wrapping_add(imm));
                self.set_reg(rd, v);
            }
            Inst::OpImm { op: AluOp::Add, rd, rs1, imm: 0 } => {
                // mv (and nop): no arithmetic to emit.
                let v = self.reg(rs1);
                self.set_reg(rd, v);
            }
            Inst::OpImm { op, rd, rs1, imm } => {
                let a = self.reg(rs1);
                let b = self.iconst(imm as u32);
                let v = self.alu(op, a, b);
                self.set_reg(rd, v);
            }
            Inst::Op { op, rd, rs1, rs2 } => {
                let a = self.reg(rs1);
                let b = self.reg(rs2);
                let v = self.alu(op, a, b);
                self.set_reg(rd, v);
            }
            Inst::Load { op, rd, rs1, offset } => {
                let base = self.reg(rs1);
                let addr = self.b.ins().iadd_imm_s(base, i64::from(offset));
                let (width, signed) = match op {
                    LoadOp::Lb => (0, true),
                    LoadOp::Lbu => (0, false),
                    LoadOp::Lh => (1, true),
                    LoadOp::Lhu => (1, false),
                    LoadOp::Lw => (2, false),
                };
                self.access(i, Access::Load { rd, width, signed }, addr);
            }
            Inst::Store { op, rs1, rs2, offset } => {
                let base = self.reg(rs1);
                let addr = self.b.ins().iadd_imm_s(base, i64::from(offset));
                let value = self.reg(rs2);
                let width = match op {
                    StoreOp::Sb => 0,
                    StoreOp::Sh => 1,
                    StoreOp::Sw => 2,
                };
                self.access(i, Access::Store { width, value }, addr);
            }
            Inst::Fence { .. } => {}
            Inst::Jal { rd, offset } => {
                let target = pc.wrapping_add(offset as u32);
                if !self.block.aligned(target) {
                    // The interpreter raises the misaligned-target fault.
                    let pcv = self.iconst(pc);
                    self.exit_return(pcv, i, EXIT_STEP);
                    return;
                }
                let link = self.iconst(next);
                self.set_reg(rd, link);
                self.exit_chain(target, i + 1);
            }
            Inst::Jalr { rd, rs1, offset } => {
                let base = self.reg(rs1);
                let sum = self.b.ins().iadd_imm_s(base, i64::from(offset));
                let target = self.b.ins().band_imm_s(sum, -2);
                if self.block.ialign == 4 {
                    // Without C a target at 2 mod 4 faults (with C every target is legal).
                    let misaligned = self.b.ins().band_imm_s(target, 2);
                    self.step_if(misaligned, i);
                }
                let link = self.iconst(next);
                self.set_reg(rd, link);
                self.exit_indirect(target, i + 1);
            }
            Inst::Branch { op, rs1, rs2, offset } => {
                let a = self.reg(rs1);
                let b = self.reg(rs2);
                let cc = match op {
                    BranchOp::Beq => IntCC::Equal,
                    BranchOp::Bne => IntCC::NotEqual,
                    BranchOp::Blt => IntCC::SignedLessThan,
                    BranchOp::Bge => IntCC::SignedGreaterThanOrEqual,
                    BranchOp::Bltu => IntCC::UnsignedLessThan,
                    BranchOp::Bgeu => IntCC::UnsignedGreaterThanOrEqual,
                };
                let cond = self.b.ins().icmp(cc, a, b);
                // Both exits store the same registers and retired count: do it once, here.
                self.sync();
                let retired = self.b.ins().iadd_imm_s(self.retired0, (i + 1) as i64);
                self.retired_before_exit = Some((i + 1, retired));
                let taken = self.b.create_block();
                let not_taken = self.b.create_block();
                self.b.ins().brif(cond, taken, &[], not_taken, &[]);
                self.b.switch_to_block(taken);
                self.b.seal_block(taken);
                let target = pc.wrapping_add(offset as u32);
                if !self.block.aligned(target) {
                    let pcv = self.iconst(pc);
                    self.exit_return(pcv, i, EXIT_STEP);
                } else {
                    self.exit_chain(target, i + 1);
                }
                self.b.switch_to_block(not_taken);
                self.b.seal_block(not_taken);
                self.exit_chain(next, i + 1);
            }
            Inst::Amo { op, rd, rs1, rs2, .. } => {
                let addr = self.reg(rs1);
                let src = self.reg(rs2);
                self.amo(i, op, rd, addr, src);
            }
            // Instructions that need the runtime never reach the lifter (see block.rs).
            Inst::FenceI
            | Inst::Ecall
            | Inst::Ebreak
            | Inst::Mret
            | Inst::Wfi
            | Inst::Csr { .. }
            | Inst::Lr { .. }
            | Inst::Sc { .. }
            | Inst::Illegal(_) => {
                let pcv = self.iconst(pc);
                self.exit_return(pcv, i, EXIT_STEP);
            }
        }
    }

    /// The value an AMO stores.
    fn amo_value(&mut self, op: AmoOp, old: Value, src: Value) -> Value {
        let ins = self.b.ins();
        match op {
            AmoOp::Swap => src,
            AmoOp::Add => ins.iadd(old, src),
            AmoOp::Xor => ins.bxor(old, src),
            AmoOp::And => ins.band(old, src),
            AmoOp::Or => ins.bor(old, src),
            AmoOp::Min => ins.smin(old, src),
            AmoOp::Max => ins.smax(old, src),
            AmoOp::Minu => ins.umin(old, src),
            AmoOp::Maxu => ins.umax(old, src),
        }
    }

    /// An AMO at instruction `i`, as its access plan says. COMMITTED(RAM): a misaligned
    /// address goes to the interpreter (which raises the fault), else one inline load
    /// and one inline store, both in the fault map (a fault on either leaves memory and
    /// registers unchanged: rd is written after the store). Any other state: the AMO
    /// helper (profiling unless VARIABLE); a refusal goes to the interpreter.
    fn amo(&mut self, i: usize, op: AmoOp, rd: u8, addr: Value, src: Value) {
        let plan = (self.plan_for)(self.block.pc_of(i));
        let old = match plan.state {
            AccessState::Committed(RegionClass::Ram) => {
                let misaligned = self.b.ins().band_imm_s(addr, 3);
                self.step_if(misaligned, i);
                self.sync();
                let addr64 = self.b.ins().uextend(I64, addr);
                let host = self.b.ins().iadd_imm_s(addr64, self.env.arena_base as i64);
                let flags = MemFlagsData::new().with_trap_code(Some(inline_trap_code()));
                let old = self.b.ins().load(I32, flags, host, 0);
                let new = self.amo_value(op, old, src);
                self.b.ins().store(flags, new, host, 0);
                old
            }
            state => {
                let record = if state == AccessState::Variable { 0 } else { plan.record };
                let cpu = self.cpu;
                let opv = self.b.ins().iconst(I32, op.index() as i64);
                let rec = self.b.ins().iconst(I64, record as i64);
                let result = self.call(Helper::Amo, &[cpu, addr, src, opv, rec]);
                let refused = self.b.ins().ushr_imm_s(result, 32);
                self.step_if(refused, i);
                self.b.ins().ireduce(I32, result)
            }
        };
        self.set_reg(rd, old);
    }
}
