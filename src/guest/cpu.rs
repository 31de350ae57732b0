//! The guest hart's architectural state: integer registers, pc, the retired-instruction
//! counter and the machine CSR file.
//!
//! [`Cpu`] is `#[repr(C)]` because translated code reads and writes its fields at fixed
//! offsets (see the `OFFSET_*` constants).

use std::mem::offset_of;

/// Register state shared with translated code.
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct Cpu {
    /// x0..x31; x0 is always 0.
    pub regs: [u32; 32],
    pub pc: u32,
    _pad: u32,
    /// Instructions retired so far.
    pub retired: u64,
    /// Translated code returns to the dispatcher before `retired` would pass this. Set
    /// on each entry; while translated code runs, only the profiling helpers change it
    /// (to 0, to leave soon), which lets code without profiling accesses read it once.
    pub budget_end: u64,
}

pub const OFFSET_REGS: i32 = offset_of!(Cpu, regs) as i32;
pub const OFFSET_PC: i32 = offset_of!(Cpu, pc) as i32;
pub const OFFSET_RETIRED: i32 = offset_of!(Cpu, retired) as i32;
pub const OFFSET_BUDGET_END: i32 = offset_of!(Cpu, budget_end) as i32;

impl Cpu {
    pub fn reg(&self, r: u8) -> u32 {
        self.regs[r as usize]
    }

    /// Writes a register; writes to x0 are discarded.
    pub fn set_reg(&mut self, r: u8, value: u32) {
        if r != 0 {
            self.regs[r as usize] = value;
        }
    }
}

pub const CSR_MSTATUS: u16 = 0x300;
pub const CSR_MISA: u16 = 0x301;
pub const CSR_MEPC: u16 = 0x341;
pub const CSR_MCYCLE: u16 = 0xb00;
pub const CSR_MINSTRET: u16 = 0xb02;
pub const CSR_MCYCLEH: u16 = 0xb80;
pub const CSR_MINSTRETH: u16 = 0xb82;
pub const CSR_CYCLE: u16 = 0xc00;
pub const CSR_TIME: u16 = 0xc01;
pub const CSR_INSTRET: u16 = 0xc02;
pub const CSR_CYCLEH: u16 = 0xc80;
pub const CSR_TIMEH: u16 = 0xc81;
pub const CSR_INSTRETH: u16 = 0xc82;
pub const CSR_MVENDORID: u16 = 0xf11;
pub const CSR_MARCHID: u16 = 0xf12;
pub const CSR_MIMPID: u16 = 0xf13;
pub const CSR_MHARTID: u16 = 0xf14;

/// misa for RV32IM: MXL=1 (32-bit), extensions I and M.
pub const MISA_RV32IM: u32 = (1 << 30) | (1 << 8) | (1 << 12);
/// misa for RV32IMAC: I, M, A and C.
pub const MISA_RV32IMAC: u32 = MISA_RV32IM | 1 | (1 << 2);

/// A plain machine CSR file: every CSR number can be read and written, except the
/// read-only ones (number bits 11..10 = 0b11), whose writes are illegal instructions.
/// The counters read the retired-instruction count (`cycle` counts one per
/// instruction), `time` reads the timer's `mtime` and `misa` the extensions the run
/// decodes.
#[derive(Clone, Debug)]
pub struct CsrFile {
    values: Box<[u32; 4096]>,
    misa: u32,
}

impl Default for CsrFile {
    /// A CSR file reporting RV32IMAC in `misa`.
    fn default() -> Self {
        CsrFile::with_misa(MISA_RV32IMAC)
    }
}

/// The values a counter CSR read needs from the rest of the machine.
#[derive(Clone, Copy, Debug)]
pub struct Counters {
    pub retired: u64,
    pub mtime: u64,
}

impl CsrFile {
    /// A CSR file whose `misa` reads `misa` (see [`crate::guest::decode::Isa::misa`]).
    pub fn with_misa(misa: u32) -> CsrFile {
        CsrFile { values: Box::new([0; 4096]), misa }
    }

    pub fn is_read_only(csr: u16) -> bool {
        (csr >> 10) & 3 == 3
    }

    pub fn read(&self, csr: u16, counters: Counters) -> u32 {
        match csr {
            CSR_CYCLE | CSR_INSTRET | CSR_MCYCLE | CSR_MINSTRET => counters.retired as u32,
            CSR_CYCLEH | CSR_INSTRETH | CSR_MCYCLEH | CSR_MINSTRETH => (counters.retired >> 32) as u32,
            CSR_TIME => counters.mtime as u32,
            CSR_TIMEH => (counters.mtime >> 32) as u32,
            CSR_MHARTID | CSR_MVENDORID | CSR_MARCHID | CSR_MIMPID => 0,
            CSR_MISA => self.misa,
            _ => self.values[usize::from(csr & 0xfff)],
        }
    }

    /// Writes a CSR. The caller has rejected read-only CSRs. Counter and misa writes
    /// are ignored (the counters always reflect the retired count).
    pub fn write(&mut self, csr: u16, value: u32) {
        match csr {
            CSR_MCYCLE | CSR_MINSTRET | CSR_MCYCLEH | CSR_MINSTRETH | CSR_MISA => {}
            _ => self.values[usize::from(csr & 0xfff)] = value,
        }
    }
}
