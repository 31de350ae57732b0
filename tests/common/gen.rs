//! Random RV32IMAC programs for the differential tests in `tests/random_diff.rs` and the
//! `whole_run` fuzz target.
//!
//! A [`Program`] is a list of abstract [`Op`]s plus the initial register values and a
//! seed for the data segment. [`assemble`] turns it into code, a mix of 2-byte
//! (compressed) and 4-byte instructions, so 4-byte instructions sit at 2 mod 4 as often
//! as not and blocks mix both lengths. Every field
//! of every op is valid whatever its value (registers are mapped onto allowed sets,
//! offsets clamped into the RAM window, skip counts reduced), so proptest may shrink
//! any field freely and the result still assembles into a bounded program:
//!
//! - Random instructions only write the registers in [`DEST`]; the base registers,
//!   loop counters, `ra` and the two jump temporaries are never written by them.
//! - The only backward branches are loop back-edges on a counter register that the
//!   loop body cannot write, so every program terminates.
//! - Branches and jumps go forward over whole ops (never into the middle of a
//!   multi-instruction op), at most to the end of the enclosing list. The exceptions
//!   are the jumps of [`Op::Stop`] to misaligned (2 mod 4) targets, which land in
//!   padding that ends the run, and the retry loop of an lr/sc pair, which succeeds the
//!   first time (nothing comes between its lr and sc).
//!
//! [`gen_program`] builds programs from a u64 seed with a small xorshift generator of its
//! own, so a seed names a program independently of proptest; [`gen_program_from`] draws
//! the same choices from the bytes of a fuzz input instead (the `whole_run` fuzz target).
#![allow(dead_code)]

use crate::common::rvc::*;
use crate::common::{addi, auipc, b_type, ecall, i_type, j_type, jalr, li, lui, r_type, s_type, DATA_BASE, TEXT_BASE};
use rvdbt::memory::{CLINT_BASE, TEST_FINISHER_BASE, UART_BASE};

/// Initialised data bytes (random) at DATA_BASE, followed by BSS_LEN zero bytes.
pub const DATA_LEN: usize = 4096;
pub const BSS_LEN: u32 = 2048;
/// End of the data + bss bytes: normal loads and stores stay in [DATA_BASE, WINDOW_END).
pub const WINDOW_END: u32 = DATA_BASE + DATA_LEN as u32 + BSS_LEN;
/// End of the page-rounded data region; the brk heap starts right there.
pub const REGION_END: u32 = DATA_BASE + 0x2000;
pub const HEAP_START: u32 = REGION_END;

pub const RA: u8 = 1;
pub const SP: u8 = 2;
/// Base registers and the value the prologue gives them (inside the data window).
pub const BASES: [(u8, u32); 3] = [(8, DATA_BASE + 0x400), (9, DATA_BASE + 0xc00), (18, DATA_BASE + 0x1400)];
/// Loop counters by nesting depth.
pub const LOOP_REGS: [u8; 2] = [20, 21];
/// Jump temporary (jalr targets) and wild-address temporary.
pub const JT: u8 = 22;
pub const WT: u8 = 23;
/// Registers random instructions may write (x0 included: writes must be dropped).
pub const DEST: [u8; 23] = [0, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 17, 19, 24, 25, 26, 27, 28, 29, 30, 31];
const A0: u8 = 10;
const A1: u8 = 11;
const A2: u8 = 12;
const A7: u8 = 17;

/// One abstract operation. Field values are normalised by the assembler (see the
/// module documentation), so any value is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Register ALU op: f % 10 = add sub sll slt sltu xor srl sra or and.
    Reg {
        f: u8,
        rd: u8,
        rs1: u8,
        rs2: u8,
    },
    /// Immediate ALU op: f % 9 = addi slti sltiu xori ori andi slli srli srai.
    Imm {
        f: u8,
        rd: u8,
        rs1: u8,
        imm: i16,
    },
    /// M op f % 8 = mul mulh mulhsu mulhu div divu rem remu, with an operand preset
    /// (preset % 7): none, rs2 = 0, rs2 = -1, rs1 = INT_MIN, rs1 = INT_MIN and rs2 = -1,
    /// rs2 = rs1, rs1 = -1.
    Mul {
        f: u8,
        rd: u8,
        rs1: u8,
        rs2: u8,
        preset: u8,
    },
    Lui {
        rd: u8,
        imm20: u32,
    },
    Auipc {
        rd: u8,
        imm20: u32,
    },
    /// `li rd, value(kind, raw)` (see [`value`]).
    Li {
        rd: u8,
        kind: u8,
        raw: u32,
    },
    /// f % 5 = lb lh lw lbu lhu; base % 4 picks a base register (3 = sp).
    Load {
        f: u8,
        rd: u8,
        base: u8,
        off: i16,
    },
    /// f % 3 = sb sh sw.
    Store {
        f: u8,
        base: u8,
        rs2: u8,
        off: i16,
    },
    /// CSR access (never `time`): see [`emit_csr`].
    Csr {
        f: u8,
        rd: u8,
        rs1: u8,
    },
    Fence,
    /// An access outside the data window (kind % 14): unmapped, text, devices, region
    /// edge, heap, test finisher; or, inside loops, an access whose address depends on
    /// the loop counter, so that one instruction sees different regions (switch between
    /// two regions at an iteration, or sweep across a region boundary). See [`emit_wild`].
    Wild {
        kind: u8,
        f: u8,
        reg: u8,
        raw: u16,
    },
    /// kind % 5: write(1, ..), write(2, ..), brk, unknown syscall, getpid.
    Syscall {
        kind: u8,
        base: u8,
        off: i16,
        len: u8,
    },
    /// Forward conditional branch over 1 + skip % 4 ops; f % 6 = beq bne blt bge bltu bgeu.
    Branch {
        f: u8,
        rs1: u8,
        rs2: u8,
        skip: u8,
    },
    /// Forward jal over 1 + skip % 4 ops.
    Jal {
        rd: u8,
        skip: u8,
    },
    /// Forward jalr over 1 + skip % 4 ops through a computed register (form % 8).
    Jalr {
        form: u8,
        rd: u8,
        skip: u8,
    },
    /// A loop running 1 + count % 24 times (cond % 3 picks the back-edge branch).
    Loop {
        count: u8,
        cond: u8,
        body: Vec<Op>,
    },
    /// A call (`jal ra`) to the body, which returns with `jalr x0, 0(ra)`.
    Call {
        body: Vec<Op>,
    },
    FenceI,
    /// Something that ends the run (or may): see [`emit_stop`].
    Stop {
        kind: u8,
        raw: u8,
    },
    /// A compressed instruction (kind % 19), see [`emit_c`].
    C {
        kind: u8,
        rd: u8,
        rs: u8,
        imm: i16,
    },
    /// A forward c.beqz / c.bnez (f % 2) on x8..x15 over 1 + skip % 4 ops: the branch
    /// and two c.nop, or (target out of reach) the inverted branch over a `jal`.
    CBranch {
        f: u8,
        rs: u8,
        skip: u8,
    },
    /// A forward jump over 1 + skip % 4 ops: c.j (form even), or c.jr through a
    /// register computed with auipc (form odd; bit 0 of the target set half the time).
    CJump {
        form: u8,
        skip: u8,
    },
    /// A call of the body through c.jal, which returns with c.jr ra.
    CCall {
        body: Vec<Op>,
    },
    /// An AMO (f % 9) on an aligned word of the data window (base and offset as for
    /// stores), with ordering bits `ord % 4`.
    Amo {
        f: u8,
        rd: u8,
        base: u8,
        rs2: u8,
        off: i16,
        ord: u8,
    },
    /// lr.w / sc.w on an aligned word of the data window; kind % 8 picks what comes
    /// between (see [`emit_lrsc`]).
    LrSc {
        kind: u8,
        rd: u8,
        base: u8,
        rs2: u8,
        off: i16,
    },
}

/// A whole random program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// Seed of the random data segment.
    pub data_seed: u64,
    /// Initial values (kind, raw) of DEST[1..], see [`value`].
    pub init: Vec<(u8, u32)>,
    pub ops: Vec<Op>,
    /// a0 = this register (any) at the final exit.
    pub exit_reg: u8,
}

/// An interesting value: kind % 9 = 0, 1, -1, INT_MIN, INT_MAX, small, random, a data
/// pointer, a power of two.
pub fn value(kind: u8, raw: u32) -> u32 {
    match kind % 9 {
        0 => 0,
        1 => 1,
        2 => u32::MAX,
        3 => i32::MIN as u32,
        4 => i32::MAX as u32,
        5 => ((raw % 33) as i32 - 16) as u32,
        6 => raw,
        7 => DATA_BASE + raw % (WINDOW_END - DATA_BASE),
        _ => 1 << (raw % 32),
    }
}

fn dest(r: u8) -> u8 {
    DEST[r as usize % DEST.len()]
}

fn src(r: u8) -> u8 {
    r % 32
}

/// The base register for `base` and the allowed access window relative to it.
fn base_window(base: u8, width: i32) -> (u8, i32, i32) {
    match base % 4 {
        3 => (SP, -2048, 64 - width),
        b => {
            let (reg, val) = BASES[b as usize];
            let lo = (DATA_BASE as i32 - val as i32).max(-2048);
            let hi = (WINDOW_END as i32 - width - val as i32).min(2047);
            (reg, lo, hi)
        }
    }
}

fn sext12(v: i32) -> i32 {
    (v << 20) >> 20
}

const OP: u32 = 0x33;
const OP_IMM: u32 = 0x13;
const LOAD: u32 = 0x03;
const STORE: u32 = 0x23;
const SYSTEM: u32 = 0x73;

const LOADS: [(u32, i32); 5] = [(0, 1), (1, 2), (2, 4), (4, 1), (5, 2)];
const BRANCHES: [u32; 6] = [0, 1, 4, 5, 6, 7];

fn load_insn(f: u8, rd: u8, rs1: u8, off: i32) -> u32 {
    i_type(LOAD, LOADS[f as usize % 5].0, rd, rs1, off)
}

fn store_insn(f: u8, rs1: u8, rs2: u8, off: i32) -> u32 {
    s_type(STORE, u32::from(f % 3), rs1, rs2, off)
}

fn csr_insn(f3: u32, rd: u8, src: u8, csr: u32) -> u32 {
    SYSTEM | (u32::from(rd) << 7) | (f3 << 12) | (u32::from(src) << 15) | (csr << 20)
}

/// Code: 16-bit parcels.
type Code = Vec<u16>;

/// 32-bit instructions as parcels.
fn ws(words: &[u32]) -> Code {
    words.iter().flat_map(|&w| [w as u16, (w >> 16) as u16]).collect()
}

/// `li` that is one addi when the value fits 12 bits.
fn li_short(rd: u8, v: u32) -> Vec<u32> {
    if sext12(v as i32) == v as i32 {
        vec![addi(rd, 0, v as i32)]
    } else {
        li(rd, v).to_vec()
    }
}

/// Nesting context of the list being assembled.
#[derive(Clone, Copy, Debug, Default)]
struct Ctx {
    depth: usize,
    in_call: bool,
}

/// Assembles a list of ops at `pc`. Skip targets are op boundaries of this list.
fn emit_list(ops: &[Op], ctx: Ctx, pc: u32) -> Code {
    let sizes: Vec<u32> = ops.iter().map(|op| emit_op(op, ctx, 0, &|_| 0).len() as u32).collect();
    let mut starts = Vec::with_capacity(ops.len() + 1);
    let mut p = pc;
    for s in &sizes {
        starts.push(p);
        p += 2 * s;
    }
    starts.push(p);
    let mut out = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let target = |skip: u8| starts[(i + 2 + (skip % 4) as usize).min(ops.len())];
        let words = emit_op(op, ctx, starts[i], &target);
        debug_assert_eq!(words.len() as u32, sizes[i]);
        out.extend(words);
    }
    out
}

/// Assembles one op at `pc`; `target(skip)` is the pc after skipping 1 + skip % 4 ops.
fn emit_op(op: &Op, ctx: Ctx, pc: u32, target: &dyn Fn(u8) -> u32) -> Code {
    match *op {
        Op::Loop { count, cond, ref body } => {
            if ctx.depth >= LOOP_REGS.len() {
                return emit_list(body, ctx, pc);
            }
            let lc = LOOP_REGS[ctx.depth];
            let mut out = ws(&[addi(lc, 0, 1 + i32::from(count % 24))]);
            out.extend(emit_list(body, Ctx { depth: ctx.depth + 1, ..ctx }, pc + 4));
            out.extend(ws(&[addi(lc, lc, -1)]));
            let here = pc + 2 * out.len() as u32;
            let back = (pc + 4).wrapping_sub(here) as i32;
            out.extend(ws(&[match cond % 3 {
                0 => b_type(1, lc, 0, back),
                1 => b_type(4, 0, lc, back),
                _ => b_type(6, 0, lc, back),
            }]));
            out
        }
        Op::Call { ref body } => {
            if ctx.in_call {
                return emit_list(body, ctx, pc);
            }
            let inner = emit_list(body, Ctx { in_call: true, ..ctx }, pc + 8);
            let after = 2 * inner.len() as i32 + 8;
            let mut out = ws(&[j_type(RA, 8), j_type(0, after)]);
            out.extend(inner);
            out.extend(ws(&[jalr(0, RA, 0)]));
            out
        }
        Op::CCall { ref body } => {
            if ctx.in_call {
                return emit_list(body, ctx, pc);
            }
            // c.jal +6 (ra = pc + 2); jal x0, after; body; c.jr ra.
            let inner = emit_list(body, Ctx { in_call: true, ..ctx }, pc + 6);
            let after = 2 * inner.len() as i32 + 2 + 4;
            let mut out = vec![c_jal(6)];
            out.extend(ws(&[j_type(0, after)]));
            out.extend(inner);
            out.push(c_jr(RA));
            out
        }
        Op::C { kind, rd, rs, imm } => emit_c(kind, rd, rs, imm),
        Op::CBranch { f, rs, skip } => {
            let rs = 8 + rs % 8;
            let off = target(skip).wrapping_sub(pc) as i32;
            let br = |off| if f % 2 == 0 { c_beqz(rs, off) } else { c_bnez(rs, off) };
            let inverted = |off| if f % 2 == 0 { c_bnez(rs, off) } else { c_beqz(rs, off) };
            if (-256..=254).contains(&off) {
                vec![br(off), c_nop(), c_nop()]
            } else {
                let mut out = vec![inverted(6)];
                out.extend(ws(&[j_type(0, off - 2)]));
                out
            }
        }
        Op::CJump { form, skip } => {
            let t = target(skip);
            if form % 2 == 0 {
                let off = t.wrapping_sub(pc) as i32;
                if (-2048..=2046).contains(&off) {
                    vec![c_j(off), c_nop()]
                } else {
                    ws(&[j_type(0, off)])
                }
            } else {
                // auipc JT; addi JT, JT, off (+1 now and then: bit 0 is ignored); c.jr JT.
                let odd = i32::from((form >> 1) & 1);
                let mut off = t.wrapping_sub(pc) as i32;
                if off > 2047 - odd {
                    off = 10;
                }
                let mut out = ws(&[auipc(JT, 0), addi(JT, JT, off + odd)]);
                out.push(c_jr(JT));
                out
            }
        }
        Op::Amo { f, rd, base, rs2, off, ord } => {
            let (reg, lo, hi) = base_window(base, 4);
            let off = i32::from(off).clamp(lo, hi) & !3;
            let f5 = AMO_OPS[f as usize % AMO_OPS.len()];
            ws(&[addi(WT, reg, off), amo_aqrl(f5, dest(rd), WT, src(rs2), ord & 2 != 0, ord & 1 != 0)])
        }
        Op::LrSc { kind, rd, base, rs2, off } => emit_lrsc(kind, rd, base, rs2, off),
        _ => ws(&emit_words(op, ctx, pc, target)),
    }
}

/// The AMO operations by funct5.
const AMO_OPS: [u32; 9] = [AMOSWAP, AMOADD, AMOXOR, AMOAND, AMOOR, AMOMIN, AMOMAX, AMOMINU, AMOMAXU];

/// A 3-bit destination register (x10..x15: x8 and x9 are base registers).
fn pdest(r: u8) -> u8 {
    10 + r % 6
}

/// A 3-bit source register (x8..x15).
fn psrc(r: u8) -> u8 {
    8 + r % 8
}

/// A compressed instruction: kind % 19 = c.addi, c.li, c.lui, c.addi4spn, c.srli,
/// c.srai, c.andi, c.sub, c.xor, c.or, c.and, c.slli, c.mv, c.add, c.lw, c.sw, c.lwsp,
/// c.swsp, or c.addi16sp twice (by +n and -n, so sp comes back). Destinations follow
/// the usual rules (DEST; x10..x15 for the 3-bit fields); x0 destinations are HINTs.
fn emit_c(kind: u8, rd: u8, rs: u8, imm: i16) -> Code {
    let imm6 = (i32::from(imm) << 26) >> 26;
    let sh = i32::from(imm).rem_euclid(32);
    let nz = |v: i32| if v == 0 { 1 } else { v };
    match kind % 19 {
        0 => vec![c_addi(dest(rd), imm6)],
        1 => vec![c_li(dest(rd), imm6)],
        2 => vec![c_lui(dest(rd), nz(imm6))],
        3 => vec![c_addi4spn(pdest(rd), 4 * (1 + i32::from(imm).rem_euclid(255)))],
        4 => vec![c_srli(pdest(rd), sh)],
        5 => vec![c_srai(pdest(rd), sh)],
        6 => vec![c_andi(pdest(rd), imm6)],
        7 => vec![c_sub(pdest(rd), psrc(rs))],
        8 => vec![c_xor(pdest(rd), psrc(rs))],
        9 => vec![c_or(pdest(rd), psrc(rs))],
        10 => vec![c_and(pdest(rd), psrc(rs))],
        11 => vec![c_slli(dest(rd), sh)],
        12 => vec![c_mv(dest(rd), nz(i32::from(src(rs))) as u8)],
        13 => vec![c_add(dest(rd), nz(i32::from(src(rs))) as u8)],
        // Loads and stores through the base registers x8/x9 (offsets up to 124 stay in
        // the window) and sp (offsets up to 60: the top of the stack is mapped).
        14 => vec![c_lw(pdest(rd), 8 + rs % 2, 4 * i32::from(imm).rem_euclid(32))],
        15 => vec![c_sw(8 + rd % 2, psrc(rs), 4 * i32::from(imm).rem_euclid(32))],
        16 => vec![c_lwsp(nz(i32::from(dest(rd))) as u8, 4 * i32::from(imm).rem_euclid(16))],
        17 => vec![c_swsp(src(rs), 4 * i32::from(imm).rem_euclid(16))],
        _ => {
            let n = 16 * (1 + i32::from(imm).rem_euclid(31));
            vec![c_addi16sp(n), c_addi16sp(-n)]
        }
    }
}

/// An lr.w/sc.w pair on an aligned word of the data window (WT holds the address);
/// kind % 8: the plain pair; a store to the word between (the sc fails); a store to
/// the word next to it (it succeeds); a syscall between (it fails); an sc without an
/// lr (it fails unless an earlier lr is still pending); an lr without an sc (its
/// reservation stays pending, and the dispatcher interprets until it lapses); an AMO
/// on the word between (it fails); or a retry loop (lr, addi, sc, bnez back).
fn emit_lrsc(kind: u8, rd: u8, base: u8, rs2: u8, off: i16) -> Code {
    let (reg, lo, hi) = base_window(base, 8);
    let off = i32::from(off).clamp(lo, hi) & !3;
    let (d1, d2, s) = (dest(rd), dest(rd.wrapping_add(1)), src(rs2));
    let mut out = vec![addi(WT, reg, off)];
    let lr = lr_w(d1, WT);
    let sc = sc_w(d2, WT, s);
    match kind % 8 {
        0 => out.extend([lr, sc]),
        1 => out.extend([lr, store_insn(2, WT, s, 0), sc]),
        2 => out.extend([lr, store_insn(2, WT, s, 4), sc]),
        3 => out.extend([lr, addi(A7, 0, 172), ecall(), sc]),
        4 => out.push(sc),
        5 => out.push(lr),
        6 => out.extend([lr, amo(AMOADD, d2, WT, s), sc]),
        _ => {
            let t = if d1 == 0 { A2 } else { d1 };
            out.extend([lr_w(t, WT), addi(t, t, 1), sc_w(t, WT, t), b_type(1, t, 0, -12)]);
        }
    }
    ws(&out)
}

/// The 32-bit-only ops, as words.
fn emit_words(op: &Op, ctx: Ctx, pc: u32, target: &dyn Fn(u8) -> u32) -> Vec<u32> {
    match *op {
        Op::Reg { f, rd, rs1, rs2 } => {
            const T: [(u32, u32); 10] =
                [(0, 0), (0, 0x20), (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (5, 0x20), (6, 0), (7, 0)];
            let (f3, f7) = T[f as usize % 10];
            vec![r_type(OP, f3, f7, dest(rd), src(rs1), src(rs2))]
        }
        Op::Imm { f, rd, rs1, imm } => {
            let imm = i32::from(imm);
            let (f3, imm) = match f % 9 {
                0 => (0, imm),
                1 => (2, imm),
                2 => (3, imm),
                3 => (4, imm),
                4 => (6, imm),
                5 => (7, imm),
                6 => (1, imm & 31),
                7 => (5, imm & 31),
                _ => (5, 0x400 | (imm & 31)),
            };
            vec![i_type(OP_IMM, f3, dest(rd), src(rs1), sext12(imm))]
        }
        Op::Mul { f, rd, rs1, rs2, preset } => {
            let mut out = Vec::new();
            let (mut a, mut b) = (src(rs1), src(rs2));
            match preset % 7 {
                0 => {}
                1 => {
                    b = dest(rs2);
                    out.push(addi(b, 0, 0));
                }
                2 => {
                    b = dest(rs2);
                    out.push(addi(b, 0, -1));
                }
                3 => {
                    a = dest(rs1);
                    out.push(lui(a, 0x80000));
                }
                4 => {
                    a = dest(rs1);
                    b = dest(rs2);
                    out.push(lui(a, 0x80000));
                    out.push(addi(b, 0, -1));
                }
                5 => b = a,
                _ => {
                    a = dest(rs1);
                    out.push(addi(a, 0, -1));
                }
            }
            out.push(r_type(OP, u32::from(f % 8), 1, dest(rd), a, b));
            out
        }
        Op::Lui { rd, imm20 } => vec![lui(dest(rd), imm20 & 0xfffff)],
        Op::Auipc { rd, imm20 } => vec![auipc(dest(rd), imm20 & 0xfffff)],
        Op::Li { rd, kind, raw } => li_short(dest(rd), value(kind, raw)),
        Op::Load { f, rd, base, off } => {
            let (reg, lo, hi) = base_window(base, LOADS[f as usize % 5].1);
            vec![load_insn(f, dest(rd), reg, i32::from(off).clamp(lo, hi))]
        }
        Op::Store { f, base, rs2, off } => {
            let (reg, lo, hi) = base_window(base, 1 << (f % 3));
            vec![store_insn(f, reg, src(rs2), i32::from(off).clamp(lo, hi))]
        }
        Op::Csr { f, rd, rs1 } => vec![emit_csr(f, dest(rd), src(rs1))],
        Op::Fence => vec![0x0ff0_000f],
        Op::FenceI => vec![0x0000_100f],
        Op::Wild { kind, f, reg, raw } => emit_wild(kind, f, reg, raw, ctx),
        Op::Syscall { kind, base, off, len } => {
            let mut out = Vec::new();
            match kind % 5 {
                k @ (0 | 1) => {
                    let (reg, lo, hi) = base_window(base, 1);
                    out.push(addi(A0, 0, i32::from(k) + 1));
                    out.push(addi(A1, reg, i32::from(off).clamp(lo, hi)));
                    out.push(addi(A2, 0, i32::from(len % 64)));
                    out.push(addi(A7, 0, 64));
                }
                2 => {
                    // Half the breaks are in mid-page (see random_diff.rs,
                    // regression_inline_access_past_unaligned_brk).
                    out.extend(li(A0, HEAP_START + u32::from(len % 8) * 0x800));
                    out.push(addi(A7, 0, 214));
                }
                3 => {
                    out.push(addi(A0, 0, i32::from(len)));
                    out.push(addi(A7, 0, 500 + i32::from(len)));
                }
                _ => out.push(addi(A7, 0, 172)),
            }
            out.push(ecall());
            out
        }
        Op::Branch { f, rs1, rs2, skip } => {
            let off = target(skip).wrapping_sub(pc) as i32;
            vec![b_type(BRANCHES[f as usize % 6], src(rs1), src(rs2), off)]
        }
        Op::Jal { rd, skip } => vec![j_type(dest(rd), target(skip).wrapping_sub(pc) as i32)],
        Op::Jalr { form, rd, skip } => {
            let t = target(skip);
            let odd = i32::from((form >> 2) & 1);
            let size = if form % 4 == 1 || form % 4 == 2 { 3 } else { 2 };
            // Offsets from the auipc; fall back to the next op if out of range.
            let mut off = t.wrapping_sub(pc) as i32;
            if off > 2047 - odd {
                off = 4 * size;
            }
            match form % 4 {
                0 => vec![auipc(JT, 0), jalr(dest(rd), JT, off + odd)],
                1 => vec![auipc(JT, 0), addi(JT, JT, off + odd), jalr(dest(rd), JT, 0)],
                2 => {
                    let [hi, lo] = li(JT, t + odd as u32);
                    vec![hi, lo, jalr(dest(rd), JT, 0)]
                }
                _ => vec![auipc(JT, 0), jalr(JT, JT, off + odd)],
            }
        }
        Op::Stop { kind, raw } => emit_stop(kind, raw),
        Op::Loop { .. }
        | Op::Call { .. }
        | Op::CCall { .. }
        | Op::C { .. }
        | Op::CBranch { .. }
        | Op::CJump { .. }
        | Op::Amo { .. }
        | Op::LrSc { .. } => unreachable!("emitted as parcels"),
    }
}

/// CSR accesses with deterministic results (`time` is the wall clock: never read).
fn emit_csr(f: u8, rd: u8, rs1: u8) -> u32 {
    const MSCRATCH: u32 = 0x340;
    match f % 11 {
        0 => csr_insn(2, rd, 0, 0xc00),      // rdcycle
        1 => csr_insn(2, rd, 0, 0xc02),      // rdinstret
        2 => csr_insn(2, rd, 0, 0xc82),      // rdinstreth
        3 => csr_insn(2, rd, 0, 0xb02),      // csrr minstret
        4 => csr_insn(1, rd, rs1, MSCRATCH), // csrrw
        5 => csr_insn(2, rd, rs1, MSCRATCH), // csrrs
        6 => csr_insn(3, rd, rs1, MSCRATCH), // csrrc
        7 => csr_insn(5, rd, rs1, MSCRATCH), // csrrwi
        8 => csr_insn(2, rd, 0, 0xf14),      // mhartid
        9 => csr_insn(2, rd, 0, 0x301),      // misa
        _ => csr_insn(2, rd, 0, 0xb00),      // mcycle
    }
}

/// A load (f % 8 < 5) or a store of `reg` at off(WT); or, when f % 16 is 15, an AMO
/// (f / 16 % 9) with `reg` at 0(WT), which faults where the address is not aligned.
fn wild_access(f: u8, reg: u8, off: i32) -> u32 {
    match f % 8 {
        _ if f % 16 == 15 => amo(AMO_OPS[usize::from(f / 16) % AMO_OPS.len()], dest(reg), WT, src(reg)),
        g @ 0..=4 => load_insn(g, dest(reg), WT, off),
        g => store_insn(g - 5, WT, src(reg), off),
    }
}

/// Wild kinds that never end the run by themselves (text loads, UART, CLINT, and
/// switches between such regions).
pub const BENIGN_WILD: [u8; 6] = [1, 3, 4, 5, 6, 12];

/// Addresses a switching access alternates between: (address, loads only?).
const SWITCH_TARGETS: [(u32, bool); 9] = [
    (DATA_BASE + 0x100, false),
    (UART_BASE, false),
    (UART_BASE + 5, false),
    (CLINT_BASE + 0x4000, false),
    (0x7ffe_f000, false), // the stack
    (TEST_FINISHER_BASE + 8, false),
    (TEXT_BASE + 0x40, true),
    (HEAP_START + 0x10, false),
    (TEST_FINISHER_BASE, false),
];

/// Boundaries a sweeping access crosses (from above to below as the counter falls).
const SWEEP_BOUNDARIES: [u32; 5] = [REGION_END, REGION_END, HEAP_START + 0x1000, UART_BASE + 0x100, DATA_BASE];

/// Accesses outside the data window. Never reads `mtime` (the wall clock).
fn emit_wild(kind: u8, f: u8, reg: u8, raw: u16, ctx: Ctx) -> Vec<u32> {
    let raw32 = u32::from(raw);
    let lc = LOOP_REGS[ctx.depth.clamp(1, LOOP_REGS.len()) - 1];
    let mut out = Vec::new();
    match kind % 14 {
        // Unmapped.
        0 => {
            out.extend(li(WT, 0x4000_0000 + (raw32 & 0xfff)));
            out.push(wild_access(f, reg, 0));
        }
        // Text: loads read code, stores fault.
        1 => {
            out.extend(li(WT, TEXT_BASE + (raw32 & 0xff8) + ((raw32 >> 12) & 3)));
            out.push(load_insn(f, dest(reg), WT, 0));
        }
        2 => {
            out.extend(li(WT, TEXT_BASE + (raw32 & 0xfff)));
            out.push(store_insn(f, WT, src(reg), 0));
        }
        // UART THR: prints the low byte.
        3 => {
            out.extend(li(WT, UART_BASE));
            out.push(store_insn(f, WT, src(reg), 0));
        }
        // UART register loads (LSR = 0x60).
        4 => {
            out.extend(li(WT, UART_BASE));
            let off = if raw & 1 == 1 { 5 } else { i32::from((raw >> 1) & 7) };
            out.push(load_insn(f, dest(reg), WT, off));
        }
        // UART scratch-ish register: store then load back.
        5 => {
            out.extend(li(WT, UART_BASE));
            let off = 1 + i32::from(raw % 7);
            out.push(store_insn(0, WT, src(reg), off));
            out.push(load_insn(f, dest(reg), WT, off));
        }
        // CLINT mtimecmp (and msip at +0): deterministic.
        6 => {
            let at = if raw & 8 != 0 { CLINT_BASE } else { CLINT_BASE + 0x4000 };
            out.extend(li(WT, at));
            out.push(store_insn(2, WT, src(reg), i32::from(raw & 1) * 4));
            out.push(load_insn(f, dest(reg), WT, i32::from((raw >> 1) & 3) * 2 - i32::from((raw >> 4) & 1)));
        }
        // The end of the data region (the heap may or may not continue it).
        7 => {
            out.extend(li(WT, REGION_END - 1 - raw32 % 4));
            out.push(wild_access(f, reg, 0));
        }
        // The brk heap: RAM only after a brk syscall grew it.
        8 => {
            out.extend(li(WT, HEAP_START + (raw32 & 0x1fff)));
            out.push(wild_access(f, reg, 0));
        }
        // Near null.
        9 => {
            out.extend(li(WT, raw32 & 0xff));
            out.push(wild_access(f, reg, 0));
        }
        // Crossing the end of the UART.
        10 => {
            out.extend(li(WT, UART_BASE + 0xfc + raw32 % 4));
            out.push(wild_access(f, reg, 0));
        }
        // Test finisher: 0x5555 (exit 0), code << 16 | 0x3333 (exit code), or a register.
        11 => {
            out.extend(li(WT, TEST_FINISHER_BASE));
            let v = dest(reg);
            match raw % 3 {
                0 => out.extend(li(v, 0x5555)),
                1 => out.extend(li(v, ((raw32 >> 2) & 0xff) << 16 | 0x3333)),
                _ => {}
            }
            out.push(store_insn(f, WT, v, 0));
        }
        // Switch: WT = lc < c ? a : b, one access through WT. In a loop (lc counts down)
        // the first iterations use b, the last ones a.
        12 => {
            let n = SWITCH_TARGETS.len() as u32;
            let (a, a_loads_only) = SWITCH_TARGETS[((raw32 & 0xff) % n) as usize];
            let (b, b_loads_only) = SWITCH_TARGETS[((raw32 & 0xff) / n % n) as usize];
            let c = 1 + ((raw32 >> 8) & 7) as i32;
            let mut f = f;
            let mut reg = reg;
            if a == TEST_FINISHER_BASE || b == TEST_FINISHER_BASE {
                // Store the exit magic (exit 0 or exit 7), word-sized half the time.
                reg = dest(reg);
                out.extend(li(reg, if raw & 0x800 != 0 { 0x5555 } else { 7 << 16 | 0x3333 }));
                if raw & 0x1000 != 0 {
                    f = 7;
                }
            }
            out.push(i_type(OP_IMM, 3, WT, lc, c)); // sltiu
            out.push(r_type(OP, 0, 0x20, WT, 0, WT)); // neg
            out.extend(li(JT, a ^ b));
            out.push(r_type(OP, 7, 0, WT, WT, JT)); // and
            out.extend(li(JT, b));
            out.push(r_type(OP, 4, 0, WT, WT, JT)); // xor
                                                    // Stores to the text segment fault: only now and then.
            let f = if (a_loads_only || b_loads_only) && raw & 0x2000 == 0 { f % 5 } else { f };
            out.push(wild_access(f, reg, 0));
        }
        // Sweep: WT = boundary - c * stride + lc * stride + misalignment.
        _ => {
            let boundary = SWEEP_BOUNDARIES[raw as usize % SWEEP_BOUNDARIES.len()];
            let shift = (raw32 >> 3) & 3;
            let c = 1 + ((raw32 >> 5) & 7);
            out.push(i_type(OP_IMM, 1, WT, lc, shift as i32)); // slli
            out.extend(li(JT, boundary.wrapping_sub(c << shift).wrapping_add((raw32 >> 8) & 3)));
            out.push(r_type(OP, 0, 0, WT, WT, JT));
            out.push(wild_access(f, reg, 0));
        }
    }
    out
}

/// Padding after a jump to a target at 2 mod 4: c.ebreak, then an illegal parcel
/// (where the jump lands; without C it faults as misaligned before).
const PAD: u32 = 0x0000_9002;

/// Ops that end the run (or may).
fn emit_stop(kind: u8, raw: u8) -> Vec<u32> {
    let r = i32::from(raw);
    match kind % 14 {
        0 => vec![0x0010_0073], // ebreak
        1 => vec![0],
        2 => vec![u32::MAX],
        // jalr to a target at 2 mod 4 (into the padding).
        3 => vec![auipc(JT, 0), jalr(0, JT, 10 + 4 * (r % 3)), PAD, PAD, PAD, PAD],
        // Branch to 2 mod 4 with x0, x0: taken or not by its kind (not taken: c.ebreak).
        4 => vec![b_type(BRANCHES[raw as usize % 6], 0, 0, 6 + 4 * (r % 3)), PAD, PAD, PAD],
        // jal to 2 mod 4.
        5 => vec![j_type(0, 6 + 4 * (r % 3)), PAD, PAD, PAD],
        // Jump into the data segment (not executable).
        6 => vec![lui(JT, DATA_BASE >> 12), jalr(dest(raw), JT, 4 * (r % 64))],
        // Writing a read-only CSR.
        7 => vec![csr_insn(1, 0, src(raw), 0xc00)],
        // Jump to unmapped memory.
        8 => vec![lui(JT, 0x40000), jalr(dest(raw), JT, 0)],
        // exit / exit_group early.
        9 => vec![addi(A0, 0, r), addi(A7, 0, 93), ecall()],
        10 => vec![addi(A0, 0, r), addi(A7, 0, 94), ecall()],
        // c.ebreak (and a c.nop after it).
        11 => vec![0x0001_0000 | u32::from(c_ebreak())],
        // A misaligned AMO (store/AMO address misaligned).
        12 => vec![
            lui(WT, DATA_BASE >> 12),
            addi(WT, WT, 1 + r % 3),
            amo(AMO_OPS[raw as usize % AMO_OPS.len()], dest(raw), WT, src(raw)),
        ],
        // A misaligned lr.w (load address misaligned).
        _ => vec![lui(WT, DATA_BASE >> 12), addi(WT, WT, 1 + r % 3), lr_w(dest(raw), WT)],
    }
}

/// The program's text words (2-byte parcels in pairs; an odd count ends with c.nop).
pub fn assemble(p: &Program) -> Vec<u32> {
    // brk(HEAP_START + 4 KiB): the heap right after the data region is RAM at first.
    let mut text = li(A0, HEAP_START + 0x1000).to_vec();
    text.extend([addi(A7, 0, 214), ecall()]);
    for (i, &r) in DEST[1..].iter().enumerate() {
        let (kind, raw) = p.init.get(i).copied().unwrap_or((0, 0));
        text.extend(li_short(r, value(kind, raw)));
    }
    for (r, v) in BASES {
        text.extend(li(r, v));
    }
    let mut code = ws(&text);
    let pc = TEXT_BASE + 2 * code.len() as u32;
    code.extend(emit_list(&p.ops, Ctx::default(), pc));
    code.extend(ws(&[addi(A0, src(p.exit_reg), 0), addi(A7, 0, 93), ecall()]));
    if code.len() % 2 == 1 {
        code.push(c_nop());
    }
    code.chunks(2).map(|c| u32::from(c[0]) | (u32::from(c[1]) << 16)).collect()
}

/// The data segment bytes of a program.
pub fn data(p: &Program) -> Vec<u8> {
    let mut rng = Rng::new(p.data_seed);
    let mut d = vec![0u8; DATA_LEN];
    for chunk in d.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    d
}

/// The program as an ELF image.
pub fn elf(p: &Program) -> Vec<u8> {
    crate::common::elf_image(&assemble(p), &data(p), BSS_LEN)
}

/// A disassembly listing of text words at TEXT_BASE (2- and 4-byte instructions);
/// `marks` adds notes to pcs.
pub fn listing(text: &[u32], marks: &[(u32, String)]) -> String {
    let halves: Vec<u16> = text.iter().flat_map(|&w| [w as u16, (w >> 16) as u16]).collect();
    let mut s = String::new();
    let mut i = 0;
    while i < halves.len() {
        let pc = TEXT_BASE + 2 * i as u32;
        let (bits, hex, len) = if halves[i] & 3 == 3 && i + 1 < halves.len() {
            let w = u32::from(halves[i]) | (u32::from(halves[i + 1]) << 16);
            (w, format!("{w:08x}"), 2)
        } else {
            (u32::from(halves[i]), format!("{:04x}    ", halves[i]), 1)
        };
        let dis = rvdbt::guest::disasm::disassemble_word(bits, pc).replace('\t', " ");
        let note: Vec<&str> = marks.iter().filter(|(p, _)| *p == pc).map(|(_, m)| m.as_str()).collect();
        let note = if note.is_empty() { String::new() } else { format!("   <- {}", note.join(", ")) };
        s.push_str(&format!("  {pc:08x}: {hex}  {dis}{note}\n"));
        i += len;
    }
    s
}

/// The source of the generator's choices: an xorshift64* stream seeded by a u64
/// ([`Rng::new`]), or the bytes of a fuzz input ([`Rng::from_bytes`]).
#[derive(Clone, Debug)]
pub struct Rng(Source);

#[derive(Clone, Debug)]
enum Source {
    Xorshift(u64),
    /// The input bytes and the position of the next unread one; past the end every
    /// draw is 0.
    Bytes(Vec<u8>, usize),
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so nearby seeds give unrelated streams (and 0 works).
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng(Source::Xorshift((z ^ (z >> 31)) | 1))
    }

    /// Choices read from `bytes`, as few as each draw needs (one byte for `u8` and
    /// for `below(n)` with n <= 256), so that a fuzzer's byte mutations map to
    /// local changes of the program; past the end every draw is 0.
    pub fn from_bytes(bytes: &[u8]) -> Rng {
        Rng(Source::Bytes(bytes.to_vec(), 0))
    }

    /// The next `n` (<= 8) input bytes as a little-endian number.
    fn take(data: &[u8], pos: &mut usize, n: usize) -> u64 {
        let mut v = 0u64;
        for i in 0..n {
            v |= u64::from(data.get(*pos + i).copied().unwrap_or(0)) << (8 * i);
        }
        *pos += n;
        v
    }

    pub fn next_u64(&mut self) -> u64 {
        match &mut self.0 {
            Source::Xorshift(state) => {
                let mut x = *state;
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                *state = x;
                x.wrapping_mul(0x2545_f491_4f6c_dd1d)
            }
            Source::Bytes(data, pos) => Rng::take(data, pos, 8),
        }
    }

    /// A number in [0, n).
    pub fn below(&mut self, n: u32) -> u32 {
        match &mut self.0 {
            Source::Bytes(data, pos) if n <= 256 => ((Rng::take(data, pos, 1) * u64::from(n)) >> 8) as u32,
            Source::Bytes(data, pos) => ((Rng::take(data, pos, 4) * u64::from(n)) >> 32) as u32,
            Source::Xorshift(_) => (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32,
        }
    }

    pub fn u8(&mut self) -> u8 {
        match &mut self.0 {
            Source::Bytes(data, pos) => Rng::take(data, pos, 1) as u8,
            Source::Xorshift(_) => self.next_u64() as u8,
        }
    }

    pub fn u16(&mut self) -> u16 {
        match &mut self.0 {
            Source::Bytes(data, pos) => Rng::take(data, pos, 2) as u16,
            Source::Xorshift(_) => self.next_u64() as u16,
        }
    }

    pub fn u32(&mut self) -> u32 {
        match &mut self.0 {
            Source::Bytes(data, pos) => Rng::take(data, pos, 4) as u32,
            Source::Xorshift(_) => (self.next_u64() >> 32) as u32,
        }
    }

    /// An offset in [-2048, 2048), aligned half the time.
    pub fn off(&mut self) -> i16 {
        let o = self.below(4096) as i16 - 2048;
        if self.below(2) == 0 {
            o & !3
        } else {
            o
        }
    }

    /// Picks an index by weight.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

/// A straight-line op (no control flow).
pub fn gen_simple(r: &mut Rng) -> Op {
    match r.weighted(&[10, 10, 6, 2, 2, 3, 8, 8, 1, 1, 2, 1, 12, 3, 2]) {
        0 => Op::Reg { f: r.u8(), rd: r.u8(), rs1: r.u8(), rs2: r.u8() },
        1 => Op::Imm { f: r.u8(), rd: r.u8(), rs1: r.u8(), imm: r.below(4096) as i16 - 2048 },
        2 => Op::Mul { f: r.u8(), rd: r.u8(), rs1: r.u8(), rs2: r.u8(), preset: r.u8() },
        3 => Op::Lui { rd: r.u8(), imm20: r.u32() },
        4 => Op::Auipc { rd: r.u8(), imm20: r.u32() },
        5 => Op::Li { rd: r.u8(), kind: r.u8(), raw: r.u32() },
        6 => Op::Load { f: r.u8(), rd: r.u8(), base: r.u8(), off: r.off() },
        7 => Op::Store { f: r.u8(), base: r.u8(), rs2: r.u8(), off: r.off() },
        8 => Op::Csr { f: r.u8(), rd: r.u8(), rs1: r.u8() },
        9 => Op::Fence,
        10 => {
            let kind = if r.below(3) == 0 { r.u8() } else { BENIGN_WILD[r.below(BENIGN_WILD.len() as u32) as usize] };
            Op::Wild { kind, f: r.u8(), reg: r.u8(), raw: r.u16() }
        }
        11 => Op::Syscall { kind: r.u8(), base: r.u8(), off: r.off(), len: r.u8() },
        12 => Op::C { kind: r.u8(), rd: r.u8(), rs: r.u8(), imm: r.u16() as i16 },
        13 => Op::Amo { f: r.u8(), rd: r.u8(), base: r.u8(), rs2: r.u8(), off: r.off(), ord: r.u8() },
        _ => Op::LrSc { kind: r.u8(), rd: r.u8(), base: r.u8(), rs2: r.u8(), off: r.off() },
    }
}

/// Nesting depth below which [`gen_op`] generates calls.
const MAX_CALL_DEPTH: usize = 4;

/// An op allowed in any body: straight-line, forward control flow, calls and (while
/// `depth` allows) loops.
pub fn gen_op(r: &mut Rng, depth: usize) -> Op {
    let loop_w = if depth < 2 { 4 } else { 0 };
    // Calls nest at most MAX_CALL_DEPTH deep: the assembler sizes every nested list
    // once per enclosing level (time 2^depth), and generation recurses per level.
    let (call_w, c_call_w) = if depth < MAX_CALL_DEPTH { (2, 1) } else { (0, 0) };
    // In loop bodies, accesses whose region changes with the iteration.
    let switch_w = if depth > 0 { 4 } else { 0 };
    match r.weighted(&[40, 6, 2, 2, call_w, loop_w, 1, 1, switch_w, 4, 2, c_call_w]) {
        0 => gen_simple(r),
        1 => Op::Branch { f: r.u8(), rs1: r.u8(), rs2: r.u8(), skip: r.u8() },
        2 => Op::Jal { rd: r.u8(), skip: r.u8() },
        3 => Op::Jalr { form: r.u8(), rd: r.u8(), skip: r.u8() },
        4 => {
            let n = 1 + r.below(6) as usize;
            Op::Call { body: (0..n).map(|_| gen_op(r, depth + 1)).collect() }
        }
        5 => {
            let n = 1 + r.below(10) as usize;
            Op::Loop { count: r.u8(), cond: r.u8(), body: (0..n).map(|_| gen_op(r, depth + 1)).collect() }
        }
        6 => Op::FenceI,
        8 => Op::Wild { kind: if r.below(4) == 0 { 13 } else { 12 }, f: r.u8(), reg: r.u8(), raw: r.u16() },
        9 => Op::CBranch { f: r.u8(), rs: r.u8(), skip: r.u8() },
        10 => Op::CJump { form: r.u8(), skip: r.u8() },
        11 => {
            let n = 1 + r.below(6) as usize;
            Op::CCall { body: (0..n).map(|_| gen_op(r, depth + 1)).collect() }
        }
        _ => {
            // Stops are rare: most programs should reach the final exit.
            if r.below(4) == 0 {
                Op::Stop { kind: r.u8(), raw: r.u8() }
            } else {
                gen_simple(r)
            }
        }
    }
}

/// The program of a seed.
pub fn gen_program(seed: u64) -> Program {
    gen_program_from(&mut Rng::new(seed))
}

/// A program drawn from `r`.
pub fn gen_program_from(r: &mut Rng) -> Program {
    let data_seed = r.next_u64();
    let init = (1..DEST.len()).map(|_| (r.u8(), r.u32())).collect();
    let n = 5 + r.below(56) as usize;
    let ops = (0..n).map(|_| gen_op(r, 0)).collect();
    Program { data_seed, init, ops, exit_reg: r.u8() }
}
