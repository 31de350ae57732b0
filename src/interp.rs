//! The interpreter: executes one guest instruction at a time, straight from the
//! specification. It is the oracle every translating backend is tested against, so it
//! stays plain. Translated code also uses [`step`] for the instructions that need the
//! runtime (ecall, CSR accesses, mret, fence.i, lr/sc, faults).

use crate::guest::cpu::CsrFile;
use crate::guest::decode::{decode_insn, AluOp, AmoOp, BranchOp, CsrOp, Inst, LoadOp, StoreOp};
use crate::machine::{Exit, FaultKind, GuestFault, Machine, Reservation, RESERVATION_INSNS};
use crate::memory::{DeviceEffect, Memory, Width};
use crate::syscall;

/// The value of an ALU operation (RV32I and M, including the M edge cases: division by
/// zero gives all ones / the dividend, INT_MIN / -1 gives INT_MIN / 0).
pub fn alu(op: AluOp, a: u32, b: u32) -> u32 {
    let (sa, sb) = (a as i32, b as i32);
    match op {
        AluOp::Add => a.wrapping_add(b),
        AluOp::Sub => a.wrapping_sub(b),
        AluOp::Sll => a << (b & 31),
        AluOp::Slt => u32::from(sa < sb),
        AluOp::Sltu => u32::from(a < b),
        AluOp::Xor => a ^ b,
        AluOp::Srl => a >> (b & 31),
        AluOp::Sra => (sa >> (b & 31)) as u32,
        AluOp::Or => a | b,
        AluOp::And => a & b,
        AluOp::Mul => a.wrapping_mul(b),
        AluOp::Mulh => ((i64::from(sa) * i64::from(sb)) >> 32) as u32,
        AluOp::Mulhsu => ((i64::from(sa) * i64::from(b)) >> 32) as u32,
        AluOp::Mulhu => ((u64::from(a) * u64::from(b)) >> 32) as u32,
        AluOp::Div => match sb {
            0 => u32::MAX,
            -1 => sa.wrapping_neg() as u32,
            _ => (sa / sb) as u32,
        },
        AluOp::Divu => a.checked_div(b).unwrap_or(u32::MAX),
        AluOp::Rem => match sb {
            0 => a,
            -1 => 0,
            _ => (sa % sb) as u32,
        },
        AluOp::Remu => a.checked_rem(b).unwrap_or(a),
    }
}

/// Is the branch taken?
pub fn branch_taken(op: BranchOp, a: u32, b: u32) -> bool {
    match op {
        BranchOp::Beq => a == b,
        BranchOp::Bne => a != b,
        BranchOp::Blt => (a as i32) < (b as i32),
        BranchOp::Bge => (a as i32) >= (b as i32),
        BranchOp::Bltu => a < b,
        BranchOp::Bgeu => a >= b,
    }
}

/// Width of a load and whether it sign-extends.
pub fn load_shape(op: LoadOp) -> (Width, bool) {
    match op {
        LoadOp::Lb => (Width::B1, true),
        LoadOp::Lh => (Width::B2, true),
        LoadOp::Lw => (Width::B4, false),
        LoadOp::Lbu => (Width::B1, false),
        LoadOp::Lhu => (Width::B2, false),
    }
}

pub fn store_width(op: StoreOp) -> Width {
    match op {
        StoreOp::Sb => Width::B1,
        StoreOp::Sh => Width::B2,
        StoreOp::Sw => Width::B4,
    }
}

/// Sign- or zero-extends a loaded value.
pub fn extend(value: u32, width: Width, signed: bool) -> u32 {
    match (width, signed) {
        (Width::B1, true) => value as u8 as i8 as i32 as u32,
        (Width::B2, true) => value as u16 as i16 as i32 as u32,
        (Width::B1, false) => value & 0xff,
        (Width::B2, false) => value & 0xffff,
        (Width::B4, _) => value,
    }
}

fn fault(kind: FaultKind, pc: u32, addr: u32) -> Exit {
    Exit::Fault(GuestFault { kind, pc, addr })
}

/// Fetches and decodes the instruction at `cpu.pc`: the instruction and its length in
/// bytes (a misaligned pc or an unfetchable instruction is the guest fault; a fault on
/// the second half of an instruction reports that half's address).
pub fn fetch(m: &Machine) -> Result<(Inst, u32), Exit> {
    let pc = m.cpu.pc;
    let isa = m.mem.isa;
    if !pc.is_multiple_of(isa.ialign()) {
        return Err(fault(FaultKind::FetchMisaligned, pc, pc));
    }
    let (bits, _) = m.mem.fetch_insn(pc).map_err(|addr| fault(FaultKind::FetchAccess, pc, addr))?;
    Ok(decode_insn(isa, bits))
}

/// Fetches and executes the instruction at `cpu.pc`. On success the instruction has
/// retired (`cpu.retired` incremented, pc advanced). On `Err` the run ends; a fault
/// leaves the state as it was before the instruction.
pub fn step(m: &mut Machine) -> Result<(), Exit> {
    let (inst, len) = fetch(m)?;
    execute(m, inst, len)
}

/// One AMO on `addr` through the generic memory path: returns the old value and the
/// device effect of the store, or the fault (misaligned, or no read and write access;
/// AMOs raise store/AMO faults). On `Err` memory is unchanged.
pub fn amo(mem: &mut Memory, op: AmoOp, addr: u32, src: u32) -> Result<(u32, DeviceEffect), FaultKind> {
    if addr & 3 != 0 {
        return Err(FaultKind::StoreMisaligned);
    }
    let old = mem.load(addr, Width::B4).map_err(|_| FaultKind::StoreAccess)?;
    let effect = mem.store(addr, Width::B4, op.apply(old, src)).map_err(|_| FaultKind::StoreAccess)?;
    Ok((old, effect))
}

/// Executes one decoded instruction of `len` bytes located at `cpu.pc`.
pub fn execute(m: &mut Machine, inst: Inst, len: u32) -> Result<(), Exit> {
    let pc = m.cpu.pc;
    let mut next = pc.wrapping_add(len);
    // Jump and branch targets must be 4-byte aligned, or 2-byte aligned with C.
    let misaligned = m.mem.isa.ialign() - 1;
    let cpu = &mut m.cpu;
    match inst {
        Inst::Lui { rd, imm } => cpu.set_reg(rd, imm),
        Inst::Auipc { rd, imm } => cpu.set_reg(rd, pc.wrapping_add(imm)),
        Inst::Jal { rd, offset } => {
            let target = pc.wrapping_add(offset as u32);
            if target & misaligned != 0 {
                return Err(fault(FaultKind::FetchMisaligned, pc, target));
            }
            cpu.set_reg(rd, next);
            next = target;
        }
        Inst::Jalr { rd, rs1, offset } => {
            let target = cpu.reg(rs1).wrapping_add(offset as u32) & !1;
            if target & misaligned != 0 {
                return Err(fault(FaultKind::FetchMisaligned, pc, target));
            }
            cpu.set_reg(rd, next);
            next = target;
        }
        Inst::Branch { op, rs1, rs2, offset } => {
            if branch_taken(op, cpu.reg(rs1), cpu.reg(rs2)) {
                let target = pc.wrapping_add(offset as u32);
                if target & misaligned != 0 {
                    return Err(fault(FaultKind::FetchMisaligned, pc, target));
                }
                next = target;
            }
        }
        Inst::Load { op, rd, rs1, offset } => {
            let addr = cpu.reg(rs1).wrapping_add(offset as u32);
            let (width, signed) = load_shape(op);
            let v = m.mem.load(addr, width).map_err(|_| fault(FaultKind::LoadAccess, pc, addr))?;
            m.cpu.set_reg(rd, extend(v, width, signed));
        }
        Inst::Store { op, rs1, rs2, offset } => {
            let addr = cpu.reg(rs1).wrapping_add(offset as u32);
            let value = cpu.reg(rs2);
            let width = store_width(op);
            let effect = m.mem.store(addr, width, value).map_err(|_| fault(FaultKind::StoreAccess, pc, addr))?;
            m.store_seen(addr, width.bytes());
            if let DeviceEffect::Exit(code) = effect {
                m.cpu.retired += 1;
                m.cpu.pc = next;
                m.flush_uart();
                return Err(Exit::Exited(code));
            }
        }
        Inst::OpImm { op, rd, rs1, imm } => cpu.set_reg(rd, alu(op, cpu.reg(rs1), imm as u32)),
        Inst::Op { op, rd, rs1, rs2 } => cpu.set_reg(rd, alu(op, cpu.reg(rs1), cpu.reg(rs2))),
        Inst::Fence { .. } | Inst::Wfi | Inst::FenceI => {}
        Inst::Ecall => {
            // A syscall is a context switch: it clears the reservation.
            m.reservation = None;
            let result = syscall::handle_ecall(m);
            // A refused call (a guest fault) did not run: like every faulting
            // instruction (`ebreak`, an access fault), it is not retired and pc stays on
            // it. Every other ending (exit, a stop signal) and success retire it.
            if !matches!(result, Err(Exit::Fault(_))) {
                m.cpu.retired += 1;
                m.cpu.pc = next;
            }
            return result;
        }
        Inst::Ebreak => return Err(fault(FaultKind::Breakpoint, pc, 0)),
        Inst::Mret => next = m.csrs.read(crate::guest::cpu::CSR_MEPC, m.counters()) & !misaligned,
        Inst::Csr { op, rd, src, csr } => {
            let operand = match op {
                CsrOp::Rw | CsrOp::Rs | CsrOp::Rc => cpu.reg(src),
                CsrOp::Rwi | CsrOp::Rsi | CsrOp::Rci => u32::from(src),
            };
            // csrrs/csrrc (and the immediate forms) with a zero source do not write.
            let writes = matches!(op, CsrOp::Rw | CsrOp::Rwi) || src != 0;
            if writes && CsrFile::is_read_only(csr) {
                return Err(fault(FaultKind::IllegalInstruction, pc, 0));
            }
            let old = m.csrs.read(csr, m.counters());
            if writes {
                let new = match op {
                    CsrOp::Rw | CsrOp::Rwi => operand,
                    CsrOp::Rs | CsrOp::Rsi => old | operand,
                    CsrOp::Rc | CsrOp::Rci => old & !operand,
                };
                m.csrs.write(csr, new);
            }
            m.cpu.set_reg(rd, old);
        }
        Inst::Lr { rd, rs1, .. } => {
            let addr = cpu.reg(rs1);
            if addr & 3 != 0 {
                return Err(fault(FaultKind::LoadMisaligned, pc, addr));
            }
            let v = m.mem.load(addr, Width::B4).map_err(|_| fault(FaultKind::LoadAccess, pc, addr))?;
            m.cpu.set_reg(rd, v);
            m.reservation = Some(Reservation { addr, until: m.cpu.retired + 1 + RESERVATION_INSNS });
        }
        Inst::Sc { rd, rs1, rs2, .. } => {
            let addr = cpu.reg(rs1);
            let value = cpu.reg(rs2);
            // Without a valid reservation of this word the sc fails without touching
            // memory (so it raises no fault, misaligned or not, as on QEMU).
            let reserved = m.reservation_valid() && m.reservation.is_some_and(|r| r.addr == addr);
            let result = if reserved {
                let effect =
                    m.mem.store(addr, Width::B4, value).map_err(|_| fault(FaultKind::StoreAccess, pc, addr))?;
                if let DeviceEffect::Exit(code) = effect {
                    m.reservation = None;
                    m.cpu.set_reg(rd, 0);
                    m.cpu.retired += 1;
                    m.cpu.pc = next;
                    m.flush_uart();
                    return Err(Exit::Exited(code));
                }
                0
            } else {
                1
            };
            m.reservation = None;
            m.cpu.set_reg(rd, result);
        }
        Inst::Amo { op, rd, rs1, rs2, .. } => {
            let addr = cpu.reg(rs1);
            let (old, effect) = amo(&mut m.mem, op, addr, cpu.reg(rs2)).map_err(|kind| fault(kind, pc, addr))?;
            m.store_seen(addr, 4);
            m.cpu.set_reg(rd, old);
            if let DeviceEffect::Exit(code) = effect {
                m.cpu.retired += 1;
                m.cpu.pc = next;
                m.flush_uart();
                return Err(Exit::Exited(code));
            }
        }
        Inst::Illegal(_) => return Err(fault(FaultKind::IllegalInstruction, pc, 0)),
    }
    m.cpu.pc = next;
    m.cpu.retired += 1;
    Ok(())
}

/// How often the interpreter looks at the interrupt flag.
const INTERRUPT_CHECK_INTERVAL: u64 = 1 << 16;

/// Runs the machine on the interpreter until it exits, faults, reaches `max_insns`
/// retired instructions, or `interrupted` returns a signal number.
pub fn run(m: &mut Machine, max_insns: Option<u64>, interrupted: &dyn Fn() -> Option<i32>) -> Exit {
    let limit = max_insns.unwrap_or(u64::MAX);
    loop {
        if m.cpu.retired >= limit {
            return Exit::InsnLimit(m.cpu.retired);
        }
        let chunk_end = limit.min(m.cpu.retired + INTERRUPT_CHECK_INTERVAL);
        while m.cpu.retired < chunk_end {
            if let Err(exit) = step(m) {
                return exit;
            }
        }
        if let Some(sig) = interrupted() {
            return Exit::Interrupted(sig);
        }
    }
}

/// Receives what a watched run executes (`--trace`, implemented by
/// [`crate::trace::Tracer`]): the interpreter reports every instruction, the
/// translating dispatcher every entry into translated code.
pub trait Observer {
    /// Guest code at `pc` is about to run, `retired` instructions retired so far.
    fn enter(&mut self, pc: u32, retired: u64);
    /// The instruction `inst` at `pc` retired; `cpu` is the state after it.
    fn retired(&mut self, pc: u32, inst: &Inst, cpu: &crate::guest::cpu::Cpu);
    /// Translated code ran one or more instructions; `ends_block`: the last one ends a
    /// dynamic block (a branch or jump).
    fn ran(&mut self, ends_block: bool);
    /// Does it need every instruction reported ([`Observer::retired`]), also from
    /// translated code (which must then be compiled one instruction a block)?
    fn wants_instructions(&self) -> bool;
}

/// [`step`], reported to `observer`.
pub fn step_observed(m: &mut Machine, observer: &mut dyn Observer) -> Result<(), Exit> {
    let pc = m.cpu.pc;
    observer.enter(pc, m.cpu.retired);
    let (inst, len) = fetch(m)?;
    let before = m.cpu.retired;
    let result = execute(m, inst, len);
    if m.cpu.retired != before {
        observer.retired(pc, &inst, &m.cpu);
    }
    result
}

/// [`run`] with every instruction reported to `observer`.
pub fn run_observed(
    m: &mut Machine,
    max_insns: Option<u64>,
    interrupted: &dyn Fn() -> Option<i32>,
    observer: &mut dyn Observer,
) -> Exit {
    let limit = max_insns.unwrap_or(u64::MAX);
    let mut next_check = m.cpu.retired.saturating_add(INTERRUPT_CHECK_INTERVAL);
    loop {
        if m.cpu.retired >= limit {
            return Exit::InsnLimit(m.cpu.retired);
        }
        if m.cpu.retired >= next_check {
            next_check = m.cpu.retired.saturating_add(INTERRUPT_CHECK_INTERVAL);
            if let Some(sig) = interrupted() {
                return Exit::Interrupted(sig);
            }
        }
        if let Err(exit) = step_observed(m, observer) {
            return exit;
        }
    }
}
