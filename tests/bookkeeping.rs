//! What the translation cache keeps besides code (access records, fault-map entries,
//! warm-up counts) is bounded by the cache budget with the code, across many flushes;
//! and a block whose code is too large for one translation is split, not refused.

mod common;
use common::*;
use rvdbt::jit::access::MemMode;
use rvdbt::jit::{dispatch, JitConfig};
use rvdbt::machine::Exit;
use rvdbt::runner::{new_cache, Backend};

const GP: u8 = 3;
const S1: u8 = 9;

/// `sites` distinct loads from the data page (one block per 64), the whole body run
/// `passes` times, then exit(0).
fn many_loads(sites: usize, passes: u32) -> Vec<u32> {
    let mut t = li(GP, DATA_BASE).to_vec();
    t.push(addi(S1, ZERO, passes as i32));
    let body = t.len();
    t.extend((0..sites).map(|i| lw(T0, GP, (i as i32 * 4) % 2048)));
    t.push(addi(S1, S1, -1));
    t.push(beq(S1, ZERO, 12));
    let target = TEXT_BASE + 4 * body as u32;
    t.extend(li(T1, target));
    t.pop(); // li is lui + addi; jump with jalr's offset instead of the addi
    let lo = ((target & 0xfff) as i32) << 20 >> 20;
    t.push(jalr(ZERO, T1, lo));
    t.push(addi(A0, ZERO, 0));
    t.extend(exit_seq());
    t
}

#[test]
fn bookkeeping_stays_within_the_budget_across_many_flushes() {
    // The bookkeeping's own limit is the budget, at least BOOKKEEPING_FLOOR.
    const BUDGET: usize = rvdbt::jit::cache::BOOKKEEPING_FLOOR;
    // Translated at once (records and fault-map entries of compiled code), and after
    // warm-up (also the records the interpreter feeds before the first translation).
    // (After a flush a block is interpreted compile_after times again.)
    let cases = [(Backend::Direct, 0, 3, 3), (Backend::Direct, 16, 40, 1), (Backend::Cranelift, 0, 3, 3)];
    for (backend, compile_after, passes, min_flushes) in cases {
        let elf = elf_image(&many_loads(15_000, passes), &[0u8; 4096], 0);
        let mut want = machine(&elf, &[], b"");
        let want_exit = run_on(&mut want, Backend::Interp, None);
        let what = format!("{backend:?}, compile_after {compile_after}");
        let mut m = machine(&elf, &[], b"");
        let config = JitConfig {
            mem: MemMode::Adaptive,
            compile_after,
            code_cache_bytes: BUDGET,
            verify: false,
            ..JitConfig::default()
        };
        let mut cache = new_cache(backend, config, &m).expect("backend");
        let (mut limit, mut peak) = (0u64, 0usize);
        let exit = loop {
            limit += 5_000;
            let exit = dispatch::run(&mut m, &mut cache, Some(limit), &|| None).expect("runs");
            let kept = cache.bookkeeping();
            peak = peak.max(kept.bytes());
            if exit != Exit::InsnLimit(limit) {
                break exit;
            }
        };
        assert_eq!(exit, want_exit, "{what}");
        assert_eq!(m.cpu.regs, want.cpu.regs, "{what}");
        assert_eq!(m.cpu.retired, want.cpu.retired, "{what}");
        assert!(cache.stats.cache_flushes >= min_flushes, "{what}: {} flushes", cache.stats.cache_flushes);
        // 15,000 load sites would be 1.9 MB of records alone; what is kept
        // never passes the budget by more than the one block added after the check.
        assert!(peak <= BUDGET + 64 * 256, "{what}: peak bookkeeping {peak} bytes over a {BUDGET}-byte budget");
        assert!(peak >= BUDGET / 8, "{what}: the bookkeeping was measured ({peak} bytes)");
    }
}

#[test]
fn fault_map_entries_of_dropped_code_are_dropped() {
    // Fastmem: every load is inline, with a fault-map entry. Dropping the translations
    // drops their entries; the access records stay (they are bounded by the budget).
    let text = many_loads(200, 50);
    let elf = elf_image(&text, &[0u8; 4096], 0);
    let mut m = machine(&elf, &[], b"");
    let config = JitConfig { mem: MemMode::Fastmem, compile_after: 0, ..JitConfig::default() };
    let mut cache = new_cache(Backend::Direct, config, &m).expect("backend");
    let exit = dispatch::run(&mut m, &mut cache, None, &|| None).expect("runs");
    assert_eq!(exit, Exit::Exited(0));
    assert!(cache.bookkeeping().fault_sites >= 200, "{:?}", cache.bookkeeping());
    for pc in (TEXT_BASE..TEXT_BASE + 4 * text.len() as u32).step_by(4) {
        cache.invalidate(pc);
    }
    assert_eq!(cache.bookkeeping().fault_sites, 0, "no code, no fault-map entries");
    assert_eq!(cache.bookkeeping().access_records, 200);
}

#[test]
fn a_block_too_large_for_one_translation_is_split() {
    // 4,093 stores in one block (--max-block-insns 4096), with translations capped at
    // 16 KiB of host code: the block is compiled in pieces, and runs as interpreted.
    let mut text = li(GP, DATA_BASE).to_vec();
    text.push(addi(T1, ZERO, 5));
    text.extend((0..4093).map(|i| sw(GP, T1, (i * 4) % 2048)));
    text.push(lbu(A0, GP, 4));
    text.extend(exit_seq());
    let elf = elf_image(&text, &[0u8; 4096], 0);
    let mut want = machine(&elf, &[], b"");
    assert_eq!(run_on(&mut want, Backend::Interp, None), Exit::Exited(5));
    for backend in [Backend::Direct, Backend::Cranelift, Backend::Tiered] {
        for mode in MODES {
            let what = format!("{backend:?}, {mode:?}");
            let mut m = machine(&elf, &[], b"");
            let config = JitConfig {
                mem: mode,
                compile_after: 0,
                max_block_insns: 4096,
                max_translation_bytes: 16 << 10,
                ..JitConfig::default()
            };
            let mut cache = new_cache(backend, config, &m).expect("backend");
            let exit = dispatch::run(&mut m, &mut cache, None, &|| None).expect("runs, not exit 2");
            assert_eq!(exit, Exit::Exited(5), "{what}");
            assert_eq!(m.cpu.retired, want.cpu.retired, "{what}");
            assert_eq!(m.mem.ram_hash(), want.mem.ram_hash(), "{what}");
            assert!(cache.stats.blocks_split > 0, "{what}");
        }
    }
}
