//! Runs a machine to its end on the chosen backend, times the run and formats the
//! statistics (`--stats` table, `--stats-json`).

use crate::access::MemMode;
use crate::cache::{JitConfig, JitError};
use crate::machine::{Exit, Machine};
use crate::{dispatch, fault, host, interp};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Which engine executes guest code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    Interp,
    Cranelift,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Interp => "interp",
            Backend::Cranelift => "cranelift",
        }
    }
}

/// Options of one run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub backend: Backend,
    pub max_insns: Option<u64>,
    /// Set to a signal number by a SIGINT/SIGTERM handler, or to
    /// [`host::TIMEOUT_STOP`] by `--timeout`; the run stops when non-zero (at the next
    /// block boundary, syscall, or blocking call in progress, see [`crate::host`]).
    pub interrupt: Option<Arc<AtomicUsize>>,
    /// Settings of the Cranelift backend.
    pub jit: JitConfig,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { backend: Backend::Cranelift, max_insns: None, interrupt: None, jit: JitConfig::default() }
    }
}

/// The outcome of a run with its measurements.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub exit: Exit,
    pub backend: Backend,
    /// How translated code accessed memory (None on the interpreter).
    pub mem: Option<MemMode>,
    pub wall_ns: u64,
}

/// Runs `m` until it stops. Errors are host-side failures of the translator.
pub fn run(m: &mut Machine, opts: &RunOptions) -> Result<RunReport, JitError> {
    // Also for the interpreter: a SIGSEGV/SIGBUS sent to the process must kill it, not
    // reach the Rust runtime's stack overflow handler (which would let the run go on).
    fault::install();
    m.io.interrupt = opts.interrupt.clone();
    let interrupt = opts.interrupt.clone();
    let interrupted = move || {
        let sig = interrupt.as_ref()?.load(Ordering::Relaxed);
        (sig != 0).then_some(sig as i32)
    };
    let start = Instant::now();
    let exit = match opts.backend {
        Backend::Interp => interp::run(m, opts.max_insns, &interrupted),
        Backend::Cranelift => {
            let mut cache = dispatch::new_cache(opts.jit.clone(), m)?;
            let exit = dispatch::run(m, &mut cache, opts.max_insns, &interrupted);
            let s = &mut m.stats;
            s.cache = cache.stats.clone();
            s.near_code = cache.near();
            s.accesses = cache.access_states();
            exit?
        }
    };
    m.finish();
    let exit = match exit {
        Exit::Interrupted(v) if v as usize == host::TIMEOUT_STOP => Exit::Timeout,
        e => e,
    };
    let mem = (opts.backend == Backend::Cranelift).then_some(opts.jit.mem);
    Ok(RunReport { exit, backend: opts.backend, mem, wall_ns: start.elapsed().as_nanos() as u64 })
}

/// The statistics as (key, value) pairs, in a stable order. Values are JSON literals.
pub fn stats_pairs(m: &Machine, report: &RunReport) -> Vec<(&'static str, String)> {
    let insns = m.cpu.retired;
    let mips = if report.wall_ns > 0 { insns as f64 * 1e3 / report.wall_ns as f64 } else { 0.0 };
    let s = &m.stats;
    vec![
        ("backend", format!("\"{}\"", report.backend.name())),
        ("guest_instructions", insns.to_string()),
        ("wall_ns", report.wall_ns.to_string()),
        ("mips", format!("{mips:.2}")),
        ("exit_code", report.exit.status().to_string()),
        ("syscalls", s.syscalls.to_string()),
        ("unknown_syscalls", s.unknown_syscalls.to_string()),
        ("warnings", s.warnings.to_string()),
        ("blocks_compiled", s.cache.blocks_compiled.to_string()),
        ("guest_insns_compiled", s.cache.guest_insns_compiled.to_string()),
        ("compile_ns", s.cache.compile_ns.to_string()),
        ("chained_exits", s.cache.chained_exits.to_string()),
        ("dispatcher_entries", s.dispatcher_entries.to_string()),
        ("code_bytes", s.cache.code_bytes.to_string()),
        ("cache_flushes", s.cache.cache_flushes.to_string()),
        ("near_code", s.near_code.to_string()),
        ("mem_mode", format!("\"{}\"", report.mem.map_or("none", MemMode::name))),
        (
            "accesses",
            format!(
                "{{\"naive\": {}, \"committed_ram\": {}, \"committed_device\": {}, \"variable\": {}}}",
                s.accesses.naive, s.accesses.committed_ram, s.accesses.committed_device, s.accesses.variable
            ),
        ),
        (
            "transitions",
            format!(
                "{{\"naive_to_committed\": {}, \"naive_to_variable\": {}, \"committed_to_variable\": {}}}",
                s.transitions.naive_to_committed, s.transitions.naive_to_variable, s.transitions.committed_to_variable
            ),
        ),
        ("recompiles", s.cache.recompiles.to_string()),
        ("faults_handled", s.faults_handled.to_string()),
    ]
}

/// `--stats`: a small table for humans.
pub fn stats_table(m: &Machine, report: &RunReport) -> String {
    let mut out = String::from("rvdbt statistics\n");
    for (k, v) in stats_pairs(m, report) {
        let _ = writeln!(out, "  {k:<22} {}", v.trim_matches('"'));
    }
    out
}

/// `--stats-json`: the same as one JSON object.
pub fn stats_json(m: &Machine, report: &RunReport) -> String {
    let body: Vec<String> = stats_pairs(m, report).into_iter().map(|(k, v)| format!("  \"{k}\": {v}")).collect();
    format!("{{\n{}\n}}\n", body.join(",\n"))
}
