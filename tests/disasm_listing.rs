//! `rvdbt disasm` against GNU objdump: whole listings compared with committed
//! `objdump -d` output (labels, addresses, raw bytes, `<symbol>` annotations, `# address`
//! comments, `...` for zeros, `.word` for data), the `--func`/`--addr` selections, and the
//! error exits. When the cross objdump is installed, every bundled program is also
//! compared with a live run of it.

use rvdbt::listing::{disassemble_file, parse_selection, Selection};
use std::io::Write as _;
use std::path::Path;
use std::process::Command;

/// Prints on the real stderr, past the test harness's capture, so that every run shows
/// which variant ran.
fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Lists `path` (relative to the repository root, as the reference was made).
fn listing(path: &str, selection: &Selection) -> String {
    disassemble_file(path, &read(path), selection).expect("listable program")
}

/// Asserts equality line by line, naming the first difference.
#[track_caller]
fn assert_same(ours: &str, reference: &str, what: &str) {
    for (i, (a, b)) in ours.lines().zip(reference.lines()).enumerate() {
        assert_eq!(a, b, "{what}: line {} differs", i + 1);
    }
    assert_eq!(ours.lines().count(), reference.lines().count(), "{what}: line counts differ");
    assert_eq!(ours, reference, "{what}: trailing whitespace differs");
}

#[test]
fn bundled_programs_match_committed_objdump_output() {
    for (prog, reference) in [
        // A C program with the runtime: gp-relative comments, lui/auipc pairs, calls.
        ("hello", include_str!("data/disasm/hello.objdump")),
        // A second code section (.smc) ending in zeros (`...`).
        ("smc", include_str!("data/disasm/smc.objdump")),
        // Data inside .text marked by a `$d` mapping symbol (`.word`).
        ("bad-illegal", include_str!("data/disasm/bad-illegal.objdump")),
    ] {
        let path = format!("guest-programs/bin/{prog}.elf");
        assert_same(&listing(&path, &Selection::All), reference, &path);
    }
}

#[test]
fn every_instruction_form_matches_objdump_with_annotations() {
    // all.S: every RV32IM/Zicsr/Zifencei form, code at 0, 0x10000 and 0xfffff000,
    // targets wrapping below zero and past 4 GiB.
    let elf = read("tests/data/disasm/all.elf");
    let ours = disassemble_file("all.elf", &elf, &Selection::All).expect("listable");
    assert_same(&ours, include_str!("data/disasm/all.objdump"), "all.elf");
}

/// The lines of `reference` from the label of `name` to the next blank line.
fn function_from(reference: &str, name: &str) -> String {
    let label = format!(" <{name}>:");
    let start = reference.lines().position(|l| l.ends_with(&label)).expect("function in reference");
    let lines: Vec<&str> = reference.lines().skip(start).take_while(|l| !l.is_empty()).collect();
    lines.join("\n") + "\n"
}

const HEADER: &str =
    "\nguest-programs/bin/hello.elf:     file format elf32-littleriscv\n\n\nDisassembly of section .text:\n\n";

#[test]
fn func_lists_one_function() {
    let reference = include_str!("data/disasm/hello.objdump");
    for name in ["main", "printf", "_start", "format.constprop.0"] {
        let ours = listing("guest-programs/bin/hello.elf", &Selection::Function(name.into()));
        assert_eq!(ours, format!("{HEADER}{}", function_from(reference, name)), "--func {name}");
    }
}

#[test]
fn addr_lists_a_range_or_the_function_at_an_address() {
    let path = "guest-programs/bin/hello.elf";
    let reference = include_str!("data/disasm/hello.objdump");
    // An address inside main: all of main.
    let at = parse_selection("0x80000034").unwrap();
    assert_eq!(at, Selection::At(0x8000_0034));
    assert_eq!(listing(path, &at), format!("{HEADER}{}", function_from(reference, "main")));
    // A range across a function boundary, starting mid-function (objdump's
    // --start-address/--stop-address: the end is exclusive).
    let range = parse_selection("0x80000044,0x8000005c").unwrap();
    assert_eq!(range, Selection::Range(0x8000_0044, 0x8000_005c));
    let expected = "\n80000044 <main+0x18>:\n\
        80000044:\t00000513          \tli\ta0,0\n\
        80000048:\t01010113          \tadd\tsp,sp,16\n\
        8000004c:\t00008067          \tret\n\
        \n80000050 <sys_write>:\n\
        80000050:\t04000893          \tli\ta7,64\n\
        80000054:\t00000073          \tecall\n\
        80000058:\t00008067          \tret\n";
    assert_eq!(listing(path, &range), format!("{}{expected}", &HEADER[..HEADER.len() - 1]));
    // Decimal works too.
    assert_eq!(parse_selection("2147483648,2147483652").unwrap(), Selection::Range(0x8000_0000, 0x8000_0004));
    assert!(parse_selection("main").is_err());
    assert!(parse_selection("0x1,zz").is_err());
}

fn rvdbt(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rvdbt")).args(args).output().expect("run rvdbt")
}

#[test]
fn cli_prints_the_listing_and_refuses_bad_requests() {
    let ok = rvdbt(&["disasm", "guest-programs/bin/hello.elf", "--func", "main"]);
    assert_eq!(ok.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("8000004c:\t00008067          \tret\n"));

    let unknown = rvdbt(&["disasm", "guest-programs/bin/hello.elf", "--func", "no_such_function"]);
    assert_eq!(unknown.status.code(), Some(2));
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(err, "rvdbt: no function named 'no_such_function' in guest-programs/bin/hello.elf\n");

    let nowhere = rvdbt(&["disasm", "guest-programs/bin/hello.elf", "--addr", "0x100,0x200"]);
    assert_eq!(nowhere.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&nowhere.stderr),
        "rvdbt: no code at 0x100..0x200 in guest-programs/bin/hello.elf\n"
    );

    // Not an ELF: the loader's one-line reason.
    let bad = rvdbt(&["disasm", "Cargo.toml"]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&bad.stderr), "rvdbt: cannot load Cargo.toml: not an ELF file\n");
    assert!(bad.stdout.is_empty());

    let missing = rvdbt(&["disasm", "no/such/file.elf"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).starts_with("rvdbt: cannot read no/such/file.elf: "));
}

#[test]
fn every_bundled_program_matches_live_objdump_when_installed() {
    let objdump = "riscv64-unknown-elf-objdump";
    if Command::new(objdump).arg("--version").output().is_err() {
        say(&format!("skipped: {objdump} is not installed (the committed references were compared)"));
        return;
    }
    let mut count = 0;
    for entry in std::fs::read_dir("guest-programs/bin").expect("bundled programs") {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("elf") {
            continue;
        }
        let path = path.to_str().expect("utf-8 path").to_string();
        let reference = Command::new(objdump).args(["-d", &path]).output().expect("run objdump");
        assert!(reference.status.success());
        assert_same(&listing(&path, &Selection::All), &String::from_utf8_lossy(&reference.stdout), &path);
        count += 1;
    }
    assert!(count > 20, "bundled programs found: {count}");
    assert!(Path::new("guest-programs/bin/hello.elf").exists());
    say(&format!("compared {count} programs with {objdump}"));
}
