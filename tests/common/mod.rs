//! Test support: a small RV32IM encoder, an in-memory ELF writer and run helpers.
#![allow(dead_code)]

pub mod rvc;

use rvdbt::machine::{Exit, Machine, MachineConfig};
use rvdbt::runner::{self, Backend, RunOptions};
use rvdbt::syscall::Io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const TEXT_BASE: u32 = 0x1_0000;
pub const DATA_BASE: u32 = 0x2_0000;

/// Register names by ABI number.
pub const ZERO: u8 = 0;
pub const RA: u8 = 1;
pub const SP: u8 = 2;
pub const T0: u8 = 5;
pub const T1: u8 = 6;
pub const T2: u8 = 7;
pub const A0: u8 = 10;
pub const A1: u8 = 11;
pub const A2: u8 = 12;
pub const A7: u8 = 17;

pub fn r_type(op: u32, f3: u32, f7: u32, rd: u8, rs1: u8, rs2: u8) -> u32 {
    op | (u32::from(rd) << 7) | (f3 << 12) | (u32::from(rs1) << 15) | (u32::from(rs2) << 20) | (f7 << 25)
}
pub fn i_type(op: u32, f3: u32, rd: u8, rs1: u8, imm: i32) -> u32 {
    op | (u32::from(rd) << 7) | (f3 << 12) | (u32::from(rs1) << 15) | ((imm as u32 & 0xfff) << 20)
}
pub fn s_type(op: u32, f3: u32, rs1: u8, rs2: u8, imm: i32) -> u32 {
    let imm = imm as u32;
    op | ((imm & 31) << 7) | (f3 << 12) | (u32::from(rs1) << 15) | (u32::from(rs2) << 20) | (((imm >> 5) & 0x7f) << 25)
}
pub fn b_type(f3: u32, rs1: u8, rs2: u8, off: i32) -> u32 {
    let o = off as u32;
    0x63 | (((o >> 11) & 1) << 7)
        | (((o >> 1) & 0xf) << 8)
        | (f3 << 12)
        | (u32::from(rs1) << 15)
        | (u32::from(rs2) << 20)
        | (((o >> 5) & 0x3f) << 25)
        | (((o >> 12) & 1) << 31)
}
pub fn j_type(rd: u8, off: i32) -> u32 {
    let o = off as u32;
    0x6f | (u32::from(rd) << 7)
        | (o & 0xff000)
        | (((o >> 11) & 1) << 20)
        | (((o >> 1) & 0x3ff) << 21)
        | (((o >> 20) & 1) << 31)
}
pub fn lui(rd: u8, imm20: u32) -> u32 {
    0x37 | (u32::from(rd) << 7) | (imm20 << 12)
}
pub fn auipc(rd: u8, imm20: u32) -> u32 {
    0x17 | (u32::from(rd) << 7) | (imm20 << 12)
}
pub fn addi(rd: u8, rs1: u8, imm: i32) -> u32 {
    i_type(0x13, 0, rd, rs1, imm)
}
pub fn jalr(rd: u8, rs1: u8, imm: i32) -> u32 {
    i_type(0x67, 0, rd, rs1, imm)
}
pub fn ecall() -> u32 {
    0x73
}

pub fn lw(rd: u8, rs1: u8, off: i32) -> u32 {
    i_type(0x03, 2, rd, rs1, off)
}
pub fn lbu(rd: u8, rs1: u8, off: i32) -> u32 {
    i_type(0x03, 4, rd, rs1, off)
}
pub fn sw(rs1: u8, rs2: u8, off: i32) -> u32 {
    s_type(0x23, 2, rs1, rs2, off)
}
pub fn sb(rs1: u8, rs2: u8, off: i32) -> u32 {
    s_type(0x23, 0, rs1, rs2, off)
}
pub fn add(rd: u8, rs1: u8, rs2: u8) -> u32 {
    r_type(0x33, 0, 0, rd, rs1, rs2)
}
pub fn sub(rd: u8, rs1: u8, rs2: u8) -> u32 {
    r_type(0x33, 0, 0x20, rd, rs1, rs2)
}
pub fn xor(rd: u8, rs1: u8, rs2: u8) -> u32 {
    r_type(0x33, 4, 0, rd, rs1, rs2)
}
pub fn slli(rd: u8, rs1: u8, sh: i32) -> u32 {
    i_type(0x13, 1, rd, rs1, sh)
}
pub fn mv(rd: u8, rs: u8) -> u32 {
    addi(rd, rs, 0)
}
pub fn beq(rs1: u8, rs2: u8, off: i32) -> u32 {
    b_type(0, rs1, rs2, off)
}
pub fn bne(rs1: u8, rs2: u8, off: i32) -> u32 {
    b_type(1, rs1, rs2, off)
}
pub fn blt(rs1: u8, rs2: u8, off: i32) -> u32 {
    b_type(4, rs1, rs2, off)
}

/// `li rd, value` as lui + addi (always two instructions).
pub fn li(rd: u8, value: u32) -> [u32; 2] {
    let lo = ((value & 0xfff) as i32) << 20 >> 20;
    let hi = value.wrapping_sub(lo as u32) >> 12;
    [lui(rd, hi), addi(rd, rd, lo)]
}

/// `exit(a0)`: li a7, 93; ecall.
pub fn exit_seq() -> [u32; 2] {
    [addi(A7, ZERO, 93), ecall()]
}

/// A minimal static ELF32 RISC-V executable: text (R+X) at TEXT_BASE, optional data
/// (R+W) at DATA_BASE with `bss` extra zero bytes.
pub fn elf_image(text: &[u32], data: &[u8], bss: u32) -> Vec<u8> {
    let text_bytes: Vec<u8> = text.iter().flat_map(|w| w.to_le_bytes()).collect();
    let nph: u16 = if data.is_empty() && bss == 0 { 1 } else { 2 };
    let ehsize = 52u32;
    let phsize = 32u32;
    let text_off = 0x1000u32;
    let data_off = text_off + ((text_bytes.len() as u32 + 0xfff) & !0xfff);
    let mut f = Vec::new();
    f.extend_from_slice(b"\x7fELF");
    f.extend_from_slice(&[1, 1, 1, 0]);
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f.extend_from_slice(&243u16.to_le_bytes()); // EM_RISCV
    f.extend_from_slice(&1u32.to_le_bytes());
    f.extend_from_slice(&TEXT_BASE.to_le_bytes()); // entry
    f.extend_from_slice(&ehsize.to_le_bytes()); // phoff
    f.extend_from_slice(&0u32.to_le_bytes()); // shoff
    f.extend_from_slice(&0u32.to_le_bytes()); // flags
    f.extend_from_slice(&(ehsize as u16).to_le_bytes());
    f.extend_from_slice(&(phsize as u16).to_le_bytes());
    f.extend_from_slice(&nph.to_le_bytes());
    f.extend_from_slice(&40u16.to_le_bytes());
    f.extend_from_slice(&0u16.to_le_bytes());
    f.extend_from_slice(&0u16.to_le_bytes());
    let ph = |f: &mut Vec<u8>, off: u32, vaddr: u32, filesz: u32, memsz: u32, flags: u32| {
        for w in [1u32, off, vaddr, vaddr, filesz, memsz, flags, 0x1000] {
            f.extend_from_slice(&w.to_le_bytes());
        }
    };
    ph(&mut f, text_off, TEXT_BASE, text_bytes.len() as u32, text_bytes.len() as u32, 5);
    if nph == 2 {
        ph(&mut f, data_off, DATA_BASE, data.len() as u32, data.len() as u32 + bss, 6);
    }
    f.resize(text_off as usize, 0);
    f.extend_from_slice(&text_bytes);
    if nph == 2 {
        f.resize(data_off as usize, 0);
        f.extend_from_slice(data);
    }
    f
}

/// Loads an ELF image into a machine with buffered streams.
pub fn machine(elf: &[u8], args: &[&str], stdin: &[u8]) -> Machine {
    machine_with(elf, args, stdin, MachineConfig::default())
}

/// Loads an ELF image into a machine with buffered streams and `config`.
pub fn machine_with(elf: &[u8], args: &[&str], stdin: &[u8], config: MachineConfig) -> Machine {
    let mut argv = vec!["prog".to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    Machine::from_elf(elf, &argv, &[], config, Io::buffered(stdin.to_vec())).expect("loadable ELF")
}

/// Runs a machine on a backend.
pub fn run_on(m: &mut Machine, backend: Backend, max_insns: Option<u64>) -> Exit {
    let mut opts = RunOptions { backend, max_insns, ..RunOptions::default() };
    opts.jit.verify = true;
    // Translate every block on first entry, so tiny test programs run translated, and
    // move blocks to the next tier after two entries.
    opts.jit.compile_after = 0;
    opts.jit.tier_up = 2;
    runner::run(m, &opts).expect("translator works").exit
}

/// Runs raw text words (data optional) on a backend and returns the machine.
pub fn run_words(text: &[u32], data: &[u8], backend: Backend) -> (Machine, Exit) {
    run_words_isa(text, data, backend, rvdbt::guest::decode::Isa::default())
}

/// As [`run_words`], for a machine of the given ISA (`--isa`).
pub fn run_words_isa(text: &[u32], data: &[u8], backend: Backend, isa: rvdbt::guest::decode::Isa) -> (Machine, Exit) {
    let config = MachineConfig { isa, ..MachineConfig::default() };
    let mut m = machine_with(&elf_image(text, data, 0), &[], b"", config);
    let exit = run_on(&mut m, backend, Some(1_000_000));
    (m, exit)
}

/// The memory modes translating backends run in.
pub const MODES: [rvdbt::jit::access::MemMode; 3] =
    [rvdbt::jit::access::MemMode::Calls, rvdbt::jit::access::MemMode::Adaptive, rvdbt::jit::access::MemMode::Fastmem];

/// One run: which backend and mode, the machine as it ended, and how.
pub struct Run {
    pub what: String,
    pub m: Machine,
    pub exit: Exit,
}

/// Runs `text` on the interpreter (first) and on every translating backend in every
/// memory mode (blocks translated at once, tiered moving on after two entries).
pub fn run_everywhere(text: &[u32], data: &[u8], isa: rvdbt::guest::decode::Isa) -> Vec<Run> {
    let mut runs = Vec::new();
    for backend in backends() {
        let modes: &[rvdbt::jit::access::MemMode] =
            if backend == Backend::Interp { &[rvdbt::jit::access::MemMode::Adaptive] } else { &MODES };
        for &mode in modes {
            let config = MachineConfig { isa, ..MachineConfig::default() };
            let mut m = machine_with(&elf_image(text, data, 0), &[], b"", config);
            let mut opts = RunOptions { backend, max_insns: Some(1_000_000), ..RunOptions::default() };
            opts.jit.verify = true;
            opts.jit.compile_after = 0;
            opts.jit.tier_up = 2;
            opts.jit.mem = mode;
            let exit = runner::run(&mut m, &opts).expect("translator works").exit;
            runs.push(Run { what: format!("{} --mem {}", backend.name(), mode.name()), m, exit });
        }
    }
    runs
}

/// All the backends that must agree with the interpreter.
pub fn backends() -> Vec<Backend> {
    Backend::ALL.to_vec()
}

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let exe = std::env::current_exe().ok().and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()));
        let name = format!("rvdbt-{}-{}-{n}", exe.unwrap_or_default(), std::process::id());
        let dir = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn str(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Asserts that `m` ended in the interpreter's final state (`reference`): registers, pc,
/// retired count, RAM and stdout; `what` names the run in a failure.
pub fn assert_same_machine(what: &str, reference: &Machine, m: &Machine) {
    assert_eq!(m.cpu.regs, reference.cpu.regs, "registers ({what})");
    assert_eq!(m.cpu.pc, reference.cpu.pc, "pc ({what})");
    assert_eq!(m.cpu.retired, reference.cpu.retired, "retired ({what})");
    assert_eq!(m.mem.ram_hash(), reference.mem.ram_hash(), "memory ({what})");
    assert_eq!(m.io.stdout_bytes(), reference.io.stdout_bytes(), "stdout ({what})");
}
