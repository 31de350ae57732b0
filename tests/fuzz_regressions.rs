//! Replays saved fuzz inputs through the checks the fuzz targets in `fuzz/` use
//! (`tests/common/fuzz_checks.rs`), so `cargo test` checks them without cargo-fuzz:
//! the inputs that once crashed a target (`tests/data/fuzz/<target>/`, one file each,
//! named after what they found) and the seed corpora the targets start from
//! (`fuzz/seeds/<target>/`). cargo-fuzz builds the targets with debug assertions;
//! `cargo test --release` has no overflow checks, so an input that found an arithmetic
//! overflow (`elf_loader/listing-symbol-below-its-section`) fails here only in a
//! debug `cargo test`.

mod common;
#[path = "common/diff.rs"]
mod diff;
#[path = "common/fuzz_checks.rs"]
mod fuzz_checks;
#[path = "common/gen.rs"]
mod gen;

use std::path::{Path, PathBuf};

/// The files of `dir` (relative to the crate root), sorted; none if it does not exist.
fn inputs(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.expect("directory entry").path()).collect();
    files.sort();
    files
}

/// Runs `check` on every saved input of `target` and returns how many there were.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let mut files = inputs(&format!("tests/data/fuzz/{target}"));
    files.extend(inputs(&format!("fuzz/seeds/{target}")));
    for file in &files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        eprintln!("{target}: {}", file.display());
        check(&data);
    }
    files.len()
}

#[test]
fn elf_loader_inputs() {
    assert!(replay("elf_loader", fuzz_checks::elf_loader) > 0);
}

#[test]
fn decoder_inputs() {
    assert!(replay("decoder", fuzz_checks::decoder) > 0);
}

#[test]
fn whole_run_inputs() {
    assert!(replay("whole_run", fuzz_checks::whole_run) > 0);
}
