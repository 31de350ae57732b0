//! Criterion benchmarks: compile time over every block of the bundled programs (direct,
//! Cranelift at each optimization level), whole-program run time per backend and memory
//! mode, and the cost of one fault round trip
//! (inline access -> SIGSEGV -> handler -> trampoline exit path -> dispatcher).
//!
//!     cargo bench --bench translate [FILTER]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rvdbt::guest::cpu::Cpu;
use rvdbt::interp;
use rvdbt::jit::access::MemMode;
use rvdbt::jit::block::ends_block;
use rvdbt::jit::fault::{self, EntryResult};
use rvdbt::jit::JitConfig;
use rvdbt::machine::{Machine, MachineConfig};
use rvdbt::memory::{ARENA_GUARD, GUEST_SPACE};
use rvdbt::runner::new_cache;
use rvdbt::runner::{self, Backend, RunOptions};
use rvdbt::syscall::Io;
use std::hint::black_box;
use std::path::Path;

fn program(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("guest-programs/bin").join(format!("{name}.elf"));
    std::fs::read(path).expect("bundled program")
}

fn machine(elf: &[u8]) -> Machine {
    let config = MachineConfig { huge_pages: false, ..MachineConfig::default() };
    Machine::from_elf(elf, &["prog".to_string()], &[], config, Io::buffered(Vec::new())).expect("loads")
}

/// The bundled programs the compile benchmark covers.
const PROGRAMS: [&str; 10] =
    ["hello", "fib", "sieve", "qsort", "matmul", "crc32", "sha256", "strings", "malloc", "memheavy"];

/// Start pcs of every block a program runs (from an interpreted run: the entry and the
/// instruction after each block end), in first-execution order.
fn block_starts(elf: &[u8]) -> Vec<u32> {
    let mut m = machine(elf);
    let mut seen = std::collections::HashSet::new();
    let mut starts = Vec::new();
    let mut at_start = true;
    for _ in 0..50_000_000u64 {
        if at_start && seen.insert(m.cpu.pc) {
            starts.push(m.cpu.pc);
        }
        let Ok((inst, _)) = interp::fetch(&m) else { break };
        if interp::step(&mut m).is_err() {
            break;
        }
        at_start = ends_block(&inst);
    }
    starts
}

/// Compile time per block and per guest instruction, for each code generator, over
/// every block of the bundled programs: one iteration compiles all of a program's
/// blocks into a fresh cache (criterion reports the time per iteration; the blocks and
/// instructions per program are printed once).
fn compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    for name in PROGRAMS {
        let elf = program(name);
        let starts = block_starts(&elf);
        let configs = [
            ("direct", Backend::Direct, true),
            ("cranelift-none", Backend::Cranelift, false),
            ("cranelift-speed", Backend::Cranelift, true),
        ];
        let mut insns = 0;
        for (config, backend, optimize) in configs {
            group.bench_function(format!("{name}/{config}"), |b| {
                b.iter_batched(
                    || {
                        let m = machine(&elf);
                        let jit = JitConfig { optimize, verify: false, compile_after: 0, ..JitConfig::default() };
                        let cache = new_cache(backend, jit, &m).expect("backend");
                        (m, cache)
                    },
                    |(mut m, mut cache)| {
                        insns = 0;
                        for &pc in &starts {
                            let block = cache.lookup(&mut m.mem, pc).expect("compiles");
                            insns += block.map_or(0, |b| b.len);
                        }
                        black_box(&cache);
                        (m, cache)
                    },
                    BatchSize::PerIteration,
                )
            });
        }
        eprintln!("compile/{name}: {} blocks, {insns} guest instructions per iteration", starts.len());
    }
    group.finish();
}

/// Whole programs on each backend and memory mode.
fn run(c: &mut Criterion) {
    let mut group = c.benchmark_group("run");
    group.sample_size(10);
    for name in ["sieve", "qsort", "memheavy"] {
        let elf = program(name);
        let configs = [
            ("interp", Backend::Interp, MemMode::Calls),
            ("calls", Backend::Cranelift, MemMode::Calls),
            ("adaptive", Backend::Cranelift, MemMode::Adaptive),
            ("fastmem", Backend::Cranelift, MemMode::Fastmem),
            ("direct", Backend::Direct, MemMode::Adaptive),
            ("tiered", Backend::Tiered, MemMode::Adaptive),
        ];
        for (config, backend, mem) in configs {
            group.bench_function(format!("{name}/{config}"), |b| {
                b.iter(|| {
                    let mut m = machine(&elf);
                    let mut opts = RunOptions { backend, ..RunOptions::default() };
                    opts.jit.mem = mem;
                    black_box(runner::run(&mut m, &opts).expect("runs").exit)
                })
            });
        }
    }
    group.finish();
}

/// One fault round trip: a block whose inline load hits an unmapped page, entered
/// directly through the trampoline (the dispatcher's repair is not part of it).
fn fault_round_trip(c: &mut Criterion) {
    // lui a0, 0x40000; lw a1, 0(a0); then the exit syscall (never reached).
    let text = [0x4000_0537u32, 0x0005_2583, 0x05d0_0893, 0x0000_0073];
    let elf = tiny_elf(&text);
    let mut m = machine(&elf);
    let config = JitConfig { mem: MemMode::Fastmem, compile_after: 0, ..JitConfig::default() };
    let mut cache = new_cache(Backend::Cranelift, config, &m).expect("backend");
    let block = cache.lookup(&mut m.mem, m.cpu.pc).expect("compiles").expect("a block");
    fault::install();
    let arena = (m.mem.arena_base() as usize, (GUEST_SPACE + ARENA_GUARD) as usize);
    c.bench_function("fault_round_trip", |b| {
        b.iter(|| {
            m.cpu.budget_end = u64::MAX;
            let cpu = (&mut m as *mut Machine).cast::<Cpu>();
            // SAFETY: the block belongs to `cache`, alive and not
            // flushed; `cpu` points at `m`, unused elsewhere during the call.
            let r = unsafe { fault::enter(cpu, block.code, arena) };
            assert!(matches!(r, EntryResult::Fault { .. }));
            black_box(r)
        })
    });
}

/// A one-segment ELF with `text` at 0x10000.
fn tiny_elf(text: &[u32]) -> Vec<u8> {
    let code: Vec<u8> = text.iter().flat_map(|w| w.to_le_bytes()).collect();
    let mut f = Vec::new();
    f.extend_from_slice(b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0");
    for v in [2u16, 243] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    for v in [1u32, 0x10000, 52, 0, 0] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    for v in [52u16, 32, 1, 40, 0, 0] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    for v in [1u32, 0x1000, 0x10000, 0x10000, code.len() as u32, code.len() as u32, 5, 0x1000] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    f.resize(0x1000, 0);
    f.extend_from_slice(&code);
    f
}

criterion_group!(benches, compile, run, fault_round_trip);
criterion_main!(benches);
