//! Every bundled guest program on every backend: exact stdout and exit status against
//! the committed expectations (qemu-riscv32's output where qemu can run the program),
//! and on every translating backend exactly the interpreter's final state: retired
//! instructions, registers, pc and a hash of all RAM. The programs include the
//! picolibc rv32imac ones (`imac-*`); the rv32imac builds of the runtime programs
//! (`bin/imac/`) must give the same expected output as their rv32im builds.

mod common;

use rvdbt::jit::access::MemMode;
use rvdbt::machine::{Exit, Machine, MachineConfig};
use rvdbt::runner::{self, Backend, RunOptions};
use rvdbt::syscall::Io;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("guest-programs")
}

struct Program {
    name: String,
    elf: Vec<u8>,
    args: Vec<String>,
    stdin: Vec<u8>,
    stdout: Vec<u8>,
    code: i32,
    stderr: Option<String>,
}

fn programs() -> Vec<Program> {
    programs_in("bin")
}

/// The programs whose ELF is in `bin_dir` (relative to guest-programs), with the
/// expectations of their name.
fn programs_in(bin_dir: &str) -> Vec<Program> {
    let dir = root().join("expected");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("guest-programs/expected exists")
        .filter_map(|e| {
            let p = e.ok()?.path();
            if p.extension()? != "code" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    if bin_dir == "bin" {
        assert!(names.len() >= 25, "expected at least 25 guest programs, found {}", names.len());
    } else {
        names.retain(|name| root().join(bin_dir).join(format!("{name}.elf")).exists());
        assert!(names.len() >= 20, "expected at least 20 programs in {bin_dir}, found {}", names.len());
    }
    names
        .into_iter()
        .map(|name| {
            let read = |ext: &str| std::fs::read(dir.join(format!("{name}.{ext}"))).ok();
            let code = String::from_utf8(read("code").unwrap()).unwrap().trim().parse().expect("numeric .code");
            Program {
                elf: std::fs::read(root().join(bin_dir).join(format!("{name}.elf")))
                    .expect("ELF for every expectation"),
                args: read("args")
                    .map(|a| String::from_utf8(a).unwrap().lines().map(str::to_string).collect())
                    .unwrap_or_default(),
                stdin: read("stdin").unwrap_or_default(),
                stdout: read("stdout").unwrap_or_default(),
                stderr: read("stderr").map(|s| String::from_utf8(s).unwrap().trim().to_string()),
                code,
                name,
            }
        })
        .collect()
}

fn run_program(p: &Program, backend: Backend, tweak: &dyn Fn(&mut RunOptions)) -> (Machine, Exit) {
    // argv[0] as qemu-riscv32 was given it when the expectations were recorded.
    let mut argv = vec![format!("{}.elf", p.name)];
    argv.extend(p.args.iter().cloned());
    let io = Io::buffered(p.stdin.clone());
    let mut m = Machine::from_elf(&p.elf, &argv, &[], MachineConfig::default(), io).expect("loads");
    let mut opts = RunOptions { backend, max_insns: Some(2_000_000_000), ..RunOptions::default() };
    opts.jit.verify = true;
    tweak(&mut opts);
    let report = runner::run(&mut m, &opts).expect("translator works");
    (m, report.exit)
}

#[test]
fn every_program_gives_its_expected_output_on_every_backend() {
    for p in programs() {
        let (reference, exit) = run_program(&p, Backend::Interp, &|_| {});
        assert_eq!(exit.status(), p.code, "{}: exit status ({exit:?})", p.name);
        assert_eq!(
            String::from_utf8_lossy(reference.io.stdout_bytes()),
            String::from_utf8_lossy(&p.stdout),
            "{}: stdout",
            p.name
        );
        if let Some(want) = &p.stderr {
            let said = match &exit {
                Exit::Fault(f) => reference.describe_fault(f),
                _ => reference.warnings.join("\n"),
            };
            assert!(said.contains(want.as_str()), "{}: diagnostic {said:?} should mention {want:?}", p.name);
        }
        for backend in [Backend::Cranelift, Backend::Direct, Backend::Tiered] {
            for mode in [MemMode::Calls, MemMode::Adaptive, MemMode::Fastmem] {
                // Everything translated at first entry; then the default warm-up.
                for compile_after in [0, rvdbt::jit::DEFAULT_COMPILE_AFTER] {
                    let (m, e) = run_program(&p, backend, &|o| {
                        o.jit.mem = mode;
                        o.jit.compile_after = compile_after;
                        // Tiered: blocks move on to Cranelift after a few entries.
                        o.jit.tier_up = 3;
                    });
                    let what =
                        format!("--backend {} --mem {} --compile-after {compile_after}", backend.name(), mode.name());
                    assert_eq!(e, exit, "{} ({what}): exit", p.name);
                    common::assert_same_machine(&format!("{}, {what}", p.name), &reference, &m);
                }
            }
        }
    }
}

#[test]
fn rv32imac_builds_give_the_expected_output_on_every_backend() {
    for p in programs_in("bin/imac") {
        let (reference, exit) = run_program(&p, Backend::Interp, &|_| {});
        let name = format!("imac/{}", p.name);
        assert_eq!(exit.status(), p.code, "{name}: exit status ({exit:?})");
        assert_eq!(
            String::from_utf8_lossy(reference.io.stdout_bytes()),
            String::from_utf8_lossy(&p.stdout),
            "{name}: stdout"
        );
        for backend in [Backend::Cranelift, Backend::Direct, Backend::Tiered] {
            for mode in [MemMode::Calls, MemMode::Adaptive, MemMode::Fastmem] {
                let (m, e) = run_program(&p, backend, &|o| {
                    o.jit.mem = mode;
                    o.jit.compile_after = 0;
                    o.jit.tier_up = 3;
                });
                let what = format!("--backend {} --mem {}", backend.name(), mode.name());
                assert_eq!(e, exit, "{name} ({what}): exit");
                common::assert_same_machine(&format!("{name}, {what}"), &reference, &m);
            }
        }
    }
}

#[test]
fn tiny_code_cache_forces_flushes_and_changes_nothing() {
    for p in programs() {
        let (reference, exit) = run_program(&p, Backend::Interp, &|_| {});
        for backend in [Backend::Cranelift, Backend::Direct, Backend::Tiered] {
            let (m, e) = run_program(&p, backend, &|o| {
                o.jit.code_cache_bytes = 16 * 1024;
                o.jit.compile_after = 0;
                o.jit.tier_up = 2;
            });
            let what = format!("{}, 16 KiB code cache", backend.name());
            assert_eq!(e, exit, "{} ({what}): exit", p.name);
            common::assert_same_machine(&format!("{}, {what}", p.name), &reference, &m);
            if m.stats.cache.total().code_bytes > 64 * 1024 {
                assert!(m.stats.cache.cache_flushes > 0, "{} ({what}): a 16 KiB cache must flush", p.name);
            }
        }
    }
}

#[test]
fn tiered_moves_hot_code_to_cranelift_regions_and_agrees() {
    let mut with_regions = 0;
    for p in programs() {
        let (reference, exit) = run_program(&p, Backend::Tiered, &|o| o.backend = Backend::Interp);
        for (regions, tier_up, checkpoints) in [(true, 1, true), (true, 3, false), (false, 1, true)] {
            let (m, e) = run_program(&p, Backend::Tiered, &|o| {
                o.jit.tier_up = tier_up;
                o.jit.regions = regions;
                o.jit.checkpoints = checkpoints;
                // Compile on the dispatcher's thread, so every hot block is tiered up.
                o.jit.compile_thread = false;
            });
            let what = format!("tier-up {tier_up}, regions {regions}, checkpoints {checkpoints}");
            assert_eq!(e, exit, "{} ({what}): exit", p.name);
            common::assert_same_machine(&format!("{}, {what}", p.name), &reference, &m);
            let c = &m.stats.cache;
            let names: Vec<_> = c.by_backend.iter().map(|(n, _)| *n).collect();
            assert_eq!(names, ["direct", "cranelift"], "{}", p.name);
            // Every tier-up is a Cranelift compile (others are recompiles after a state change).
            assert!(c.by_backend[1].1.blocks >= c.tier_ups, "{} ({what})", p.name);
            if c.by_backend[0].1.blocks > 10 {
                assert!(c.tier_ups > 0, "{} ({what}): hot blocks reach Cranelift", p.name);
            }
            if regions {
                assert!(c.region_blocks >= 2 * c.regions_compiled, "{} ({what})", p.name);
                with_regions += usize::from(c.regions_compiled > 0);
            } else {
                assert_eq!(c.regions_compiled, 0, "{} ({what})", p.name);
            }
        }
    }
    assert!(with_regions >= 10, "only {with_regions} programs compiled regions");
}

#[test]
fn unoptimized_and_tiny_blocks_agree_with_the_interpreter() {
    for p in programs() {
        let (reference, exit) = run_program(&p, Backend::Interp, &|_| {});
        for (what, tweak) in [
            ("opt none", &(|o: &mut RunOptions| o.jit.optimize = false) as &dyn Fn(&mut RunOptions)),
            ("1-instruction blocks", &|o: &mut RunOptions| {
                o.jit.max_block_insns = 1;
                o.jit.compile_after = 0;
            }),
            ("code far from the executable", &|o: &mut RunOptions| o.jit.near_code = false),
            ("commit after 1", &|o: &mut RunOptions| {
                o.jit.commit_after = 1;
                o.jit.compile_after = 0;
            }),
            ("fastmem with 1-instruction blocks", &|o: &mut RunOptions| {
                o.jit.mem = MemMode::Fastmem;
                o.jit.max_block_insns = 1;
                o.jit.compile_after = 0;
            }),
        ] {
            for backend in [Backend::Cranelift, Backend::Direct, Backend::Tiered] {
                let (m, e) = run_program(&p, backend, &|o| {
                    o.jit.tier_up = 2;
                    tweak(o)
                });
                let what = format!("{}, {what}", backend.name());
                assert_eq!(e, exit, "{} ({what}): exit", p.name);
                common::assert_same_machine(&format!("{}, {what}", p.name), &reference, &m);
            }
        }
    }
}

#[test]
fn max_insns_is_exact_on_every_backend() {
    let programs = programs();
    let p = programs.iter().find(|p| p.name == "sieve").expect("sieve");
    for limit in [1u64, 17, 1000, 123_457] {
        let (reference, exit) = run_program(p, Backend::Interp, &|o| o.max_insns = Some(limit));
        assert_eq!(exit, Exit::InsnLimit(limit));
        for backend in [Backend::Cranelift, Backend::Direct, Backend::Tiered] {
            let (m, e) = run_program(p, backend, &|o| {
                o.max_insns = Some(limit);
                o.jit.compile_after = 0;
                o.jit.tier_up = 2;
            });
            assert_eq!(e, Exit::InsnLimit(limit), "{} at {limit}", backend.name());
            common::assert_same_machine(&format!("sieve, {} --max-insns {limit}", backend.name()), &reference, &m);
        }
    }
}
