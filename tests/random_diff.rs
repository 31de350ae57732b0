//! Random differential tests: random RV32IMAC programs run on the interpreter (the
//! oracle) and on every other backend of `common::backends()` must end in exactly the
//! same state: the `Exit`, all registers, the pc, the retired-instruction count, the
//! RAM contents (`ram_hash`), the guest's stdout and stderr bytes and the warnings.
//!
//! The programs come from `tests/common/gen.rs`: a prologue (brk grows the heap by
//! 4 KiB; registers get 0, 1, -1, INT_MIN, INT_MAX, small, random, pointer and
//! power-of-two values; base registers point into a 4 KiB random data segment + 2 KiB
//! bss), then a random body (ALU register and immediate forms, shifts by any amount,
//! M operations with 0 / -1 / INT_MIN operands, lui/auipc, loads and stores with
//! misaligned offsets, CSR counter reads, forward branches and jumps, jalr through
//! auipc/lui-computed registers, bounded loops, calls and returns, fence.i, syscalls,
//! compressed instructions of every kind (so 4-byte instructions sit at 2 mod 4 and
//! blocks mix lengths; c.beqz/c.bnez, c.j, c.jr and c.jal calls), AMOs of every kind
//! and ordering, lr/sc pairs that succeed, fail or leave a reservation pending, retry
//! loops, misaligned AMO/lr and jumps to 2 mod 4 addresses,
//! and now and then a "wild" access: unmapped memory, the text segment, the UART, the
//! CLINT's mtimecmp, the test finisher, the brk heap, a region's edge, or, in loops,
//! an access whose region changes with the iteration), then `exit(a0 = some register)`.
//! Every run is capped at 100 000 instructions, so a bug cannot hang the test; each
//! program also runs a second time with a budget that stops it midway.
//!
//! Backend configurations: blocks translated at once (`compile_after = 0`) as is, with
//! one instruction per block, without Cranelift optimisation, and with every access
//! inline (`mem = fastmem`); the plain default configuration (warm-up in the
//! interpreter first); and in `fixed_seeds_agree` also a few warm-up runs, a random
//! block cap with a random memory mode, `commit_after = 1`, and a tiny code cache
//! without near code.
//!
//! Replaying failures:
//!
//! - `random_programs_agree` is a proptest (300 cases; `RVDBT_PROPTEST_CASES=<n>` for
//!   more): a failure is shrunk to a minimal program and persisted in
//!   `tests/random_diff.proptest-regressions`, which is replayed first on later runs.
//! - `fixed_seeds_agree` runs seeds 0..200 through the generator's own deterministic
//!   source (`gen::gen_program`, an xorshift seeded by a u64). A failure prints the
//!   seed; replay exactly that one seed, with its listing, with
//!
//!   ```sh
//!   RVDBT_SEED=<n> cargo test --release --test random_diff replay -- --nocapture
//!   ```
//!
//!   `RVDBT_SEED_START=<a> RVDBT_SEED_COUNT=<n>` runs another range of seeds in
//!   `fixed_seeds_agree` (e.g. a long soak).
//!
//! Every failure message lists what differs and the disassembled program, with the pc
//! where each run stopped marked, and its instruction words. Disagreements found so
//! far are kept below as minimal programs (`regression_*`).

mod common;
#[path = "common/diff.rs"]
mod diff;
#[path = "common/gen.rs"]
mod gen;

use diff::{check_program, check_words, run_machine, Variant, MAX_INSNS};
use gen::{Op, Program, Rng, DEST};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rvdbt::jit::access::MemMode;
use rvdbt::jit::JitConfig;
use rvdbt::machine::Exit;
use rvdbt::runner::Backend;

/// Seeds `fixed_seeds_agree` runs by default.
const DEFAULT_SEED_COUNT: u64 = 200;

/// A change to the JIT configuration.
type Tweak<'a> = &'a dyn Fn(&mut JitConfig);

/// The backends under test (all but the interpreter), each with `tweaks` applied to
/// the default JIT configuration with `compile_after = 0` (every block is translated
/// the first time it runs: random programs run most blocks only a few times):
/// (name, tweak).
fn variants(tweaks: &[(&str, Tweak)]) -> Vec<Variant> {
    let mut out = Vec::new();
    for backend in common::backends() {
        if backend == Backend::Interp {
            continue;
        }
        for (name, tweak) in tweaks {
            // Tiered: blocks move on to Cranelift after two entries.
            let mut jit = JitConfig { compile_after: 0, tier_up: 2, ..JitConfig::default() };
            tweak(&mut jit);
            out.push(Variant { name: format!("{}[{name}]", backend.name()), backend, jit });
        }
    }
    out
}

/// Translating at once: as is (adaptive), one instruction per block, Cranelift without
/// optimisation, every access starting inline (fastmem: device and unmapped accesses
/// take the fault path), every access a call, without regions, fastmem without checkpoints
/// (the fault path recovers every inline access exactly where it is); and the plain default
/// configuration, which interprets a block a number of times before translating it.
fn basic_variants() -> Vec<Variant> {
    variants(&[
        ("compile_after=0", &|_| {}),
        ("compile_after=0,max_block_insns=1", &|j| j.max_block_insns = 1),
        ("compile_after=0,optimize=false", &|j| j.optimize = false),
        ("compile_after=0,mem=fastmem", &|j| j.mem = MemMode::Fastmem),
        ("compile_after=0,mem=calls", &|j| j.mem = MemMode::Calls),
        ("default", &|j| *j = JitConfig::default()),
        ("compile_after=0,compile_thread=false", &|j| j.compile_thread = false),
        ("compile_after=0,regions=false", &|j| j.regions = false),
        ("compile_after=0,mem=fastmem,checkpoints=false", &|j| {
            j.mem = MemMode::Fastmem;
            j.checkpoints = false;
        }),
    ])
}

/// The basic variants, plus ones that depend on the seed: a few interpretations
/// before translation, a random block cap with a random memory mode, accesses that
/// commit after one observation, and a tiny code cache (flushes all the time) without
/// near code.
fn seed_variants(r: &mut Rng) -> Vec<Variant> {
    let hot = 1 + r.below(4);
    let cap = 2 + r.below(7) as usize;
    let mode = [MemMode::Calls, MemMode::Adaptive, MemMode::Fastmem][r.below(3) as usize];
    let budget = 4096 << r.below(4);
    let mut v = basic_variants();
    v.extend(variants(&[
        (&format!("compile_after={hot}"), &|j| j.compile_after = hot),
        (&format!("max_block_insns={cap},mem={}", mode.name()), &|j| {
            j.max_block_insns = cap;
            j.mem = mode;
        }),
        ("commit_after=1", &|j| j.commit_after = 1),
        (&format!("code_cache_bytes={budget},near_code=false"), &|j| {
            j.code_cache_bytes = budget;
            j.near_code = false;
        }),
    ]));
    v
}

// ---- proptest ------------------------------------------------------------------------

fn reg() -> impl Strategy<Value = u8> {
    0u8..32
}

fn off() -> impl Strategy<Value = i16> {
    prop_oneof![-2048i16..2048, (-512i16..512).prop_map(|o| o * 4)]
}

/// Wild access kinds, mostly ones that do not end the run.
fn wild_kind() -> impl Strategy<Value = u8> {
    prop_oneof![2 => prop::sample::select(&gen::BENIGN_WILD[..]), 1 => 0u8..14]
}

fn simple_op() -> BoxedStrategy<Op> {
    prop_oneof![
        10 => (0u8..10, reg(), reg(), reg()).prop_map(|(f, rd, rs1, rs2)| Op::Reg { f, rd, rs1, rs2 }),
        10 => (0u8..9, reg(), reg(), -2048i16..2048).prop_map(|(f, rd, rs1, imm)| Op::Imm { f, rd, rs1, imm }),
        6 => (0u8..8, reg(), reg(), reg(), 0u8..7)
            .prop_map(|(f, rd, rs1, rs2, preset)| Op::Mul { f, rd, rs1, rs2, preset }),
        2 => (reg(), any::<u32>()).prop_map(|(rd, imm20)| Op::Lui { rd, imm20 }),
        2 => (reg(), any::<u32>()).prop_map(|(rd, imm20)| Op::Auipc { rd, imm20 }),
        3 => (reg(), 0u8..9, any::<u32>()).prop_map(|(rd, kind, raw)| Op::Li { rd, kind, raw }),
        8 => (0u8..5, reg(), 0u8..4, off()).prop_map(|(f, rd, base, off)| Op::Load { f, rd, base, off }),
        8 => (0u8..3, 0u8..4, reg(), off()).prop_map(|(f, base, rs2, off)| Op::Store { f, base, rs2, off }),
        1 => (0u8..11, reg(), reg()).prop_map(|(f, rd, rs1)| Op::Csr { f, rd, rs1 }),
        1 => Just(Op::Fence),
        2 => (wild_kind(), any::<u8>(), reg(), any::<u16>()).prop_map(|(kind, f, reg, raw)| Op::Wild { kind, f, reg, raw }),
        1 => (0u8..5, 0u8..4, off(), any::<u8>())
            .prop_map(|(kind, base, off, len)| Op::Syscall { kind, base, off, len }),
        12 => (0u8..19, reg(), reg(), any::<i16>()).prop_map(|(kind, rd, rs, imm)| Op::C { kind, rd, rs, imm }),
        3 => (0u8..9, reg(), 0u8..4, reg(), off(), 0u8..4)
            .prop_map(|(f, rd, base, rs2, off, ord)| Op::Amo { f, rd, base, rs2, off, ord }),
        2 => (0u8..8, reg(), 0u8..4, reg(), off())
            .prop_map(|(kind, rd, base, rs2, off)| Op::LrSc { kind, rd, base, rs2, off }),
    ]
    .boxed()
}

/// Ops at loop/call nesting `depth` (loops and calls nest at most two deep).
fn any_op(depth: usize) -> BoxedStrategy<Op> {
    // In loop bodies, accesses whose region changes with the iteration (switch, sweep).
    let switch_w = if depth > 0 { 16 } else { 0 };
    let leaf = prop_oneof![
        switch_w => (prop_oneof![3 => Just(12u8), 1 => Just(13u8)], any::<u8>(), reg(), any::<u16>())
            .prop_map(|(kind, f, reg, raw)| Op::Wild { kind, f, reg, raw }),
        160 => simple_op(),
        24 => (0u8..6, reg(), reg(), 0u8..4).prop_map(|(f, rs1, rs2, skip)| Op::Branch { f, rs1, rs2, skip }),
        8 => (reg(), 0u8..4).prop_map(|(rd, skip)| Op::Jal { rd, skip }),
        8 => (0u8..8, reg(), 0u8..4).prop_map(|(form, rd, skip)| Op::Jalr { form, rd, skip }),
        2 => Just(Op::FenceI),
        1 => (0u8..14, any::<u8>()).prop_map(|(kind, raw)| Op::Stop { kind, raw }),
        16 => (0u8..2, 0u8..8, 0u8..4).prop_map(|(f, rs, skip)| Op::CBranch { f, rs, skip }),
        8 => (0u8..4, 0u8..4).prop_map(|(form, skip)| Op::CJump { form, skip }),
    ]
    .boxed();
    if depth >= 2 {
        return leaf;
    }
    prop_oneof![
        200 => leaf,
        8 => prop::collection::vec(any_op(depth + 1), 1..6).prop_map(|body| Op::Call { body }),
        4 => prop::collection::vec(any_op(depth + 1), 1..6).prop_map(|body| Op::CCall { body }),
        14 => (0u8..24, 0u8..3, prop::collection::vec(any_op(depth + 1), 1..10))
            .prop_map(|(count, cond, body)| Op::Loop { count, cond, body }),
    ]
    .boxed()
}

fn program() -> impl Strategy<Value = Program> {
    (
        any::<u64>(),
        prop::collection::vec((0u8..9, any::<u32>()), DEST.len() - 1),
        prop::collection::vec(any_op(0), 1..60),
        reg(),
    )
        .prop_map(|(data_seed, init, ops, exit_reg)| Program { data_seed, init, ops, exit_reg })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: env_u64("RVDBT_PROPTEST_CASES").map_or(300, |n| n as u32),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    /// Random programs end identically on the interpreter and every backend variant;
    /// also when the instruction budget stops them midway.
    #[test]
    fn random_programs_agree(p in program(), cut in any::<u64>()) {
        if let Err(report) = check_program(&p, &basic_variants(), Some(cut)) {
            return Err(TestCaseError::fail(report));
        }
    }
}

// ---- fixed seeds ---------------------------------------------------------------------

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

/// Checks the program of one seed; the variants and the midway budget also come from
/// the seed.
fn check_seed(seed: u64) -> Result<(), String> {
    let p = gen::gen_program(seed);
    let mut r = Rng::new(seed ^ 0x5eed_5eed_5eed_5eed);
    let variants = seed_variants(&mut r);
    check_program(&p, &variants, Some(r.next_u64())).map_err(|report| {
        format!(
            "seed {seed} disagrees; replay with\n  RVDBT_SEED={seed} cargo test --release --test random_diff replay -- \
             --nocapture\n{report}"
        )
    })
}

/// The programs of a fixed list of seeds agree on every variant.
#[test]
fn fixed_seeds_agree() {
    let start = env_u64("RVDBT_SEED_START").unwrap_or(0);
    let count = env_u64("RVDBT_SEED_COUNT").unwrap_or(DEFAULT_SEED_COUNT);
    let mut failures = Vec::new();
    for seed in start..start + count {
        // A panic (a translator error) is a failure of this seed, too.
        let result = std::panic::catch_unwind(|| check_seed(seed)).unwrap_or_else(|panic| {
            let msg =
                panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(format!(
                "seed {seed} panicked: {}; replay with\n  RVDBT_SEED={seed} cargo test --release --test random_diff \
                 replay -- --nocapture",
                msg.unwrap_or_default()
            ))
        });
        if let Err(report) = result {
            if failures.is_empty() {
                eprintln!("{report}");
            }
            failures.push(seed);
        }
    }
    assert!(failures.is_empty(), "{} seeds fail: {failures:?} (the first one's report is above)", failures.len());
}

/// `RVDBT_SEED=<n>`: runs exactly that seed, printing its program; without it, seed 0.
#[test]
fn replay() {
    let seed = env_u64("RVDBT_SEED").unwrap_or(0);
    let p = gen::gen_program(seed);
    let text = gen::assemble(&p);
    println!("seed {seed}:\n{}", gen::listing(&text, &[]));
    if let Err(report) = check_seed(seed) {
        panic!("{report}");
    }
}

// ---- disagreements found (minimal programs, fixed since: regression tests) ----------

/// Checks hand-written words (data: the usual random data segment of seed 0).
fn check_minimal(text: &[u32], variants: &[Variant]) {
    let data = gen::data(&Program { data_seed: 0, init: Vec::new(), ops: Vec::new(), exit_reg: 0 });
    if let Err(report) = check_words(text, &data, variants, MAX_INSNS) {
        panic!("{report}");
    }
}

/// brk to an address that is not page aligned: the interpreter faulted on heap
/// addresses past the break, while translated code with an inline (COMMITTED(RAM))
/// access read them, because the host page stays accessible up to its end. Found by
/// seed 14487 (at commit ae1fe8c); since e407c9a the heap region ends at the page
/// boundary, as on Linux, and both read 0.
#[test]
fn regression_inline_access_past_unaligned_brk() {
    use common::{addi, ecall, li, A0, A1, A7, T0};
    let mut text = Vec::new();
    text.extend(li(A0, gen::HEAP_START + 0x800)); // brk(heap start + 2 KiB)
    text.extend([addi(A7, 0, 214), ecall()]);
    text.extend(li(T0, gen::HEAP_START + 0x900)); // past the break, same page
    text.push(common::i_type(0x03, 4, A1, T0, 0)); // lbu a1, 0(t0)
    text.extend([addi(A0, A1, 0), addi(A7, 0, 93), ecall()]);
    check_minimal(&text, &basic_variants());
}

/// The same in adaptive mode: a load that saw heap RAM three times is committed
/// inline; then brk shrinks the heap to mid-page and the load runs once more.
#[test]
fn regression_committed_access_past_unaligned_brk() {
    use common::{addi, b_type, ecall, li, A0, A1, A7, T0, T1};
    const S4: u8 = 20;
    let mut text = Vec::new();
    text.extend(li(A0, gen::HEAP_START + 0x1000)); // brk(heap start + 4 KiB)
    text.extend([addi(A7, 0, 214), ecall()]);
    text.extend(li(T0, gen::HEAP_START + 0x900));
    text.push(addi(S4, 0, 5)); // 5 iterations
    let top = text.len();
    text.push(addi(T1, 0, 1));
    text.push(b_type(1, S4, T1, 16)); // bne s4, t1: skip the brk below but in the last iteration
    text.extend(li(A0, gen::HEAP_START + 0x800)); // brk(heap start + 2 KiB)
    text.push(ecall());
    text.push(common::i_type(0x03, 4, A1, T0, 0)); // lbu a1, 0(t0)
    text.push(addi(S4, S4, -1));
    let back = -4 * (text.len() - top) as i32;
    text.push(b_type(1, S4, 0, back)); // bnez s4, top
    text.extend([addi(A0, A1, 0), addi(A7, 0, 93), ecall()]);
    check_minimal(&text, &basic_variants());
}

// ---- generator sanity ----------------------------------------------------------------

/// The fixed seeds' programs mostly run to their final exit, and over all of them
/// faults, device output, loops and the translator's adaptive paths (accesses that
/// commit and later see another region; inline accesses that fault) all occur.
#[test]
fn generator_covers_the_interesting_paths() {
    let (mut exited, mut faulted, mut printed, mut long) = (0, 0, 0, 0);
    let (mut fault_path, mut decommitted) = (0, 0);
    let adaptive = &variants(&[("compile_after=0", &|_| {})])[0];
    let fastmem = &variants(&[("compile_after=0,mem=fastmem", &|j| j.mem = MemMode::Fastmem)])[0];
    for seed in 0..DEFAULT_SEED_COUNT {
        let elf = gen::elf(&gen::gen_program(seed));
        let (m, exit) = run_machine(&elf, &Variant::interp(), MAX_INSNS);
        match exit {
            Exit::Exited(_) => exited += 1,
            Exit::Fault(_) => faulted += 1,
            e => panic!("seed {seed}: unexpected {e:?}"),
        }
        printed += usize::from(!m.io.stdout_bytes().is_empty());
        long += usize::from(m.cpu.retired > 500);
        let (m, _) = run_machine(&elf, adaptive, MAX_INSNS);
        decommitted += usize::from(m.stats.transitions.committed_to_variable > 0);
        let (m, _) = run_machine(&elf, fastmem, MAX_INSNS);
        fault_path += usize::from(m.stats.faults_handled > 0);
    }
    let n = DEFAULT_SEED_COUNT as usize;
    let counts = format!(
        "of {n} programs: {exited} exit, {faulted} fault, {printed} print, {long} run > 500 instructions, \
         {decommitted} decommit an access, {fault_path} take the fault path (fastmem)"
    );
    eprintln!("{counts}");
    assert!(exited * 2 > n && faulted * 20 > n && printed * 10 > n, "{counts}");
    assert!(long * 20 > n && decommitted * 20 > n && fault_path * 5 > n, "{counts}");
}
