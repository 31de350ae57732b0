//! Guest code that rewrites code it already ran, without `fence.i`: every translating
//! backend in every memory mode must run the new code, exactly as the interpreter does
//! (byte, halfword and word stores into a hot function, from inline and helper stores,
//! a store into the block that is running, and a `read` into code).

mod common;
use common::*;
use rvdbt::jit::access::MemMode;
use rvdbt::machine::{Exit, Machine, MachineConfig};
use rvdbt::runner::{self, Backend, RunOptions};

const S0: u8 = 8;
const S1: u8 = 9;
const S2: u8 = 18;
const S4: u8 = 20;
const S6: u8 = 22;
const T3: u8 = 28;
const T4: u8 = 29;
const T5: u8 = 30;
const T6: u8 = 31;

fn andi(rd: u8, rs1: u8, imm: i32) -> u32 {
    i_type(0x13, 7, rd, rs1, imm)
}
fn srli(rd: u8, rs1: u8, sh: i32) -> u32 {
    i_type(0x13, 5, rd, rs1, sh)
}
fn or(rd: u8, rs1: u8, rs2: u8) -> u32 {
    r_type(0x33, 6, 0, rd, rs1, rs2)
}
fn remu(rd: u8, rs1: u8, rs2: u8) -> u32 {
    r_type(0x33, 7, 1, rd, rs1, rs2)
}
fn sh(rs1: u8, rs2: u8, off: i32) -> u32 {
    s_type(0x23, 1, rs1, rs2, off)
}

/// A jump or branch to a label: where it is, the label, its encoder (taking the byte
/// offset).
type Fixup = (usize, &'static str, fn(i32) -> u32);

/// Straight-line code with labels: `at(label)` binds one, `to` emits a jump or branch
/// to one, `finish` resolves them.
#[derive(Default)]
struct Code {
    words: Vec<u32>,
    labels: std::collections::HashMap<&'static str, usize>,
    fixups: Vec<Fixup>,
}

impl Code {
    fn emit(&mut self, words: &[u32]) -> &mut Self {
        self.words.extend_from_slice(words);
        self
    }
    fn at(&mut self, label: &'static str) -> &mut Self {
        self.labels.insert(label, self.words.len());
        self
    }
    fn to(&mut self, label: &'static str, enc: fn(i32) -> u32) -> &mut Self {
        self.fixups.push((self.words.len(), label, enc));
        self.words.push(0);
        self
    }
    fn addr(&self, label: &str) -> u32 {
        TEXT_BASE + 4 * self.labels[label] as u32
    }
    fn finish(mut self) -> (Vec<u32>, Self) {
        for &(i, label, enc) in &self.fixups {
            let off = (self.labels[label] as i32 - i as i32) * 4;
            self.words[i] = enc(off);
        }
        (self.words.clone(), self)
    }
}

/// addi a0, a0, 0
const ADDI_A0: u32 = 0x0005_0513;
/// addi s4, s4, 0
const ADDI_S4: u32 = 0x13 | (20 << 7) | (20 << 15);

/// The program: `ROUNDS` times, call `hot` (addi a0, a0, K; ret) and add its result;
/// then rewrite K with a word, halfword or byte store (by round), and rewrite an
/// instruction further on in the running block. Ends with exit(sum & 0xff); the sum
/// and the patched counter stay in s2 and s4.
fn program(rounds: u32) -> Vec<u32> {
    let mut c = Code::default();
    c.emit(&li(S1, rounds)).emit(&[addi(S2, ZERO, 0), addi(S4, ZERO, 0)]);
    c.emit(&li(S0, 0)); // patched below: &hot
    c.emit(&li(S6, 0)); // patched below: &patch_me
    c.at("loop").emit(&[mv(A0, S1)]).to("hot", |o| j_type(RA, o)).emit(&[add(S2, S2, A0)]);
    // t1 = addi a0, a0, (s1 & 0x3ff)
    c.emit(&[andi(T0, S1, 0x3ff), slli(T1, T0, 20)]).emit(&li(T2, ADDI_A0)).emit(&[or(T1, T1, T2)]);
    c.emit(&[addi(T3, ZERO, 3), remu(T4, S1, T3)]);
    c.to("word", |o| beq(T4, ZERO, o));
    c.emit(&[addi(T3, ZERO, 1)]).to("half", |o| beq(T4, T3, o));
    c.emit(&[srli(T5, T1, 24), sb(S0, T5, 3)]).to("next", |o| j_type(ZERO, o));
    c.at("half").emit(&[srli(T5, T1, 16), sh(S0, T5, 2)]).to("next", |o| j_type(ZERO, o));
    c.at("word").emit(&[sw(S0, T1, 0)]);
    // In one block: rewrite `patch_me` (addi s4, s4, s1 & 7), then run it.
    c.at("next").emit(&li(T6, ADDI_S4)).emit(&[andi(T0, S1, 7), slli(T0, T0, 20), or(T6, T6, T0), sw(S6, T6, 0)]);
    c.at("patch_me").emit(&[addi(S4, S4, 100), addi(S1, S1, -1)]);
    c.to("loop", |o| bne(S1, ZERO, o));
    c.emit(&[andi(A0, S2, 0xff)]).emit(&exit_seq());
    c.at("hot").emit(&[addi(A0, A0, 1), jalr(ZERO, RA, 0)]);
    let (mut words, c) = c.finish();
    let (hot, patch) = (c.addr("hot"), c.addr("patch_me"));
    words[3..5].copy_from_slice(&li(S0, hot));
    words[5..7].copy_from_slice(&li(S6, patch));
    words
}

/// The program as an ELF whose text segment is writable too (read, write, execute).
fn rwx_image(text: &[u32]) -> Vec<u8> {
    let mut elf = elf_image(text, &[], 0);
    // p_flags of the first program header (the text segment): PF_R | PF_W | PF_X.
    elf[52 + 24] = 7;
    elf
}

fn run(elf: &[u8], stdin: &[u8], backend: Backend, mode: MemMode) -> (Machine, Exit) {
    let mut m = machine_with(elf, &[], stdin, MachineConfig::default());
    let mut opts = RunOptions { backend, max_insns: Some(10_000_000), ..RunOptions::default() };
    opts.jit.verify = true;
    opts.jit.compile_after = 0;
    opts.jit.tier_up = 2;
    opts.jit.mem = mode;
    let exit = runner::run(&mut m, &opts).expect("translator works").exit;
    (m, exit)
}

/// Runs `elf` on the interpreter and on every translating backend in every memory
/// mode; each must end exactly as the interpreter did. Returns the interpreter's run
/// and the code-write faults of the translated runs.
fn agree(elf: &[u8], stdin: &[u8]) -> (Machine, Exit, u64) {
    let (want, want_exit) = run(elf, stdin, Backend::Interp, MemMode::Adaptive);
    let mut code_write_faults = 0;
    for backend in Backend::ALL.into_iter().filter(|b| b.translates()) {
        for mode in MODES {
            let (m, exit) = run(elf, stdin, backend, mode);
            let what = format!("{} --mem {}", backend.name(), mode.name());
            assert_eq!(exit, want_exit, "{what}");
            assert_eq!(m.cpu.regs, want.cpu.regs, "{what}: registers");
            assert_eq!(m.cpu.pc, want.cpu.pc, "{what}: pc");
            assert_eq!(m.cpu.retired, want.cpu.retired, "{what}: retired");
            assert_eq!(m.mem.ram_hash(), want.mem.ram_hash(), "{what}: memory");
            assert_eq!(m.stats.cache.cache_flushes, 0, "{what}: nothing is flushed");
            assert!(m.stats.cache.code_pages_invalidated > 0, "{what}: the written page's code was dropped");
            if mode == MemMode::Calls {
                assert_eq!(m.stats.code_write_faults, 0, "{what}: helper stores never fault");
            }
            code_write_faults += m.stats.code_write_faults;
        }
    }
    (want, want_exit, code_write_faults)
}

#[test]
fn stores_into_a_hot_function_without_fence_i_run_the_new_code() {
    const ROUNDS: u32 = 300;
    let (m, exit, faults) = agree(&rwx_image(&program(ROUNDS)), b"");
    // The interpreter's own result, worked out: each call returns s1 + K, where K is
    // what the previous round wrote (1 before the first).
    let (mut imm, mut sum, mut s4) = (1u32, 0u32, 0u32);
    for s1 in (1..=ROUNDS).rev() {
        sum = sum.wrapping_add(s1 + imm);
        let word = ((s1 & 0x3ff) << 20) | ADDI_A0;
        let old = (imm << 20) | ADDI_A0;
        let new = match s1 % 3 {
            0 => word,
            1 => (old & 0x0000_ffff) | (word & 0xffff_0000),
            _ => (old & 0x00ff_ffff) | (word & 0xff00_0000),
        };
        imm = new >> 20;
        s4 += s1 & 7;
    }
    assert_eq!(exit, Exit::Exited((sum & 0xff) as i32));
    assert_eq!((m.cpu.regs[S2 as usize], m.cpu.regs[S4 as usize]), (sum, s4));
    assert!(faults > 0, "inline stores (adaptive once committed, fastmem) hit the protected code");
}

#[test]
fn a_read_into_code_runs_what_was_read() {
    // Run `hot` (li a0, 1; ret) until it is translated, read 4 bytes of stdin over its
    // first instruction, call it again: a0 must come from the new instruction.
    let mut c = Code::default();
    c.emit(&li(S0, 0)).emit(&[addi(S1, ZERO, 50)]);
    c.at("warm").to("hot", |o| j_type(RA, o)).emit(&[addi(S1, S1, -1)]).to("warm", |o| bne(S1, ZERO, o));
    c.emit(&[addi(A0, ZERO, 0), mv(A1, S0), addi(A2, ZERO, 4), addi(A7, ZERO, 63), ecall()]);
    c.to("hot", |o| j_type(RA, o)).emit(&exit_seq());
    c.at("hot").emit(&[addi(A0, ZERO, 1), jalr(ZERO, RA, 0)]);
    let (mut words, c) = c.finish();
    words[0..2].copy_from_slice(&li(S0, c.addr("hot")));
    let stdin = addi(A0, ZERO, 77).to_le_bytes();
    let (_, exit, _) = agree(&rwx_image(&words), &stdin);
    assert_eq!(exit, Exit::Exited(77));
}
