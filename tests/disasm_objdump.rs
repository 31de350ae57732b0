//! Compares the disassembler with GNU objdump, line by line.
//!
//! `tests/data/disasm/all.S` covers every RV32IM/Zicsr/Zifencei form; `regen.sh`
//! assembles and links it and commits `objdump -d` of the result as `all.objdump`.
//! This test needs no toolchain: it parses that dump, decodes every instruction word,
//! disassembles it at its address and requires the exact objdump text, after removing
//! the two context-dependent annotations objdump appends (` <symbol+0x..>` after an
//! address and a ` # <address>` comment), which the disassembler does not produce.

use rvdbt::guest::decode::{decode, Inst};
use rvdbt::guest::disasm::{disassemble, disassemble_word};

const DUMP: &str = include_str!("data/disasm/all.objdump");
const SOURCE: &str = include_str!("data/disasm/all.S");

/// One disassembled instruction of the dump.
struct DumpLine {
    line_no: usize,
    addr: u32,
    word: u32,
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
        assert!(word.len() == 8 && is_hex(word), "line {line_no}: not one 32-bit instruction word: {line:?}");
        lines.push(DumpLine {
            line_no,
            addr: u32::from_str_radix(addr, 16).expect("address fits in 32 bits"),
            word: u32::from_str_radix(word, 16).expect("8 hex digits"),
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

#[test]
fn matches_objdump_for_every_line() {
    let lines = parse_dump(DUMP);
    let mut failures = Vec::new();
    for l in &lines {
        let got = disassemble_word(l.word, l.addr);
        if got != l.text {
            failures.push(format!(
                "line {}: {:08x} at {:x}: objdump {:?}, disassemble_word {:?}",
                l.line_no, l.word, l.addr, l.text, got
            ));
        }
        // Through the Inst alone the text is the same, except for the reserved fence
        // fields the Inst does not carry.
        if !has_reserved_fence_fields(l.word) {
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

    let in_source = source_instruction_count(SOURCE);
    assert!(in_source > 300, "all.S parsed as only {in_source} instructions");
    assert!(lines.len() >= in_source, "checked {} lines but all.S has {in_source} instruction lines", lines.len());
    // The 4096-CSR sweep alone is 4096 lines.
    assert!(lines.len() > 4096 + in_source / 2, "checked only {} lines", lines.len());
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
