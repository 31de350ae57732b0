//! File access in a granted directory (`--dir`): openat/read/write/llseek/fstat/close
//! beneath it, and nothing outside it.

mod common;
use common::*;
use rvdbt::machine::{Exit, Machine, MachineConfig};
use rvdbt::runner::{self, Backend, RunOptions};
use rvdbt::syscall::Io;

const S1: u8 = 9;
const S2: u8 = 18;
const S3: u8 = 19;
const S4: u8 = 20;
const S5: u8 = 21;
const S6: u8 = 22;
const A3: u8 = 13;
const A4: u8 = 14;

/// Guest data: the path names, then a 64-byte buffer at BUF and an 8-byte lseek result.
const NAMES: &[u8] = b"in.txt\0out.txt\0../escape\0/etc/passwd\0";
const IN: u32 = DATA_BASE;
const OUT: u32 = DATA_BASE + 7;
const ESCAPE: u32 = DATA_BASE + 15;
const ABSOLUTE: u32 = DATA_BASE + 25;
const BUF: u32 = DATA_BASE + 64;
const POS: u32 = DATA_BASE + 128;

fn syscall(nr: i32, args: &[(u8, u32)], result: u8) -> Vec<u32> {
    let mut t = Vec::new();
    for &(r, v) in args {
        t.extend(li(r, v));
    }
    t.extend([addi(A7, ZERO, nr), ecall(), addi(result, A0, 0)]);
    t
}

fn program() -> Vec<u32> {
    let at_fdcwd = -100i32 as u32;
    let mut t = Vec::new();
    // s1 = openat(AT_FDCWD, "in.txt", O_RDONLY)
    t.extend(syscall(56, &[(A0, at_fdcwd), (A1, IN), (A2, 0), (A3, 0)], S1));
    // s2 = read(s1, BUF, 64)
    t.extend(li(A1, BUF));
    t.extend(li(A2, 64));
    t.extend([addi(A0, S1, 0), addi(A7, ZERO, 63), ecall(), addi(S2, A0, 0)]);
    // s3 = openat(AT_FDCWD, "out.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644)
    t.extend(syscall(56, &[(A0, at_fdcwd), (A1, OUT), (A2, 0o1101), (A3, 0o644)], S3));
    // write(s3, BUF, s2)
    t.extend(li(A1, BUF));
    t.extend([addi(A0, S3, 0), addi(A2, S2, 0), addi(A7, ZERO, 64), ecall()]);
    // llseek(s1, 0, 2, POS, SEEK_SET); s6 = lw POS
    t.extend(li(A3, POS));
    t.extend([addi(A0, S1, 0), addi(A1, ZERO, 0), addi(A2, ZERO, 2), addi(A4, ZERO, 0), addi(A7, ZERO, 62), ecall()]);
    t.extend(li(T0, POS));
    t.push(i_type(0x03, 2, S6, T0, 0));
    // close both
    t.extend([addi(A0, S1, 0), addi(A7, ZERO, 57), ecall(), addi(A0, S3, 0), addi(A7, ZERO, 57), ecall()]);
    // s4 = openat("../escape"), s5 = openat("/etc/passwd"): both refused
    t.extend(syscall(56, &[(A0, at_fdcwd), (A1, ESCAPE), (A2, 0), (A3, 0)], S4));
    t.extend(syscall(56, &[(A0, at_fdcwd), (A1, ABSOLUTE), (A2, 0), (A3, 0)], S5));
    t.push(addi(A0, ZERO, 0));
    t.extend(exit_seq());
    t
}

fn run(dir: Option<&std::path::Path>, backend: Backend) -> (Machine, Exit) {
    let mut io = Io::buffered(Vec::new());
    if let Some(d) = dir {
        io.grant_dir(d).expect("a directory");
    }
    let mut data = NAMES.to_vec();
    data.resize(256, 0);
    let elf = elf_image(&program(), &data, 0);
    let mut m = Machine::from_elf(&elf, &["prog".into()], &[], MachineConfig::default(), io).expect("loads");
    let mut opts = RunOptions { backend, max_insns: Some(100_000), ..RunOptions::default() };
    opts.jit.compile_after = 0;
    let exit = runner::run(&mut m, &opts).expect("runs").exit;
    (m, exit)
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rvdbt-files-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("inner")).unwrap();
    d
}

#[test]
fn files_beneath_the_granted_directory_work_and_nothing_else() {
    for backend in [Backend::Interp, Backend::Cranelift] {
        let root = temp_dir(backend.name());
        let dir = root.join("inner");
        std::fs::write(dir.join("in.txt"), b"hello, file\n").unwrap();
        std::fs::write(root.join("escape"), b"secret").unwrap();
        let (m, exit) = run(Some(&dir), backend);
        assert_eq!(exit, Exit::Exited(0), "{backend:?}");
        let r = |x: u8| m.cpu.regs[x as usize] as i32;
        assert_eq!(r(S1), 3, "{backend:?}: first guest fd");
        assert_eq!(r(S2), 12, "{backend:?}: bytes read");
        assert_eq!(r(S3), 4, "{backend:?}: second guest fd");
        assert_eq!(r(S6), 2, "{backend:?}: llseek result");
        assert_eq!(r(S4), -18, "{backend:?}: ../ is refused (EXDEV)");
        assert_eq!(r(S5), -18, "{backend:?}: absolute paths are refused (EXDEV)");
        assert_eq!(std::fs::read(dir.join("out.txt")).unwrap(), b"hello, file\n", "{backend:?}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}

#[test]
fn without_a_granted_directory_openat_is_refused() {
    let (m, exit) = run(None, Backend::Interp);
    assert_eq!(exit, Exit::Exited(0));
    assert_eq!(m.cpu.regs[S1 as usize] as i32, -13, "EACCES");
    assert_eq!(m.cpu.regs[S2 as usize] as i32, -9, "read of a bad fd: EBADF");
    assert!(m.warnings.is_empty(), "openat is known, not warned about: {:?}", m.warnings);
}
