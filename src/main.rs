//! The `rvdbt` command line.

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use rvdbt::gdb;
use rvdbt::guest::decode::Isa;
use rvdbt::interp::Observer;
use rvdbt::jit::access::MemMode;
use rvdbt::jit::dump::DumpSet;
use rvdbt::jit::fault;
use rvdbt::jit::{JitConfig, JitError};
use rvdbt::listing::Selection;
use rvdbt::machine::{Exit, Machine, MachineConfig};
use rvdbt::runner::{self, Backend, RunOptions};
use rvdbt::symbols::Symbols;
use rvdbt::syscall::Io;
use rvdbt::trace::{TraceKind, Tracer};
use rvdbt::{diag, host};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

/// Exit status for a bad command line or a file that cannot be loaded.
const EXIT_USAGE: u8 = 2;
/// Exit status when `--verify` finds translated code disagreeing with the interpreter
/// (`EX_SOFTWARE`).
const EXIT_VERIFY: u8 = 70;

#[derive(Parser)]
#[command(name = "rvdbt", version, about = "Run RISC-V RV32IM Linux programs on x86-64")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a static RV32IM ELF program.
    Run(RunArgs),
    /// List a program's code with symbol labels, as `objdump -d` does.
    Disasm(DisasmArgs),
}

#[derive(clap::Args)]
struct DisasmArgs {
    /// The guest program (a static RV32IM ELF executable).
    program: PathBuf,
    /// Only this function.
    #[arg(long, value_name = "NAME", conflicts_with = "addr")]
    func: Option<String>,
    /// Only addresses A up to B (exclusive), or the function (else the one instruction) at A.
    /// Hex with 0x, or decimal.
    #[arg(long, value_name = "A[,B]", value_parser = rvdbt::listing::parse_selection)]
    addr: Option<Selection>,
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    /// Interpreter for cold code, the direct emitter for warm code, Cranelift for hot code.
    Tiered,
    /// Translate blocks to x86-64 through Cranelift.
    Cranelift,
    /// Emit x86-64 per guest instruction, without an IR.
    Direct,
    /// The interpreter (the reference implementation).
    Interp,
}

#[derive(Clone, Copy, ValueEnum)]
enum MemArg {
    /// Every guest access calls the generic path.
    Calls,
    /// The per-access state machine: profile, then inline RAM accesses or direct device calls.
    Adaptive,
    /// Every access starts as an inline RAM access and relies on the fault path.
    Fastmem,
}

#[derive(Clone, Copy, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Clone, Copy, ValueEnum)]
enum OptArg {
    None,
    Speed,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The guest program (a static RV32IM ELF executable).
    program: PathBuf,
    /// Arguments for the guest program (after `--`).
    #[arg(last = true)]
    args: Vec<String>,
    /// Execution engine.
    #[arg(long, value_enum, default_value = "tiered")]
    backend: BackendArg,
    /// Cranelift optimization level.
    #[arg(long, value_enum, default_value = "speed")]
    opt: OptArg,
    /// Translation cache budget in MiB; when full, all translations are dropped.
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    code_cache: u32,
    /// Cap on guest instructions per translated block.
    #[arg(long, value_name = "N", default_value_t = rvdbt::jit::block::DEFAULT_MAX_BLOCK_INSNS, value_parser = parse_block_cap)]
    max_block_insns: usize,
    /// How translated code accesses guest memory.
    #[arg(long, value_enum, default_value = "adaptive")]
    mem: MemArg,
    /// Consecutive observations of one region that commit an access (adaptive mode).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    commit_after: u32,
    /// Interpret a block this many times before translating it (0: translate at once).
    #[arg(long, value_name = "N", default_value_t = rvdbt::jit::DEFAULT_COMPILE_AFTER)]
    compile_after: u32,
    /// Entries of a block's direct code before Cranelift compiles it (tiered backend).
    #[arg(long, value_name = "N", default_value_t = rvdbt::jit::DEFAULT_TIER_UP, value_parser = clap::value_parser!(u32).range(1..))]
    tier_up: u32,
    /// Compile the optimizing tier on the dispatcher's thread instead of its own thread.
    #[arg(long)]
    no_compile_thread: bool,
    /// Hot code is compiled as regions (loops, paths) by the optimizing tier.
    #[arg(long, value_enum, default_value = "on")]
    regions: OnOff,
    /// Cap on the guest blocks of one region.
    #[arg(long, value_name = "N", default_value_t = rvdbt::jit::region::DEFAULT_MAX_REGION_BLOCKS, value_parser = parse_region_cap)]
    max_region_blocks: usize,
    /// Cranelift code writes the guest state at stores that loads follow, and a load
    /// that faults resumes there; off: every inline access keeps the exact state where
    /// it is (more stores).
    #[arg(long, value_enum, default_value = "on")]
    checkpoints: OnOff,
    /// Print every translation: the same as --dump guest,clif,host.
    #[arg(long)]
    print_code: bool,
    /// Dump, for every translation, its guest code, Cranelift IR (clif) and host code,
    /// and the events that recompile or drop translations with their reasons
    /// (comma-separated: guest, clif, host, events, or all).
    #[arg(long, value_name = "WHAT", value_parser = DumpSet::parse)]
    dump: Option<DumpSet>,
    /// Write the dump to this file instead of stderr.
    #[arg(long, value_name = "FILE")]
    dump_file: Option<PathBuf>,
    /// Check every entry into translated code against the interpreter, in lockstep;
    /// stop at the first difference with both states and the code (exit status 70).
    #[arg(long, conflicts_with = "gdb")]
    verify: bool,
    /// Run Cranelift's IR verifier on every function (default: on in debug builds).
    #[arg(long)]
    verify_ir: bool,
    /// Translate every register-register add as a sub: a broken lifting, for testing
    /// --verify.
    #[arg(long, hide = true)]
    plant_bug: bool,
    /// Stop after this many guest instructions (exit status 124).
    #[arg(long, value_name = "N")]
    max_insns: Option<u64>,
    /// Stop the run after this many seconds (fractions allowed; exit status 124).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    timeout: Option<Duration>,
    /// Guest stack size in bytes; K, M and G suffixes allowed (default 8M).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "8M")]
    stack_size: u32,
    /// Cap on guest memory in MiB (segments, stack and brk heap); brk beyond it fails.
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u32).range(1..=4096))]
    max_memory: Option<u32>,
    /// Let the guest open files beneath this directory (paths resolve inside it only).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Set a guest environment variable (repeatable). The guest gets no host environment.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Stop the run at an unknown syscall instead of returning -ENOSYS.
    #[arg(long)]
    strict_syscalls: bool,
    /// Do not ask for transparent huge pages for large guest RAM regions.
    #[arg(long)]
    no_huge_pages: bool,
    /// Map no devices (test finisher, timer, UART): plain Linux user mode, as qemu-riscv32.
    #[arg(long)]
    no_devices: bool,
    /// The instruction set the guest may use (rv32im, rv32ima, rv32imc or rv32imac);
    /// instructions of other extensions are illegal.
    #[arg(long, value_name = "ISA", default_value = "rv32imac", value_parser = parse_isa)]
    isa: Isa,
    /// Print statistics on stderr at the end.
    #[arg(long)]
    stats: bool,
    /// Write statistics as JSON to this file.
    #[arg(long, value_name = "FILE")]
    stats_json: Option<PathBuf>,
    /// Trace execution: a line per dynamic basic block, or per retired instruction (the
    /// same on every backend; translated code then runs a block, or an instruction, an
    /// entry).
    #[arg(long, value_enum)]
    trace: Option<TraceArg>,
    /// Write the trace to this file instead of stderr.
    #[arg(long, value_name = "FILE", requires = "trace")]
    trace_file: Option<PathBuf>,
    /// Wait for gdb on 127.0.0.1:PORT (0: any free port, printed on stderr) and serve it
    /// (breakpoints end translated blocks; single steps run on the interpreter).
    #[arg(long, value_name = "PORT")]
    gdb: Option<u16>,
}

#[derive(Clone, Copy, ValueEnum)]
enum TraceArg {
    /// PC, retired count and symbol of every dynamic basic block.
    Blocks,
    /// PC, disassembly and written register (or stored memory) of every instruction.
    Insns,
}

fn parse_block_cap(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=4096).contains(&n) => Ok(n),
        _ => Err(format!("invalid block cap '{s}' (1 to 4096)")),
    }
}

fn parse_region_cap(s: &str) -> Result<usize, String> {
    let max = rvdbt::jit::region::MAX_REGION_INSNS;
    match s.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("invalid region cap '{s}' (1 to {max} blocks)")),
    }
}

fn parse_isa(s: &str) -> Result<Isa, String> {
    Isa::parse(s).ok_or_else(|| format!("invalid ISA '{s}' (rv32im, rv32ima, rv32imc or rv32imac)"))
}

fn parse_size(s: &str) -> Result<u32, String> {
    let (digits, mult) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1024),
        Some('m' | 'M') => (&s[..s.len() - 1], 1024 * 1024),
        Some('g' | 'G') => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("invalid size '{s}' (use e.g. 65536, 64K, 8M, 1G)"))
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 1e9 => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!("invalid timeout '{s}' (seconds, e.g. 10 or 0.5)")),
    }
}

extern "C" fn record_startup() {
    host::record_startup();
}

/// Records what rvdbt inherited (SIGPIPE ignored? closed standard descriptors?) before
/// the Rust runtime changes it: a constructor runs before `main` and the runtime's setup.
#[used]
#[link_section = ".init_array"]
static RECORD_STARTUP: extern "C" fn() = record_startup;

fn main() -> ExitCode {
    // As a native process: SIGPIPE kills (unless inherited ignored), and a SIGSEGV/SIGBUS
    // sent to rvdbt kills it, from the first instruction on.
    host::restore_sigpipe();
    fault::install();
    // Before any other file is opened: closed standard descriptors stay closed for the
    // guest, and rvdbt's own messages get a private copy of stderr.
    let io = Io::host();
    host::init_diagnostics(io.is_closed(2));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line: clap's message without its usage and tips.
            let text = e.render().to_string();
            let reason: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
                .collect();
            let reason = match reason.join(" ") {
                r if r.is_empty() || r.starts_with("Run RISC-V") => {
                    "missing command (try 'rvdbt run PROGRAM.elf')".into()
                }
                r => r.trim_start_matches("error: ").to_string(),
            };
            diag!("rvdbt: {reason} (see 'rvdbt --help')\n");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match cli.command {
        Command::Disasm(args) => disasm(args),
        Command::Run(args) => match run(args, io) {
            Ok(code) => code,
            Err(e) => {
                diag!("rvdbt: {e:#}\n");
                ExitCode::from(EXIT_USAGE)
            }
        },
    }
}

fn disasm(args: DisasmArgs) -> ExitCode {
    let path = args.program.display().to_string();
    let selection = match (args.func, args.addr) {
        (Some(name), _) => Selection::Function(name),
        (None, Some(sel)) => sel,
        (None, None) => Selection::All,
    };
    let listing = std::fs::read(&args.program)
        .map_err(|e| format!("cannot read {path}: {e}"))
        .and_then(|elf| rvdbt::listing::disassemble_file(&path, &elf, &selection));
    match listing {
        Ok(text) => {
            // A closed pipe (`| head`) is not an error.
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(reason) => {
            diag!("rvdbt: {reason}\n");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn run(args: RunArgs, mut io: Io) -> anyhow::Result<ExitCode> {
    let elf = std::fs::read(&args.program).with_context(|| format!("cannot read {}", args.program.display()))?;
    let mut guest_args = vec![args.program.to_string_lossy().into_owned()];
    guest_args.extend(args.args.iter().cloned());
    for e in &args.env {
        anyhow::ensure!(e.contains('='), "--env wants KEY=VALUE, got '{e}'");
    }
    let config = MachineConfig {
        stack_size: args.stack_size,
        strict_syscalls: args.strict_syscalls,
        huge_pages: !args.no_huge_pages,
        devices: !args.no_devices,
        max_memory: args.max_memory.map(|mib| u64::from(mib) << 20),
        isa: args.isa,
    };
    if let Some(dir) = &args.dir {
        io.grant_dir(dir).with_context(|| format!("cannot grant {}", dir.display()))?;
    }
    let mut machine = Machine::from_elf(&elf, &guest_args, &args.env, config, io)
        .with_context(|| format!("cannot load {}", args.program.display()))?;

    // Opened now, so that a bad path is reported before the run, and so that the file
    // can be written at the end even if the guest used up every descriptor.
    let mut stats_file = match &args.stats_json {
        Some(path) => Some(std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?),
        None => None,
    };

    let interrupt = Arc::new(AtomicUsize::new(0));
    host::install_stop_signals(&interrupt).context("cannot install the SIGINT/SIGTERM handler")?;
    if let Some(after) = args.timeout {
        host::start_timeout(Arc::clone(&interrupt), after).context("cannot start the --timeout timer")?;
    }
    let backend = match args.backend {
        BackendArg::Interp => Backend::Interp,
        BackendArg::Cranelift => Backend::Cranelift,
        BackendArg::Direct => Backend::Direct,
        BackendArg::Tiered => Backend::Tiered,
    };
    let jit = JitConfig {
        optimize: matches!(args.opt, OptArg::Speed),
        verify: args.verify_ir || cfg!(debug_assertions),
        max_block_insns: args.max_block_insns,
        code_cache_bytes: args.code_cache as usize * 1024 * 1024,
        near_code: true,
        mem: match args.mem {
            MemArg::Calls => MemMode::Calls,
            MemArg::Adaptive => MemMode::Adaptive,
            MemArg::Fastmem => MemMode::Fastmem,
        },
        commit_after: args.commit_after,
        dump: match (args.dump, args.print_code) {
            (Some(d), true) => d.with(DumpSet::CODE),
            (Some(d), false) => d,
            (None, true) => DumpSet::CODE,
            (None, false) => DumpSet::default(),
        },
        dump_file: args.dump_file.clone(),
        compile_after: args.compile_after,
        tier_up: args.tier_up,
        compile_thread: !args.no_compile_thread,
        regions: matches!(args.regions, OnOff::On),
        max_region_blocks: args.max_region_blocks,
        checkpoints: matches!(args.checkpoints, OnOff::On),
        planted_bug: args.plant_bug,
        ..JitConfig::default()
    };
    if args.dump_file.is_some() && !jit.dump.any() {
        anyhow::bail!("--dump-file needs --dump or --print-code");
    }
    if jit.dump.any() && !backend.translates() {
        diag!("rvdbt: warning: --dump and --print-code show translations, and the interpreter makes none\n");
    }
    let opts = RunOptions { backend, max_insns: args.max_insns, interrupt: Some(interrupt), jit, verify: args.verify };
    let mut tracer = match args.trace {
        None => None,
        Some(kind) => {
            let kind = match kind {
                TraceArg::Blocks => TraceKind::Blocks,
                TraceArg::Insns => TraceKind::Insns,
            };
            let file = args.trace_file.as_deref();
            let tracer = Tracer::create(kind, file, Symbols::from_elf(&elf).ok())
                .with_context(|| format!("cannot create {}", file.unwrap_or("".as_ref()).display()))?;
            Some(tracer)
        }
    };
    let result = match (args.gdb, tracer.as_mut()) {
        (Some(port), tracer) => gdb::run(&mut machine, &opts, port, tracer).map_err(anyhow::Error::from),
        (None, tracer) => {
            let observer = tracer.map(|t| t as &mut dyn Observer);
            runner::run_observed(&mut machine, &opts, observer).map_err(anyhow::Error::from)
        }
    };
    let report = match result {
        Err(e) if matches!(e.downcast_ref(), Some(JitError::Mismatch(_))) => {
            diag!("rvdbt: {e}\n");
            return Ok(ExitCode::from(EXIT_VERIFY));
        }
        r => r?,
    };
    if let Some(Err(e)) = tracer.map(|mut t| t.finish(&report.exit, machine.cpu.retired)) {
        eprintln!("rvdbt: warning: the trace is incomplete: {e}");
    }

    match &report.exit {
        Exit::Exited(_) => {}
        Exit::Fault(f) => diag!("rvdbt: {}\n", machine.describe_fault(f)),
        other => diag!("rvdbt: {other}\n"),
    }
    if args.stats {
        host::eprint(&runner::stats_table(&machine, &report));
    }
    // What rvdbt reports about the run never changes the guest's exit status: a statistics
    // file that cannot be written is a warning.
    if let (Some(file), Some(path)) = (&mut stats_file, &args.stats_json) {
        if let Err(e) = file.write_all(runner::stats_json(&machine, &report).as_bytes()) {
            diag!("rvdbt: warning: cannot write {}: {e}\n", path.display());
        }
    }
    Ok(ExitCode::from(report.exit.status() as u8))
}
