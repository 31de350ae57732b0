//! The properties the fuzz targets in `fuzz/` check, one function per target, each
//! taking the raw fuzz input. A violated property panics (libFuzzer reports the panic
//! as a crash). `tests/fuzz_regressions.rs` replays the saved inputs through the same
//! functions, so the normal test suite checks them without cargo-fuzz.
#![allow(dead_code)]

use crate::diff::{self, Variant};
use crate::gen::{self, Rng};
use rvdbt::guest::decode::{decode, decode_compressed, decode_insn, insn_len, Inst, Isa};
use rvdbt::guest::disasm::{disassemble, disassemble_compressed, disassemble_word};
use rvdbt::jit::access::MemMode;
use rvdbt::jit::JitConfig;
use rvdbt::listing::{self, Selection};
use rvdbt::machine::{Machine, MachineConfig};
use rvdbt::runner::{self, Backend, RunOptions};
use rvdbt::symbols::Symbols;
use rvdbt::syscall::Io;

/// Instructions a loaded ELF runs on the interpreter in [`elf_loader`].
const LOADED_RUN_INSNS: u64 = 1000;

/// `elf_loader`: the input as an ELF file. Building a machine from it (the default
/// configuration, as `rvdbt run`) either fails with a load error that has a message or
/// gives a machine that then runs up to [`LOADED_RUN_INSNS`] instructions on the
/// interpreter without a translator error; reading its symbols and listing its code
/// (as `rvdbt disasm`) fail cleanly or succeed. Nothing panics or crashes.
pub fn elf_loader(data: &[u8]) {
    let config = MachineConfig { huge_pages: false, ..MachineConfig::default() };
    match Machine::from_elf(data, &["prog".to_string()], &[], config, Io::buffered(Vec::new())) {
        Ok(mut m) => {
            let opts =
                RunOptions { backend: Backend::Interp, max_insns: Some(LOADED_RUN_INSNS), ..RunOptions::default() };
            runner::run(&mut m, &opts).unwrap_or_else(|e| panic!("interpreter error: {e}"));
            assert!(m.cpu.retired <= LOADED_RUN_INSNS, "ran {} instructions", m.cpu.retired);
        }
        Err(e) => assert!(!e.to_string().is_empty(), "a load error without a message: {e:?}"),
    }
    if let Err(e) = Symbols::from_elf(data) {
        assert!(!e.to_string().is_empty(), "a symbol error without a message: {e:?}");
    }
    if let Err(e) = listing::disassemble_file("fuzz.elf", data, &Selection::All) {
        assert!(!e.to_string().is_empty(), "a listing error without a message: {e:?}");
    }
}

/// The ISAs `--isa` offers.
const ISAS: [Isa; 4] = [Isa::RV32IM, Isa { a: true, c: false }, Isa { a: false, c: true }, Isa::RV32IMAC];

/// `decoder`: the input as little-endian 32-bit words (the last one zero-padded), each
/// decoded under every ISA and disassembled. The length is 2 exactly for a compressed
/// encoding under C (and agrees with `insn_len`), a compressed instruction decodes as
/// `decode_compressed` of its low half, a 32-bit one as `decode`, except that without
/// A the atomics are illegal; illegal instructions keep their bits; a destination
/// register is a real one; every disassembly is non-empty text on one line.
pub fn decoder(data: &[u8]) {
    for (i, chunk) in data.chunks(4).enumerate() {
        let mut bytes = [0u8; 4];
        bytes[..chunk.len()].copy_from_slice(chunk);
        let word = u32::from_le_bytes(bytes);
        let pc = 0x1_0000u32.wrapping_add(4 * i as u32);
        let compressed = word & 3 != 3;
        for isa in ISAS {
            let (inst, len) = decode_insn(isa, word);
            let want = if compressed && isa.c { 2 } else { 4 };
            assert_eq!(len, want, "{word:#010x} under {}", isa.name());
            if isa.c {
                assert_eq!(len, insn_len(word as u16), "{word:#010x}: insn_len");
            }
            let expected = match (compressed, isa.c) {
                (true, true) => decode_compressed(word as u16),
                (true, false) => Inst::Illegal(word),
                (false, _) => match decode(word) {
                    atomic if atomic.is_atomic() && !isa.a => Inst::Illegal(word),
                    other => other,
                },
            };
            assert_eq!(inst, expected, "{word:#010x} under {}", isa.name());
            if let Some(rd) = inst.dest() {
                assert!(rd < 32, "{word:#010x}: destination x{rd}");
            }
            one_line(&disassemble(&inst, pc), word);
        }
        if let Inst::Illegal(bits) = decode(word) {
            assert_eq!(bits, word, "an illegal instruction keeps its bits");
        }
        one_line(&disassemble_word(word, pc), word);
        one_line(&disassemble_compressed(word as u16, pc), word);
    }
}

fn one_line(text: &str, word: u32) {
    assert!(!text.trim().is_empty() && !text.contains('\n'), "{word:#010x} disassembles as {text:?}");
}

/// The translating backends [`whole_run`] picks from.
const TRANSLATING: [Backend; 3] = [Backend::Direct, Backend::Cranelift, Backend::Tiered];
const MODES: [MemMode; 3] = [MemMode::Calls, MemMode::Adaptive, MemMode::Fastmem];
const BLOCK_CAPS: [usize; 8] = [1, 2, 3, 4, 7, 16, 64, 4096];

/// A translating backend and JIT configuration drawn from `r`: backend, memory mode,
/// block cap, warm-up and tier-up counts, commit threshold, regions, optimisation, the
/// compile thread, and a code cache either the default or tiny (flushing all the time),
/// with or without near code.
pub fn fuzz_variant(r: &mut Rng) -> Variant {
    let backend = TRANSLATING[r.below(3) as usize];
    let small_cache = r.below(4) == 0;
    let jit = JitConfig {
        mem: MODES[r.below(3) as usize],
        max_block_insns: BLOCK_CAPS[r.below(8) as usize],
        compile_after: r.below(4),
        tier_up: 1 + r.below(4),
        commit_after: 1 + r.below(3),
        regions: r.below(2) == 0,
        optimize: r.below(4) != 0,
        compile_thread: r.below(4) == 0,
        near_code: r.below(2) == 0,
        code_cache_bytes: if small_cache { 4096 << r.below(4) } else { JitConfig::default().code_cache_bytes },
        ..JitConfig::default()
    };
    let name = format!("{}[{jit:?}]", backend.name());
    Variant { name, backend, jit }
}

/// `whole_run`: the input read as the generator's choices (`Rng::from_bytes`): a
/// translating configuration ([`fuzz_variant`]), a midway instruction budget, then a
/// random RV32IMAC program (`gen::gen_program_from`). The program runs on the
/// interpreter and on that configuration, with the full budget and with the midway
/// one; the end states must agree exactly (`diff::check_program`).
pub fn whole_run(data: &[u8]) {
    let mut r = Rng::from_bytes(data);
    let variant = fuzz_variant(&mut r);
    let cut = u64::from(r.u32());
    let program = gen::gen_program_from(&mut r);
    if let Err(report) = diff::check_program(&program, &[variant], Some(cut)) {
        panic!("{report}");
    }
}
