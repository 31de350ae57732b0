//! The dispatcher: the only loop of a translated run. It looks up (or compiles) the
//! block at `cpu.pc`, enters translated code through the fault-catching trampoline, and
//! handles what comes back: instructions that need the runtime, refused accesses,
//! inline accesses that faulted, access records that changed state, blocks that became
//! hot, budget ends and cache flushes. Under a [`Watch`] it also reports to a tracer,
//! checks every entry against the interpreter (`--verify`) and stops at a debugger's
//! breakpoints.
//!
//! The cache is flushed only here, between two entries into translated code: `run`
//! holds the only `&mut CodeCache`, while translated code and the helpers get a
//! `*mut Cpu`, from which only the [`Machine`] is reachable (it holds no handle to the
//! cache). What must drop translations during a run (a store into a page with
//! translations, a syscall that changes code) is listed in the machine, and this loop
//! acts on the list.

use crate::guest::cpu::Cpu;
use crate::guest::decode::Inst;
use crate::interp::{self, Observer};
use crate::jit::abi::{EXIT_HOT, EXIT_STEP};
use crate::jit::access::RegionClass;
use crate::jit::block::ends_block;
use crate::jit::cache::{CodeCache, Compiled};
use crate::jit::codegen::{Place, ValueLoc, RECOVER_RETIRED, RECOVER_RETIRED_BELOW_END};
use crate::jit::fault::{self, EntryResult};
use crate::jit::verify::Verifier;
use crate::jit::JitError;
use crate::machine::{Exit, Machine};
use crate::memory::{ARENA_GUARD, GUEST_SPACE};
use std::collections::BTreeSet;

/// Guest instructions between two returns to the dispatcher (interrupt checks).
const SLICE: u64 = 1 << 22;

/// What a watched run adds to the dispatcher: a trace, lockstep verification, a
/// debugger's breakpoints and polling. With an observer or breakpoints, every entry into
/// translated code runs one block (its budget ends after it), so that every block start
/// passes the dispatcher; the cache must not form regions then.
#[derive(Default)]
pub struct Watch<'a> {
    pub observer: Option<&'a mut dyn Observer>,
    pub verifier: Option<&'a mut Verifier>,
    /// Stop before an instruction at one of these pcs, except the first one the run
    /// executes (so that a debugger can continue from a breakpoint). The cache must
    /// have the same set ([`CodeCache::set_breakpoints`]).
    pub breakpoints: Option<&'a BTreeSet<u32>>,
    /// Asked now and then; true pauses the run ([`End::Polled`]).
    pub poll: Option<&'a mut dyn FnMut() -> bool>,
}

/// Dispatcher iterations between two polls of [`Watch::poll`].
const POLL_INTERVAL: u64 = 256;

/// Why a watched run returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// The machine stopped (exit, fault, limit, signal).
    Exit(Exit),
    /// The pc is at a breakpoint, whose instruction has not run.
    Breakpoint,
    /// [`Watch::poll`] asked to stop.
    Polled,
}

/// The pc and retired count a run started at (its first instruction passes breakpoints).
#[derive(Clone, Copy)]
struct Start {
    pc: u32,
    retired: u64,
}

impl Watch<'_> {
    /// Must the run stop before the instruction at `cpu.pc`?
    fn at_breakpoint(&self, cpu: &Cpu, start: Start) -> bool {
        let first = cpu.pc == start.pc && cpu.retired == start.retired;
        !first && self.breakpoints.is_some_and(|b| b.contains(&cpu.pc))
    }
}

/// Interprets from `cpu.pc` to the end of the block (a branch or jump, an instruction
/// that needs the runtime), at most `max` instructions, reporting each to the observer
/// and stopping before a breakpoint (then it returns true).
/// With `profile`, loads and stores interpreted here feed their access records too, so
/// a block that becomes hot is usually compiled with its accesses already committed.
fn interpret(
    m: &mut Machine,
    cache: &mut CodeCache,
    max: u64,
    profile: bool,
    watch: &mut Watch,
    start: Start,
) -> Result<bool, Exit> {
    for i in 0..max {
        let pc = m.cpu.pc;
        if i > 0 && watch.at_breakpoint(&m.cpu, start) {
            return Ok(true);
        }
        if let Some(o) = watch.observer.as_deref_mut() {
            o.enter(pc, m.cpu.retired);
        }
        let (inst, len) = interp::fetch(m)?;
        let addr = match inst {
            Inst::Load { rs1, offset, .. } | Inst::Store { rs1, offset, .. } => {
                Some(m.cpu.reg(rs1).wrapping_add(offset as u32))
            }
            Inst::Amo { rs1, .. } => Some(m.cpu.reg(rs1)),
            _ => None,
        };
        let before = m.cpu.retired;
        let result = interp::execute(m, inst, len);
        if let (Some(o), true) = (watch.observer.as_deref_mut(), m.cpu.retired != before) {
            o.retired(pc, &inst, &m.cpu);
        }
        result?;
        if let Some(addr) = addr.filter(|_| profile) {
            if let Some(t) = cache.observe(pc, RegionClass::of(&m.mem, addr)) {
                m.stats.transitions.add(t);
            }
        }
        if ends_block(&inst) {
            break;
        }
    }
    Ok(false)
}

/// Completes `Cpu` after an inline access faulted: the guest registers (and running
/// retired total) the code had not stored, from the fault's registers and frame.
fn recover(m: &mut Machine, list: &[(u8, ValueLoc)]) -> Result<(), JitError> {
    if list.is_empty() {
        return Ok(());
    }
    fault::with_fault_context(|ctx| {
        let read = |place: Place| match place {
            Place::Gpr(g) => Ok(ctx.gprs[usize::from(g & 15)]),
            Place::Cfa(off) => ctx
                .frame_u64(i64::from(off))
                .ok_or_else(|| JitError::Internal(format!("a guest register's stack slot (CFA{off:+}) was not kept"))),
        };
        for &(r, loc) in list {
            let value = match loc {
                ValueLoc::At(place) => read(place)?,
                ValueLoc::Const(c) => u64::from(c),
                ValueLoc::Computed(place, steps, len) => {
                    let x = read(place)? as u32;
                    u64::from(steps[..usize::from(len)].iter().fold(x, |x, s| s.apply(x)))
                }
                ValueLoc::Combined(a, op, b) => u64::from(op.apply(read(a)? as u32, read(b)? as u32)),
            };
            if r == RECOVER_RETIRED {
                m.cpu.retired = value;
            } else if r == RECOVER_RETIRED_BELOW_END {
                // `budget_end` is what the code was entered with: code that counts
                // from it calls nothing that changes it.
                m.cpu.retired = m.cpu.budget_end.wrapping_add(value);
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
    match run_watched(m, cache, max_insns, interrupted, Watch::default())? {
        End::Exit(exit) => Ok(exit),
        other => Err(JitError::Internal(format!("a run without breakpoints or polling paused ({other:?})"))),
    }
}

/// [`run`] under a [`Watch`]: it also stops at breakpoints and when polled.
pub fn run_watched(
    m: &mut Machine,
    cache: &mut CodeCache,
    max_insns: Option<u64>,
    interrupted: &dyn Fn() -> Option<i32>,
    mut watch: Watch<'_>,
) -> Result<End, JitError> {
    fault::install();
    let arena = (m.mem.arena_base() as usize, (GUEST_SPACE + ARENA_GUARD) as usize);
    let limit = max_insns.unwrap_or(u64::MAX);
    let max_block = cache.max_block_insns() as u64;
    let start = Start { pc: m.cpu.pc, retired: m.cpu.retired };
    let one_block = watch.observer.is_some() || watch.breakpoints.is_some();
    let mut iterations = 0u64;
    loop {
        for (pc, t) in std::mem::take(&mut m.access_events) {
            cache.access_changed(pc, t);
        }
        // Code was written (by a store, a syscall, a change of the map): what was
        // translated from those pages is stale. `fence.i` needs nothing more.
        for page in m.mem.code_written.drain(..) {
            cache.code_written(page);
        }
        cache.poll()?;
        if m.cpu.retired >= limit {
            return Ok(End::Exit(Exit::InsnLimit(m.cpu.retired)));
        }
        if let Some(sig) = interrupted() {
            return Ok(End::Exit(Exit::Interrupted(sig)));
        }
        if watch.at_breakpoint(&m.cpu, start) {
            return Ok(End::Breakpoint);
        }
        iterations += 1;
        if iterations.is_multiple_of(POLL_INTERVAL) && watch.poll.as_mut().is_some_and(|poll| poll()) {
            return Ok(End::Polled);
        }
        // How many instructions to interpret (0: none, translated code ran). While an
        // lr.w reservation is valid everything is interpreted, so that every store
        // is checked against it (translated code never checks).
        let block = if m.reservation_valid() { None } else { cache.lookup(&mut m.mem, m.cpu.pc)? };
        let profile = block.is_some() || cache.profiles(m.cpu.pc);
        let interpret_max = match block {
            // A block that would pass --max-insns is finished instruction by instruction.
            Some(block) if m.cpu.retired + u64::from(block.len) <= limit => {
                let mut budget_end = limit.min(m.cpu.retired.saturating_add(SLICE));
                if one_block {
                    budget_end = budget_end.min(m.cpu.retired + u64::from(block.len));
                }
                let mut enter = true;
                if let Some(v) = watch.verifier.as_deref_mut() {
                    budget_end = m.cpu.retired + v.expect(m, budget_end - m.cpu.retired);
                    // The interpreter could not run ahead over the first block: run
                    // it on the interpreter, unchecked.
                    enter = m.cpu.retired + u64::from(block.len) <= budget_end;
                    if !enter {
                        v.skip();
                    }
                }
                match enter {
                    true => run_translated(m, cache, block, budget_end, arena, &mut watch)?,
                    false => (limit - m.cpu.retired).min(max_block),
                }
            }
            // Cold, needs the runtime, or would pass --max-insns: interpret the block.
            _ => (limit - m.cpu.retired).min(max_block),
        };
        if interpret_max > 0 {
            match interpret(m, cache, interpret_max, profile, &mut watch, start) {
                Ok(true) => return Ok(End::Breakpoint),
                Ok(false) => {}
                Err(exit) => return Ok(End::Exit(exit)),
            }
            for dev in std::mem::take(&mut m.mem.devices_removed) {
                for t in cache.device_removed(dev)? {
                    m.stats.transitions.add(t);
                }
            }
        }
    }
}

/// Enters the translation `block` at `cpu.pc` with the budget ending at `budget_end`
/// and handles what comes back. Returns how many instructions to interpret next (1
/// after a refused access, else 0).
fn run_translated(
    m: &mut Machine,
    cache: &mut CodeCache,
    block: Compiled,
    budget_end: u64,
    arena: (usize, usize),
    watch: &mut Watch,
) -> Result<u64, JitError> {
    let (pc, before) = (m.cpu.pc, m.cpu.retired);
    // The first instruction, for an instruction trace (one instruction a block).
    let first = match watch.observer.as_deref_mut() {
        Some(o) => {
            o.enter(pc, before);
            o.wants_instructions().then(|| interp::fetch(m).ok()).flatten()
        }
        None => None,
    };
    m.cpu.budget_end = budget_end;
    m.stats.dispatcher_entries += 1;
    let epoch = cache.epoch();
    let cpu = (m as *mut Machine).cast::<Cpu>();
    // SAFETY: the block was compiled by `cache`, which drops code only between entries;
    // `cpu` comes from `&mut Machine`, which nothing else uses until translated code
    // returns.
    let result = unsafe { fault::enter(cpu, block.code, arena) };
    if !m.mem.uart_out.is_empty() {
        m.flush_uart();
    }
    // Did a fault resume at a checkpoint store that had already run?
    let mut rolled_past_store = false;
    let step = match result {
        // A refused access: the interpreter executes that one instruction.
        EntryResult::Exit(EXIT_STEP) => 1,
        EntryResult::Exit(EXIT_HOT) => {
            cache.tier_up(&mut m.mem, m.cpu.pc)?;
            0
        }
        EntryResult::Exit(_) => 0,
        EntryResult::Fault { rip, addr } => {
            // An inline store into a page that holds translated code: nothing about the
            // access changes; the interpreter repeats the store, which unmarks the page
            // and lists it, so its translations go next. Any other inline fault makes
            // the access VARIABLE.
            let code_write = u32::try_from(addr.wrapping_sub(arena.0)).is_ok_and(|a| m.mem.is_code_write_fault(a));
            let found = match code_write {
                true => cache.fault_site(rip as u64).map(|site| (site, None)),
                false => cache.inline_fault(rip as u64, addr as u64),
            };
            let Some((site, transition)) = found else {
                return Err(JitError::Internal(format!(
                    "host fault at {rip:#x} (address {addr:#x}) is not an inline guest access"
                )));
            };
            // Registers not stored before the access are recovered from where the code
            // kept them; pc and the retired count come from the map. After a rollback
            // `Cpu` is already exact, at the checkpoint: what ran since runs again,
            // with the access now made VARIABLE (or, for a code write, the page's
            // translations gone).
            if site.rollback {
                m.stats.faults_rolled_back += 1;
                rolled_past_store = site.pc != m.cpu.pc;
            } else {
                recover(m, &site.recover)?;
                m.stats.registers_recovered += site.recover.len() as u64;
                m.stats.registers_computed += site
                    .recover
                    .iter()
                    .filter(|(_, loc)| matches!(loc, ValueLoc::Computed(..) | ValueLoc::Combined(..)))
                    .count() as u64;
                m.cpu.pc = site.pc;
                m.cpu.retired += u64::from(site.retired);
            }
            m.stats.faults_handled += 1;
            if let Some(t) = transition {
                m.stats.transitions.add(t);
            }
            m.stats.code_write_faults += u64::from(code_write);
            u64::from(code_write)
        }
    };
    let ran = m.cpu.retired - before;
    if let (Some(o), true) = (watch.observer.as_deref_mut(), ran > 0) {
        match first {
            Some((inst, _)) if ran == 1 => o.retired(pc, &inst, &m.cpu),
            _ if o.wants_instructions() => {
                return Err(JitError::Internal(format!(
                    "an instruction trace needs one-instruction blocks, but {ran} ran at {pc:#010x}"
                )))
            }
            _ => o.ran(ran == u64::from(block.len) && block.ends_with_jump),
        }
    }
    if let Some(v) = watch.verifier.as_deref_mut() {
        let code = || cache.describe(&m.mem, pc, &block, epoch);
        v.check(m, &code, rolled_past_store).map_err(JitError::Mismatch)?;
    }
    Ok(step)
}
