//! Compares the disassembler with GNU objdump, line by line.
//!
//! `tests/data/disasm/all.S` covers every RV32IM/Zicsr/Zifencei form and
//! `compressed.S` the C and A extensions (every compressed and atomic form, and a
//! sample of all 16-bit parcels); `regen.sh` assembles and links them and commits
//! `objdump -d` of the results as `all.objdump` and `compressed.objdump`.
//! This test needs no toolchain: it parses that dump, decodes every instruction word,
//! disassembles it at its address and requires the exact objdump text, after removing
//! the two context-dependent annotations objdump appends (` <symbol+0x..>` after an
//! address and a ` # <address>` comment), which the disassembler does not produce.

use rvdbt::guest::decode::{decode, Inst};
use rvdbt::guest::disasm::{disassemble, disassemble_word};

const DUMP: &str = include_str!("data/disasm/all.objdump");
const SOURCE: &str = include_str!("data/disasm/all.S");
const C_DUMP: &str = include_str!("data/disasm/compressed.objdump");
const C_SOURCE: &str = include_str!("data/disasm/compressed.S");

/// One disassembled instruction of the dump.
struct DumpLine {
    line_no: usize,
    addr: u32,
    /// The instruction's bits (16 for a compressed one).
    word: u32,
    /// 2 or 4 bytes.
    len: u32,
    /// objdump's text without its annotations.
    text: String,
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Removes objdump's ` # <address>[ <symbol>]` comment and ` <symbol>` annotation.
fn strip_annotations(text: &str, line_no: usize) -> String {
    let mut text = text;
    if let Some(pos) = text.find(" # ") {
        let comment = &text[pos + 3..];
        let addr = comment.split(' ').next().unwrap_or("");
        assert!(is_hex(addr), "line {line_no}: unexpected comment {comment:?}");
        text = &text[..pos];
    }
    if text.ends_with('>') {
        let pos = text.rfind(" <").unwrap_or_else(|| panic!("line {line_no}: bad symbol in {text:?}"));
        text = &text[..pos];
    }
    assert!(!text.contains(['<', '>', '#']), "line {line_no}: unparsed annotation in {text:?}");
    text.to_string()
}

/// Parses the dump; panics on any line it does not understand, so that a format change
/// (or objdump splitting a word into 16-bit parcels, or eliding zeros as `...`) cannot
/// make lines silently disappear from the comparison.
fn parse_dump(dump: &str) -> Vec<DumpLine> {
    let mut lines = Vec::new();
    for (i, line) in dump.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty()
            || trimmed.contains(":     file format ")
            || trimmed.starts_with("Disassembly of section ")
        {
            continue;
        }
        // Symbol label: "00010000 <_start>:".
        if let Some((addr, rest)) = trimmed.split_once(' ') {
            if is_hex(addr) && rest.starts_with('<') && rest.ends_with(">:") {
                continue;
            }
        }
        // Instruction: "   10074:\t00a50533          \tadd\ta0,a0,a0".
        let mut fields = line.splitn(3, '\t');
        let (addr, word, text) = match (fields.next(), fields.next(), fields.next()) {
            (Some(a), Some(w), Some(t)) => (a.trim(), w.trim(), t),
            _ => panic!("line {line_no}: unrecognised line {line:?}"),
        };
        let addr = addr.strip_suffix(':').filter(|a| is_hex(a));
        let addr = addr.unwrap_or_else(|| panic!("line {line_no}: bad address in {line:?}"));
        assert!(
            (word.len() == 8 || word.len() == 4) && is_hex(word),
            "line {line_no}: not one 16- or 32-bit instruction: {line:?}"
        );
        lines.push(DumpLine {
            line_no,
            addr: u32::from_str_radix(addr, 16).expect("address fits in 32 bits"),
            word: u32::from_str_radix(word, 16).expect("4 or 8 hex digits"),
            len: word.len() as u32 / 2,
            text: strip_annotations(text, line_no),
        });
    }
    lines
}

/// Number of instruction lines in the assembly source (each `.rept`/`.irp` body once,
/// so the real number of instructions is larger).
fn source_instruction_count(source: &str) -> usize {
    source
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .map(|line| match line.split_once(':') {
            Some((label, rest)) if !label.contains(char::is_whitespace) => rest,
            _ => line,
        })
        .filter_map(|line| line.split_whitespace().next())
        .filter(|first| !first.starts_with('.') || *first == ".insn")
        .count()
}

/// Does the decoder ignore fields of this word that objdump requires to be zero?
fn has_reserved_fence_fields(word: u32) -> bool {
    match decode(word) {
        Inst::Fence { .. } => word & 0x000f_8f80 != 0,
        Inst::FenceI => word != 0x0000_100f,
        _ => false,
    }
}

/// Every line of `dump` disassembles to objdump's text; returns the lines checked.
fn check_dump(dump: &str) -> Vec<DumpLine> {
    let lines = parse_dump(dump);
    let mut failures = Vec::new();
    for l in &lines {
        assert_eq!(l.len, if l.word & 3 == 3 { 4 } else { 2 }, "line {}: length of {:x}", l.line_no, l.word);
        let got = disassemble_word(l.word, l.addr);
        if got != l.text {
            failures.push(format!(
                "line {}: {:08x} at {:x}: objdump {:?}, disassemble_word {:?}",
                l.line_no, l.word, l.addr, l.text, got
            ));
        }
        // Through the Inst alone the text is the same, except for the reserved fence
        // fields the Inst does not carry, and for compressed instructions, whose
        // objdump text depends on the compressed form (HINTs, `c.mv`, ...).
        if l.len == 4 && !has_reserved_fence_fields(l.word) {
            let via_inst = disassemble(&decode(l.word), l.addr);
            if via_inst != l.text {
                failures.push(format!(
                    "line {}: {:08x} at {:x}: objdump {:?}, disassemble {:?}",
                    l.line_no, l.word, l.addr, l.text, via_inst
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} lines differ:\n{}",
        failures.len(),
        lines.len(),
        failures.iter().take(50).cloned().collect::<Vec<_>>().join("\n")
    );
    lines
}

#[test]
fn matches_objdump_for_every_line() {
    let lines = check_dump(DUMP);
    let in_source = source_instruction_count(SOURCE);
    assert!(in_source > 300, "all.S parsed as only {in_source} instructions");
    assert!(lines.len() >= in_source, "checked {} lines but all.S has {in_source} instruction lines", lines.len());
    // The 4096-CSR sweep alone is 4096 lines.
    assert!(lines.len() > 4096 + in_source / 2, "checked only {} lines", lines.len());
}

#[test]
fn matches_objdump_for_every_compressed_and_atomic_line() {
    let lines = check_dump(C_DUMP);
    let in_source = source_instruction_count(C_SOURCE);
    assert!(in_source > 4000, "compressed.S parsed as only {in_source} instructions");
    assert_eq!(lines.len(), in_source, "compressed.objdump and compressed.S disagree on the instruction count");
    let compressed = lines.iter().filter(|l| l.len == 2).count();
    assert!(compressed > 4000, "only {compressed} compressed lines");
    let seen: std::collections::HashSet<&str> = lines.iter().map(|l| l.text.split('\t').next().unwrap_or("")).collect();
    let expected = [
        "unimp",
        "nop",
        "add",
        "lw",
        "sw",
        "c.nop",
        "jal",
        "li",
        "c.li",
        "lui",
        "c.lui",
        "srl",
        "sra",
        "c.srli64",
        "c.srai64",
        "and",
        "sub",
        "xor",
        "or",
        "j",
        "beqz",
        "bnez",
        "sll",
        "c.slli",
        "c.slli64",
        "ret",
        "jr",
        "mv",
        "c.mv",
        "ebreak",
        "jalr",
        "c.add",
        ".2byte",
        "lr.w",
        "lr.w.aq",
        "lr.w.rl",
        "lr.w.aqrl",
        "sc.w",
        "sc.w.aqrl",
        "amoswap.w",
        "amoadd.w",
        "amoxor.w",
        "amoand.w",
        "amoor.w",
        "amomin.w",
        "amomax.w",
        "amominu.w",
        "amomaxu.w",
        "amoadd.w.aq",
        "amoadd.w.rl",
        "amoadd.w.aqrl",
        ".4byte",
    ];
    let missing: Vec<_> = expected.iter().filter(|m| !seen.contains(*m)).collect();
    assert!(missing.is_empty(), "compressed.objdump lacks {missing:?}");
}

#[test]
fn dump_covers_every_mnemonic() {
    let lines = parse_dump(DUMP);
    let seen: std::collections::HashSet<&str> = lines.iter().map(|l| l.text.split('\t').next().unwrap_or("")).collect();
    let expected = [
        "lui",
        "auipc",
        "j",
        "jal",
        "jr",
        "jalr",
        "ret",
        "beq",
        "bne",
        "blt",
        "bge",
        "bltu",
        "bgeu",
        "beqz",
        "bnez",
        "blez",
        "bgez",
        "bltz",
        "bgtz",
        "lb",
        "lh",
        "lw",
        "lbu",
        "lhu",
        "sb",
        "sh",
        "sw",
        "add",
        "nop",
        "li",
        "mv",
        "slti",
        "sltiu",
        "seqz",
        "xor",
        "not",
        "or",
        "and",
        "zext.b",
        "sll",
        "srl",
        "sra",
        "sub",
        "neg",
        "slt",
        "sltz",
        "sgtz",
        "sltu",
        "snez",
        "mul",
        "mulh",
        "mulhsu",
        "mulhu",
        "div",
        "divu",
        "rem",
        "remu",
        "fence",
        "fence.tso",
        "fence.i",
        "ecall",
        "ebreak",
        "mret",
        "wfi",
        "csrrw",
        "csrrs",
        "csrrc",
        "csrr",
        "csrw",
        "csrs",
        "csrc",
        "unimp",
        "rdcycle",
        "rdtime",
        "rdinstret",
        "rdcycleh",
        "rdtimeh",
        "rdinstreth",
        ".4byte",
    ];
    let missing: Vec<_> = expected.iter().filter(|m| !seen.contains(*m)).collect();
    assert!(missing.is_empty(), "all.objdump lacks {missing:?}");
}
