//! The `rvdbt` command line, run as a real process: exit statuses, guest output and
//! input, guest arguments and environment, fault diagnostics, statistics, devices and
//! bad command lines.

mod common;
use common::*;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const S0: u8 = 8;
const A3: u8 = 13;

const EBREAK: u32 = 0x0010_0073;

/// Runs `rvdbt` with `args` (no host environment) and `stdin`.
fn rvdbt(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rvdbt"))
        .args(args)
        .env("RVDBT_TEST_HOST_VAR", "must-not-reach-the-guest")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rvdbt");
    let mut pipe = child.stdin.take().expect("stdin pipe");
    pipe.write_all(stdin).expect("write stdin");
    drop(pipe);
    child.wait_with_output().expect("wait for rvdbt")
}

/// Writes `text` (+ `data`) as an ELF file and runs `rvdbt run [opts] FILE [-- guest]`.
fn run_prog(text: &[u32], data: &[u8], opts: &[&str], guest: &[&str], stdin: &[u8]) -> Output {
    let dir = TempDir::new();
    let elf = dir.file("prog.elf", &elf_image(text, data, 0));
    run_file(&elf, opts, guest, stdin)
}

fn run_file(elf: &Path, opts: &[&str], guest: &[&str], stdin: &[u8]) -> Output {
    let elf = elf.to_str().expect("utf-8 temp path");
    let mut args = vec!["run"];
    args.extend_from_slice(opts);
    args.push(elf);
    if !guest.is_empty() {
        args.push("--");
        args.extend_from_slice(guest);
    }
    rvdbt(&args, stdin)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit status and that stderr contains every one of `words`.
#[track_caller]
fn assert_status(o: &Output, status: i32, words: &[&str]) {
    assert_eq!(o.status.code(), Some(status), "stdout: {:?}\nstderr: {}", stdout(o), stderr(o));
    let err = stderr(o);
    for w in words {
        assert!(err.contains(w), "stderr lacks {w:?}:\n{err}");
    }
}

/// Asserts that stderr is exactly one line.
#[track_caller]
fn assert_one_line(o: &Output) {
    let err = stderr(o);
    assert!(err.ends_with('\n') && err.lines().count() == 1, "want one line on stderr, got:\n{err}");
}

/// `write(1, DATA_BASE, len)`.
fn write_data(len: i32) -> Vec<u32> {
    let mut t = li(A1, DATA_BASE).to_vec();
    t.extend([addi(A0, ZERO, 1), addi(A2, ZERO, len), addi(A7, ZERO, 64), ecall()]);
    t
}

/// Writes the NUL-terminated string whose pointer is at `sp_offset(sp)` to stdout and
/// exits with argc.
fn write_string_at_sp(sp_offset: i32) -> Vec<u32> {
    vec![
        lw(T0, SP, sp_offset),
        addi(T1, T0, 0),
        lbu(T2, T1, 0), // loop:
        beq(T2, ZERO, 12),
        addi(T1, T1, 1),
        j_type(ZERO, -12),
        addi(A0, ZERO, 1), // done:
        addi(A1, T0, 0),
        sub(A2, T1, T0),
        addi(A7, ZERO, 64),
        ecall(),
        lw(A0, SP, 0),
        addi(A7, ZERO, 93),
        ecall(),
    ]
}

#[test]
fn hello_writes_stdout_and_exits_with_status() {
    let mut text = write_data(3);
    text.push(addi(A0, ZERO, 3));
    text.extend(exit_seq());
    let o = run_prog(&text, b"hi\n", &[], &[], b"");
    assert_status(&o, 3, &[]);
    assert_eq!(o.stdout, b"hi\n");
    assert_eq!(stderr(&o), "");
}

#[test]
fn exit_status_is_the_low_byte() {
    let mut text = li(A0, 0x1234_5601).to_vec();
    text.extend(exit_seq());
    let o = run_prog(&text, &[], &[], &[], b"");
    assert_status(&o, 1, &[]);
    assert_eq!(stderr(&o), "");
    let mut text = vec![addi(A0, ZERO, -1)];
    text.extend(exit_seq());
    assert_status(&run_prog(&text, &[], &[], &[], b""), 255, &[]);
}

#[test]
fn guest_arguments_reach_argv() {
    let o = run_prog(&write_string_at_sp(8), &[], &[], &["hello-world", "x", "y"], b"");
    assert_status(&o, 4, &[]);
    assert_eq!(stdout(&o), "hello-world");
    // Arguments after `--` that look like rvdbt options belong to the guest.
    let o = run_prog(&write_string_at_sp(8), &[], &[], &["--stats", "--max-insns", "1"], b"");
    assert_status(&o, 4, &[]);
    assert_eq!(stdout(&o), "--stats");
    assert_eq!(stderr(&o), "", "rvdbt must not have read the guest's --stats");
    // An empty argument is an argument.
    let o = run_prog(&write_string_at_sp(8), &[], &[], &["", "z"], b"");
    assert_status(&o, 3, &[]);
    assert_eq!(stdout(&o), "");
}

#[test]
fn argv0_is_the_program_path() {
    let dir = TempDir::new();
    let elf = dir.file("argv0.elf", &elf_image(&write_string_at_sp(4), &[], 0));
    let o = run_file(&elf, &[], &[], b"");
    assert_status(&o, 1, &[]);
    assert_eq!(stdout(&o), elf.to_str().unwrap());
}

#[test]
fn environment_is_only_what_env_sets() {
    // argc = 1: sp+4 argv[0], sp+8 NULL, sp+12 envp[0], sp+16 envp[1].
    let o = run_prog(&write_string_at_sp(16), &[], &["--env", "A=1", "--env", "GREETING=hi there"], &[], b"");
    assert_status(&o, 1, &[]);
    assert_eq!(stdout(&o), "GREETING=hi there");
    // Without --env the guest's envp is empty, although the host has variables.
    let text = [lw(A0, SP, 12), i_type(0x13, 3, A0, A0, 1), addi(A7, ZERO, 93), ecall()]; // seqz a0, envp[0]
    assert_status(&run_prog(&text, &[], &[], &[], b""), 1, &[]);
}

#[test]
fn max_insns_stops_an_endless_loop() {
    let o = run_prog(&[j_type(ZERO, 0)], &[], &["--max-insns", "5"], &[], b"");
    assert_status(&o, 124, &["stopped after 5 instructions"]);
    assert_one_line(&o);
    assert_eq!(o.stdout, b"");
}

#[test]
fn max_insns_larger_than_the_program_changes_nothing() {
    let text = [addi(A0, ZERO, 9), addi(A7, ZERO, 93), ecall()];
    // The program retires exactly 3 instructions: a limit of 3 is enough, 2 is not.
    assert_status(&run_prog(&text, &[], &["--max-insns", "3"], &[], b""), 9, &[]);
    let o = run_prog(&text, &[], &["--max-insns", "2"], &[], b"");
    assert_status(&o, 124, &["stopped after 2 instructions"]);
}

#[test]
fn illegal_instruction() {
    let o = run_prog(&[addi(ZERO, ZERO, 0), 0xffff_ffff], &[], &[], &[], b"");
    assert_status(&o, 132, &["illegal instruction", "pc 0x00010004", "ffffffff", ".4byte 0xffffffff"]);
    assert_one_line(&o);
    // `unimp` (csrrw zero, cycle, zero: a write to a read-only CSR).
    let o = run_prog(&[addi(ZERO, ZERO, 0), addi(ZERO, ZERO, 0), 0xc000_1073], &[], &[], &[], b"");
    assert_status(&o, 132, &["illegal instruction", "pc 0x00010008", "c0001073", "unimp"]);
    assert_one_line(&o);
}

#[test]
fn load_from_unmapped_address() {
    let mut text = li(T0, 0x4000_0000).to_vec();
    text.push(lw(A0, T0, 16));
    let o = run_prog(&text, &[], &[], &[], b"");
    assert_status(&o, 139, &["load access fault", "pc 0x00010008", "0x40000010", "lw a0,16(t0)"]);
    assert_one_line(&o);
}

#[test]
fn store_to_code() {
    let text = [auipc(T0, 0), sw(T0, T0, 0)];
    let o = run_prog(&text, &[], &[], &[], b"");
    assert_status(&o, 139, &["store access fault", "pc 0x00010004", "address 0x00010000", "sw t0,0(t0)"]);
    assert_one_line(&o);
}

#[test]
fn fetch_from_data_is_an_access_fault() {
    let mut text = li(T0, DATA_BASE).to_vec();
    text.push(jalr(ZERO, T0, 0));
    let o = run_prog(&text, &[0x13, 0, 0, 0], &[], &[], b"");
    assert_status(&o, 139, &["instruction fetch access fault", "0x00020000"]);
}

#[test]
fn misaligned_jump() {
    // Without C (--isa rv32im) jump targets must be 4-byte aligned.
    let text = [auipc(T0, 0), jalr(ZERO, T0, 2)];
    let o = run_prog(&text, &[], &["--isa", "rv32im"], &[], b"");
    assert_status(&o, 135, &["instruction address misaligned", "pc 0x00010004", "0x00010002"]);
    assert_one_line(&o);
    // A taken branch to a misaligned target (bne zero, t0, +2 ... encoded as offset 2).
    let text = [addi(T0, ZERO, 1), bne(T0, ZERO, 2)];
    let o = run_prog(&text, &[], &["--isa", "rv32im", "--backend", "interp"], &[], b"");
    assert_status(&o, 135, &["instruction address misaligned", "0x00010006"]);
    // With C (the default) the target is legal: here it is the upper half of the jalr,
    // 0x0062 (c.slli ra,24), then the zero padding after the text: 0x0000, the defined
    // illegal (compressed) instruction.
    let text = [auipc(T0, 0), jalr(ZERO, T0, 6)];
    let o = run_prog(&text, &[], &[], &[], b"");
    assert_status(&o, 132, &["illegal instruction", "pc 0x00010008", "0000  unimp"]);
    assert_one_line(&o);
}

#[test]
fn isa_option_restricts_decoding() {
    // c.li a0, 7 (0x451d) then c.nop, then exit(a0).
    let text = [0x0001_451d, addi(A7, ZERO, 93), ecall()];
    let o = run_prog(&text, &[], &[], &[], b"");
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let o = run_prog(&text, &[], &["--isa", "rv32im"], &[], b"");
    assert_status(&o, 132, &["illegal instruction", "pc 0x00010000", "451d  li a0,7 (not in rv32im)"]);
    assert_one_line(&o);
    // amoadd.w a0, a0, (sp) under rv32imc.
    let text = [0x00a1_252f, addi(A7, ZERO, 93), ecall()];
    let o = run_prog(&text, &[], &["--isa", "rv32imc"], &[], b"");
    assert_status(&o, 132, &["illegal instruction", "amoadd.w a0,a0,(sp) (not in rv32imc)"]);
    let o = run_prog(&text, &[], &["--isa", "rv32i"], &[], b"");
    assert_status(&o, 2, &["invalid ISA 'rv32i'"]);
    assert_one_line(&o);
}

#[test]
fn ebreak_stops_with_sigtrap() {
    let o = run_prog(&[addi(A0, ZERO, 1), EBREAK], &[], &[], &[], b"");
    assert_status(&o, 133, &["ebreak", "pc 0x00010004", "00100073"]);
    assert_one_line(&o);
}

/// `a0 = syscall 999()`, then `exit(-a0)`.
fn unknown_syscall() -> Vec<u32> {
    let mut text = vec![addi(A7, ZERO, 999), ecall(), sub(A0, ZERO, A0)];
    text.extend(exit_seq());
    text
}

#[test]
fn unknown_syscall_returns_enosys_with_a_warning() {
    let o = run_prog(&unknown_syscall(), &[], &[], &[], b"");
    assert_status(&o, 38, &["unknown syscall 999", "0x00010004"]);
    assert_one_line(&o);
}

#[test]
fn unknown_syscall_is_fatal_with_strict_syscalls() {
    let o = run_prog(&unknown_syscall(), &[], &["--strict-syscalls"], &[], b"");
    assert_status(&o, 159, &["unknown syscall 999"]);
    assert_one_line(&o);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

/// 1 + 2*10 loop instructions + 3: 24 instructions, exit status 7.
fn counted_program() -> Vec<u32> {
    let mut text = vec![addi(T0, ZERO, 10), addi(T0, T0, -1), bne(T0, ZERO, -4), addi(A0, ZERO, 7)];
    text.extend(exit_seq());
    text
}
const COUNTED_INSNS: u64 = 24;

/// The value of `key` in the `--stats` table.
fn stats_value(err: &str, key: &str) -> String {
    let line =
        err.lines().find(|l| l.split_whitespace().next() == Some(key)).unwrap_or_else(|| panic!("{key} in\n{err}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields.len(), 2, "{line}");
    fields[1].to_string()
}

#[test]
fn stats_table() {
    let o = run_prog(&counted_program(), &[], &["--stats"], &[], b"");
    assert_status(&o, 7, &["guest_instructions"]);
    let err = stderr(&o);
    assert_eq!(stats_value(&err, "guest_instructions"), COUNTED_INSNS.to_string());
    assert_eq!(stats_value(&err, "exit_code"), "7");
    assert_eq!(stats_value(&err, "syscalls"), "1");
}

#[test]
fn stats_table_after_a_fault() {
    let o = run_prog(&[addi(A0, ZERO, 1), addi(A0, ZERO, 2), EBREAK], &[], &["--stats"], &[], b"");
    assert_status(&o, 133, &["ebreak"]);
    let err = stderr(&o);
    // The faulting instruction does not retire.
    assert_eq!(stats_value(&err, "guest_instructions"), "2");
    assert_eq!(stats_value(&err, "exit_code"), "133");
}

/// A minimal parser for a JSON object of strings, numbers, literals and nested objects;
/// nested objects are checked and returned as their text.
fn parse_flat_json(s: &str) -> Vec<(String, String)> {
    let s = s.trim();
    let body = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')).unwrap_or_else(|| panic!("not an object: {s}"));
    let mut out = Vec::new();
    let mut rest = body.trim();
    while !rest.is_empty() {
        let r = rest.strip_prefix('"').unwrap_or_else(|| panic!("key expected at {rest}"));
        let end = r.find('"').expect("key end");
        let key = r[..end].to_string();
        let r = r[end + 1..].trim_start().strip_prefix(':').expect("colon").trim_start();
        let (value, r) = if let Some(r) = r.strip_prefix('"') {
            let end = r.find('"').expect("string end");
            (r[..end].to_string(), &r[end + 1..])
        } else if r.starts_with('{') {
            let mut depth = 0;
            let end = r
                .char_indices()
                .find(|&(_, c)| {
                    depth += i32::from(c == '{') - i32::from(c == '}');
                    depth == 0
                })
                .expect("object end")
                .0
                + 1;
            parse_flat_json(&r[..end]);
            (r[..end].to_string(), &r[end..])
        } else {
            let end = r.find(',').unwrap_or(r.len());
            let v = r[..end].trim();
            let literal = matches!(v, "true" | "false" | "null") || v.parse::<f64>().is_ok();
            assert!(literal, "bad value {v:?} for {key}");
            (v.to_string(), &r[end..])
        };
        out.push((key, value));
        let r = r.trim_start();
        rest = match r.strip_prefix(',') {
            Some(r) => r.trim_start(),
            None => {
                assert!(r.is_empty(), "trailing text {r:?}");
                r
            }
        };
    }
    out
}

fn json_value<'a>(obj: &'a [(String, String)], key: &str) -> &'a str {
    let mut it = obj.iter().filter(|(k, _)| k == key);
    let v = it.next().unwrap_or_else(|| panic!("no key {key} in {obj:?}"));
    assert!(it.next().is_none(), "duplicate key {key}");
    &v.1
}

#[test]
fn stats_json() {
    let dir = TempDir::new();
    let elf = dir.file("prog.elf", &elf_image(&counted_program(), &[], 0));
    let json = dir.path("stats.json");
    let o = run_file(&elf, &["--stats-json", json.to_str().unwrap()], &[], b"");
    assert_status(&o, 7, &[]);
    assert_eq!(stderr(&o), "", "--stats-json alone prints nothing");
    let text = std::fs::read_to_string(&json).expect("stats file written");
    let obj = parse_flat_json(&text);
    assert_eq!(json_value(&obj, "guest_instructions"), COUNTED_INSNS.to_string());
    assert_eq!(json_value(&obj, "exit_code"), "7");
    let wall_ns: u64 = json_value(&obj, "wall_ns").parse().expect("wall_ns is an integer");
    assert!(wall_ns > 0 && wall_ns < 60_000_000_000, "wall_ns {wall_ns}");
}

#[test]
fn stats_json_parser_rejects_what_it_should() {
    assert_eq!(
        parse_flat_json("{\n  \"a\": 1,\n  \"b\": \"x\",\n  \"c\": true\n}\n"),
        vec![
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "x".to_string()),
            ("c".to_string(), "true".to_string())
        ]
    );
    assert!(std::panic::catch_unwind(|| parse_flat_json("{\"a\": yes}")).is_err());
    assert!(std::panic::catch_unwind(|| parse_flat_json("{\"a\": }")).is_err());
    assert!(std::panic::catch_unwind(|| parse_flat_json("\"a\": 1")).is_err());
}

#[test]
fn no_arguments_is_a_usage_error() {
    let o = rvdbt(&[], b"");
    assert_status(&o, 2, &["missing command"]);
    assert_one_line(&o);
    assert_eq!(o.stdout, b"");
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let dir = TempDir::new();
    let elf = dir.file("prog.elf", &elf_image(&counted_program(), &[], 0));
    let o = run_file(&elf, &["--frobnicate"], &[], b"");
    assert_status(&o, 2, &["--frobnicate"]);
    assert!(stderr(&o).starts_with("rvdbt: unexpected argument"), "{}", stderr(&o));
    assert_one_line(&o);
    assert_eq!(o.stdout, b"");
    let o = rvdbt(&["frobnicate"], b"");
    assert_status(&o, 2, &["frobnicate"]);
}

#[test]
fn missing_file() {
    let dir = TempDir::new();
    let missing = dir.path("does-not-exist.elf");
    let o = run_file(&missing, &[], &[], b"");
    assert_status(&o, 2, &["cannot read", missing.to_str().unwrap()]);
    assert_one_line(&o);
    // `run` without a program.
    let o = rvdbt(&["run"], b"");
    assert_status(&o, 2, &["PROGRAM"]);
    assert_one_line(&o);
}

#[test]
fn bad_stack_size_values() {
    let dir = TempDir::new();
    let elf = dir.file("prog.elf", &elf_image(&counted_program(), &[], 0));
    let o = run_file(&elf, &["--stack-size", "banana"], &[], b"");
    assert_status(&o, 2, &["banana"]);
    assert!(stderr(&o).starts_with("rvdbt: invalid value"), "{}", stderr(&o));
    assert_one_line(&o);
    for bad in ["100", "0", "4097", "2G", "5000M", "-4K"] {
        let o = run_file(&elf, &["--stack-size", bad], &[], b"");
        assert_eq!(o.status.code(), Some(2), "--stack-size {bad}: {}", stderr(&o));
        assert_eq!(o.stdout, b"");
    }
    let o = run_file(&elf, &["--stack-size", "100"], &[], b"");
    assert_status(&o, 2, &["stack size 100"]);
    assert_one_line(&o);
}

/// Stores at the bottom of a 64 KiB stack (works) and one word below it (faults).
#[test]
fn stack_size_64k_sets_the_stack_bottom() {
    let bottom = 0x7fff_0000u32 - 0x1_0000;
    let mut text = li(T0, bottom).to_vec();
    text.extend([sw(T0, ZERO, 0), sw(T0, ZERO, -4), addi(A0, ZERO, 0)]);
    text.extend(exit_seq());
    for size in ["64K", "64k", "65536"] {
        let o = run_prog(&text, &[], &["--stack-size", size], &[], b"");
        assert_status(&o, 139, &["store access fault", "address 0x7ffdfffc", "pc 0x0001000c"]);
    }
    // With the default 8 MiB stack both stores work.
    assert_status(&run_prog(&text, &[], &[], &[], b""), 0, &[]);
    assert_status(&run_prog(&text, &[], &["--stack-size", "128K"], &[], b""), 0, &[]);
}

#[test]
fn env_without_equals_is_refused() {
    let dir = TempDir::new();
    let elf = dir.file("prog.elf", &elf_image(&counted_program(), &[], 0));
    let o = run_file(&elf, &["--env", "NOEQUALS"], &[], b"");
    assert_status(&o, 2, &["KEY=VALUE", "NOEQUALS"]);
    assert_one_line(&o);
}

#[test]
fn non_elf_file_is_refused() {
    let dir = TempDir::new();
    let file = dir.file("script.sh", b"#!/bin/sh\necho hello\n");
    let o = run_file(&file, &[], &[], b"");
    assert_status(&o, 2, &["not an ELF file", "script.sh"]);
    assert_one_line(&o);
    let file = dir.file("empty.elf", b"");
    let o = run_file(&file, &[], &[], b"");
    assert_status(&o, 2, &["not an ELF file"]);
    assert_one_line(&o);
}

#[test]
fn unloadable_elf_is_refused_with_the_reason() {
    let mut img = elf_image(&counted_program(), &[], 0);
    img[36] = 2; // e_flags: single-float ABI
    let dir = TempDir::new();
    let file = dir.file("float.elf", &img);
    let o = run_file(&file, &[], &[], b"");
    assert_status(&o, 2, &["single-float ABI"]);
    assert_one_line(&o);
    // RVC (compressed code) is fine.
    img[36] = 1;
    let file = dir.file("rvc.elf", &img);
    let o = run_file(&file, &[], &[], b"");
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
}

#[test]
fn stdin_reaches_the_guest() {
    let text = [
        addi(A0, ZERO, 0), // loop: read(0, DATA_BASE, 64)
        lui(A1, DATA_BASE >> 12),
        addi(A2, ZERO, 64),
        addi(A7, ZERO, 63),
        ecall(),
        beq(A0, ZERO, 28), // EOF: to done
        addi(A2, A0, 0),   // write(1, DATA_BASE, n)
        addi(A0, ZERO, 1),
        lui(A1, DATA_BASE >> 12),
        addi(A7, ZERO, 64),
        ecall(),
        j_type(ZERO, -44), // to loop
        addi(A0, ZERO, 0), // done
        addi(A7, ZERO, 93),
        ecall(),
    ];
    let input: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
    let o = run_prog(&text, &[0; 64], &[], &[], &input);
    assert_status(&o, 0, &[]);
    assert_eq!(o.stdout, input);
    assert_eq!(stderr(&o), "");
    // Empty stdin: immediate EOF.
    let o = run_prog(&text, &[0; 64], &[], &[], b"");
    assert_status(&o, 0, &[]);
    assert_eq!(o.stdout, b"");
}

/// Sends `bytes` to the UART (t0 holds its address).
fn uart_bytes(bytes: &[u8]) -> Vec<u32> {
    bytes.iter().flat_map(|&b| [addi(T1, ZERO, i32::from(b)), sb(T0, T1, 0)]).collect()
}

#[test]
fn uart_and_test_finisher() {
    let mut text = li(T0, 0x1000_0000).to_vec();
    text.extend(uart_bytes(b"uart "));
    text.extend(write_data(4)); // "sys " through the write syscall, in order
    text.extend(uart_bytes(b"ok\n"));
    text.extend(li(S0, 0x0010_0000));
    text.extend(li(A3, (5 << 16) | 0x3333));
    text.push(sw(S0, A3, 0));
    text.push(j_type(ZERO, 0)); // not reached
    let o = run_prog(&text, b"sys ", &["--max-insns", "1000"], &[], b"");
    assert_status(&o, 5, &[]);
    assert_eq!(stdout(&o), "uart sys ok\n");
    assert_eq!(stderr(&o), "");
}

#[test]
fn no_devices_makes_device_addresses_unmapped() {
    let mut text = li(T0, 0x1000_0000).to_vec();
    text.extend(uart_bytes(b"u"));
    text.extend([addi(A0, ZERO, 0), addi(A7, ZERO, 93), ecall()]);
    let o = run_prog(&text, &[], &[], &[], b"");
    assert_status(&o, 0, &[]);
    assert_eq!(stdout(&o), "u");
    let o = run_prog(&text, &[], &["--no-devices"], &[], b"");
    assert_status(&o, 139, &["store access fault", "0x10000000"]);
    assert_eq!(stdout(&o), "");
}

#[test]
fn test_finisher_pass_exits_zero() {
    let mut text = li(T0, 0x1000_0000).to_vec();
    text.extend(uart_bytes(b"pass"));
    text.extend(li(S0, 0x0010_0000));
    text.extend(li(A3, 0x5555));
    text.push(sw(S0, A3, 0));
    text.extend([addi(A0, ZERO, 99), addi(A7, ZERO, 93), ecall()]); // not reached
    let o = run_prog(&text, &[], &[], &[], b"");
    assert_status(&o, 0, &[]);
    assert_eq!(stdout(&o), "pass");
}

#[test]
fn explicit_backend_and_no_huge_pages() {
    let o = run_prog(&counted_program(), &[], &["--backend", "interp", "--no-huge-pages"], &[], b"");
    assert_status(&o, 7, &[]);
    assert_eq!(stderr(&o), "");
    let o = run_prog(&counted_program(), &[], &["--backend", "nonsense"], &[], b"");
    assert_status(&o, 2, &["nonsense"]);
}

#[test]
fn help_and_version_go_to_stdout_with_status_0() {
    let o = rvdbt(&["--help"], b"");
    assert_status(&o, 0, &[]);
    assert!(stdout(&o).contains("Usage: rvdbt <COMMAND>"), "{}", stdout(&o));
    let o = rvdbt(&["run", "--help"], b"");
    assert_status(&o, 0, &[]);
    assert!(stdout(&o).contains("--max-insns"), "{}", stdout(&o));
    let o = rvdbt(&["--version"], b"");
    assert_status(&o, 0, &[]);
    assert_eq!(stdout(&o), format!("rvdbt {}\n", env!("CARGO_PKG_VERSION")));
}

/// A text segment with p_flags = PF_X only: the guest may fetch from it, so the program
/// runs and exits 42 (execute implies read).
#[test]
fn execute_only_segment_runs() {
    use std::os::unix::process::ExitStatusExt as _;
    let mut img = elf_image(&[addi(A0, ZERO, 42), addi(A7, ZERO, 93), ecall()], &[], 0);
    img[52 + 24..52 + 28].copy_from_slice(&1u32.to_le_bytes()); // p_flags = PF_X
    let dir = TempDir::new();
    let o = run_file(&dir.file("xonly.elf", &img), &[], &[], b"");
    assert_eq!(o.status.signal(), None, "rvdbt was killed by a signal");
    assert_status(&o, 42, &[]);
    assert_eq!(stderr(&o), "");
}

#[test]
fn print_code_shows_guest_code_ir_and_host_code() {
    let args = ["--print-code", "--compile-after", "0", "--backend", "cranelift"];
    let o = run_prog(&counted_program(), &[], &args, &[], b"");
    assert_status(&o, 7, &[]);
    let err = stderr(&o);
    // The loop body block (at TEXT_BASE + 4): its guest code, its IR and its host code.
    assert!(err.contains("=== block 0x00010004 (2 guest instructions) cranelift at host 0x"), "{err}");
    assert!(err.contains("--- guest\n  00010004  add t0,t0,-1\n  00010008  bnez t0,10004\n"), "{err}");
    assert!(err.contains("--- clif\n") && err.contains("return_call_indirect"), "{err}");
    assert!(err.contains("--- host\n") && err.contains("  jmp     "), "{err}");
}

#[test]
fn print_code_shows_direct_code_and_regions() {
    // The default (tiered) backend: the direct emitter's blocks (no IR), then the loop's
    // region.
    let args = ["--print-code", "--compile-after", "0", "--tier-up", "2", "--no-compile-thread"];
    let o = run_prog(&counted_program(), &[], &args, &[], b"");
    assert_status(&o, 7, &[]);
    let err = stderr(&o);
    let direct = err.find("=== block 0x00010004 (2 guest instructions) direct").expect("direct block");
    let next = err[direct..].find("\n\n").unwrap() + direct;
    assert!(!err[direct..next].contains("--- clif"), "{err}");
    assert!(err[direct..next].contains("--- host\n  ") && err[direct..next].contains("  push    rbx\n"), "{err}");
    assert!(err.contains("(2 guest instructions) cranelift"), "the hot loop moved to Cranelift: {err}");
}

#[test]
fn dump_shows_a_recompile_after_a_fault_with_its_reason() {
    // fault-exact reads the CLINT's mtime through a load that starts COMMITTED(ram) under
    // fastmem: the inline load faults, the access becomes VARIABLE and its block is
    // compiled again.
    let dir = TempDir::new();
    let file = dir.path("dump.txt");
    let file_arg = file.to_str().unwrap();
    let args = [
        "--dump",
        "all",
        "--dump-file",
        file_arg,
        "--mem",
        "fastmem",
        "--compile-after",
        "0",
        "--backend",
        "cranelift",
    ];
    let o = run_file(Path::new("guest-programs/bin/fault-exact.elf"), &args, &[], b"");
    assert_status(&o, 0, &[]);
    assert_eq!(stderr(&o), "", "the dump went to the file");
    let dump = std::fs::read_to_string(&file).unwrap();
    let fault = dump
        .lines()
        .find(|l| l.starts_with("event  fault  host code 0x") && l.contains("on guest address 0x0200bff8"))
        .unwrap_or_else(|| panic!("a fault event: {dump}"));
    assert!(fault.ends_with("inline access 0x80000d14 in block 0x80000d08"), "{fault}");
    let reason =
        "event  access  0x80000d14 COMMITTED -> VARIABLE, seen by the fault handler; recompile blocks 0x80000d08";
    let at = dump.find(reason).unwrap_or_else(|| panic!("the recompile reason: {dump}"));
    // The block, compiled before the fault and again after it, with the access inline
    // the first time only.
    let header = "=== block 0x80000d08 ";
    let (first, again) = (dump.find(header).unwrap(), dump[at..].find(header).map(|i| i + at));
    assert!(first < at && again.is_some(), "{dump}");
    let listing = |from: usize| {
        let end = ["\n=== ", "\nevent "]
            .iter()
            .filter_map(|m| dump[from + 1..].find(m))
            .min()
            .unwrap_or(dump.len() - from - 1);
        &dump[from..from + 1 + end]
    };
    assert!(listing(first).contains("; inline guest access at 0x80000d14"), "{}", listing(first));
    assert!(!listing(again.unwrap()).contains("; inline guest access at 0x80000d14"), "{}", listing(again.unwrap()));
    for section in ["--- guest\n", "--- clif\n", "--- host\n"] {
        assert!(dump.contains(section), "{section}");
    }
}

#[test]
fn inline_accesses_reach_guest_memory_through_a_32_bit_displacement() {
    // A fresh process reserves its arena below 2 GiB, so Cranelift folds the arena base
    // into the access's address (`[reg+0x10000000]`) instead of moving a 64-bit constant
    // into a register first.
    let dir = TempDir::new();
    let file = dir.path("dump.txt");
    let args =
        ["--dump", "host", "--dump-file", file.to_str().unwrap(), "--backend", "cranelift", "--compile-after", "0"];
    let o = run_file(Path::new("guest-programs/bin/fib.elf"), &args, &[], b"");
    assert_status(&o, 0, &[]);
    let dump = std::fs::read_to_string(&file).unwrap();
    let displacement = |line: &str| {
        let operand = line.split_once('[')?.1.split_once(']')?.0;
        u64::from_str_radix(operand.split_once("+0x")?.1, 16).ok()
    };
    let bases: Vec<u64> =
        dump.lines().filter(|l| l.contains("; inline guest access at")).filter_map(displacement).collect();
    assert!(!bases.is_empty(), "{dump}");
    let base = bases[0];
    assert!(bases.iter().all(|&b| b == base), "{bases:x?}");
    assert!((0x1000_0000..0x8000_0000).contains(&base) && base.is_multiple_of(2 << 20), "{base:#x}");
    assert!(!dump.contains(&format!(",{base:#x}\n")), "the base moved into a register: {dump}");
}

#[test]
fn dump_refuses_bad_requests() {
    let o = run_prog(&counted_program(), &[], &["--dump", "guest,asm"], &[], b"");
    assert_status(&o, 2, &["unknown dump 'asm' (guest, clif, host, events or all)"]);
    let o = run_prog(&counted_program(), &[], &["--dump", "all", "--backend", "interp"], &[], b"");
    assert_status(&o, 7, &["warning: --dump and --print-code show translations, and the interpreter makes none"]);
    let o = run_prog(&counted_program(), &[], &["--dump-file", "/tmp/x"], &[], b"");
    assert_status(&o, 2, &["--dump-file needs --dump"]);
    let o = run_prog(&counted_program(), &[], &["--dump", "all", "--dump-file", "/nonexistent/dir/x"], &[], b"");
    assert_status(&o, 2, &["cannot create the dump file /nonexistent/dir/x"]);
}

#[test]
fn verify_checks_every_backend_in_lockstep() {
    let dir = TempDir::new();
    for backend in ["direct", "cranelift", "tiered"] {
        for mem in ["adaptive", "fastmem"] {
            let stats = dir.path(&format!("{backend}-{mem}.json"));
            let args = [
                "--verify",
                "--backend",
                backend,
                "--mem",
                mem,
                "--compile-after",
                "0",
                "--tier-up",
                "20",
                "--stats-json",
                stats.to_str().unwrap(),
            ];
            let o = run_file(Path::new("guest-programs/bin/qsort.elf"), &args, &[], b"");
            assert_status(&o, 0, &[]);
            let json = std::fs::read_to_string(&stats).unwrap();
            let entries: u64 = json_field(&json, "\"verify\": {\"entries\": ");
            assert!(entries > 1000, "{backend} {mem}: {json}");
        }
    }
}

/// The number after `key` in a JSON text.
fn json_field(json: &str, key: &str) -> u64 {
    let at = json.find(key).unwrap_or_else(|| panic!("{key} in {json}")) + key.len();
    json[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
}

#[test]
fn verify_catches_a_broken_lifting() {
    // --plant-bug translates every register-register add as a sub.
    for backend in ["direct", "cranelift", "tiered"] {
        let args = ["--verify", "--plant-bug", "--backend", backend, "--compile-after", "0"];
        let o = run_file(Path::new("guest-programs/bin/fib.elf"), &args, &[], b"");
        assert_status(&o, 70, &["rvdbt: --verify: translated code and the interpreter differ after "]);
        let err = stderr(&o);
        for part in [
            "entry state:\n",
            "state after translated code:\n",
            "the interpreter's instructions",
            "the translation entered (",
        ] {
            assert!(err.contains(part), "{backend}: {part}: {err}");
        }
        // The differing register is named with both values, and the add that was
        // mistranslated is among the compared instructions.
        assert!(err.lines().any(|l| l.contains(" translated 0x") && l.contains(", interpreter 0x")), "{err}");
        assert!(err.lines().any(|l| l.starts_with("  ") && l.contains("  add ") && !l.contains(",-")), "{err}");
        // Without --verify the broken lifting goes unnoticed or misbehaves, but never
        // with status 70.
        let o = run_file(Path::new("guest-programs/bin/fib.elf"), &args[1..], &[], b"");
        assert_ne!(o.status.code(), Some(70));
    }
}

#[test]
fn granted_directory_must_exist() {
    let dir = TempDir::new();
    let missing = dir.path("nope");
    let o = run_prog(&counted_program(), &[], &["--dir", missing.to_str().unwrap()], &[], b"");
    assert_status(&o, 2, &["cannot grant"]);
    assert_one_line(&o);
}
