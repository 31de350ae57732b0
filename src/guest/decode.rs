//! Instruction decoding: RV32IMAC/Zicsr/Zifencei instructions to an [`Inst`].
//!
//! The decoder is table driven, in the spirit of QEMU's `decodetree` files: every
//! instruction is one row of (mask, match, builder). Rows are grouped by the major
//! opcode (bits 6..0) so a lookup scans only the handful of rows that can match.
//! Any word that matches no row decodes to [`Inst::Illegal`]. Decoding never panics.
//!
//! A compressed (C extension) instruction is the 16-bit parcel whose low two bits are
//! not `11`; [`decode_compressed`] expands it into the 32-bit instruction it stands
//! for, through a table of its own grouped by quadrant and funct3, so the rest of
//! rvdbt only ever sees the expanded [`Inst`] and its length ([`decode_insn`] returns
//! both). The reserved compressed encodings are illegal, as on QEMU: `c.addi4spn`
//! with a zero immediate (including the all-zero parcel), `c.addi16sp`/`c.lui` with a
//! zero immediate, `c.lwsp` and `c.jr` with register 0, RV32 shifts by 32..63, the
//! RV64 `c.subw`/`c.addw` rows and every floating-point load/store. The HINT encodings
//! (`c.nop` with an immediate, `c.li`, `c.lui`, `c.mv`, `c.add`, `c.slli` with
//! rd = 0, shifts by 0, `c.addi` by 0) are legal and execute as their expansion.
//!
//! [`Isa`] says which extensions a run decodes (`--isa`): without C every parcel
//! whose low bits are not `11` is illegal, without A every AMO is.

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

/// Atomic memory operations (A extension, word size).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AmoOp {
    Swap,
    Add,
    Xor,
    And,
    Or,
    Min,
    Max,
    Minu,
    Maxu,
}

impl AmoOp {
    pub const ALL: [AmoOp; 9] =
        [AmoOp::Swap, AmoOp::Add, AmoOp::Xor, AmoOp::And, AmoOp::Or, AmoOp::Min, AmoOp::Max, AmoOp::Minu, AmoOp::Maxu];

    /// Position in [`AmoOp::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The value the AMO stores, given the value in memory and rs2.
    pub fn apply(self, old: u32, src: u32) -> u32 {
        match self {
            AmoOp::Swap => src,
            AmoOp::Add => old.wrapping_add(src),
            AmoOp::Xor => old ^ src,
            AmoOp::And => old & src,
            AmoOp::Or => old | src,
            AmoOp::Min => (old as i32).min(src as i32) as u32,
            AmoOp::Max => (old as i32).max(src as i32) as u32,
            AmoOp::Minu => old.min(src),
            AmoOp::Maxu => old.max(src),
        }
    }
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
    /// `lr.w`: loads a word and registers a reservation on it.
    Lr {
        rd: u8,
        rs1: u8,
        aq: bool,
        rl: bool,
    },
    /// `sc.w`: stores rs2 if the reservation is valid; rd = 0 on success, 1 on failure.
    Sc {
        rd: u8,
        rs1: u8,
        rs2: u8,
        aq: bool,
        rl: bool,
    },
    /// `amo<op>.w`: rd = the word at rs1, which becomes `op(word, rs2)`.
    Amo {
        op: AmoOp,
        rd: u8,
        rs1: u8,
        rs2: u8,
        aq: bool,
        rl: bool,
    },
    /// An encoding no extension defines: the 32-bit word, or the 16-bit parcel of a
    /// compressed encoding.
    Illegal(u32),
}

impl Inst {
    /// The register the instruction writes (its `rd`, possibly x0), if it writes one.
    pub fn dest(&self) -> Option<u8> {
        match *self {
            Inst::Lui { rd, .. }
            | Inst::Auipc { rd, .. }
            | Inst::Jal { rd, .. }
            | Inst::Jalr { rd, .. }
            | Inst::Load { rd, .. }
            | Inst::OpImm { rd, .. }
            | Inst::Op { rd, .. }
            | Inst::Amo { rd, .. }
            | Inst::Lr { rd, .. }
            | Inst::Sc { rd, .. }
            | Inst::Csr { rd, .. } => Some(rd),
            _ => None,
        }
    }

    /// Is this an A-extension instruction?
    pub fn is_atomic(&self) -> bool {
        matches!(self, Inst::Lr { .. } | Inst::Sc { .. } | Inst::Amo { .. })
    }
}

/// The extensions a run decodes beyond RV32IM + Zicsr + Zifencei (`--isa`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Isa {
    /// A: lr/sc and the AMOs.
    pub a: bool,
    /// C: compressed instructions (and 2-byte instruction alignment).
    pub c: bool,
}

impl Default for Isa {
    /// Everything rvdbt implements.
    fn default() -> Self {
        Isa::RV32IMAC
    }
}

impl Isa {
    pub const RV32IM: Isa = Isa { a: false, c: false };
    pub const RV32IMAC: Isa = Isa { a: true, c: true };

    /// `rv32im`, `rv32ima`, `rv32imc` or `rv32imac` (any case).
    pub fn parse(s: &str) -> Option<Isa> {
        match s.to_ascii_lowercase().as_str() {
            "rv32im" => Some(Isa::RV32IM),
            "rv32ima" => Some(Isa { a: true, c: false }),
            "rv32imc" => Some(Isa { a: false, c: true }),
            "rv32imac" => Some(Isa::RV32IMAC),
            _ => None,
        }
    }

    /// The canonical name (`rv32imac`).
    pub fn name(self) -> String {
        format!("rv32im{}{}", if self.a { "a" } else { "" }, if self.c { "c" } else { "" })
    }

    /// The `misa` CSR: MXL = 1 (32-bit) and one bit per extension.
    pub fn misa(self) -> u32 {
        let ext = |c: u8| 1u32 << (c - b'A');
        (1 << 30) | ext(b'I') | ext(b'M') | if self.a { ext(b'A') } else { 0 } | if self.c { ext(b'C') } else { 0 }
    }

    /// Required alignment of instruction addresses: 2 bytes with C, 4 without.
    pub fn ialign(self) -> u32 {
        if self.c {
            2
        } else {
            4
        }
    }
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

const AMO_MASK: u32 = 0xf800_7000 | OPCODE;
const fn amo(funct5: u32) -> u32 {
    0x2f | (2 << 12) | (funct5 << 27)
}
fn aq(w: u32) -> bool {
    w & (1 << 26) != 0
}
fn rl(w: u32) -> bool {
    w & (1 << 25) != 0
}
macro_rules! amo {
    ($op:ident) => {
        |w| Inst::Amo { op: AmoOp::$op, rd: rd(w), rs1: rs1(w), rs2: rs2(w), aq: aq(w), rl: rl(w) }
    };
}
static AMO: &[Row] = rows! {
    AMO_MASK | (31 << 20), amo(0b00010) => |w| Inst::Lr { rd: rd(w), rs1: rs1(w), aq: aq(w), rl: rl(w) };
    AMO_MASK, amo(0b00011) => |w| Inst::Sc { rd: rd(w), rs1: rs1(w), rs2: rs2(w), aq: aq(w), rl: rl(w) };
    AMO_MASK, amo(0b00001) => amo!(Swap);
    AMO_MASK, amo(0b00000) => amo!(Add);
    AMO_MASK, amo(0b00100) => amo!(Xor);
    AMO_MASK, amo(0b01100) => amo!(And);
    AMO_MASK, amo(0b01000) => amo!(Or);
    AMO_MASK, amo(0b10000) => amo!(Min);
    AMO_MASK, amo(0b10100) => amo!(Max);
    AMO_MASK, amo(0b11000) => amo!(Minu);
    AMO_MASK, amo(0b11100) => amo!(Maxu);
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
        0x2f => AMO,
        _ => &[],
    }
}

/// Decodes one 32-bit instruction word (I, M, A, Zicsr, Zifencei). Never panics;
/// unknown encodings, and every word whose low two bits are not `11` (those start a
/// compressed instruction, see [`decode_insn`]), are [`Inst::Illegal`].
pub fn decode(word: u32) -> Inst {
    rows_for(word & OPCODE)
        .iter()
        .find(|row| word & row.mask == row.bits)
        .map_or(Inst::Illegal(word), |row| (row.build)(word))
}

/// Length in bytes of the instruction whose first 16-bit parcel is `lo`: 2 for a
/// compressed instruction (low bits not `11`), else 4. (Encodings of 48 bits and more
/// are not defined by any extension rvdbt implements; they decode as illegal 32-bit
/// words.)
pub fn insn_len(lo: u16) -> u32 {
    if lo & 3 == 3 {
        4
    } else {
        2
    }
}

/// Decodes the instruction whose bytes start with `bits` (little endian; for a
/// compressed instruction only the low 16 bits count) under `isa`, and returns it
/// with its length in bytes. Without C a compressed encoding is illegal and has
/// length 4 (instruction fetch then always reads whole words); without A every
/// atomic instruction is illegal.
pub fn decode_insn(isa: Isa, bits: u32) -> (Inst, u32) {
    if bits & 3 != 3 {
        if isa.c {
            return (decode_compressed(bits as u16), 2);
        }
        return (Inst::Illegal(bits), 4);
    }
    let inst = decode(bits);
    if inst.is_atomic() && !isa.a {
        return (Inst::Illegal(bits), 4);
    }
    (inst, 4)
}

// ---- the C extension -------------------------------------------------------------

/// One row of the compressed table: the parcel matches when `half & mask == bits`.
struct CRow {
    mask: u16,
    bits: u16,
    build: fn(u16) -> Inst,
}

macro_rules! crows {
    ($($mask:expr, $bits:expr => $build:expr;)*) => {
        &[$(CRow { mask: $mask, bits: $bits, build: $build }),*]
    };
}

/// Quadrant (bits 1..0) and funct3 (bits 15..13).
const CQ: u16 = 0xe003;
const fn cq(quadrant: u16, funct3: u16) -> u16 {
    (funct3 << 13) | quadrant
}

fn cbit(h: u16, bit: u32) -> u32 {
    u32::from((h >> bit) & 1)
}
/// Bits `hi..=lo` of the parcel.
fn cbits(h: u16, hi: u32, lo: u32) -> u32 {
    (u32::from(h) >> lo) & ((1 << (hi - lo + 1)) - 1)
}
/// Sign-extends the low `bits` bits of `v`.
fn sext(v: u32, bits: u32) -> i32 {
    ((v << (32 - bits)) as i32) >> (32 - bits)
}
/// The full register field at bits 11..7 (rd / rs1).
fn c_rd(h: u16) -> u8 {
    cbits(h, 11, 7) as u8
}
/// The full register field at bits 6..2 (rs2).
fn c_rs2(h: u16) -> u8 {
    cbits(h, 6, 2) as u8
}
/// The 3-bit register field at bits 9..7 (rd' / rs1'): x8..x15.
fn c_rs1p(h: u16) -> u8 {
    8 + cbits(h, 9, 7) as u8
}
/// The 3-bit register field at bits 4..2 (rd' / rs2'): x8..x15.
fn c_rs2p(h: u16) -> u8 {
    8 + cbits(h, 4, 2) as u8
}
/// The 6-bit signed immediate of the CI format (bit 12, bits 6..2).
fn ci_imm(h: u16) -> i32 {
    sext((cbit(h, 12) << 5) | cbits(h, 6, 2), 6)
}
/// The 6-bit shift amount of c.slli/c.srli/c.srai.
fn c_shamt(h: u16) -> i32 {
    ((cbit(h, 12) << 5) | cbits(h, 6, 2)) as i32
}
/// c.addi4spn: nzuimm[5:4|9:6|2|3].
fn ciw_imm(h: u16) -> i32 {
    ((cbits(h, 12, 11) << 4) | (cbits(h, 10, 7) << 6) | (cbit(h, 6) << 2) | (cbit(h, 5) << 3)) as i32
}
/// c.lw/c.sw: offset[5:3] at 12..10, offset[2] at 6, offset[6] at 5.
fn cl_off(h: u16) -> i32 {
    ((cbits(h, 12, 10) << 3) | (cbit(h, 6) << 2) | (cbit(h, 5) << 6)) as i32
}
/// c.addi16sp: nzimm[9] at 12, nzimm[4|6|8:7|5] at 6..2.
fn c_addi16sp_imm(h: u16) -> i32 {
    let v = (cbit(h, 12) << 9) | (cbit(h, 6) << 4) | (cbit(h, 5) << 6) | (cbits(h, 4, 3) << 7) | (cbit(h, 2) << 5);
    sext(v, 10)
}
/// c.j/c.jal: offset[11|4|9:8|10|6|7|3:1|5].
fn cj_off(h: u16) -> i32 {
    let v = (cbit(h, 12) << 11)
        | (cbit(h, 11) << 4)
        | (cbits(h, 10, 9) << 8)
        | (cbit(h, 8) << 10)
        | (cbit(h, 7) << 6)
        | (cbit(h, 6) << 7)
        | (cbits(h, 5, 3) << 1)
        | (cbit(h, 2) << 5);
    sext(v, 12)
}
/// c.beqz/c.bnez: offset[8|4:3] at 12..10, offset[7:6|2:1|5] at 6..2.
fn cb_off(h: u16) -> i32 {
    let v = (cbit(h, 12) << 8)
        | (cbits(h, 11, 10) << 3)
        | (cbits(h, 6, 5) << 6)
        | (cbits(h, 4, 3) << 1)
        | (cbit(h, 2) << 5);
    sext(v, 9)
}
/// c.lwsp: offset[5] at 12, offset[4:2] at 6..4, offset[7:6] at 3..2.
fn c_lwsp_off(h: u16) -> i32 {
    ((cbit(h, 12) << 5) | (cbits(h, 6, 4) << 2) | (cbits(h, 3, 2) << 6)) as i32
}
/// c.swsp: offset[5:2] at 12..9, offset[7:6] at 8..7.
fn c_swsp_off(h: u16) -> i32 {
    ((cbits(h, 12, 9) << 2) | (cbits(h, 8, 7) << 6)) as i32
}

fn c_illegal(h: u16) -> Inst {
    Inst::Illegal(u32::from(h))
}

const SP: u8 = 2;

macro_rules! c_alu {
    ($op:ident) => {
        |h| Inst::Op { op: AluOp::$op, rd: c_rs1p(h), rs1: c_rs1p(h), rs2: c_rs2p(h) }
    };
}

/// Quadrant 0: the stack-pointer-based c.addi4spn and the register-based c.lw/c.sw.
static C0: &[CRow] = crows! {
    CQ | 0x1fe0, cq(0, 0) => c_illegal; // nzuimm = 0 (the all-zero parcel among them)
    CQ, cq(0, 0) => |h| Inst::OpImm { op: AluOp::Add, rd: c_rs2p(h), rs1: SP, imm: ciw_imm(h) };
    CQ, cq(0, 2) => |h| Inst::Load { op: LoadOp::Lw, rd: c_rs2p(h), rs1: c_rs1p(h), offset: cl_off(h) };
    CQ, cq(0, 6) => |h| Inst::Store { op: StoreOp::Sw, rs1: c_rs1p(h), rs2: c_rs2p(h), offset: cl_off(h) };
};

/// Quadrant 1: immediates, jumps, branches and the register-register ALU forms.
static C1: &[CRow] = crows! {
    CQ, cq(1, 0) => |h| Inst::OpImm { op: AluOp::Add, rd: c_rd(h), rs1: c_rd(h), imm: ci_imm(h) };
    CQ, cq(1, 1) => |h| Inst::Jal { rd: 1, offset: cj_off(h) };
    CQ, cq(1, 2) => |h| Inst::OpImm { op: AluOp::Add, rd: c_rd(h), rs1: 0, imm: ci_imm(h) };
    CQ | 0x107c, cq(1, 3) => c_illegal; // c.addi16sp / c.lui with a zero immediate
    CQ | 0x0f80, cq(1, 3) | (2 << 7) => |h| Inst::OpImm { op: AluOp::Add, rd: SP, rs1: SP, imm: c_addi16sp_imm(h) };
    CQ, cq(1, 3) => |h| Inst::Lui { rd: c_rd(h), imm: (ci_imm(h) << 12) as u32 };
    CQ | 0x1c00, cq(1, 4) => |h| Inst::OpImm { op: AluOp::Srl, rd: c_rs1p(h), rs1: c_rs1p(h), imm: c_shamt(h) };
    CQ | 0x1c00, cq(1, 4) | 0x0400 => |h| Inst::OpImm { op: AluOp::Sra, rd: c_rs1p(h), rs1: c_rs1p(h), imm: c_shamt(h) };
    CQ | 0x0c00, cq(1, 4) | 0x0800 => |h| Inst::OpImm { op: AluOp::And, rd: c_rs1p(h), rs1: c_rs1p(h), imm: ci_imm(h) };
    CQ | 0x1c60, cq(1, 4) | 0x0c00 => c_alu!(Sub);
    CQ | 0x1c60, cq(1, 4) | 0x0c20 => c_alu!(Xor);
    CQ | 0x1c60, cq(1, 4) | 0x0c40 => c_alu!(Or);
    CQ | 0x1c60, cq(1, 4) | 0x0c60 => c_alu!(And);
    CQ, cq(1, 5) => |h| Inst::Jal { rd: 0, offset: cj_off(h) };
    CQ, cq(1, 6) => |h| Inst::Branch { op: BranchOp::Beq, rs1: c_rs1p(h), rs2: 0, offset: cb_off(h) };
    CQ, cq(1, 7) => |h| Inst::Branch { op: BranchOp::Bne, rs1: c_rs1p(h), rs2: 0, offset: cb_off(h) };
};

/// Quadrant 2: c.slli, the stack-pointer-based loads and stores, jr/jalr/mv/add/ebreak.
static C2: &[CRow] = crows! {
    CQ | 0x1000, cq(2, 0) => |h| Inst::OpImm { op: AluOp::Sll, rd: c_rd(h), rs1: c_rd(h), imm: c_shamt(h) };
    CQ | 0x0f80, cq(2, 2) => c_illegal; // c.lwsp with rd = 0
    CQ, cq(2, 2) => |h| Inst::Load { op: LoadOp::Lw, rd: c_rd(h), rs1: SP, offset: c_lwsp_off(h) };
    0xffff, 0x8002 => c_illegal; // c.jr with rs1 = 0
    CQ | 0x107c, cq(2, 4) => |h| Inst::Jalr { rd: 0, rs1: c_rd(h), offset: 0 };
    CQ | 0x1000, cq(2, 4) => |h| Inst::Op { op: AluOp::Add, rd: c_rd(h), rs1: 0, rs2: c_rs2(h) };
    0xffff, 0x9002 => |_| Inst::Ebreak;
    CQ | 0x107c, cq(2, 4) | 0x1000 => |h| Inst::Jalr { rd: 1, rs1: c_rd(h), offset: 0 };
    CQ | 0x1000, cq(2, 4) | 0x1000 => |h| Inst::Op { op: AluOp::Add, rd: c_rd(h), rs1: c_rd(h), rs2: c_rs2(h) };
    CQ, cq(2, 6) => |h| Inst::Store { op: StoreOp::Sw, rs1: SP, rs2: c_rs2(h), offset: c_swsp_off(h) };
};

/// Expands one compressed instruction (a 16-bit parcel whose low bits are not `11`)
/// into the instruction it stands for. Reserved encodings, and the encodings of
/// extensions rvdbt does not implement (F, D, RV64), are [`Inst::Illegal`] with the
/// parcel. Never panics.
pub fn decode_compressed(half: u16) -> Inst {
    let rows = match half & 3 {
        0 => C0,
        1 => C1,
        2 => C2,
        _ => return c_illegal(half),
    };
    rows.iter().find(|row| half & row.mask == row.bits).map_or(c_illegal(half), |row| (row.build)(half))
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
