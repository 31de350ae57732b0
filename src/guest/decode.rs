//! Instruction decoding: one 32-bit RV32IM/Zicsr/Zifencei word to an [`Inst`].
//!
//! The decoder is table driven, in the spirit of QEMU's `decodetree` files: every
//! instruction is one row of (mask, match, builder). Rows are grouped by the major
//! opcode (bits 6..0) so a lookup scans only the handful of rows that can match.
//! Any word that matches no row, including every 16-bit (compressed) encoding,
//! decodes to [`Inst::Illegal`]. Decoding never panics.

/// Operations of the register-register and register-immediate ALU forms, including M.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AluOp {
    Add,
    Sub,
    Sll,
    Slt,
    Sltu,
    Xor,
    Srl,
    Sra,
    Or,
    And,
    Mul,
    Mulh,
    Mulhsu,
    Mulhu,
    Div,
    Divu,
    Rem,
    Remu,
}

/// Conditional branch comparisons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BranchOp {
    Beq,
    Bne,
    Blt,
    Bge,
    Bltu,
    Bgeu,
}

/// Load widths and extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoadOp {
    Lb,
    Lh,
    Lw,
    Lbu,
    Lhu,
}

/// Store widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreOp {
    Sb,
    Sh,
    Sw,
}

/// Zicsr operations. The immediate forms carry a 5-bit unsigned immediate in `src`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CsrOp {
    Rw,
    Rs,
    Rc,
    Rwi,
    Rsi,
    Rci,
}

/// One decoded guest instruction. Register numbers are 0..=31; immediates are already
/// sign-extended (and, for `Lui`/`Auipc`, already shifted into the upper 20 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Inst {
    Lui {
        rd: u8,
        imm: u32,
    },
    Auipc {
        rd: u8,
        imm: u32,
    },
    Jal {
        rd: u8,
        offset: i32,
    },
    Jalr {
        rd: u8,
        rs1: u8,
        offset: i32,
    },
    Branch {
        op: BranchOp,
        rs1: u8,
        rs2: u8,
        offset: i32,
    },
    Load {
        op: LoadOp,
        rd: u8,
        rs1: u8,
        offset: i32,
    },
    Store {
        op: StoreOp,
        rs1: u8,
        rs2: u8,
        offset: i32,
    },
    /// Register-immediate ALU operation; for shifts `imm` is the shift amount.
    OpImm {
        op: AluOp,
        rd: u8,
        rs1: u8,
        imm: i32,
    },
    Op {
        op: AluOp,
        rd: u8,
        rs1: u8,
        rs2: u8,
    },
    /// `fence` with its raw fm/pred/succ fields (bits 31..20); executes as a no-op.
    Fence {
        fm: u8,
        pred: u8,
        succ: u8,
    },
    FenceI,
    Ecall,
    Ebreak,
    Mret,
    Wfi,
    /// `src` is rs1 for the register forms and the 5-bit immediate for the `i` forms.
    Csr {
        op: CsrOp,
        rd: u8,
        src: u8,
        csr: u16,
    },
    Illegal(u32),
}

fn rd(w: u32) -> u8 {
    ((w >> 7) & 31) as u8
}
fn rs1(w: u32) -> u8 {
    ((w >> 15) & 31) as u8
}
fn rs2(w: u32) -> u8 {
    ((w >> 20) & 31) as u8
}
fn imm_i(w: u32) -> i32 {
    (w as i32) >> 20
}
fn imm_s(w: u32) -> i32 {
    (((w as i32) >> 25) << 5) | ((w >> 7) & 31) as i32
}
fn imm_b(w: u32) -> i32 {
    let sign = ((w as i32) >> 31) << 12;
    sign | (((w >> 7) & 1) << 11) as i32 | (((w >> 25) & 0x3f) << 5) as i32 | (((w >> 8) & 0xf) << 1) as i32
}
fn imm_u(w: u32) -> u32 {
    w & 0xffff_f000
}
fn imm_j(w: u32) -> i32 {
    let sign = ((w as i32) >> 31) << 20;
    sign | (w & 0x000f_f000) as i32 | (((w >> 20) & 1) << 11) as i32 | (((w >> 21) & 0x3ff) << 1) as i32
}
fn shamt(w: u32) -> i32 {
    ((w >> 20) & 31) as i32
}

/// One decode-table row: the word matches when `word & mask == bits`.
struct Row {
    mask: u32,
    bits: u32,
    build: fn(u32) -> Inst,
}

const OPCODE: u32 = 0x7f;
const F3: u32 = 0x7000 | OPCODE;
const F7F3: u32 = 0xfe00_0000 | F3;
const EXACT: u32 = 0xffff_ffff;

macro_rules! rows {
    ($($mask:expr, $bits:expr => $build:expr;)*) => {
        &[$(Row { mask: $mask, bits: $bits, build: $build }),*]
    };
}

const fn f3(op: u32, funct3: u32) -> u32 {
    op | (funct3 << 12)
}
const fn f7(op: u32, funct3: u32, funct7: u32) -> u32 {
    op | (funct3 << 12) | (funct7 << 25)
}

static LUI: &[Row] = rows! { OPCODE, 0x37 => |w| Inst::Lui { rd: rd(w), imm: imm_u(w) }; };
static AUIPC: &[Row] = rows! { OPCODE, 0x17 => |w| Inst::Auipc { rd: rd(w), imm: imm_u(w) }; };
static JAL: &[Row] = rows! { OPCODE, 0x6f => |w| Inst::Jal { rd: rd(w), offset: imm_j(w) }; };
static JALR: &[Row] = rows! {
    F3, f3(0x67, 0) => |w| Inst::Jalr { rd: rd(w), rs1: rs1(w), offset: imm_i(w) };
};

macro_rules! branch {
    ($op:ident) => {
        |w| Inst::Branch { op: BranchOp::$op, rs1: rs1(w), rs2: rs2(w), offset: imm_b(w) }
    };
}
static BRANCH: &[Row] = rows! {
    F3, f3(0x63, 0) => branch!(Beq);
    F3, f3(0x63, 1) => branch!(Bne);
    F3, f3(0x63, 4) => branch!(Blt);
    F3, f3(0x63, 5) => branch!(Bge);
    F3, f3(0x63, 6) => branch!(Bltu);
    F3, f3(0x63, 7) => branch!(Bgeu);
};

macro_rules! load {
    ($op:ident) => {
        |w| Inst::Load { op: LoadOp::$op, rd: rd(w), rs1: rs1(w), offset: imm_i(w) }
    };
}
static LOAD: &[Row] = rows! {
    F3, f3(0x03, 0) => load!(Lb);
    F3, f3(0x03, 1) => load!(Lh);
    F3, f3(0x03, 2) => load!(Lw);
    F3, f3(0x03, 4) => load!(Lbu);
    F3, f3(0x03, 5) => load!(Lhu);
};

macro_rules! store {
    ($op:ident) => {
        |w| Inst::Store { op: StoreOp::$op, rs1: rs1(w), rs2: rs2(w), offset: imm_s(w) }
    };
}
static STORE: &[Row] = rows! {
    F3, f3(0x23, 0) => store!(Sb);
    F3, f3(0x23, 1) => store!(Sh);
    F3, f3(0x23, 2) => store!(Sw);
};

macro_rules! op_imm {
    ($op:ident) => {
        |w| Inst::OpImm { op: AluOp::$op, rd: rd(w), rs1: rs1(w), imm: imm_i(w) }
    };
}
macro_rules! shift_imm {
    ($op:ident) => {
        |w| Inst::OpImm { op: AluOp::$op, rd: rd(w), rs1: rs1(w), imm: shamt(w) }
    };
}
static OP_IMM: &[Row] = rows! {
    F3, f3(0x13, 0) => op_imm!(Add);
    F3, f3(0x13, 2) => op_imm!(Slt);
    F3, f3(0x13, 3) => op_imm!(Sltu);
    F3, f3(0x13, 4) => op_imm!(Xor);
    F3, f3(0x13, 6) => op_imm!(Or);
    F3, f3(0x13, 7) => op_imm!(And);
    F7F3, f7(0x13, 1, 0x00) => shift_imm!(Sll);
    F7F3, f7(0x13, 5, 0x00) => shift_imm!(Srl);
    F7F3, f7(0x13, 5, 0x20) => shift_imm!(Sra);
};

macro_rules! op {
    ($op:ident) => {
        |w| Inst::Op { op: AluOp::$op, rd: rd(w), rs1: rs1(w), rs2: rs2(w) }
    };
}
static OP: &[Row] = rows! {
    F7F3, f7(0x33, 0, 0x00) => op!(Add);
    F7F3, f7(0x33, 0, 0x20) => op!(Sub);
    F7F3, f7(0x33, 1, 0x00) => op!(Sll);
    F7F3, f7(0x33, 2, 0x00) => op!(Slt);
    F7F3, f7(0x33, 3, 0x00) => op!(Sltu);
    F7F3, f7(0x33, 4, 0x00) => op!(Xor);
    F7F3, f7(0x33, 5, 0x00) => op!(Srl);
    F7F3, f7(0x33, 5, 0x20) => op!(Sra);
    F7F3, f7(0x33, 6, 0x00) => op!(Or);
    F7F3, f7(0x33, 7, 0x00) => op!(And);
    F7F3, f7(0x33, 0, 0x01) => op!(Mul);
    F7F3, f7(0x33, 1, 0x01) => op!(Mulh);
    F7F3, f7(0x33, 2, 0x01) => op!(Mulhsu);
    F7F3, f7(0x33, 3, 0x01) => op!(Mulhu);
    F7F3, f7(0x33, 4, 0x01) => op!(Div);
    F7F3, f7(0x33, 5, 0x01) => op!(Divu);
    F7F3, f7(0x33, 6, 0x01) => op!(Rem);
    F7F3, f7(0x33, 7, 0x01) => op!(Remu);
};

static MISC_MEM: &[Row] = rows! {
    F3, f3(0x0f, 0) => |w| Inst::Fence {
        fm: (w >> 28) as u8,
        pred: ((w >> 24) & 15) as u8,
        succ: ((w >> 20) & 15) as u8,
    };
    F3, f3(0x0f, 1) => |_| Inst::FenceI;
};

macro_rules! csr {
    ($op:ident) => {
        |w| Inst::Csr { op: CsrOp::$op, rd: rd(w), src: rs1(w), csr: (w >> 20) as u16 }
    };
}
static SYSTEM: &[Row] = rows! {
    EXACT, 0x0000_0073 => |_| Inst::Ecall;
    EXACT, 0x0010_0073 => |_| Inst::Ebreak;
    EXACT, 0x3020_0073 => |_| Inst::Mret;
    EXACT, 0x1050_0073 => |_| Inst::Wfi;
    F3, f3(0x73, 1) => csr!(Rw);
    F3, f3(0x73, 2) => csr!(Rs);
    F3, f3(0x73, 3) => csr!(Rc);
    F3, f3(0x73, 5) => csr!(Rwi);
    F3, f3(0x73, 6) => csr!(Rsi);
    F3, f3(0x73, 7) => csr!(Rci);
};

/// The rows that can match a word with this major opcode.
fn rows_for(opcode: u32) -> &'static [Row] {
    match opcode {
        0x37 => LUI,
        0x17 => AUIPC,
        0x6f => JAL,
        0x67 => JALR,
        0x63 => BRANCH,
        0x03 => LOAD,
        0x23 => STORE,
        0x13 => OP_IMM,
        0x33 => OP,
        0x0f => MISC_MEM,
        0x73 => SYSTEM,
        _ => &[],
    }
}

/// Decodes one instruction word. Never panics; unknown encodings are [`Inst::Illegal`].
pub fn decode(word: u32) -> Inst {
    rows_for(word & OPCODE)
        .iter()
        .find(|row| word & row.mask == row.bits)
        .map_or(Inst::Illegal(word), |row| (row.build)(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn immediates_are_sign_extended() {
        // addi a0, a0, -1
        assert_eq!(decode(0xfff5_0513), Inst::OpImm { op: AluOp::Add, rd: 10, rs1: 10, imm: -1 });
        // sw a1, -4(sp)
        assert_eq!(decode(0xfeb1_2e23), Inst::Store { op: StoreOp::Sw, rs1: 2, rs2: 11, offset: -4 });
        // beq zero, zero, -8 (0xfe000ce3)
        assert_eq!(decode(0xfe00_0ce3), Inst::Branch { op: BranchOp::Beq, rs1: 0, rs2: 0, offset: -8 });
        // jal ra, -2048*2? jal x1, -4 = 0xffdff0ef
        assert_eq!(decode(0xffdf_f0ef), Inst::Jal { rd: 1, offset: -4 });
        // lui a0, 0xfffff
        assert_eq!(decode(0xffff_f537), Inst::Lui { rd: 10, imm: 0xffff_f000 });
    }

    #[test]
    fn extreme_immediates() {
        // jal x0, +0xffffe (max positive J offset): imm[20]=0, all others 1
        let w = 0x7fff_f06f;
        assert_eq!(decode(w), Inst::Jal { rd: 0, offset: 0x000f_fffe });
        // jal x0, -0x100000 (min J offset)
        assert_eq!(decode(0x8000_006f), Inst::Jal { rd: 0, offset: -0x10_0000 });
        // bne with max positive offset 4094 and min -4096
        assert_eq!(decode(0x7e00_1fe3), Inst::Branch { op: BranchOp::Bne, rs1: 0, rs2: 0, offset: 4094 });
        assert_eq!(decode(0x8000_1063), Inst::Branch { op: BranchOp::Bne, rs1: 0, rs2: 0, offset: -4096 });
    }

    #[test]
    fn reserved_encodings_are_illegal() {
        for w in [
            0x0000_0000u32, // defined illegal
            0xffff_ffff,    // defined illegal
            0x0000_0001,    // compressed
            0x0000_3003,    // ld (RV64)
            0x0000_6003,    // lwu (RV64)
            0x0000_3023,    // sd (RV64)
            0x0200_1013,    // slli with shamt[5] set
            0x4000_1013,    // slli with funct7 0x20
            0x4000_6033,    // or with funct7 0x20
            0x0000_4073,    // csr funct3 4
            0x0000_1067,    // jalr funct3 1
            0x0000_2063,    // branch funct3 2
            0x0020_0073,    // uret-like system word
            0x1020_0073,    // sret (no S mode)
            0x0000_001b,    // addiw (RV64)
        ] {
            assert_eq!(decode(w), Inst::Illegal(w), "{w:#010x}");
        }
    }

    #[test]
    fn decoding_any_word_never_panics() {
        // A deterministic sweep over a spread of words (the proptest suite covers more).
        let mut w: u32 = 0x1234_5678;
        for _ in 0..200_000 {
            w = w.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let _ = decode(w);
        }
    }
}
