//! Encoders for the compressed (RV32C) and atomic (A) instructions, written from the
//! format tables of the ISA manual (not from rvdbt's decoder), and a small assembler
//! for code that mixes 2- and 4-byte instructions.
#![allow(dead_code)]

use super::TEXT_BASE;

fn bit(v: i32, b: u32) -> u16 {
    ((v as u32 >> b) & 1) as u16
}
fn bits(v: i32, hi: u32, lo: u32) -> u16 {
    ((v as u32 >> lo) & ((1 << (hi - lo + 1)) - 1)) as u16
}
/// A register of the 3-bit fields (x8..x15).
fn p(r: u8) -> u16 {
    assert!((8..16).contains(&r), "x{r} has no 3-bit encoding");
    u16::from(r - 8)
}
fn r5(r: u8) -> u16 {
    assert!(r < 32);
    u16::from(r)
}

// ---- quadrant 0

/// c.addi4spn rd', sp, nzuimm (a multiple of 4 in 4..=1020).
pub fn c_addi4spn(rd: u8, imm: i32) -> u16 {
    (bits(imm, 5, 4) << 11) | (bits(imm, 9, 6) << 7) | (bit(imm, 2) << 6) | (bit(imm, 3) << 5) | (p(rd) << 2)
}
/// c.lw rd', off(rs1') (off a multiple of 4 in 0..=124).
pub fn c_lw(rd: u8, rs1: u8, off: i32) -> u16 {
    (0b010 << 13) | (bits(off, 5, 3) << 10) | (p(rs1) << 7) | (bit(off, 2) << 6) | (bit(off, 6) << 5) | (p(rd) << 2)
}
/// c.sw rs2', off(rs1').
pub fn c_sw(rs1: u8, rs2: u8, off: i32) -> u16 {
    (0b110 << 13) | (bits(off, 5, 3) << 10) | (p(rs1) << 7) | (bit(off, 2) << 6) | (bit(off, 6) << 5) | (p(rs2) << 2)
}

// ---- quadrant 1

fn ci(f3: u16, rd: u8, imm: i32, op: u16) -> u16 {
    (f3 << 13) | (bit(imm, 5) << 12) | (r5(rd) << 7) | (bits(imm, 4, 0) << 2) | op
}
pub fn c_nop() -> u16 {
    0x0001
}
/// c.addi rd, imm (-32..=31; rd = 0 is c.nop's HINT space).
pub fn c_addi(rd: u8, imm: i32) -> u16 {
    ci(0, rd, imm, 1)
}
/// c.jal offset (RV32; -2048..=2046).
pub fn c_jal(off: i32) -> u16 {
    cj(0b001, off)
}
/// c.li rd, imm (-32..=31).
pub fn c_li(rd: u8, imm: i32) -> u16 {
    ci(0b010, rd, imm, 1)
}
/// c.addi16sp sp, nzimm (a multiple of 16 in -512..=496, not 0).
pub fn c_addi16sp(imm: i32) -> u16 {
    (0b011 << 13)
        | (bit(imm, 9) << 12)
        | (2 << 7)
        | (bit(imm, 4) << 6)
        | (bit(imm, 6) << 5)
        | (bits(imm, 8, 7) << 3)
        | (bit(imm, 5) << 2)
        | 1
}
/// c.lui rd, nzimm (the signed 6-bit value of imm[17:12], not 0).
pub fn c_lui(rd: u8, imm6: i32) -> u16 {
    ci(0b011, rd, imm6, 1)
}
/// c.srli rd', shamt (0..=63; 32..=63 are reserved on RV32).
pub fn c_srli(rd: u8, shamt: i32) -> u16 {
    (0b100 << 13) | (bit(shamt, 5) << 12) | (p(rd) << 7) | (bits(shamt, 4, 0) << 2) | 1
}
pub fn c_srai(rd: u8, shamt: i32) -> u16 {
    (0b100 << 13) | (bit(shamt, 5) << 12) | (0b01 << 10) | (p(rd) << 7) | (bits(shamt, 4, 0) << 2) | 1
}
pub fn c_andi(rd: u8, imm: i32) -> u16 {
    (0b100 << 13) | (bit(imm, 5) << 12) | (0b10 << 10) | (p(rd) << 7) | (bits(imm, 4, 0) << 2) | 1
}
fn c_arith(f2: u16, rd: u8, rs2: u8) -> u16 {
    (0b100 << 13) | (0b11 << 10) | (p(rd) << 7) | (f2 << 5) | (p(rs2) << 2) | 1
}
pub fn c_sub(rd: u8, rs2: u8) -> u16 {
    c_arith(0, rd, rs2)
}
pub fn c_xor(rd: u8, rs2: u8) -> u16 {
    c_arith(1, rd, rs2)
}
pub fn c_or(rd: u8, rs2: u8) -> u16 {
    c_arith(2, rd, rs2)
}
pub fn c_and(rd: u8, rs2: u8) -> u16 {
    c_arith(3, rd, rs2)
}
fn cj(f3: u16, off: i32) -> u16 {
    assert!((-2048..=2046).contains(&off) && off % 2 == 0, "c.j offset {off}");
    (f3 << 13)
        | (bit(off, 11) << 12)
        | (bit(off, 4) << 11)
        | (bits(off, 9, 8) << 9)
        | (bit(off, 10) << 8)
        | (bit(off, 6) << 7)
        | (bit(off, 7) << 6)
        | (bits(off, 3, 1) << 3)
        | (bit(off, 5) << 2)
        | 1
}
/// c.j offset (-2048..=2046).
pub fn c_j(off: i32) -> u16 {
    cj(0b101, off)
}
fn cb(f3: u16, rs1: u8, off: i32) -> u16 {
    assert!((-256..=254).contains(&off) && off % 2 == 0, "c.beqz offset {off}");
    (f3 << 13)
        | (bit(off, 8) << 12)
        | (bits(off, 4, 3) << 10)
        | (p(rs1) << 7)
        | (bits(off, 7, 6) << 5)
        | (bits(off, 2, 1) << 3)
        | (bit(off, 5) << 2)
        | 1
}
/// c.beqz rs1', offset (-256..=254).
pub fn c_beqz(rs1: u8, off: i32) -> u16 {
    cb(0b110, rs1, off)
}
pub fn c_bnez(rs1: u8, off: i32) -> u16 {
    cb(0b111, rs1, off)
}

// ---- quadrant 2

/// c.slli rd, shamt (0..=63; 32..=63 are reserved on RV32).
pub fn c_slli(rd: u8, shamt: i32) -> u16 {
    (bit(shamt, 5) << 12) | (r5(rd) << 7) | (bits(shamt, 4, 0) << 2) | 2
}
/// c.lwsp rd, off(sp) (off a multiple of 4 in 0..=252; rd = 0 is reserved).
pub fn c_lwsp(rd: u8, off: i32) -> u16 {
    (0b010 << 13) | (bit(off, 5) << 12) | (r5(rd) << 7) | (bits(off, 4, 2) << 4) | (bits(off, 7, 6) << 2) | 2
}
/// c.swsp rs2, off(sp).
pub fn c_swsp(rs2: u8, off: i32) -> u16 {
    (0b110 << 13) | (bits(off, 5, 2) << 9) | (bits(off, 7, 6) << 7) | (r5(rs2) << 2) | 2
}
/// c.jr rs1 (rs1 = 0 is reserved).
pub fn c_jr(rs1: u8) -> u16 {
    (0b100 << 13) | (r5(rs1) << 7) | 2
}
/// c.mv rd, rs2 (rs2 != 0).
pub fn c_mv(rd: u8, rs2: u8) -> u16 {
    (0b100 << 13) | (r5(rd) << 7) | (r5(rs2) << 2) | 2
}
pub fn c_ebreak() -> u16 {
    0x9002
}
/// c.jalr rs1 (rs1 != 0).
pub fn c_jalr(rs1: u8) -> u16 {
    (0b100 << 13) | (1 << 12) | (r5(rs1) << 7) | 2
}
/// c.add rd, rs2 (rs2 != 0).
pub fn c_add(rd: u8, rs2: u8) -> u16 {
    (0b100 << 13) | (1 << 12) | (r5(rd) << 7) | (r5(rs2) << 2) | 2
}

// ---- A

pub const AMOADD: u32 = 0b00000;
pub const AMOSWAP: u32 = 0b00001;
pub const LR: u32 = 0b00010;
pub const SC: u32 = 0b00011;
pub const AMOXOR: u32 = 0b00100;
pub const AMOOR: u32 = 0b01000;
pub const AMOAND: u32 = 0b01100;
pub const AMOMIN: u32 = 0b10000;
pub const AMOMAX: u32 = 0b10100;
pub const AMOMINU: u32 = 0b11000;
pub const AMOMAXU: u32 = 0b11100;

/// An A-extension word instruction: funct5, aq, rl, rs2, rs1, funct3 = 2, rd, 0x2f.
pub fn amo_aqrl(funct5: u32, rd: u8, rs1: u8, rs2: u8, aq: bool, rl: bool) -> u32 {
    (funct5 << 27)
        | (u32::from(aq) << 26)
        | (u32::from(rl) << 25)
        | (u32::from(rs2) << 20)
        | (u32::from(rs1) << 15)
        | (2 << 12)
        | (u32::from(rd) << 7)
        | 0x2f
}
/// `amo<op>.w rd, rs2, (rs1)`.
pub fn amo(funct5: u32, rd: u8, rs1: u8, rs2: u8) -> u32 {
    amo_aqrl(funct5, rd, rs1, rs2, false, false)
}
/// `lr.w rd, (rs1)`.
pub fn lr_w(rd: u8, rs1: u8) -> u32 {
    amo(LR, rd, rs1, 0)
}
/// `sc.w rd, rs2, (rs1)`.
pub fn sc_w(rd: u8, rs1: u8, rs2: u8) -> u32 {
    amo(SC, rd, rs1, rs2)
}

// ---- mixed code

/// Code of 2- and 4-byte instructions at TEXT_BASE, as 16-bit parcels.
#[derive(Clone, Debug, Default)]
pub struct Asm {
    pub halves: Vec<u16>,
}

impl Asm {
    pub fn new() -> Asm {
        Asm::default()
    }

    /// The address of the next instruction.
    pub fn pc(&self) -> u32 {
        TEXT_BASE + 2 * self.halves.len() as u32
    }

    /// A 32-bit instruction (at any 2-byte aligned address).
    pub fn w(&mut self, word: u32) -> &mut Asm {
        self.halves.extend([word as u16, (word >> 16) as u16]);
        self
    }

    pub fn ws(&mut self, words: &[u32]) -> &mut Asm {
        for &w in words {
            self.w(w);
        }
        self
    }

    /// A compressed instruction.
    pub fn c(&mut self, half: u16) -> &mut Asm {
        assert_ne!(half & 3, 3, "{half:#06x} is not a compressed instruction");
        self.halves.push(half);
        self
    }

    /// The code as little-endian words (an odd parcel count is padded with c.nop).
    pub fn words(&self) -> Vec<u32> {
        let mut h = self.halves.clone();
        if h.len() % 2 == 1 {
            h.push(c_nop());
        }
        h.chunks(2).map(|c| u32::from(c[0]) | (u32::from(c[1]) << 16)).collect()
    }
}
