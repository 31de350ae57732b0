//! `rvdbt disasm`: the guest program's code as `riscv64-unknown-elf-objdump -d` lists it.
//!
//! This module owns the listing: which sections and bytes are shown, the `<symbol>:`
//! label lines, the address and raw-bytes columns, objdump's `...` for runs of zero
//! bytes, `.word` for data marked by `$d` mapping symbols, and the two annotations
//! [`crate::guest::disasm`] leaves out because they need context: ` <symbol+0x..>` after branch
//! and jump targets, and the ` # <address> <symbol>` comment objdump adds when it can
//! compute an address from a preceding `lui`/`auipc` (or from `gp`, `tp` or `zero`).
//! That comment follows binutils 2.40 (`opcodes/riscv-dis.c`): the `lui`/`auipc`
//! value of a register is remembered for the whole listing (across functions, as
//! objdump does) until the first address computed from it; other writes to the
//! register do not forget it.
//!
//! Symbols come from [`crate::symbols`]; the instruction text from
//! [`crate::guest::disasm::disassemble_word`].

use crate::guest::decode::{decode_insn, Inst, Isa};
use crate::guest::disasm::disassemble_word;
use crate::symbols::{is_data_mapping_symbol, is_mapping_symbol, Section, SymSection, Symbols};
use std::fmt::Write as _;

/// What to list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every code section.
    All,
    /// One function (or other label in a code section) by name.
    Function(String),
    /// The addresses `start..stop` (as objdump's `--start-address`/`--stop-address`).
    Range(u32, u32),
    /// The function holding this address, or else the one instruction there.
    At(u32),
}

/// Why nothing can be listed (a one-line reason).
pub type ListingError = String;

/// objdump's state for ` # address` comments (`struct riscv_private_data`).
struct AddressTracker {
    /// The value a `lui`/`auipc` left in each register, until an access uses it.
    hi: [Option<u64>; 32],
    gp: Option<u64>,
    /// The address to print after the current instruction.
    print: Option<u64>,
}

impl AddressTracker {
    /// `maybe_print_address`. On RV32 the address is cut to 32 bits.
    fn maybe_print(&mut self, base: u8, offset: i32) {
        let base = usize::from(base);
        let offset = i64::from(offset) as u64;
        let address = if let Some(hi) = self.hi[base].take() {
            if base != 0 { hi } else { 0 }.wrapping_add(offset)
        } else if let (3, Some(gp)) = (base, self.gp) {
            gp.wrapping_add(offset)
        } else if base == 4 || base == 0 {
            offset
        } else {
            return;
        };
        self.print = Some(u64::from(address as u32));
    }

    /// Updates the state for one instruction as objdump's operand printer would, and
    /// returns the address to comment on.
    fn instruction(&mut self, inst: &Inst, pc: u32) -> Option<u64> {
        self.print = None;
        match *inst {
            Inst::Lui { rd, imm } => self.hi[usize::from(rd)] = Some(u64::from(imm)),
            Inst::Auipc { rd, imm } => self.hi[usize::from(rd)] = Some(u64::from(pc) + u64::from(imm)),
            // `ret` has no operands; `jr rs`, `jalr rs`, `jalr rd,rs` look once (operand
            // `s`); `jr o(s)` and the other offset forms three times (`o`, `j`, `s`).
            Inst::Jalr { rd: 0, rs1: 1, offset: 0 } => {}
            Inst::Jalr { rs1, offset: 0, .. } => self.maybe_print(rs1, 0),
            Inst::Jalr { rs1, offset, .. } => {
                for _ in 0..3 {
                    self.maybe_print(rs1, offset);
                }
            }
            Inst::Load { rs1, offset, .. } | Inst::Store { rs1, offset, .. } => self.maybe_print(rs1, offset),
            // `add rd,rs1,imm` (addi); `li`, `mv` and `nop` print no address.
            Inst::OpImm { op: crate::guest::decode::AluOp::Add, rs1, imm, .. } if rs1 != 0 && imm != 0 => {
                self.maybe_print(rs1, imm)
            }
            _ => {}
        }
        self.print.take()
    }
}

/// The branch or jump target of an instruction (as a 64-bit sum, like objdump).
fn target(inst: &Inst, pc: u32) -> Option<u64> {
    match *inst {
        Inst::Jal { offset, .. } | Inst::Branch { offset, .. } => {
            Some(u64::from(pc).wrapping_add(i64::from(offset) as u64))
        }
        _ => None,
    }
}

/// Length of the instruction starting with `parcel` (`riscv_insn_length`).
fn insn_length(parcel: u16) -> usize {
    let p = u32::from(parcel);
    if p & 3 != 3 {
        2
    } else if p & 0x1f != 0x1f {
        4
    } else if p & 0x3f == 0x1f {
        6
    } else if p & 0x7f == 0x3f {
        8
    } else {
        // Longer encodings: printed as one 32-bit word here (objdump shows `.byte` lists).
        4
    }
}

/// Writes the listing of one ELF.
struct Lister<'a> {
    syms: &'a Symbols,
    out: String,
    tracker: AddressTracker,
    /// Are there any symbols at all? (Without them objdump prints `0x` addresses.)
    any_symbols: bool,
}

impl<'a> Lister<'a> {
    fn new(syms: &'a Symbols) -> Lister<'a> {
        Lister {
            syms,
            out: String::new(),
            tracker: AddressTracker { hi: [None; 32], gp: syms.global_pointer().map(u64::from), print: None },
            any_symbols: !syms.symbols().is_empty(),
        }
    }

    /// objdump_print_addr: `target <symbol+off>` (skipping leading zeros).
    fn address(&self, vma: u64, sec: &Section, sorted: &[usize]) -> String {
        let text = format!("{:x}", vma as u32);
        if !self.any_symbols {
            return format!("0x{text}");
        }
        let sym = self.syms.find(sorted, vma, Some(sec), false).map(|p| sorted[p]);
        format!("{text} {}", self.syms.label(sym, vma, Some(sec)))
    }

    /// Is `addr` in data (after a `$d` mapping symbol of the section)?
    fn in_data(&self, sec: &Section, addr: u64) -> bool {
        self.syms
            .symbols()
            .iter()
            .filter(|s| s.section == SymSection::Index(sec.index) && is_mapping_symbol(&s.name))
            .filter(|s| u64::from(s.value) <= addr)
            .max_by_key(|s| s.value)
            .is_some_and(|s| is_data_mapping_symbol(&s.name))
    }

    /// `riscv_data_length`: 4 bytes, or less before the next mapping symbol or the
    /// section end.
    fn data_length(&self, sec: &Section, addr: u64) -> usize {
        let next_map = self
            .syms
            .symbols()
            .iter()
            .filter(|s| s.section == SymSection::Index(sec.index) && is_mapping_symbol(&s.name))
            .map(|s| u64::from(s.value))
            .filter(|&v| v > addr)
            .min();
        let limit = next_map.unwrap_or(u64::from(sec.addr) + sec.data.len() as u64);
        match limit.saturating_sub(addr).min(4) {
            3 => 2,
            n => n as usize,
        }
    }

    /// The section's disassembly between the offsets `start` and `stop`
    /// (`disassemble_section`).
    fn section(&mut self, sec: &Section, start: usize, stop: usize) {
        let stop = stop.min(sec.data.len());
        if start >= stop {
            return;
        }
        let sorted = self.syms.sorted_for(Some(sec.index));
        let skip_chars = {
            let end = format!("{:08x}", sec.addr.wrapping_add(sec.size));
            let zeros = end.bytes().take_while(|&b| b == b'0').count();
            if zeros == end.len() && sec.addr != 0 || zeros == 0 {
                0
            } else {
                (zeros - 1) & !3
            }
        };
        let _ = write!(self.out, "\nDisassembly of section {}:\n", sec.name);
        let base = u64::from(sec.addr);
        let mut place = self.syms.find(&sorted, base + start as u64, Some(sec), true);
        let value = |pos: usize| u64::from(self.syms.symbols()[sorted[pos]].value);
        let mut off = start;
        while off < stop {
            let addr = base + off as u64;
            let label = self.syms.label(place.map(|p| sorted[p]), addr, Some(sec));
            let _ = write!(self.out, "\n{:08x} {label}:\n", addr as u32);
            let (next, next_stop) = match place {
                None => (None, stop),
                Some(p) if value(p) > addr => (Some(p), (value(p) - base) as usize),
                Some(p) => {
                    let current = value(p);
                    let next = (p..sorted.len()).find(|&q| {
                        let s = &self.syms.symbols()[sorted[q]];
                        self.syms.section_name(s) == sec.name && u64::from(s.value) > current && s.is_label()
                    });
                    // A symbol of the section may lie below its start (a malformed
                    // file): it ends nothing (offset 0 is cut to `stop` below).
                    (next, next.map_or(stop, |q| value(q).saturating_sub(base) as usize))
                }
            };
            let next_stop = if next_stop > stop || next_stop <= off { stop } else { next_stop };
            self.bytes(sec, &sorted, off, next_stop, skip_chars);
            off = next_stop;
            place = next;
        }
    }

    /// `disassemble_bytes` between two offsets of a section.
    fn bytes(&mut self, sec: &Section, sorted: &[usize], start: usize, stop: usize, skip_chars: usize) {
        let data = &sec.data;
        let mut off = start;
        while off < stop {
            // Runs of zero bytes: at least 8, or fewer than 3 at the end, become `...`.
            let z = (off..stop).find(|&i| data[i] != 0).unwrap_or(stop);
            let run = z - off;
            if run >= 8 || (z == stop && run < 3) {
                off = if z == stop { z } else { off + (run & !3) };
                self.out.push_str("\t...\n");
                continue;
            }
            let addr = u64::from(sec.addr) + off as u64;
            let byte = |i: usize| data.get(i).copied().unwrap_or(0);
            let le = |at: usize, n: usize| (0..n).rev().fold(0u64, |v, k| (v << 8) | u64::from(byte(at + k)));
            let (len, chunk, text) = if self.in_data(sec, addr) {
                let len = self.data_length(sec, addr).max(1);
                let value = le(off, len);
                let text = match len {
                    4 => format!(".word\t0x{value:08x}"),
                    2 => format!(".short\t0x{value:04x}"),
                    _ => format!(".byte\t0x{value:02x}"),
                };
                (len, len, text)
            } else {
                match insn_length(le(off, 2) as u16) {
                    2 => (2, 2, self.instruction(le(off, 2) as u32, addr as u32, sec, sorted)),
                    4 => (4, 4, self.instruction(le(off, 4) as u32, addr as u32, sec, sorted)),
                    n => (n, if n % 4 == 0 { 4 } else { 2 }, format!(".{n}byte\t0x{:x}", le(off, n.min(8)))),
                }
            };
            // The address column: eight hex digits, leading zeros as spaces.
            let digits = format!("{:08x}", addr as u32);
            let shown = &digits[skip_chars..];
            let nonzero = shown.find(|c| c != '0').unwrap_or(shown.len() - 1);
            let _ = write!(self.out, "{}{}:\t", " ".repeat(nonzero), &shown[nonzero..]);
            // The raw bytes, in chunks, padded to 8 bytes.
            let shown_len = len.min(8);
            let mut j = 0;
            while j < shown_len {
                if off + j + chunk <= stop {
                    let _ = write!(self.out, "{:0width$x}", le(off + j, chunk), width = 2 * chunk);
                }
                self.out.push(' ');
                j += chunk;
            }
            let mut pb = shown_len;
            while pb < 8 {
                self.out.push_str(&" ".repeat(2 * chunk + 1));
                pb += chunk;
            }
            let _ = writeln!(self.out, "\t{text}");
            off += len;
        }
    }

    /// One instruction (32-bit, or compressed in the low 16 bits of `word`) with
    /// objdump's annotations.
    fn instruction(&mut self, word: u32, pc: u32, sec: &Section, sorted: &[usize]) -> String {
        let inst = decode_insn(Isa::RV32IMAC, word).0;
        let mut text = disassemble_word(word, pc);
        if matches!(inst, Inst::Illegal(_)) || text.starts_with(".4byte") {
            return text;
        }
        if let Some(t) = target(&inst, pc) {
            // The disassembler printed the target last, as unpadded hex.
            let printed = format!("{:x}", t as u32);
            if text.ends_with(&printed) {
                text.truncate(text.len() - printed.len());
                text.push_str(&self.address(t, sec, sorted));
            }
        }
        // Of the compressed instructions objdump follows only `c.addi` and `c.lui` (the
        // others neither get an annotation nor change what it believes the registers hold).
        let c_rd = (word >> 7) & 31;
        let c_addi = word & 0xe003 == 0x0001;
        let c_lui = word & 0xe003 == 0x6001 && c_rd != 0 && c_rd != 2;
        let follows = word & 3 == 3 || c_addi || c_lui;
        let annotation = if follows { self.tracker.instruction(&inst, pc) } else { None };
        if let Some(a) = annotation {
            text.push_str(" # ");
            text.push_str(&self.address(a, sec, sorted));
        }
        text
    }
}

/// The listing header objdump prints first.
fn header(path: &str) -> String {
    format!("\n{path}:     file format elf32-littleriscv\n\n")
}

/// Lists `selection` of the program's code as `objdump -d` would; `path` is the file
/// name to print in the header.
pub fn list(path: &str, syms: &Symbols, selection: &Selection) -> Result<String, ListingError> {
    let mut lister = Lister::new(syms);
    lister.out.push_str(&header(path));
    let code: Vec<&Section> = syms.sections().iter().filter(|s| s.code).collect();
    if code.is_empty() {
        return Err(format!("{path} has no code sections (section headers stripped?)"));
    }
    let range = |start: u64, stop: u64| -> Result<Vec<(&Section, usize, usize)>, ListingError> {
        let parts: Vec<_> = code
            .iter()
            .filter(|s| start < u64::from(s.addr) + s.data.len() as u64 && stop > u64::from(s.addr))
            .map(|s| {
                let base = u64::from(s.addr);
                (*s, start.saturating_sub(base) as usize, (stop - base).min(s.data.len() as u64) as usize)
            })
            .collect();
        if parts.is_empty() {
            return Err(format!("no code at {start:#x}..{stop:#x} in {path}"));
        }
        Ok(parts)
    };
    let parts = match selection {
        Selection::All => code.iter().map(|s| (*s, 0, s.data.len())).collect(),
        Selection::Range(start, stop) => {
            if start >= stop {
                return Err(format!("empty address range {start:#x},{stop:#x} (the end is exclusive)"));
            }
            range(u64::from(*start), u64::from(*stop))?
        }
        Selection::Function(name) => {
            let sym = syms.by_name(name).ok_or_else(|| format!("no function named '{name}' in {path}"))?;
            range(u64::from(sym.value), syms.extent(sym).max(u64::from(sym.value) + 1))?
        }
        Selection::At(addr) => match syms.function_containing(*addr) {
            Some(f) => range(u64::from(f.value), u64::from(f.value) + u64::from(f.size))?,
            None => range(u64::from(*addr), u64::from(*addr) + 4)?,
        },
    };
    for (sec, start, stop) in parts {
        lister.section(sec, start, stop);
    }
    Ok(lister.out)
}

/// Parses `--addr A[,B]`: hex with `0x`, or decimal.
pub fn parse_selection(s: &str) -> Result<Selection, String> {
    let number = |t: &str| {
        let t = t.trim();
        let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16),
            None => t.parse::<u32>(),
        };
        parsed.map_err(|_| format!("invalid address '{t}' (use 0x1f000 or 126976)"))
    };
    match s.split_once(',') {
        Some((a, b)) => Ok(Selection::Range(number(a)?, number(b)?)),
        None => Ok(Selection::At(number(s)?)),
    }
}

/// Validates `elf` as the loader does (the same one-line reasons), reads its symbols and
/// lists `selection`. `path` is printed in the header.
pub fn disassemble_file(path: &str, elf: &[u8], selection: &Selection) -> Result<String, ListingError> {
    let mut mem = crate::memory::Memory::new(false, false).map_err(|e| format!("cannot set up guest memory: {e}"))?;
    crate::loader::load_elf(&mut mem, elf).map_err(|e| format!("cannot load {path}: {e}"))?;
    let syms = Symbols::from_elf(elf).map_err(|e| format!("cannot read the symbols of {path}: {e}"))?;
    list(path, &syms, selection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::decode::decode;

    #[test]
    fn tracker_follows_objdump() {
        let mut t = AddressTracker { hi: [None; 32], gp: Some(0x3800), print: None };
        // lui a0,0x80002 ; add a0,a0,312
        assert_eq!(t.instruction(&decode(0x8000_2537), 0x100), None);
        assert_eq!(t.instruction(&decode(0x1385_0513), 0x104), Some(0x8000_2138));
        // The value is used once.
        assert_eq!(t.instruction(&decode(0x1385_0513), 0x108), None);
        // gp-relative load: lw a0,-2048(gp).
        assert_eq!(t.instruction(&decode(0x8001_a503), 0x10c), Some(0x3000));
        // mv keeps the lui value for later.
        assert_eq!(t.instruction(&decode(0x0000_17b7), 0x110), None); // lui a5,0x1
        assert_eq!(t.instruction(&decode(0x0007_8513), 0x114), None); // mv a0,a5
        assert_eq!(t.instruction(&decode(0x0047_a503), 0x118), Some(0x1004)); // lw a0,4(a5)
    }

    #[test]
    fn lengths() {
        assert_eq!(insn_length(0x0000), 2);
        assert_eq!(insn_length(0x0013), 4);
        assert_eq!(insn_length(0x001f), 6);
        assert_eq!(insn_length(0x003f), 8);
    }
}
