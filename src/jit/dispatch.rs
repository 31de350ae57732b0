//! The dispatcher: the only loop of a translated run. It looks up (or compiles) the
//! block at `cpu.pc`, enters translated code through the fault-catching trampoline, and
//! handles what comes back: instructions that need the runtime, refused accesses,
//! inline accesses that faulted, access records that changed state, blocks that became
//! hot, budget ends and cache flushes.
//!
//! The cache is flushed only here, between two entries into translated code: `run`
//! holds the only `&mut CodeCache`, while translated code and the helpers get a
//! `*mut Cpu`, from which only the [`Machine`] is reachable (it holds no handle to the
//! cache). What must drop translations during a run (`fence.i`, a syscall that changes
//! code) sets a flag this loop acts on.

use crate::guest::cpu::Cpu;
use crate::guest::decode::Inst;
use crate::interp;
use crate::jit::abi::{EXIT_HOT, EXIT_STEP};
use crate::jit::access::RegionClass;
use crate::jit::block::ends_block;
use crate::jit::cache::CodeCache;
use crate::jit::codegen::{ValueLoc, RECOVER_RETIRED};
use crate::jit::fault::{self, EntryResult};
use crate::jit::JitError;
use crate::machine::{Exit, Machine};
use crate::memory::{ARENA_GUARD, GUEST_SPACE};

/// Guest instructions between two returns to the dispatcher (interrupt checks).
const SLICE: u64 = 1 << 22;

/// Interprets from `cpu.pc` to the end of the block (a branch or jump, an instruction
/// that needs the runtime), at most `max` instructions. Returns true when a `fence.i`
/// ran or a syscall changed code (`Machine::code_changed`), after which translations
/// must be dropped.
/// Loads and stores interpreted here feed their access records too, so a block that
/// becomes hot is usually compiled with its accesses already committed.
fn interpret(m: &mut Machine, cache: &mut CodeCache, max: u64) -> Result<bool, Exit> {
    let mut fence_i = false;
    for _ in 0..max {
        let pc = m.cpu.pc;
        let (inst, len) = interp::fetch(m)?;
        let addr = match inst {
            Inst::Load { rs1, offset, .. } | Inst::Store { rs1, offset, .. } => {
                Some(m.cpu.reg(rs1).wrapping_add(offset as u32))
            }
            Inst::Amo { rs1, .. } => Some(m.cpu.reg(rs1)),
            _ => None,
        };
        interp::execute(m, inst, len)?;
        if let Some(addr) = addr {
            if let Some(t) = cache.observe(pc, RegionClass::of(&m.mem, addr)) {
                m.stats.transitions.add(t);
            }
        }
        fence_i |= inst == Inst::FenceI || std::mem::take(&mut m.code_changed);
        if ends_block(&inst) {
            break;
        }
    }
    Ok(fence_i)
}

/// Completes `Cpu` after an inline access faulted: the guest registers (and running
/// retired total) the code had not stored, from the fault's registers and frame.
fn recover(m: &mut Machine, list: &[(u8, ValueLoc)]) -> Result<(), JitError> {
    if list.is_empty() {
        return Ok(());
    }
    fault::with_fault_context(|ctx| {
        for &(r, loc) in list {
            let value = match loc {
                ValueLoc::Gpr(g) => ctx.gprs[usize::from(g & 15)],
                ValueLoc::Cfa(off) => ctx.frame_u64(i64::from(off)).ok_or_else(|| {
                    JitError::Internal(format!("a guest register's stack slot (CFA{off:+}) was not kept"))
                })?,
                ValueLoc::Const(c) => u64::from(c),
            };
            if r == RECOVER_RETIRED {
                m.cpu.retired = value;
            } else {
                m.cpu.set_reg(r, value as u32);
            }
        }
        Ok(())
    })
}

/// Runs `m` on translated code until it exits, faults, reaches `max_insns`, or
/// `interrupted` reports a signal.
pub fn run(
    m: &mut Machine,
    cache: &mut CodeCache,
    max_insns: Option<u64>,
    interrupted: &dyn Fn() -> Option<i32>,
) -> Result<Exit, JitError> {
    fault::install();
    let arena = (m.mem.arena_base() as usize, (GUEST_SPACE + ARENA_GUARD) as usize);
    let limit = max_insns.unwrap_or(u64::MAX);
    let max_block = cache.max_block_insns() as u64;
    loop {
        for pc in m.access_events.drain(..) {
            cache.access_changed(pc);
        }
        cache.poll()?;
        if m.cpu.retired >= limit {
            return Ok(Exit::InsnLimit(m.cpu.retired));
        }
        if let Some(sig) = interrupted() {
            return Ok(Exit::Interrupted(sig));
        }
        // How many instructions to interpret (0: none, translated code ran). While an
        // lr.w reservation is valid everything is interpreted, so that every store
        // is checked against it (translated code never checks).
        let block = if m.reservation_valid() { None } else { cache.lookup(&m.mem, m.cpu.pc)? };
        let interpret_max = match block {
            // A block that would pass --max-insns is finished instruction by instruction.
            Some(block) if m.cpu.retired + u64::from(block.len) <= limit => {
                m.cpu.budget_end = limit.min(m.cpu.retired.saturating_add(SLICE));
                m.stats.dispatcher_entries += 1;
                let cpu = (m as *mut Machine).cast::<Cpu>();
                // SAFETY: the block was compiled by `cache`, which drops code only
                // between entries; `cpu` comes from `&mut Machine`, which nothing else
                // uses until translated code returns.
                let result = unsafe { fault::enter(cpu, block.code, arena) };
                if !m.mem.uart_out.is_empty() {
                    m.flush_uart();
                }
                match result {
                    // A refused access: the interpreter executes that one instruction.
                    EntryResult::Exit(EXIT_STEP) => 1,
                    EntryResult::Exit(EXIT_HOT) => {
                        cache.tier_up(&m.mem, m.cpu.pc)?;
                        0
                    }
                    EntryResult::Exit(_) => 0,
                    EntryResult::Fault { rip, addr } => {
                        let Some((site, transition)) = cache.inline_fault(rip as u64) else {
                            return Err(JitError::Internal(format!(
                                "host fault at {rip:#x} (address {addr:#x}) is not an inline guest access"
                            )));
                        };
                        // Registers not stored before the access are recovered from where
                        // the code kept them; pc and the retired count come from the map.
                        recover(m, &site.recover)?;
                        m.stats.registers_recovered += site.recover.len() as u64;
                        m.cpu.pc = site.pc;
                        m.cpu.retired += u64::from(site.retired);
                        m.stats.faults_handled += 1;
                        if let Some(t) = transition {
                            m.stats.transitions.add(t);
                        }
                        0
                    }
                }
            }
            // Cold, needs the runtime, or would pass --max-insns: interpret the block.
            _ => (limit - m.cpu.retired).min(max_block),
        };
        if interpret_max > 0 {
            match interpret(m, cache, interpret_max) {
                Ok(true) => cache.flush()?,
                Ok(false) => {}
                Err(exit) => return Ok(exit),
            }
            for dev in std::mem::take(&mut m.mem.devices_removed) {
                for t in cache.device_removed(dev)? {
                    m.stats.transitions.add(t);
                }
            }
        }
    }
}
