//! Runs a machine to its end on the chosen backend, times the run and formats the
//! statistics (`--stats` table, `--stats-json`).

use crate::interp::Observer;
use crate::jit::access::MemMode;
use crate::jit::cache::CodeCache;
use crate::jit::codemem::CodePool;
use crate::jit::dispatch::{self, End, Watch};
use crate::jit::fault;
use crate::jit::verify::Verifier;
use crate::jit::{BackendKind, JitConfig, JitError};
use crate::machine::{Exit, Machine};
use crate::{backend, host, interp};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Which engine executes guest code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The interpreter only.
    Interp,
    /// Every block through Cranelift (after the interpreter's warm-up).
    Cranelift,
    /// Every block through the direct x86-64 emitter (after the warm-up).
    Direct,
    /// Interpreter, then the direct emitter, then Cranelift for hot blocks.
    Tiered,
}

impl Backend {
    pub const ALL: [Backend; 4] = [Backend::Interp, Backend::Cranelift, Backend::Direct, Backend::Tiered];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Interp => "interp",
            Backend::Cranelift => "cranelift",
            Backend::Direct => "direct",
            Backend::Tiered => "tiered",
        }
    }

    /// The code generators by tier (empty for the interpreter).
    pub fn tiers(self) -> Vec<BackendKind> {
        match self {
            Backend::Interp => vec![],
            Backend::Cranelift => vec![BackendKind::Cranelift],
            Backend::Direct => vec![BackendKind::Direct],
            Backend::Tiered => vec![BackendKind::Direct, BackendKind::Cranelift],
        }
    }

    /// Does this engine translate?
    pub fn translates(self) -> bool {
        self != Backend::Interp
    }
}

/// A translation cache for machine `m` with the code generators of `backend`.
pub fn new_cache(backend: Backend, config: JitConfig, m: &Machine) -> Result<CodeCache, JitError> {
    let pool = CodePool::new(config.near_code);
    let tiers = backend::tiers(&backend.tiers(), &config, &pool)?;
    CodeCache::new(config, pool, tiers, m.mem.arena_base() as u64)
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
    /// Settings of the translating backends.
    pub jit: JitConfig,
    /// `--verify`: check every entry into translated code against the interpreter.
    pub verify: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            backend: Backend::Tiered,
            max_insns: None,
            interrupt: None,
            jit: JitConfig::default(),
            verify: false,
        }
    }
}

impl RunOptions {
    /// Has the stop flag ([`RunOptions::interrupt`]) been set? The signal number.
    pub fn interrupted(&self) -> impl Fn() -> Option<i32> {
        let interrupt = self.interrupt.clone();
        move || {
            let sig = interrupt.as_ref()?.load(Ordering::Relaxed);
            (sig != 0).then_some(sig as i32)
        }
    }
}

/// The settings of a translated run whose every block start must pass the dispatcher
/// (a trace, a debugger): no regions, and one instruction a block when every instruction
/// is reported (`every_insn`).
pub fn watched_config(jit: &JitConfig, every_insn: bool) -> JitConfig {
    let mut jit = jit.clone();
    jit.regions = false;
    if every_insn {
        jit.max_block_insns = 1;
    }
    jit
}

/// Moves the translation cache's counters into the machine's statistics.
pub fn record_cache_stats(m: &mut Machine, cache: &CodeCache) {
    let s = &mut m.stats;
    s.cache = cache.stats.clone();
    s.near_code = cache.near();
    s.accesses = cache.access_states();
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

/// Runs `m` until it stops. Errors are host-side failures of the translator, and
/// [`JitError::Mismatch`] when `--verify` found a difference.
pub fn run(m: &mut Machine, opts: &RunOptions) -> Result<RunReport, JitError> {
    run_observed(m, opts, None)
}

/// [`run`], with every executed instruction (interpreter) or entry into translated code
/// reported to `observer` (`--trace`).
pub fn run_observed(
    m: &mut Machine,
    opts: &RunOptions,
    observer: Option<&mut dyn Observer>,
) -> Result<RunReport, JitError> {
    // Also for the interpreter: a SIGSEGV/SIGBUS sent to the process must kill it, not
    // reach the Rust runtime's stack overflow handler (which would let the run go on).
    fault::install();
    m.io.interrupt = opts.interrupt.clone();
    let interrupted = opts.interrupted();
    let start = Instant::now();
    let exit = match (opts.backend, observer) {
        (Backend::Interp, None) => interp::run(m, opts.max_insns, &interrupted),
        (Backend::Interp, Some(o)) => interp::run_observed(m, opts.max_insns, &interrupted, o),
        (backend, observer) => {
            let config = match &observer {
                Some(o) => watched_config(&opts.jit, o.wants_instructions()),
                None => opts.jit.clone(),
            };
            let mut cache = new_cache(backend, config, m)?;
            let mut verifier = opts.verify.then(Verifier::default);
            let observer = observer.map(|o| &mut *o as &mut dyn Observer);
            let watch = Watch { observer, verifier: verifier.as_mut(), ..Watch::default() };
            let end = dispatch::run_watched(m, &mut cache, opts.max_insns, &interrupted, watch);
            record_cache_stats(m, &cache);
            if let Some(v) = verifier {
                m.stats.verify = v.stats;
            }
            match end? {
                End::Exit(exit) => exit,
                other => return Err(JitError::Internal(format!("a run without breakpoints paused ({other:?})"))),
            }
        }
    };
    m.finish();
    let exit = match exit {
        Exit::Interrupted(v) if v as usize == host::TIMEOUT_STOP => Exit::Timeout,
        e => e,
    };
    let mem = opts.backend.translates().then_some(opts.jit.mem);
    Ok(RunReport { exit, backend: opts.backend, mem, wall_ns: start.elapsed().as_nanos() as u64 })
}

/// The statistics as (key, value) pairs, in a stable order. Values are JSON literals.
pub fn stats_pairs(m: &Machine, report: &RunReport) -> Vec<(&'static str, String)> {
    let insns = m.cpu.retired;
    let mips = if report.wall_ns > 0 { insns as f64 * 1e3 / report.wall_ns as f64 } else { 0.0 };
    let s = &m.stats;
    let total = s.cache.total();
    vec![
        ("backend", format!("\"{}\"", report.backend.name())),
        ("guest_instructions", insns.to_string()),
        ("wall_ns", report.wall_ns.to_string()),
        ("mips", format!("{mips:.2}")),
        ("exit_code", report.exit.status().to_string()),
        ("syscalls", s.syscalls.to_string()),
        ("unknown_syscalls", s.unknown_syscalls.to_string()),
        ("warnings", s.warnings.to_string()),
        ("blocks_compiled", total.blocks.to_string()),
        ("guest_insns_compiled", total.guest_insns.to_string()),
        ("compile_ns", total.compile_ns.to_string()),
        ("chained_exits", s.cache.chained_exits.to_string()),
        ("dispatcher_entries", s.dispatcher_entries.to_string()),
        ("code_bytes", total.code_bytes.to_string()),
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
        ("tier_ups", s.cache.tier_ups.to_string()),
        ("tier_ups_deferred", s.cache.tier_ups_deferred.to_string()),
        ("regions_compiled", s.cache.regions_compiled.to_string()),
        ("region_blocks", s.cache.region_blocks.to_string()),
        ("region_compile_ns", s.cache.region_compile_ns.to_string()),
        ("full_sync_translations", s.cache.full_sync_translations.to_string()),
        ("recovery_recompiles", s.cache.recovery_recompiles.to_string()),
        ("code_pages_invalidated", s.cache.code_pages_invalidated.to_string()),
        ("blocks_split", s.cache.blocks_split.to_string()),
        (
            "by_backend",
            format!(
                "{{{}}}",
                s.cache
                    .by_backend
                    .iter()
                    .map(|(name, b)| format!(
                        "\"{name}\": {{\"blocks\": {}, \"guest_insns\": {}, \"compile_ns\": {}, \"code_bytes\": {}}}",
                        b.blocks, b.guest_insns, b.compile_ns, b.code_bytes
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        ("faults_handled", s.faults_handled.to_string()),
        ("registers_recovered", s.registers_recovered.to_string()),
        ("registers_computed", s.registers_computed.to_string()),
        ("code_write_faults", s.code_write_faults.to_string()),
        ("faults_rolled_back", s.faults_rolled_back.to_string()),
        (
            "verify",
            format!(
                "{{\"entries\": {}, \"insns\": {}, \"skipped\": {}}}",
                s.verify.entries, s.verify.insns, s.verify.skipped
            ),
        ),
    ]
}

/// The topics of the `--stats` table and the [`stats_pairs`] keys each shows; keys in
/// none of them are shown under "other".
const STATS_GROUPS: &[(&str, &[&str])] = &[
    (
        "run",
        &["backend", "guest_instructions", "wall_ns", "mips", "exit_code", "syscalls", "unknown_syscalls", "warnings"],
    ),
    (
        "translation",
        &[
            "blocks_compiled",
            "guest_insns_compiled",
            "compile_ns",
            "code_bytes",
            "cache_flushes",
            "near_code",
            "chained_exits",
            "dispatcher_entries",
            "recompiles",
            "tier_ups",
            "tier_ups_deferred",
            "regions_compiled",
            "region_blocks",
            "region_compile_ns",
            "full_sync_translations",
            "recovery_recompiles",
            "code_pages_invalidated",
            "blocks_split",
            "by_backend",
        ],
    ),
    ("memory accesses", &["mem_mode", "accesses", "transitions"]),
    (
        "faults",
        &["faults_handled", "registers_recovered", "registers_computed", "code_write_faults", "faults_rolled_back"],
    ),
    ("verification", &["verify"]),
];

/// The table rows of one statistic: itself, or one row per member of an object value,
/// nested objects included (`accesses.naive`, `by_backend.direct.blocks`).
fn stats_rows(key: &str, value: &str) -> Vec<(String, String)> {
    let Some(members) = value.strip_prefix('{').and_then(|v| v.strip_suffix('}')) else {
        return vec![(key.to_string(), value.trim_matches('"').to_string())];
    };
    // Split the members at top-level commas (values are numbers, strings without
    // commas, or objects).
    let (mut depth, mut start, mut parts) = (0, 0, Vec::new());
    for (i, c) in members.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&members[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&members[start..]);
    parts
        .into_iter()
        .filter_map(|member| member.split_once(':'))
        .flat_map(|(k, v)| stats_rows(&format!("{key}.{}", k.trim().trim_matches('"')), v.trim()))
        .collect()
}

/// `--stats`: the statistics by topic, one `key value` row each, with the keys and
/// numbers of `--stats-json`.
pub fn stats_table(m: &Machine, report: &RunReport) -> String {
    let pairs = stats_pairs(m, report);
    let grouped = |k: &str| STATS_GROUPS.iter().any(|(_, keys)| keys.contains(&k));
    let others: Vec<&str> = pairs.iter().map(|(k, _)| *k).filter(|k| !grouped(k)).collect();
    let mut out = String::from("rvdbt statistics\n");
    for (title, keys) in STATS_GROUPS.iter().copied().chain([("other", &others[..])]) {
        let rows: Vec<(String, String)> = keys
            .iter()
            .filter_map(|key| pairs.iter().find(|(k, _)| k == key))
            .flat_map(|(k, v)| stats_rows(k, v))
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  {title}");
        for (k, v) in rows {
            let _ = writeln!(out, "    {k:<34} {v}");
        }
    }
    out
}

/// `--stats-json`: the same as one JSON object.
pub fn stats_json(m: &Machine, report: &RunReport) -> String {
    let body: Vec<String> = stats_pairs(m, report).into_iter().map(|(k, v)| format!("  \"{k}\": {v}")).collect();
    format!("{{\n{}\n}}\n", body.join(",\n"))
}
