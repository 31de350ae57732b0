//! Differential runs: a program run on the interpreter (the oracle) and on translating
//! backend variants must end in the same state (the `Exit`, all registers, the pc, the
//! retired-instruction count, the RAM contents, stdout, stderr and the warnings).
//! Shared by `tests/random_diff.rs`, `tests/fuzz_regressions.rs` and the `whole_run`
//! fuzz target.
#![allow(dead_code)]

use crate::common;
use crate::gen;
use rvdbt::jit::JitConfig;
use rvdbt::machine::{Exit, Machine, MachineConfig};
use rvdbt::runner::{self, Backend, RunOptions};
use rvdbt::syscall::Io;

/// Instruction cap of every run.
pub const MAX_INSNS: u64 = 100_000;

/// The end state of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub exit: Exit,
    pub regs: [u32; 32],
    pub pc: u32,
    pub retired: u64,
    pub ram_hash: u64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub warnings: Vec<String>,
}

/// A backend with a JIT configuration.
#[derive(Clone, Debug)]
pub struct Variant {
    pub name: String,
    pub backend: Backend,
    pub jit: JitConfig,
}

impl Variant {
    pub fn interp() -> Variant {
        Variant { name: "interp".into(), backend: Backend::Interp, jit: JitConfig::default() }
    }
}

/// Runs an ELF image on a variant; the machine as the run left it.
pub fn run_machine(elf: &[u8], v: &Variant, max_insns: u64) -> (Machine, Exit) {
    let config = MachineConfig { stack_size: 64 << 10, huge_pages: false, ..MachineConfig::default() };
    let mut m =
        Machine::from_elf(elf, &["prog".to_string()], &[], config, Io::buffered(Vec::new())).expect("loadable ELF");
    let mut opts = RunOptions { backend: v.backend, max_insns: Some(max_insns), ..RunOptions::default() };
    opts.jit = v.jit.clone();
    opts.jit.verify = true;
    let exit = runner::run(&mut m, &opts).unwrap_or_else(|e| panic!("{}: translator error: {e}", v.name)).exit;
    (m, exit)
}

pub fn run(elf: &[u8], v: &Variant, max_insns: u64) -> Outcome {
    let (m, exit) = run_machine(elf, v, max_insns);
    Outcome {
        exit,
        regs: m.cpu.regs,
        pc: m.cpu.pc,
        retired: m.cpu.retired,
        ram_hash: m.mem.ram_hash(),
        stdout: m.io.stdout_bytes().to_vec(),
        stderr: m.io.stderr_bytes().to_vec(),
        warnings: m.warnings.clone(),
    }
}

/// What differs between the reference outcome and another one.
pub fn differences(want: &Outcome, got: &Outcome) -> Vec<String> {
    let mut d = Vec::new();
    if want.exit != got.exit {
        d.push(format!("exit: {:?} vs {:?}", want.exit, got.exit));
    }
    for r in 0..32 {
        if want.regs[r] != got.regs[r] {
            d.push(format!(
                "x{r} ({}): {:#010x} vs {:#010x}",
                rvdbt::guest::disasm::reg_name(r as u8),
                want.regs[r],
                got.regs[r]
            ));
        }
    }
    if want.pc != got.pc {
        d.push(format!("pc: {:#010x} vs {:#010x}", want.pc, got.pc));
    }
    if want.retired != got.retired {
        d.push(format!("retired: {} vs {}", want.retired, got.retired));
    }
    if want.ram_hash != got.ram_hash {
        d.push(format!("ram_hash: {:#018x} vs {:#018x}", want.ram_hash, got.ram_hash));
    }
    if want.stdout != got.stdout {
        d.push(format!(
            "stdout: {:?} vs {:?}",
            String::from_utf8_lossy(&want.stdout),
            String::from_utf8_lossy(&got.stdout)
        ));
    }
    if want.stderr != got.stderr {
        d.push(format!(
            "stderr: {:?} vs {:?}",
            String::from_utf8_lossy(&want.stderr),
            String::from_utf8_lossy(&got.stderr)
        ));
    }
    if want.warnings != got.warnings {
        d.push(format!("warnings: {:?} vs {:?}", want.warnings, got.warnings));
    }
    d
}

/// Runs `text` + `data` on the interpreter and on every variant with `max_insns`.
/// Returns the interpreter's outcome, or a report of every disagreement.
pub fn check_words(text: &[u32], data: &[u8], variants: &[Variant], max_insns: u64) -> Result<Outcome, String> {
    let elf = common::elf_image(text, data, gen::BSS_LEN);
    let reference = run(&elf, &Variant::interp(), max_insns);
    let mut report = String::new();
    let mut marks = vec![(reference.pc, "interp stops".to_string())];
    for v in variants {
        let got = run(&elf, v, max_insns);
        let diffs = differences(&reference, &got);
        if !diffs.is_empty() {
            report.push_str(&format!("interp vs {} (max_insns {max_insns}):\n", v.name));
            for d in diffs {
                report.push_str(&format!("    {d}\n"));
            }
            marks.push((got.pc, format!("{} stops", v.name)));
        }
    }
    if report.is_empty() {
        Ok(reference)
    } else {
        let words: Vec<String> = text.iter().map(|w| format!("{w:#010x}")).collect();
        Err(format!(
            "{report}interp ended with {:?} after {} instructions\nprogram:\n{}words: [{}]\n",
            reference.exit,
            reference.retired,
            gen::listing(text, &marks),
            words.join(", ")
        ))
    }
}

/// Checks a program with the full instruction budget on `variants`; then, when
/// `cut` is given, again with a budget that stops it midway (`1 + cut % retired`).
pub fn check_program(p: &gen::Program, variants: &[Variant], cut: Option<u64>) -> Result<(), String> {
    let text = gen::assemble(p);
    let data = gen::data(p);
    let full = check_words(&text, &data, variants, MAX_INSNS)?;
    if let Some(cut) = cut {
        let limit = 1 + cut % full.retired.max(1);
        check_words(&text, &data, variants, limit)?;
    }
    Ok(())
}
