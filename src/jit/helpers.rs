//! The Rust functions translated code calls (see [`Helper`] for the table and their
//! signatures): the generic and profiling memory paths and the device functions.
//!
//! They run on the stack of translated code, with the machine reachable through the
//! `*mut Cpu` the block was entered with.

use crate::guest::cpu::Cpu;
use crate::guest::decode::AmoOp;
use crate::interp;
use crate::jit::abi::Helper;
use crate::jit::access::{AccessRecord, RegionClass};
use crate::machine::Machine;
use crate::memory::{Device, DeviceEffect, MemFault, Width};

/// Value a load helper returns for a refused access (bit 32 set).
pub const LOAD_REFUSED: u64 = 1 << 32;

/// The machine behind the `*mut Cpu` translated code was entered with.
///
/// # Safety
/// `cpu` must be the pointer the dispatcher entered translated code with: it derives
/// it from a `&mut Machine` (`Cpu` is its first field, `#[repr(C)]`) that nothing else
/// uses until translated code returns, and the reference must not outlive the helper
/// call.
unsafe fn machine_of<'a>(cpu: *mut Cpu) -> &'a mut Machine {
    // SAFETY: the caller's contract.
    unsafe { &mut *cpu.cast::<Machine>() }
}

/// The access record at `rec`.
///
/// # Safety
/// `rec` must be the address of an access record the translation cache compiled into
/// the running code (`AccessPlan::record`): a raw allocation the cache keeps until no
/// code that holds it can run, and never references while translated code runs. The
/// reference must not outlive the helper call.
unsafe fn record_of<'a>(rec: *mut AccessRecord) -> &'a mut AccessRecord {
    // SAFETY: the caller's contract.
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
fn store_result(r: Result<DeviceEffect, MemFault>) -> u32 {
    if matches!(r, Ok(DeviceEffect::None)) {
        0
    } else {
        STORE_REFUSED
    }
}

/// Store result that hands the store to the interpreter (`store_result` of a refusal).
const STORE_REFUSED: u32 = 1;

/// Does a store of `bytes` at `addr` hit a page that holds translated code? Such a
/// store is refused: the code that called the helper may be what it overwrites, so
/// the interpreter repeats the store and the dispatcher drops the page's translations
/// before any more translated code runs.
fn writes_code(m: &Machine, addr: u32, bytes: u32) -> bool {
    m.mem.holds_code(addr, bytes)
}

/// Feeds one observation to an access record; a state change is reported to the
/// dispatcher, which recompiles at the next block entry (budget cut to 0).
fn observe(m: &mut Machine, rec: &mut AccessRecord, addr: u32) {
    if let Some(t) = rec.observe(RegionClass::of(&m.mem, addr)) {
        m.stats.transitions.add(t);
        m.access_events.push((rec.pc, t));
        m.cpu.budget_end = 0;
    }
}

// The helpers below are called only by translated code, with the `*mut Cpu` it was
// entered with and the record addresses it was compiled with: the contracts of
// `machine_of` and `record_of`, which is what each `SAFETY` comment refers to.

/// # Safety
/// Called by translated code only (see above).
unsafe extern "C" fn load<const W: usize>(cpu: *mut Cpu, addr: u32) -> u64 {
    // SAFETY: translated code passes its entry pointer.
    let m = unsafe { machine_of(cpu) };
    m.mem.load(addr, width(W)).map_or(LOAD_REFUSED, u64::from)
}

/// # Safety
/// Called by translated code only (see above).
unsafe extern "C" fn store<const W: usize>(cpu: *mut Cpu, addr: u32, value: u32) -> u32 {
    // SAFETY: translated code passes its entry pointer.
    let m = unsafe { machine_of(cpu) };
    if writes_code(m, addr, width(W).bytes()) {
        return STORE_REFUSED;
    }
    store_result(m.mem.store(addr, width(W), value))
}

/// # Safety
/// Called by translated code only (see above).
unsafe extern "C" fn profile_load<const W: usize>(cpu: *mut Cpu, addr: u32, rec: *mut AccessRecord) -> u64 {
    // SAFETY: translated code passes its entry pointer.
    let m = unsafe { machine_of(cpu) };
    let result = m.mem.load(addr, width(W));
    if result.is_ok() {
        // SAFETY: translated code passes the record it was compiled with.
        observe(m, unsafe { record_of(rec) }, addr);
    }
    result.map_or(LOAD_REFUSED, u64::from)
}

/// # Safety
/// Called by translated code only (see above).
unsafe extern "C" fn profile_store<const W: usize>(
    cpu: *mut Cpu,
    addr: u32,
    value: u32,
    rec: *mut AccessRecord,
) -> u32 {
    // SAFETY: translated code passes its entry pointer.
    let m = unsafe { machine_of(cpu) };
    if writes_code(m, addr, width(W).bytes()) {
        return STORE_REFUSED;
    }
    let result = m.mem.store(addr, width(W), value);
    if result.is_ok() {
        // SAFETY: translated code passes the record it was compiled with.
        observe(m, unsafe { record_of(rec) }, addr);
    }
    store_result(result)
}

/// # Safety
/// Called by translated code only (see above).
unsafe extern "C" fn device_read<const D: usize>(cpu: *mut Cpu, offset: u32, w: u32) -> u64 {
    // SAFETY: translated code passes its entry pointer.
    let m = unsafe { machine_of(cpu) };
    u64::from(m.mem.device_read(Device::ALL[D], offset, width(w as usize)))
}

/// # Safety
/// Called by translated code only (see above).
unsafe extern "C" fn device_write<const D: usize>(cpu: *mut Cpu, offset: u32, w: u32, value: u32) -> u32 {
    // SAFETY: translated code passes its entry pointer.
    let m = unsafe { machine_of(cpu) };
    store_result(Ok(m.mem.device_write(Device::ALL[D], offset, width(w as usize), value)))
}

/// # Safety
/// Called by translated code only (see above).
unsafe extern "C" fn amo(cpu: *mut Cpu, addr: u32, value: u32, op: u32, rec: *mut AccessRecord) -> u64 {
    // SAFETY: translated code passes its entry pointer.
    let m = unsafe { machine_of(cpu) };
    let Some(&op) = AmoOp::ALL.get(op as usize) else { return LOAD_REFUSED };
    if writes_code(m, addr, 4) {
        return LOAD_REFUSED;
    }
    match interp::amo(&mut m.mem, op, addr, value) {
        Ok((old, DeviceEffect::None)) => {
            if !rec.is_null() {
                // SAFETY: translated code passes the record it was compiled with.
                observe(m, unsafe { record_of(rec) }, addr);
            }
            u64::from(old)
        }
        // A fault (memory unchanged), or a device effect the dispatcher must see: the
        // interpreter executes the AMO (again; device reads have no side effects and
        // the only device effect, the test finisher's, repeats exactly).
        _ => LOAD_REFUSED,
    }
}

/// The code address of a helper: one monomorphized function per helper and width.
// Never inlined into another crate: there the generic helpers would be instantiated
// again, at other addresses than the ones translated code calls.
#[inline(never)]
pub fn address(h: Helper) -> *const u8 {
    match h {
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
        Helper::Amo => amo as *const u8,
    }
}
