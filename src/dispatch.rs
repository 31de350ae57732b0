//! The dispatcher: the only loop of a translated run. It looks up (or compiles) the
//! block at `cpu.pc`, enters translated code through the fault-catching trampoline, and
//! handles what comes back: instructions that need the runtime, refused accesses,
//! inline accesses that faulted, access records that changed state, budget ends and
//! cache flushes. It also owns the helper functions translated code calls.

use crate::access::{AccessRecord, RegionClass};
use crate::block::ends_block;
use crate::cache::{CodeCache, HelperAddrs, JitConfig, JitError};
use crate::cpu::Cpu;
use crate::decode::Inst;
use crate::fault::{self, EntryResult};
use crate::interp;
use crate::lift::{Helper, EXIT_STEP};
use crate::machine::{Exit, Machine};
use crate::memory::{Device, DeviceEffect, Width, ARENA_GUARD, GUEST_SPACE};

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

fn record_of<'a>(rec: *mut AccessRecord) -> &'a mut AccessRecord {
    // SAFETY: translated code passes the address of a boxed record owned by the cache
    // that compiled it; records are never freed while the cache lives, and nothing
    // else touches them while translated code runs.
    unsafe { &mut *rec }
}

const fn width(w: usize) -> Width {
    match w {
        0 => Width::B1,
        1 => Width::B2,
        _ => Width::B4,
    }
}

/// Store result for translated code: 0, or 1 when refused or when the store has an
/// effect the dispatcher must see (test finisher): the interpreter then repeats it.
fn store_result(r: Result<DeviceEffect, crate::memory::MemFault>) -> u32 {
    u32::from(!matches!(r, Ok(DeviceEffect::None)))
}

/// Feeds one observation to an access record; a state change is reported to the
/// dispatcher, which recompiles at the next block entry (budget cut to 0).
fn observe(m: &mut Machine, rec: &mut AccessRecord, addr: u32) {
    if let Some(t) = rec.observe(RegionClass::of(&m.mem, addr)) {
        m.stats.transitions.add(t);
        m.access_events.push(rec.pc);
        m.cpu.budget_end = 0;
    }
}

extern "C" fn load<const W: usize>(cpu: *mut Cpu, addr: u32) -> u64 {
    machine_of(cpu).mem.load(addr, width(W)).map_or(LOAD_REFUSED, u64::from)
}

extern "C" fn store<const W: usize>(cpu: *mut Cpu, addr: u32, value: u32) -> u32 {
    store_result(machine_of(cpu).mem.store(addr, width(W), value))
}

extern "C" fn profile_load<const W: usize>(cpu: *mut Cpu, addr: u32, rec: *mut AccessRecord) -> u64 {
    let m = machine_of(cpu);
    let result = m.mem.load(addr, width(W));
    if result.is_ok() {
        observe(m, record_of(rec), addr);
    }
    result.map_or(LOAD_REFUSED, u64::from)
}

extern "C" fn profile_store<const W: usize>(cpu: *mut Cpu, addr: u32, value: u32, rec: *mut AccessRecord) -> u32 {
    let m = machine_of(cpu);
    let result = m.mem.store(addr, width(W), value);
    if result.is_ok() {
        observe(m, record_of(rec), addr);
    }
    store_result(result)
}

extern "C" fn device_read<const D: usize>(cpu: *mut Cpu, offset: u32, w: u32) -> u64 {
    u64::from(machine_of(cpu).mem.device_read(Device::ALL[D], offset, width(w as usize)))
}

extern "C" fn device_write<const D: usize>(cpu: *mut Cpu, offset: u32, w: u32, value: u32) -> u32 {
    store_result(Ok(machine_of(cpu).mem.device_write(Device::ALL[D], offset, width(w as usize), value)))
}

/// The helpers translated code calls, indexed by [`Helper::index`].
pub fn helper_addrs() -> HelperAddrs {
    Helper::ALL.map(|h| match h {
        Helper::Load(0) => load::<0> as *const u8,
        Helper::Load(1) => load::<1> as *const u8,
        Helper::Load(_) => load::<2> as *const u8,
        Helper::Store(0) => store::<0> as *const u8,
        Helper::Store(1) => store::<1> as *const u8,
        Helper::Store(_) => store::<2> as *const u8,
        Helper::ProfileLoad(0) => profile_load::<0> as *const u8,
        Helper::ProfileLoad(1) => profile_load::<1> as *const u8,
        Helper::ProfileLoad(_) => profile_load::<2> as *const u8,
        Helper::ProfileStore(0) => profile_store::<0> as *const u8,
        Helper::ProfileStore(1) => profile_store::<1> as *const u8,
        Helper::ProfileStore(_) => profile_store::<2> as *const u8,
        Helper::DeviceRead(0) => device_read::<0> as *const u8,
        Helper::DeviceRead(1) => device_read::<1> as *const u8,
        Helper::DeviceRead(_) => device_read::<2> as *const u8,
        Helper::DeviceWrite(0) => device_write::<0> as *const u8,
        Helper::DeviceWrite(1) => device_write::<1> as *const u8,
        Helper::DeviceWrite(_) => device_write::<2> as *const u8,
    })
}

/// A translation cache for the Cranelift backend, for machine `m`.
pub fn new_cache(config: JitConfig, m: &Machine) -> Result<CodeCache, JitError> {
    CodeCache::new(config, helper_addrs(), m.mem.arena_base() as u64)
}

/// Interprets from `cpu.pc` to the end of the block (a branch or jump, an instruction
/// that needs the runtime), at most `max` instructions. Returns true when a `fence.i`
/// ran, after which translations must be dropped.
/// Loads and stores interpreted here feed their access records too, so a block that
/// becomes hot is usually compiled with its accesses already committed.
fn interpret(m: &mut Machine, cache: &mut CodeCache, max: u64) -> Result<bool, Exit> {
    let mut fence_i = false;
    for _ in 0..max {
        let pc = m.cpu.pc;
        let inst = interp::fetch(m)?;
        let addr = match inst {
            Inst::Load { rs1, offset, .. } | Inst::Store { rs1, offset, .. } => {
                Some(m.cpu.reg(rs1).wrapping_add(offset as u32))
            }
            _ => None,
        };
        interp::execute(m, inst)?;
        if let Some(addr) = addr {
            if let Some(t) = cache.observe(pc, RegionClass::of(&m.mem, addr)) {
                m.stats.transitions.add(t);
            }
        }
        fence_i |= inst == Inst::FenceI;
        if ends_block(&inst) {
            break;
        }
    }
    Ok(fence_i)
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
        if m.cpu.retired >= limit {
            return Ok(Exit::InsnLimit(m.cpu.retired));
        }
        if let Some(sig) = interrupted() {
            return Ok(Exit::Interrupted(sig));
        }
        // How many instructions to interpret (0: none, translated code ran).
        let interpret_max = match cache.lookup(&m.mem, m.cpu.pc)? {
            // A block that would pass --max-insns is finished instruction by instruction.
            Some(block) if m.cpu.retired + u64::from(block.len) <= limit => {
                m.cpu.budget_end = limit.min(m.cpu.retired.saturating_add(SLICE));
                m.stats.dispatcher_entries += 1;
                let cpu = (m as *mut Machine).cast::<Cpu>();
                // SAFETY: the entry function and the block were compiled by `cache`,
                // which flushes only between entries; `cpu` comes from `&mut Machine`,
                // which nothing else uses until translated code returns.
                let result = unsafe { fault::enter(cpu, block.code, cache.enter_fn(), arena) };
                if !m.mem.uart_out.is_empty() {
                    m.flush_uart();
                }
                match result {
                    // A refused access: the interpreter executes that one instruction.
                    EntryResult::Exit(code) => u64::from(code == EXIT_STEP),
                    EntryResult::Fault { rip, addr } => {
                        let Some((site, transition)) = cache.inline_fault(rip as u64) else {
                            return Err(JitError::Internal(format!(
                                "host fault at {rip:#x} (address {addr:#x}) is not an inline guest access"
                            )));
                        };
                        // Registers are current (written back before every inline
                        // access); pc and the retired count come from the fault map.
                        m.cpu.pc = site.pc;
                        m.cpu.retired += u64::from(site.pc.wrapping_sub(site.block) / 4);
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
