//! The dispatcher: the only loop of a translated run. It looks up (or compiles) the
//! block at `cpu.pc`, enters translated code, and handles what translated code hands
//! back: instructions that need the runtime, refused memory accesses, budget ends,
//! cache flushes. It also owns the helper functions translated code calls.

use crate::cache::{CodeCache, HelperAddrs, JitConfig, JitError};
use crate::cpu::Cpu;
use crate::decode::{decode, Inst};
use crate::interp;
use crate::lift::{EXIT_DISPATCH, EXIT_STEP};
use crate::machine::{Exit, FaultKind, GuestFault, Machine};
use crate::memory::{DeviceEffect, Width};

/// Guest instructions between two returns to the dispatcher (interrupt checks).
const SLICE: u64 = 1 << 22;

/// Value a load helper returns for a refused access (bit 32 set).
const LOAD_REFUSED: u64 = 1 << 32;

fn machine_of<'a>(cpu: *mut Cpu) -> &'a mut Machine {
    // SAFETY: translated code only ever passes the pointer it was entered with, which
    // `enter` derives from a `&mut Machine` (`Cpu` is its first field, `#[repr(C)]`),
    // and the dispatcher does not touch the machine while translated code runs.
    unsafe { &mut *cpu.cast::<Machine>() }
}

fn load(cpu: *mut Cpu, addr: u32, width: Width) -> u64 {
    machine_of(cpu).mem.load(addr, width).map_or(LOAD_REFUSED, u64::from)
}

fn store(cpu: *mut Cpu, addr: u32, value: u32, width: Width) -> u32 {
    // A store with a side effect the dispatcher must see (test finisher) is "refused"
    // too: the interpreter repeats it and stops the machine.
    match machine_of(cpu).mem.store(addr, width, value) {
        Ok(DeviceEffect::None) => 0,
        Ok(DeviceEffect::Exit(_)) | Err(_) => 1,
    }
}

extern "C" fn load_u8(cpu: *mut Cpu, addr: u32) -> u64 {
    load(cpu, addr, Width::B1)
}
extern "C" fn load_u16(cpu: *mut Cpu, addr: u32) -> u64 {
    load(cpu, addr, Width::B2)
}
extern "C" fn load_u32(cpu: *mut Cpu, addr: u32) -> u64 {
    load(cpu, addr, Width::B4)
}
extern "C" fn store_u8(cpu: *mut Cpu, addr: u32, value: u32) -> u32 {
    store(cpu, addr, value, Width::B1)
}
extern "C" fn store_u16(cpu: *mut Cpu, addr: u32, value: u32) -> u32 {
    store(cpu, addr, value, Width::B2)
}
extern "C" fn store_u32(cpu: *mut Cpu, addr: u32, value: u32) -> u32 {
    store(cpu, addr, value, Width::B4)
}

/// The helpers translated code calls.
pub fn helper_addrs() -> HelperAddrs {
    HelperAddrs {
        load: [load_u8 as *const u8, load_u16 as *const u8, load_u32 as *const u8],
        store: [store_u8 as *const u8, store_u16 as *const u8, store_u32 as *const u8],
    }
}

/// A translation cache for the Cranelift backend.
pub fn new_cache(config: JitConfig) -> Result<CodeCache, JitError> {
    CodeCache::new(config, helper_addrs())
}

/// Runs translated code at `code` on machine `m` until it returns an exit code.
fn enter(m: &mut Machine, cache: &CodeCache, code: u64) -> i64 {
    let cpu = (m as *mut Machine).cast::<Cpu>();
    // SAFETY: `enter_fn` is the System V entry function compiled by the cache; it calls
    // `code`, a block compiled by the same cache (alive: no flush happens until we
    // return), with the machine pointer, which stays valid and unaliased for the call.
    unsafe {
        let f: extern "sysv64" fn(*mut Cpu, u64) -> i64 = std::mem::transmute(cache.enter_fn() as usize);
        f(cpu, code)
    }
}

/// Executes the instruction at `cpu.pc` with the interpreter. Returns true when it was
/// a `fence.i`, after which translations must be dropped.
fn step_runtime(m: &mut Machine) -> Result<bool, Exit> {
    let pc = m.cpu.pc;
    if pc & 3 != 0 {
        return Err(Exit::Fault(GuestFault { kind: FaultKind::FetchMisaligned, pc, addr: pc }));
    }
    let word = m.mem.fetch(pc).map_err(|_| Exit::Fault(GuestFault { kind: FaultKind::FetchAccess, pc, addr: pc }))?;
    let inst = decode(word);
    interp::execute(m, inst)?;
    Ok(inst == Inst::FenceI)
}

/// Runs `m` on translated code until it exits, faults, reaches `max_insns`, or
/// `interrupted` reports a signal.
pub fn run(
    m: &mut Machine,
    cache: &mut CodeCache,
    max_insns: Option<u64>,
    interrupted: &dyn Fn() -> Option<i32>,
) -> Result<Exit, JitError> {
    let limit = max_insns.unwrap_or(u64::MAX);
    loop {
        if m.cpu.retired >= limit {
            return Ok(Exit::InsnLimit(m.cpu.retired));
        }
        if let Some(sig) = interrupted() {
            return Ok(Exit::Interrupted(sig));
        }
        if cache.over_budget() {
            cache.flush()?;
        }
        let step = match cache.lookup(&m.mem, m.cpu.pc)? {
            // The block would pass --max-insns: finish instruction by instruction.
            Some(block) if m.cpu.retired + u64::from(block.len) <= limit => {
                m.cpu.budget_end = limit.min(m.cpu.retired.saturating_add(SLICE));
                m.stats.dispatcher_entries += 1;
                let code = enter(m, cache, block.code);
                if !m.mem.uart_out.is_empty() {
                    m.flush_uart();
                }
                debug_assert!(code == EXIT_DISPATCH || code == EXIT_STEP, "exit code {code}");
                code == EXIT_STEP
            }
            _ => true,
        };
        if step {
            match step_runtime(m) {
                Ok(true) => cache.flush()?,
                Ok(false) => {}
                Err(exit) => return Ok(exit),
            }
        }
    }
}
