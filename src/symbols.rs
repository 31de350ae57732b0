//! The guest program's ELF sections and symbol table, for people: function names for
//! `rvdbt disasm`, `<function+offset>` labels in traces, and name lookups.
//!
//! This module owns reading the section headers and `.symtab` of a (validated) guest ELF
//! with the `object` crate, and choosing a symbol for an address exactly as GNU objdump
//! 2.40 does, so that listings can be compared with `riscv64-unknown-elf-objdump -d`
//! line by line. objdump's rules, reproduced here:
//!
//! * symbols without a name, section and file symbols, undefined and common symbols are
//!   dropped (`remove_useless_symbols`); RISC-V mapping symbols (`$x`, `$xrv32i...`,
//!   `$d`) stay in the table but are never chosen as a label (`riscv_symbol_is_valid`);
//! * symbols are sorted by value, then those of the section being disassembled first,
//!   then functions before objects before others, globals before locals, larger sizes
//!   first, names starting with `.` last, and finally by name (`compare_symbols`);
//! * the symbol for an address is the first of the sorted symbols with the greatest value
//!   not above it, preferring one in the current section, falling back to earlier (or,
//!   if there are none, later) valid symbols (`find_symbol_for_address`).
//!
//! Addresses are compared as 64-bit values, as objdump does on a 64-bit host: a branch
//! target below zero (`pc + offset` wrapping) is a huge number, whose symbol is the last
//! one; only the printed text is cut to 32 bits. (The addresses of `# ...` comments are
//! cut to 32 bits before the lookup, see [`crate::listing`].)

use object::elf;
use object::read::elf::{FileHeader, SectionHeader, Sym};
use object::LittleEndian as LE;
use std::cmp::Ordering;

/// One section of the ELF file (index 0, the null section, is not listed).
#[derive(Clone, Debug)]
pub struct Section {
    /// Index in the section header table.
    pub index: usize,
    pub name: String,
    pub addr: u32,
    pub size: u32,
    /// Executable (SHF_EXECINSTR) with contents in the file: objdump -d lists it.
    pub code: bool,
    /// The contents (empty for SHT_NOBITS).
    pub data: Vec<u8>,
}

impl Section {
    /// Does the section hold `addr`?
    pub fn contains(&self, addr: u64) -> bool {
        addr >= u64::from(self.addr) && addr < u64::from(self.addr) + u64::from(self.size)
    }
}

/// The kind of an ELF symbol, as far as choosing labels cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymKind {
    Function,
    Object,
    Other,
}

/// Binding of an ELF symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    Local,
    Global,
    Weak,
}

/// Where a symbol is defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymSection {
    /// Index of its section in the section header table.
    Index(usize),
    /// SHN_ABS.
    Absolute,
}

/// One symbol objdump would consider.
#[derive(Clone, Debug)]
pub struct Symbol {
    pub name: String,
    pub value: u32,
    pub size: u32,
    pub kind: SymKind,
    pub binding: Binding,
    pub section: SymSection,
}

impl Symbol {
    /// May the symbol label an address? (RISC-V mapping symbols may not.)
    pub fn is_label(&self) -> bool {
        !is_mapping_symbol(&self.name) && self.name != ".L0 "
    }
}

/// `$x`, `$xrv32i2p1_m2p0...` and `$d` (and the `$x.`/`$d.` forms of newer assemblers)
/// mark where code and data start inside a section.
pub fn is_mapping_symbol(name: &str) -> bool {
    name == "$x" || name == "$d" || name.starts_with("$xrv") || name.starts_with("$x.") || name.starts_with("$d.")
}

/// Is `name` a mapping symbol that starts data (`$d`)?
pub fn is_data_mapping_symbol(name: &str) -> bool {
    name == "$d" || name.starts_with("$d.")
}

/// The sections and symbols of a guest program.
#[derive(Clone, Debug, Default)]
pub struct Symbols {
    sections: Vec<Section>,
    /// The symbols objdump keeps, in symbol table order.
    symbols: Vec<Symbol>,
    /// Sorted for address lookups (with the first code section as the current one).
    by_address: Vec<usize>,
}

/// Why the symbol table cannot be read (the one-line reason).
pub type SymbolError = String;

impl Symbols {
    /// Reads the sections and the symbol table of an ELF32 file. A file without section
    /// headers or without `.symtab` gives empty tables, not an error.
    pub fn from_elf(data: &[u8]) -> Result<Symbols, SymbolError> {
        let e = LE;
        let header = elf::FileHeader32::<LE>::parse(data).map_err(|err| format!("bad ELF header: {err}"))?;
        let table = header.sections(e, data).map_err(|err| format!("bad section headers: {err}"))?;
        let mut sections = Vec::new();
        for (i, sh) in table.iter().enumerate().skip(1) {
            let name = table.section_name(e, sh).map_err(|err| format!("bad section name: {err}"))?;
            let nobits = sh.sh_type(e) == elf::SHT_NOBITS;
            let contents = if nobits {
                &[][..]
            } else {
                sh.data(e, data).map_err(|err| format!("section {} is outside the file: {err}", i))?
            };
            sections.push(Section {
                index: i,
                name: String::from_utf8_lossy(name).into_owned(),
                addr: sh.sh_addr(e),
                size: sh.sh_size(e),
                code: sh.sh_flags(e) & elf::SHF_EXECINSTR != 0 && !nobits,
                data: contents.to_vec(),
            });
        }
        let symtab = table.symbols(e, data, elf::SHT_SYMTAB).map_err(|err| format!("bad symbol table: {err}"))?;
        let mut symbols = Vec::new();
        for sym in symtab.iter().skip(1) {
            let name = sym.name(e, symtab.strings()).map_err(|err| format!("bad symbol name: {err}"))?;
            let shndx = sym.st_shndx(e);
            let section = match shndx {
                elf::SHN_UNDEF | elf::SHN_COMMON => continue,
                elf::SHN_ABS => SymSection::Absolute,
                i if i >= elf::SHN_LORESERVE => continue,
                i => SymSection::Index(usize::from(i)),
            };
            let kind = match sym.st_type() {
                // objdump drops section and file symbols (BSF_SECTION_SYM, BSF_DEBUGGING).
                elf::STT_SECTION | elf::STT_FILE => continue,
                elf::STT_FUNC | elf::STT_GNU_IFUNC => SymKind::Function,
                elf::STT_OBJECT => SymKind::Object,
                _ => SymKind::Other,
            };
            let binding = match sym.st_bind() {
                elf::STB_LOCAL => Binding::Local,
                elf::STB_WEAK => Binding::Weak,
                _ => Binding::Global,
            };
            if name.is_empty() {
                continue;
            }
            symbols.push(Symbol {
                name: String::from_utf8_lossy(name).into_owned(),
                value: sym.st_value(e),
                size: sym.st_size(e),
                kind,
                binding,
                section,
            });
        }
        let mut s = Symbols { sections, symbols, by_address: Vec::new() };
        let first_code = s.sections.iter().find(|sec| sec.code).map(|sec| sec.index);
        s.by_address = s.sorted_for(first_code);
        Ok(s)
    }

    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    pub fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }

    pub fn section(&self, index: usize) -> Option<&Section> {
        self.sections.iter().find(|s| s.index == index)
    }

    /// The code section holding `addr`.
    pub fn code_section_at(&self, addr: u64) -> Option<&Section> {
        self.sections.iter().find(|s| s.code && s.contains(addr))
    }

    /// Name of the section a symbol belongs to (`*ABS*` for absolute symbols).
    pub fn section_name(&self, sym: &Symbol) -> &str {
        match sym.section {
            SymSection::Index(i) => self.section(i).map_or("", |s| s.name.as_str()),
            SymSection::Absolute => "*ABS*",
        }
    }

    /// The value of `__global_pointer$` (the last one, as objdump takes it).
    pub fn global_pointer(&self) -> Option<u32> {
        self.symbols.iter().rev().find(|s| s.name == "__global_pointer$").map(|s| s.value)
    }

    /// Indices of all symbols in objdump's order for disassembling section `current`.
    pub fn sorted_for(&self, current: Option<usize>) -> Vec<usize> {
        let current_name = current.and_then(|i| self.section(i)).map(|s| s.name.as_str());
        let mut order: Vec<usize> = (0..self.symbols.len()).collect();
        order.sort_by(|&a, &b| self.compare(a, b, current_name));
        order
    }

    /// objdump's `compare_symbols`.
    fn compare(&self, a: usize, b: usize, current: Option<&str>) -> Ordering {
        let (sa, sb) = (&self.symbols[a], &self.symbols[b]);
        let first = |x: bool, y: bool| match (x, y) {
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => Ordering::Equal,
        };
        let in_current = |s: &Symbol| current == Some(self.section_name(s));
        let compiled = |n: &str| n.contains("gnu_compiled") || n.contains("gcc2_compiled");
        let file_like = |n: &str| n.len() > 2 && (n.ends_with(".o") || n.ends_with(".a"));
        sa.value
            .cmp(&sb.value)
            .then_with(|| first(in_current(sa), in_current(sb)))
            .then_with(|| first(!compiled(&sa.name), !compiled(&sb.name)))
            .then_with(|| first(!file_like(&sa.name), !file_like(&sb.name)))
            .then_with(|| first(sa.kind == SymKind::Function, sb.kind == SymKind::Function))
            .then_with(|| first(sa.kind == SymKind::Object, sb.kind == SymKind::Object))
            .then_with(|| first(sa.binding != Binding::Local, sb.binding != Binding::Local))
            .then_with(|| first(sa.binding == Binding::Global, sb.binding == Binding::Global))
            .then_with(|| sb.size.cmp(&sa.size))
            .then_with(|| first(!sa.name.starts_with('.'), !sb.name.starts_with('.')))
            .then_with(|| sa.name.as_bytes().cmp(sb.name.as_bytes()))
    }

    /// objdump's `sym_ok`: a valid label, and in section `sec` if `want_section`.
    fn sym_ok(&self, sym: usize, want_section: bool, sec: Option<&Section>) -> bool {
        let s = &self.symbols[sym];
        if want_section {
            let Some(sec) = sec else { return false };
            if s.section != SymSection::Index(sec.index) || self.section_name(s) != sec.name {
                return false;
            }
        }
        s.is_label()
    }

    /// objdump's `find_symbol_for_address`: the position in `sorted` of the symbol that
    /// labels `vma` while disassembling section `sec`; with `require_section`, only
    /// symbols of that section qualify.
    pub fn find(&self, sorted: &[usize], vma: u64, sec: Option<&Section>, require_section: bool) -> Option<usize> {
        if sorted.is_empty() {
            return None;
        }
        let value = |pos: usize| u64::from(self.symbols[sorted[pos]].value);
        // The last symbol not above vma (the first one if all are above), then the first
        // of those with its value.
        let after = sorted.partition_point(|&i| u64::from(self.symbols[i].value) <= vma);
        let mut this = after.saturating_sub(1);
        while this > 0 && value(this - 1) == value(this) {
            this -= 1;
        }
        let mut end = this;
        while end < sorted.len() && value(end) == value(this) {
            if self.sym_ok(sorted[end], true, sec) {
                return Some(end);
            }
            end += 1;
        }
        if !self.sym_ok(sorted[this], require_section, sec) {
            let mut found: Option<usize> = None;
            for i in (0..end).rev() {
                if self.sym_ok(sorted[i], require_section, sec) {
                    match found {
                        Some(f) if value(i) != value(f) => break,
                        _ => found = Some(i),
                    }
                }
            }
            match found {
                Some(f) => this = f,
                None => {
                    if let Some(i) = (this + 1..sorted.len()).find(|&i| self.sym_ok(sorted[i], require_section, sec)) {
                        this = i;
                    }
                }
            }
            if !self.sym_ok(sorted[this], require_section, sec) {
                return None;
            }
        }
        Some(this)
    }

    /// `<name+0xoff>` for `vma` as objdump prints it after an address (`sym` from
    /// [`Symbols::find`]; without a symbol, the section name and the offset into it).
    pub fn label(&self, sym: Option<usize>, vma: u64, sec: Option<&Section>) -> String {
        let (name, base) = match sym {
            Some(i) => (self.symbols[i].name.as_str(), u64::from(self.symbols[i].value)),
            None => match sec {
                Some(s) => (s.name.as_str(), u64::from(s.addr)),
                None => return String::new(),
            },
        };
        match vma.cmp(&base) {
            Ordering::Equal => format!("<{name}>"),
            Ordering::Greater => format!("<{name}+0x{:x}>", vma.wrapping_sub(base) as u32),
            Ordering::Less => format!("<{name}-0x{:x}>", base.wrapping_sub(vma) as u32),
        }
    }

    /// A symbol to go to by name (`--func`): a function of that name first, then any
    /// other label of that name in a code section.
    pub fn by_name(&self, name: &str) -> Option<&Symbol> {
        let named = || self.symbols.iter().filter(move |s| s.name == name && s.is_label());
        named().find(|s| s.kind == SymKind::Function).or_else(|| {
            named().find(|s| matches!(s.section, SymSection::Index(i) if self.section(i).is_some_and(|sec| sec.code)))
        })
    }

    /// The function symbol (with a size) whose bytes hold `addr`.
    pub fn function_containing(&self, addr: u32) -> Option<&Symbol> {
        self.by_address.iter().map(|&i| &self.symbols[i]).rev().find(|s| {
            s.kind == SymKind::Function
                && s.is_label()
                && s.size > 0
                && addr >= s.value
                && u64::from(addr) < u64::from(s.value) + u64::from(s.size)
        })
    }

    /// Where a symbol's code ends: value + size, or else the next label in its section
    /// (or the section's end).
    pub fn extent(&self, sym: &Symbol) -> u64 {
        let start = u64::from(sym.value);
        if sym.size > 0 {
            return start + u64::from(sym.size);
        }
        let SymSection::Index(sec) = sym.section else { return start + 4 };
        let sec_end = self.section(sec).map_or(start + 4, |s| u64::from(s.addr) + u64::from(s.size));
        self.symbols
            .iter()
            .filter(|s| s.section == sym.section && s.is_label() && u64::from(s.value) > start)
            .map(|s| u64::from(s.value))
            .min()
            .unwrap_or(sec_end)
            .min(sec_end)
    }

    /// `name+0xoff` for a guest pc (for traces), or `None` when the program has no
    /// symbol at or below it.
    pub fn describe(&self, pc: u32) -> Option<String> {
        let sec = self.code_section_at(u64::from(pc));
        let pos = self.find(&self.by_address, u64::from(pc), sec, false)?;
        let sym = &self.symbols[self.by_address[pos]];
        if sym.value > pc {
            return None;
        }
        Some(match pc - sym.value {
            0 => sym.name.clone(),
            off => format!("{}+0x{off:x}", sym.name),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(name: &str, value: u32, size: u32, kind: SymKind, binding: Binding) -> Symbol {
        Symbol { name: name.into(), value, size, kind, binding, section: SymSection::Index(1) }
    }

    fn table(symbols: Vec<Symbol>) -> Symbols {
        let text = Section { index: 1, name: ".text".into(), addr: 0x1000, size: 0x100, code: true, data: vec![] };
        let mut s = Symbols { sections: vec![text], symbols, by_address: vec![] };
        s.by_address = s.sorted_for(Some(1));
        s
    }

    #[test]
    fn prefers_functions_then_globals_and_skips_mapping_symbols() {
        let s = table(vec![
            sym("$xrv32i2p1_m2p0", 0x1000, 0, SymKind::Other, Binding::Local),
            sym("local_label", 0x1000, 0, SymKind::Other, Binding::Local),
            sym("_start", 0x1000, 0, SymKind::Other, Binding::Global),
            sym("main", 0x1010, 8, SymKind::Function, Binding::Global),
            sym("alias", 0x1010, 0, SymKind::Other, Binding::Global),
        ]);
        assert_eq!(s.describe(0x1000).as_deref(), Some("_start"));
        assert_eq!(s.describe(0x100c).as_deref(), Some("_start+0xc"));
        assert_eq!(s.describe(0x1014).as_deref(), Some("main+0x4"));
        assert_eq!(s.describe(0xfff), None);
        assert_eq!(s.function_containing(0x1014).map(|f| f.name.as_str()), Some("main"));
        assert!(s.function_containing(0x1018).is_none());
        assert_eq!(s.by_name("main").map(|f| f.value), Some(0x1010));
        assert_eq!(s.extent(s.by_name("main").unwrap()), 0x1018);
        assert_eq!(s.extent(s.by_name("_start").unwrap()), 0x1010);
        assert!(s.by_name("$xrv32i2p1_m2p0").is_none());
    }

    #[test]
    fn labels_print_offsets_both_ways() {
        let s = table(vec![sym("f", 0x1010, 0, SymKind::Function, Binding::Global)]);
        let sec = s.section(1);
        let sorted = s.sorted_for(Some(1));
        // Below every symbol: objdump still names the first one, with a negative offset.
        let pos = s.find(&sorted, 0x1000, sec, false);
        assert_eq!(s.label(pos.map(|p| sorted[p]), 0x1000, sec), "<f-0x10>");
        let pos = s.find(&sorted, 0x1018, sec, false);
        assert_eq!(s.label(pos.map(|p| sorted[p]), 0x1018, sec), "<f+0x8>");
        assert_eq!(s.label(None, 0x1004, sec), "<.text+0x4>");
    }
}
