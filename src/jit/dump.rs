//! `--dump WHAT[,WHAT...]` and `--dump-file FILE`: what the translator did, as text.
//!
//! This module owns the dump's format and its writer ([`Dump`]). The translation cache
//! calls it when it links a translation and when it drops or recompiles translations:
//!
//! * `guest`, `clif`, `host`: for each compiled block or region, a header line
//!   (`=== block PC (N guest instructions) BACKEND at host ADDR (SIZE bytes)`), then the
//!   sections asked for: `--- guest` (the guest instructions of each block), `--- clif`
//!   (the Cranelift IR; code of the direct backend has none), and `--- host` (the host
//!   code, disassembled with iced-x86; inline guest accesses, which the fault path knows
//!   by address, and calls of helpers are annotated).
//! * `events`: one line per event that changes translations, with its reason, each
//!   starting with `event`: an access changed state (which access, from what to what, who
//!   saw it, which blocks are recompiled), an inline access faulted (host and guest
//!   address, the state change), a flush (`fence.i`, a syscall that changed code, the
//!   cache budget, a device unmapped, near code memory exhausted), a tier-up request
//!   and its result.
//!
//! `--print-code` is `--dump guest,clif,host`. Output is buffered and flushed on drop.

use crate::guest::disasm::disassemble;
use crate::jit::abi::Helper;
use crate::jit::access::{AccessState, RegionClass};
use crate::jit::codegen::Translation;
use crate::jit::helpers;
use crate::jit::region::Region;
use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter, SymbolResolver, SymbolResult};
use std::fmt::{self, Write as _};
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// What a dump shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DumpSet {
    pub guest: bool,
    pub clif: bool,
    pub host: bool,
    pub events: bool,
}

impl DumpSet {
    /// `--print-code`: the code of every translation.
    pub const CODE: DumpSet = DumpSet { guest: true, clif: true, host: true, events: false };

    /// Parses `guest,clif,host,events` (any subset, in any order; `all` for every one).
    pub fn parse(list: &str) -> Result<DumpSet, String> {
        let mut set = DumpSet::default();
        for item in list.split(',') {
            match item.trim() {
                "guest" => set.guest = true,
                "clif" => set.clif = true,
                "host" => set.host = true,
                "events" => set.events = true,
                "all" => set = DumpSet { events: true, ..DumpSet::CODE },
                other => return Err(format!("unknown dump '{other}' (guest, clif, host, events or all)")),
            }
        }
        Ok(set)
    }

    /// Is anything dumped?
    pub fn any(self) -> bool {
        self.guest || self.clif || self.host || self.events
    }

    /// Is the code of translations dumped?
    pub fn code(self) -> bool {
        self.guest || self.clif || self.host
    }

    /// The union of two sets.
    pub fn with(self, other: DumpSet) -> DumpSet {
        DumpSet {
            guest: self.guest || other.guest,
            clif: self.clif || other.clif,
            host: self.host || other.host,
            events: self.events || other.events,
        }
    }
}

/// Writes a dump.
pub struct Dump {
    what: DumpSet,
    out: BufWriter<Box<dyn Write + Send>>,
    /// The first write error; writing stops there.
    error: Option<io::Error>,
}

/// rvdbt's own stderr (see [`crate::host::eprint`]) as a `Write`.
struct Diagnostics;

impl Write for Diagnostics {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        crate::host::eprint(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Dump {
    /// A dump of `what` written to `out` through a buffer of `buffer` bytes.
    pub fn new(what: DumpSet, out: Box<dyn Write + Send>, buffer: usize) -> Dump {
        Dump { what, out: BufWriter::with_capacity(buffer, out), error: None }
    }

    /// A dump of `what` written to a new file at `path`, or to rvdbt's stderr (then
    /// unbuffered, so that it interleaves with the guest's output).
    pub fn create(what: DumpSet, path: Option<&Path>) -> io::Result<Dump> {
        Ok(match path {
            Some(p) => Dump::new(what, Box::new(std::fs::File::create(p)?), 1 << 16),
            None => Dump::new(what, Box::new(Diagnostics), 0),
        })
    }

    pub fn what(&self) -> DumpSet {
        self.what
    }

    fn write(&mut self, text: &str) {
        if self.error.is_none() {
            if let Err(e) = self.out.write_all(text.as_bytes()) {
                self.error = Some(e);
            }
        }
    }

    /// One event line (when events are dumped).
    pub fn event(&mut self, text: fmt::Arguments<'_>) {
        if self.what.events {
            self.write(&format!("event  {text}\n"));
        }
    }

    /// A compiled block or region: `t` was linked as the code of `region`'s head by
    /// `backend`. Its code must still be in code memory (the cache calls this when it
    /// links the code, before anything can flush it).
    pub fn translation(&mut self, region: &Region, backend: &str, t: &Translation) {
        if !self.what.code() {
            return;
        }
        let head = region.head();
        let mut out = match region.blocks.len() {
            1 => format!("=== block {:#010x} ({} guest instructions)", head.pc, head.len()),
            n => format!("=== region {:#010x} ({n} blocks, {} guest instructions)", head.pc, region.insns()),
        };
        let _ = writeln!(out, " {backend} at host {:#x} ({} bytes)", t.code, t.size);
        if self.what.guest {
            out += "--- guest\n";
            for block in &region.blocks {
                if region.blocks.len() > 1 {
                    let _ = writeln!(out, " block {:#010x}:", block.pc);
                }
                for (i, inst) in block.insts.iter().enumerate() {
                    let pc = block.pc_of(i);
                    let _ = writeln!(out, "  {pc:08x}  {}", disassemble(inst, pc).replace('\t', " "));
                }
            }
        }
        if self.what.clif {
            if let Some(ir) = &t.ir {
                out += "--- clif\n";
                out += ir;
                if !ir.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
        if self.what.host {
            out += "--- host\n";
            // SAFETY: the cache calls this right after linking `t`, whose code stays
            // mapped until the next flush, which cannot happen during this call.
            let bytes = unsafe { std::slice::from_raw_parts(t.code as *const u8, t.size as usize) };
            let accesses: Vec<(u64, u32)> = t.inline_accesses.iter().map(|a| (a.host, a.pc)).collect();
            out += &host_listing(bytes, t.code, &accesses);
        }
        out.push('\n');
        self.write(&out);
    }

    /// Flushes what is buffered; returns the first write error of the dump.
    pub fn flush(&mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()
    }
}

impl Drop for Dump {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

/// Names helper addresses in disassembled host code.
struct HelperNames(Vec<(u64, String)>);

impl HelperNames {
    fn new() -> HelperNames {
        HelperNames(Helper::ALL.iter().map(|&h| (helpers::address(h) as u64, format!("helper {h:?}"))).collect())
    }
}

impl SymbolResolver for HelperNames {
    fn symbol(
        &mut self,
        _instruction: &Instruction,
        _operand: u32,
        _instruction_operand: Option<u32>,
        address: u64,
        _address_size: u32,
    ) -> Option<SymbolResult<'_>> {
        let (_, name) = self.0.iter().find(|(a, _)| *a == address)?;
        Some(SymbolResult::with_str(address, name.as_str()))
    }
}

/// Host code at `ip`, one instruction a line (`ADDRESS  BYTES  INSTRUCTION`), with the
/// guest pc of each inline access in `accesses` (host address, guest pc).
pub fn host_listing(bytes: &[u8], ip: u64, accesses: &[(u64, u32)]) -> String {
    let mut formatter = IntelFormatter::with_options(Some(Box::new(HelperNames::new())), None);
    let options = formatter.options_mut();
    options.set_first_operand_char_index(8);
    options.set_uppercase_hex(false);
    options.set_hex_prefix("0x");
    options.set_hex_suffix("");
    let mut decoder = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
    let mut out = String::new();
    let mut text = String::new();
    let mut inst = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut inst);
        text.clear();
        formatter.format(&inst, &mut text);
        let start = (inst.ip() - ip) as usize;
        let hex: String = bytes[start..start + inst.len()].iter().map(|b| format!("{b:02x}")).collect();
        let _ = write!(out, "  {:x}  {hex:<22}  {text}", inst.ip());
        if let Some((_, pc)) = accesses.iter().find(|(host, _)| *host == inst.ip()) {
            let _ = write!(out, "    ; inline guest access at {pc:#010x}");
        }
        out.push('\n');
    }
    out
}

/// An access state as the dump writes it: `NAIVE`, `COMMITTED(ram)`,
/// `COMMITTED(uart)`, `VARIABLE`.
pub fn state_name(state: AccessState) -> String {
    match state {
        AccessState::Naive { .. } => "NAIVE".into(),
        AccessState::Committed(RegionClass::Ram) => "COMMITTED(ram)".into(),
        AccessState::Committed(RegionClass::Device(d)) => format!("COMMITTED({})", d.name()),
        AccessState::Variable => "VARIABLE".into(),
    }
}

/// A list of guest pcs, for event lines.
pub fn pcs(list: &[u32]) -> String {
    if list.is_empty() {
        return "none".into();
    }
    list.iter().map(|pc| format!("{pc:#010x}")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists() {
        assert_eq!(DumpSet::parse("guest,host").unwrap(), DumpSet { guest: true, host: true, ..DumpSet::default() });
        assert_eq!(DumpSet::parse("all").unwrap(), DumpSet { events: true, ..DumpSet::CODE });
        assert_eq!(DumpSet::parse("events").unwrap(), DumpSet { events: true, ..DumpSet::default() });
        assert_eq!(DumpSet::parse("guest,asm").unwrap_err(), "unknown dump 'asm' (guest, clif, host, events or all)");
    }

    #[test]
    fn lists_host_code_with_accesses_and_helpers() {
        // mov eax, [rdi+8]; call rel32 (a helper); ret. The listing's addresses are
        // chosen near the helper, so that the call reaches it.
        let helper = helpers::address(Helper::Load(2)) as u64;
        let ip = (helper & !0xfff) - 0x10000;
        let rel = helper.wrapping_sub(ip + 3 + 5) as i32;
        let mut bytes = vec![0x8b, 0x47, 0x08, 0xe8];
        bytes.extend_from_slice(&rel.to_le_bytes());
        bytes.push(0xc3);
        let text = host_listing(&bytes, ip, &[(ip, 0x100b4)]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with(&format!("  {ip:x}  8b4708 ")), "{text}");
        assert!(lines[0].contains("mov     eax,[rdi+8]"), "{text}");
        assert!(lines[0].ends_with("; inline guest access at 0x000100b4"), "{text}");
        assert!(lines[1].ends_with("call    helper Load(2)"), "{text}");
        assert!(lines[2].ends_with("ret"), "{text}");
        assert_eq!(lines.len(), 3, "{text}");
    }
}
