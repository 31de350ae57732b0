//! Where translated code lands and how it calls the Rust helpers: near the executable
//! with rel32 calls, or (fallback) anywhere with absolute calls — and both run right.

mod common;
use common::*;
use rvdbt::jit::abi::Helper;
use rvdbt::jit::access::MemMode;
use rvdbt::jit::JitConfig;
use rvdbt::machine::Exit;
use rvdbt::runner::new_cache;
use rvdbt::runner::Backend;

/// A block that loads through the helper: li a0, DATA_BASE; lw a1, 0(a0); exit(a1).
fn load_program() -> Vec<u8> {
    let mut text = li(A0, DATA_BASE).to_vec();
    text.push(i_type(0x03, 2, A1, A0, 0));
    text.push(addi(A0, A1, 0));
    text.extend(exit_seq());
    elf_image(&text, &42u32.to_le_bytes(), 0)
}

/// Targets of `call rel32` (E8) instructions in `code` at host address `base`.
fn rel32_call_targets(code: &[u8], base: usize) -> Vec<usize> {
    (0..code.len().saturating_sub(4))
        .filter(|&i| code[i] == 0xe8)
        .map(|i| {
            let rel = i32::from_le_bytes(code[i + 1..i + 5].try_into().unwrap());
            (base + i + 5).wrapping_add_signed(rel as isize)
        })
        .collect()
}

/// Does `code` contain `value` as a little-endian 64-bit immediate (movabs)?
fn contains_imm64(code: &[u8], value: usize) -> bool {
    code.windows(8).any(|w| w == (value as u64).to_le_bytes())
}

fn compiled_bytes(backend: Backend, near: bool) -> (Vec<u8>, usize, bool) {
    let mut m = machine(&load_program(), &[], b"");
    // Calls mode: the load is a call of the generic helper.
    let config =
        JitConfig { near_code: near, verify: true, mem: MemMode::Calls, compile_after: 0, ..JitConfig::default() };
    let mut cache = new_cache(backend, config, &m).expect("backend");
    let block = cache.lookup(&mut m.mem, TEXT_BASE).expect("compiles").expect("a translatable block");
    // SAFETY: `code..code+size` is the finalized machine code of the block, alive as long
    // as `cache` is, and never written after finalization.
    let bytes = unsafe { std::slice::from_raw_parts(block.code as *const u8, block.size as usize) }.to_vec();
    (bytes, block.code as usize, cache.near())
}

#[test]
fn code_lands_near_the_executable_and_calls_helpers_with_rel32() {
    for backend in [Backend::Cranelift, Backend::Direct] {
        let (code, base, near) = compiled_bytes(backend, true);
        assert!(near, "the pool placed code near the executable");
        let helper = rvdbt::jit::helpers::address(Helper::Load(2)) as usize;
        assert!(base.abs_diff(helper) < 1 << 31, "code at {base:#x} is within ±2 GiB of the helper at {helper:#x}");
        let calls = rel32_call_targets(&code, base);
        assert!(calls.contains(&helper), "{backend:?}: a rel32 call to load_u32 ({helper:#x}) in {code:02x?}");
        assert!(!contains_imm64(&code, helper), "{backend:?}: no absolute helper address in near code");
    }
}

#[test]
fn fallback_code_is_far_and_calls_helpers_through_an_absolute_address() {
    for backend in [Backend::Cranelift, Backend::Direct] {
        let (code, base, near) = compiled_bytes(backend, false);
        assert!(!near);
        let helper = rvdbt::jit::helpers::address(Helper::Load(2)) as usize;
        assert!(contains_imm64(&code, helper), "{backend:?}: movabs of the helper address in far code at {base:#x}");
        assert!(!rel32_call_targets(&code, base).contains(&helper), "{backend:?}");
    }
}

#[test]
fn near_and_far_code_both_run_correctly() {
    for (near, backend) in
        [true, false].into_iter().flat_map(|n| [Backend::Cranelift, Backend::Direct, Backend::Tiered].map(|b| (n, b)))
    {
        let mut m = machine(&load_program(), &[], b"");
        let mut opts = rvdbt::runner::RunOptions { backend, ..Default::default() };
        opts.jit.near_code = near;
        opts.jit.verify = true;
        opts.jit.compile_after = 0;
        let report = rvdbt::runner::run(&mut m, &opts).expect("runs");
        assert_eq!(report.exit, Exit::Exited(42), "near = {near}");
        assert_eq!(m.stats.near_code, near);
    }
}
