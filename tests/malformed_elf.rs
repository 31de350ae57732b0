//! Bad ELF files: every way a file can be refused gives the exact `LoadError` variant
//! with a message naming the reason, a valid file whose segments share a page loads with
//! the union of their permissions, and random damage to a valid file never panics the
//! loader or the interpreter.

mod common;
use common::*;
use proptest::prelude::*;
use rvdbt::loader::{LoadError, STACK_TOP};
use rvdbt::machine::{Exit, Machine, MachineConfig};
use rvdbt::memory::{RegionKind, PERM_R, PERM_W, PERM_X};
use rvdbt::runner::Backend;
use rvdbt::syscall::Io;

// ELF32 header field offsets.
const E_TYPE: usize = 16;
const E_MACHINE: usize = 18;
const E_ENTRY: usize = 24;
const E_PHOFF: usize = 28;
const E_FLAGS: usize = 36;
const E_PHENTSIZE: usize = 42;
const E_PHNUM: usize = 44;
/// Where `elf_image` puts the program headers, and their size.
const PHOFF: usize = 52;
const PHENT: usize = 32;
// Program header field offsets.
const P_TYPE: usize = 0;
const P_OFFSET: usize = 4;
const P_VADDR: usize = 8;
const P_FILESZ: usize = 16;
const P_MEMSZ: usize = 20;
const P_FLAGS: usize = 24;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;

fn load(elf: &[u8]) -> Result<Machine, LoadError> {
    let argv = vec!["prog".to_string()];
    let config = MachineConfig { huge_pages: false, ..MachineConfig::default() };
    Machine::from_elf(elf, &argv, &[], config, Io::buffered(Vec::new()))
}

fn get32(img: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(img[at..at + 4].try_into().unwrap())
}
fn set16(img: &mut [u8], at: usize, v: u16) {
    img[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn set32(img: &mut [u8], at: usize, v: u32) {
    img[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
/// Sets field `field` of program header `i`.
fn set_ph(img: &mut [u8], i: usize, field: usize, v: u32) {
    set32(img, PHOFF + i * PHENT + field, v);
}
fn get_ph(img: &[u8], i: usize, field: usize) -> u32 {
    get32(img, PHOFF + i * PHENT + field)
}

/// `exit(42)`.
fn text() -> Vec<u32> {
    let mut t = vec![addi(A0, ZERO, 42)];
    t.extend(exit_seq());
    t
}

/// A valid image with a text segment (header 0) only.
fn one_segment() -> Vec<u8> {
    elf_image(&text(), &[], 0)
}

/// A valid image with text (header 0) and data + bss (header 1).
fn two_segments() -> Vec<u8> {
    elf_image(&text(), &[1, 2, 3, 4, 5, 6, 7, 8], 0x100)
}

/// A one-segment image whose only segment is moved to `vaddr` (entry moves with it).
fn text_at(vaddr: u32) -> Vec<u8> {
    let mut img = one_segment();
    set_ph(&mut img, 0, P_VADDR, vaddr);
    set32(&mut img, E_ENTRY, vaddr);
    img
}

/// Asserts that loading fails with the given variant and that the message contains
/// every one of `words`.
macro_rules! assert_refused {
    ($img:expr, $variant:pat, $words:expr) => {{
        let err = match load(AsRef::<[u8]>::as_ref(&$img)) {
            Ok(_) => panic!("loaded, want {}", stringify!($variant)),
            Err(e) => e,
        };
        assert!(matches!(err, $variant), "got {err:?}, want {}", stringify!($variant));
        let text = err.to_string();
        for w in $words {
            assert!(text.contains(w), "message {text:?} lacks {w:?}");
        }
        err
    }};
}

#[test]
fn baseline_images_load_and_run() {
    for img in [one_segment(), two_segments()] {
        let mut m = load(&img).expect("valid image");
        let exit = run_on(&mut m, Backend::Interp, Some(100));
        assert_eq!(exit, Exit::Exited(42));
    }
}

#[test]
fn not_elf() {
    let err = assert_refused!(Vec::<u8>::new(), LoadError::NotElf, ["not an ELF file"]);
    assert_eq!(err, LoadError::NotElf);
    assert_refused!(b"\x7fEL", LoadError::NotElf, ["not an ELF file"]);
    let mut img = one_segment();
    img[3] = b'G';
    assert_refused!(img, LoadError::NotElf, ["not an ELF file"]);
    let mut img = one_segment();
    img[0] = 0x7e;
    assert_refused!(img, LoadError::NotElf, ["not an ELF file"]);
    assert_refused!(b"#!/bin/sh\necho hello, world\n".repeat(10), LoadError::NotElf, ["not an ELF file"]);
}

#[test]
fn truncated_identification_and_header() {
    let img = one_segment();
    let err = assert_refused!(&img[..10], LoadError::Truncated(_), ["truncated", "identification"]);
    assert_eq!(err, LoadError::Truncated("ELF identification"));
    let err = assert_refused!(&img[..40], LoadError::Truncated(_), ["truncated", "ELF header"]);
    assert_eq!(err, LoadError::Truncated("ELF header"));
    let err = assert_refused!(&img[..51], LoadError::Truncated(_), ["truncated", "ELF header"]);
    assert_eq!(err, LoadError::Truncated("ELF header"));
}

#[test]
fn wrong_class() {
    let mut img = one_segment();
    img[4] = 2;
    assert_refused!(img, LoadError::Unsupported(_), ["64-bit"]);
    let mut img = one_segment();
    img[4] = 7;
    assert_refused!(img, LoadError::Malformed(_), ["class", "7"]);
    let mut img = one_segment();
    img[4] = 0;
    assert_refused!(img, LoadError::Malformed(_), ["class", "0"]);
}

#[test]
fn wrong_data_encoding() {
    let mut img = one_segment();
    img[5] = 2;
    assert_refused!(img, LoadError::Unsupported(_), ["big-endian"]);
    let mut img = one_segment();
    img[5] = 0;
    assert_refused!(img, LoadError::Malformed(_), ["data encoding", "0"]);
    let mut img = one_segment();
    img[5] = 3;
    assert_refused!(img, LoadError::Malformed(_), ["data encoding", "3"]);
}

#[test]
fn wrong_machine() {
    let mut img = one_segment();
    set16(&mut img, E_MACHINE, 62);
    assert_refused!(img, LoadError::Unsupported(_), ["not a RISC-V program", "62"]);
}

#[test]
fn wrong_file_type() {
    let mut img = one_segment();
    set16(&mut img, E_TYPE, 3);
    assert_refused!(img, LoadError::Unsupported(_), ["ET_DYN", "static"]);
    let mut img = one_segment();
    set16(&mut img, E_TYPE, 1);
    assert_refused!(img, LoadError::Unsupported(_), ["not an executable", "e_type = 1"]);
    let mut img = one_segment();
    set16(&mut img, E_TYPE, 4);
    assert_refused!(img, LoadError::Unsupported(_), ["not an executable", "e_type = 4"]);
}

#[test]
fn unsupported_flags() {
    let cases: &[(u32, &[&str])] = &[
        (0x2, &["single-float ABI", "ilp32"]),
        (0x4, &["double-float ABI", "ilp32"]),
        (0x6, &["quad-float ABI", "ilp32"]),
        (0x8, &["RV32E"]),
        // Compressed and double-float together: the float ABI is the reason.
        (0x5, &["double-float ABI"]),
    ];
    for &(flags, words) in cases {
        let mut img = one_segment();
        set32(&mut img, E_FLAGS, flags);
        assert_refused!(img, LoadError::Unsupported(_), words);
    }
    // Flags rvdbt does not care about (TSO), and RVC (compressed code), are accepted.
    for flags in [0x10, 0x1] {
        let mut img = one_segment();
        set32(&mut img, E_FLAGS, flags);
        assert!(load(&img).is_ok(), "flags {flags:#x}");
    }
}

#[test]
fn truncated_program_headers() {
    let img = two_segments();
    // The file ends in the middle of the second program header.
    let err = assert_refused!(&img[..PHOFF + PHENT + 16], LoadError::Truncated(_), ["truncated"]);
    assert_eq!(err, LoadError::Truncated("program headers"));
    // More program headers than the file holds.
    let mut img = one_segment();
    set16(&mut img, E_PHNUM, 1000);
    let err = assert_refused!(img, LoadError::Truncated(_), ["truncated", "program headers"]);
    assert_eq!(err, LoadError::Truncated("program headers"));
    // Program headers that start past the end of the file.
    let mut img = one_segment();
    let len = img.len() as u32;
    set32(&mut img, E_PHOFF, len - 8);
    let err = assert_refused!(img, LoadError::Truncated(_), ["truncated", "program headers"]);
    assert_eq!(err, LoadError::Truncated("program headers"));
}

#[test]
fn wrong_program_header_size() {
    let mut img = one_segment();
    set16(&mut img, E_PHENTSIZE, 56);
    assert_refused!(img, LoadError::Malformed(_), ["program header size 56"]);
}

#[test]
fn segment_data_beyond_end_of_file() {
    // The file is cut in the middle of the text.
    let img = one_segment();
    let err = assert_refused!(&img[..0x1000 + 4], LoadError::Truncated(_), ["truncated", "segment data"]);
    assert_eq!(err, LoadError::Truncated("segment data"));
    // p_offset + p_filesz points past the end.
    let mut img = one_segment();
    let len = img.len() as u32;
    set_ph(&mut img, 0, P_OFFSET, len - 4);
    let err = assert_refused!(img, LoadError::Truncated(_), ["truncated", "segment data"]);
    assert_eq!(err, LoadError::Truncated("segment data"));
    // An offset so large that offset + size overflows 32 bits.
    let mut img = one_segment();
    set_ph(&mut img, 0, P_OFFSET, 0xffff_fff8);
    let err = assert_refused!(img, LoadError::Truncated(_), ["truncated"]);
    assert_eq!(err, LoadError::Truncated("segment data"));
}

#[test]
fn filesz_larger_than_memsz() {
    let mut img = one_segment();
    let memsz = get_ph(&img, 0, P_MEMSZ);
    set_ph(&mut img, 0, P_FILESZ, memsz + 4);
    assert_refused!(img, LoadError::Malformed(_), ["p_filesz", "p_memsz"]);
}

#[test]
fn overlapping_segments() {
    // Data placed inside the text segment.
    let mut img = two_segments();
    set_ph(&mut img, 1, P_VADDR, TEXT_BASE + 4);
    assert_refused!(img, LoadError::Malformed(_), ["overlap", "0x10000", "0x10004"]);
    // Data starting exactly where text ends is fine ...
    let mut img = two_segments();
    let text_len = get_ph(&img, 0, P_MEMSZ);
    set_ph(&mut img, 1, P_VADDR, TEXT_BASE + text_len);
    assert!(load(&img).is_ok());
    // ... one byte earlier is not (headers in reverse address order).
    let mut img = two_segments();
    set_ph(&mut img, 0, P_VADDR, DATA_BASE + 0x107);
    set32(&mut img, E_ENTRY, DATA_BASE + 0x107);
    assert_refused!(img, LoadError::Malformed(_), ["overlap"]);
    // Identical addresses.
    let mut img = two_segments();
    set_ph(&mut img, 1, P_VADDR, TEXT_BASE);
    assert_refused!(img, LoadError::Malformed(_), ["overlap"]);
}

#[test]
fn segment_over_a_device() {
    assert_refused!(text_at(0x1000_0000), LoadError::Malformed(_), ["overlap", "uart"]);
    assert_refused!(text_at(0x0010_0000), LoadError::Malformed(_), ["overlap", "test-finisher"]);
    assert_refused!(text_at(0x0200_8000), LoadError::Malformed(_), ["overlap", "clint"]);
    // Starting below the UART's page and running into it.
    let mut img = text_at(0x0fff_f000);
    set_ph(&mut img, 0, P_MEMSZ, 0x1004);
    assert_refused!(img, LoadError::Malformed(_), ["overlap", "uart"]);
    // The page after the UART (the device occupies one page) is free.
    assert!(load(&text_at(0x1000_1000)).is_ok());
    // The same page as the UART (past its 0x100 registers) is not.
    assert_refused!(text_at(0x1000_0800), LoadError::Malformed(_), ["overlap", "uart"]);
}

#[test]
fn segment_over_the_stack() {
    assert_refused!(text_at(STACK_TOP - 0x1000), LoadError::Malformed(_), ["overlap", "stack"]);
    assert_refused!(text_at(STACK_TOP - 8), LoadError::Malformed(_), ["overlap", "stack"]);
    // Straddling the bottom of the default 8 MiB stack.
    let mut img = text_at(STACK_TOP - (8 << 20) - 0x1000);
    set_ph(&mut img, 0, P_MEMSZ, 0x1010);
    assert_refused!(img, LoadError::Malformed(_), ["overlap", "stack"]);
    // Right above the stack (up to 4 GiB) is free.
    assert!(load(&text_at(STACK_TOP)).is_ok());
}

#[test]
fn segment_past_4_gib() {
    let mut img = two_segments();
    set_ph(&mut img, 1, P_VADDR, 0xffff_f000);
    set_ph(&mut img, 1, P_FILESZ, 0);
    set_ph(&mut img, 1, P_MEMSZ, 0x2000);
    assert_refused!(img, LoadError::Malformed(_), ["past 4 GiB", "0xfffff000"]);
    let mut img = two_segments();
    set_ph(&mut img, 1, P_VADDR, 0xffff_ffff);
    set_ph(&mut img, 1, P_FILESZ, 2);
    set_ph(&mut img, 1, P_MEMSZ, 2);
    assert_refused!(img, LoadError::Malformed(_), ["past 4 GiB"]);
}

#[test]
fn huge_memsz() {
    let mut img = two_segments();
    set_ph(&mut img, 1, P_MEMSZ, 0x4000_0000);
    assert_refused!(img, LoadError::Unsupported(_), ["1 GiB"]);
    // Two segments of 600 MiB each: each is fine, together they are too much.
    let mut img = two_segments();
    set_ph(&mut img, 0, P_MEMSZ, 600 << 20);
    set_ph(&mut img, 1, P_VADDR, 0x4000_0000);
    set_ph(&mut img, 1, P_MEMSZ, 600 << 20);
    assert_refused!(img, LoadError::Unsupported(_), ["1 GiB"]);
}

#[test]
fn bad_entry_point() {
    let mut img = two_segments();
    set32(&mut img, E_ENTRY, 0x5_0000);
    assert_refused!(img, LoadError::Malformed(_), ["entry point", "0x50000"]);
    // In the (non-executable) data segment.
    let mut img = two_segments();
    set32(&mut img, E_ENTRY, DATA_BASE);
    assert_refused!(img, LoadError::Malformed(_), ["entry point", "0x20000", "executable"]);
    // Just past the text, and with fewer than 4 bytes of text left.
    let text_len = get_ph(&two_segments(), 0, P_MEMSZ);
    for entry in [TEXT_BASE + text_len, TEXT_BASE + text_len - 2, TEXT_BASE - 4] {
        let mut img = two_segments();
        set32(&mut img, E_ENTRY, entry);
        assert_refused!(img, LoadError::Malformed(_), ["entry point", &format!("{entry:#x}")]);
    }
    // The last instruction of the text is a valid entry.
    let mut img = two_segments();
    set32(&mut img, E_ENTRY, TEXT_BASE + text_len - 4);
    let m = load(&img).expect("entry at the last instruction");
    assert_eq!(m.cpu.pc, TEXT_BASE + text_len - 4);
    // In the zero-filled part (beyond p_filesz) of an executable segment: allowed.
    let mut img = one_segment();
    set_ph(&mut img, 0, P_MEMSZ, 0x100);
    set32(&mut img, E_ENTRY, TEXT_BASE + 0x80);
    assert!(load(&img).is_ok());
}

#[test]
fn no_loadable_segment() {
    let mut img = two_segments();
    set_ph(&mut img, 0, P_TYPE, PT_NOTE);
    set_ph(&mut img, 1, P_TYPE, PT_NOTE);
    let err = assert_refused!(img, LoadError::Malformed(_), ["no loadable segment"]);
    assert_eq!(err, LoadError::Malformed("no loadable segment".into()));
    let mut img = one_segment();
    set16(&mut img, E_PHNUM, 0);
    assert_refused!(img, LoadError::Malformed(_), ["no loadable segment"]);
    // PT_LOAD headers that are all empty (p_memsz 0) load nothing either.
    let mut img = one_segment();
    set_ph(&mut img, 0, P_FILESZ, 0);
    set_ph(&mut img, 0, P_MEMSZ, 0);
    assert_refused!(img, LoadError::Malformed(_), ["no loadable segment"]);
}

#[test]
fn dynamically_linked() {
    for (pt, name) in [(PT_INTERP, "PT_INTERP"), (PT_DYNAMIC, "PT_DYNAMIC")] {
        // After the PT_LOAD ...
        let mut img = two_segments();
        set_ph(&mut img, 1, P_TYPE, pt);
        assert_refused!(img, LoadError::Unsupported(_), ["dynamically linked", name]);
        // ... and before it.
        let mut img = two_segments();
        set_ph(&mut img, 0, P_TYPE, pt);
        set_ph(&mut img, 1, P_TYPE, PT_LOAD);
        assert_refused!(img, LoadError::Unsupported(_), ["dynamically linked", name]);
    }
}

#[test]
fn bad_stack_size() {
    for size in [0, 100, 4095, 4097, (1 << 30) + 4096] {
        let argv = vec!["prog".to_string()];
        let config = MachineConfig { stack_size: size, huge_pages: false, ..MachineConfig::default() };
        let err = match Machine::from_elf(&one_segment(), &argv, &[], config, Io::buffered(Vec::new())) {
            Ok(_) => panic!("stack size {size} accepted"),
            Err(e) => e,
        };
        assert!(matches!(err, LoadError::Memory(_)), "{size}: {err:?}");
        assert!(err.to_string().contains(&format!("stack size {size}")), "{err}");
    }
}

/// Text ending in the middle of a page and data starting later in the same page (at a
/// different file offset): the shared page gets R+W+X, the data's other page R+W.
#[test]
fn segments_sharing_a_page_get_the_union_of_permissions() {
    const DATA_VADDR: u32 = TEXT_BASE + 0x800;
    const DATA_SECOND_PAGE: u32 = TEXT_BASE + 0x1004;
    let mut t = Vec::new();
    t.extend(li(T0, DATA_VADDR));
    t.push(i_type(0x03, 2, A0, T0, 0)); // lw a0, 0(t0)
    t.push(addi(A0, A0, 1));
    t.extend(li(T2, DATA_SECOND_PAGE));
    t.push(s_type(0x23, 2, T2, A0, 0)); // sw a0, 0(t2): the data's second page
    t.push(i_type(0x03, 2, A0, T2, 0)); // lw a0, 0(t2)
    t.extend(li(T1, TEXT_BASE));
    t.push(s_type(0x23, 0, T1, A0, 0)); // sb a0, 0(t1): the text page is writable too
    t.extend(exit_seq());
    let text: Vec<u8> = t.iter().flat_map(|w| w.to_le_bytes()).collect();
    let data = 0x29u32.to_le_bytes();

    let (text_off, data_off) = (0x1000u32, 0x1800u32);
    let mut f = Vec::new();
    f.extend_from_slice(b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0");
    for h in [2u16, 243] {
        f.extend_from_slice(&h.to_le_bytes());
    }
    for w in [1u32, TEXT_BASE, PHOFF as u32, 0, 0] {
        f.extend_from_slice(&w.to_le_bytes());
    }
    for h in [52u16, 32, 2, 40, 0, 0] {
        f.extend_from_slice(&h.to_le_bytes());
    }
    let segs = [
        (text_off, TEXT_BASE, text.len() as u32, text.len() as u32, 5u32),
        (data_off, DATA_VADDR, data.len() as u32, 0x1000, 6),
    ];
    for (off, vaddr, filesz, memsz, flags) in segs {
        for w in [PT_LOAD, off, vaddr, vaddr, filesz, memsz, flags, 0x1000] {
            f.extend_from_slice(&w.to_le_bytes());
        }
    }
    f.resize(text_off as usize, 0);
    f.extend_from_slice(&text);
    f.resize(data_off as usize, 0);
    f.extend_from_slice(&data);
    assert_eq!(get_ph(&f, 1, P_FLAGS), 6);

    let mut m = load(&f).expect("segments sharing a page load");
    let ram: Vec<(u32, u64, u8)> = m
        .mem
        .regions()
        .iter()
        .filter_map(|r| match r.kind {
            RegionKind::Ram { perms } if r.start < 0x7000_0000 && r.end > u64::from(r.start) => {
                Some((r.start, r.end, perms))
            }
            _ => None,
        })
        .collect();
    assert_eq!(ram, vec![(0x1_0000, 0x1_1000, PERM_R | PERM_W | PERM_X), (0x1_1000, 0x1_2000, PERM_R | PERM_W)]);
    assert_eq!(m.mem.read_bytes(DATA_VADDR, 4).unwrap(), data);
    assert_eq!(m.mem.read_bytes(TEXT_BASE, 8).unwrap(), text[..8]);
    // The bytes between the text and the data are zero, as is the data's bss.
    assert_eq!(m.mem.read_bytes(TEXT_BASE + text.len() as u32, 8).unwrap(), [0; 8]);
    assert_eq!(m.mem.read_bytes(DATA_VADDR + 4, 8).unwrap(), [0; 8]);
    // The heap starts at the page after the data.
    assert_eq!(m.mem.brk(), 0x1_2000);

    let exit = run_on(&mut m, Backend::Interp, Some(100));
    assert_eq!(exit, Exit::Exited(0x2a));
    assert_eq!(m.mem.read_bytes(DATA_SECOND_PAGE, 4).unwrap(), 0x2au32.to_le_bytes());
    assert_eq!(m.mem.read_bytes(TEXT_BASE, 1).unwrap(), [0x2a]);
}

/// A valid ELF file handed over at an address that is not 4-byte aligned (a subslice of
/// a larger buffer) is the same file and must load.
#[test]
fn valid_image_at_unaligned_address_loads() {
    let img = one_segment();
    let mut buf = vec![0u8; img.len() + 1];
    buf[1..].copy_from_slice(&img);
    let r = load(&buf[1..]);
    assert!(r.is_ok(), "{:?}", r.err());
}

/// Program headers at a file offset that is not 4-byte aligned are not a truncated file.
#[test]
fn unaligned_phoff_is_not_reported_as_truncation() {
    let img = one_segment();
    let mut f = img[..PHOFF].to_vec();
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&img[PHOFF..PHOFF + PHENT]);
    f.resize(0x1000, 0);
    f.extend_from_slice(&img[0x1000..]);
    set32(&mut f, E_PHOFF, PHOFF as u32 + 2);
    let r = load(&f);
    assert!(!matches!(r, Err(LoadError::Truncated(_))), "{:?}", r.err());
}

/// The brk heap starts after the highest segment; when that segment ends at 4 GiB the
/// heap must not wrap around to address 0.
#[test]
fn heap_does_not_wrap_to_address_zero() {
    let mut img = two_segments();
    set_ph(&mut img, 1, P_VADDR, 0xffff_f000);
    set_ph(&mut img, 1, P_MEMSZ, 0x1000);
    let mut m = load(&img).expect("a segment ending at 4 GiB is valid");
    // No room for a heap above the segment: brk cannot move.
    assert_eq!(m.mem.set_brk(0x1000), m.mem.brk());
    // brk(0x1000) must not make the null page accessible.
    let _ = m.mem.set_brk(0x1000);
    assert!(m.mem.read_bytes(0, 4).is_err(), "the null page became readable: {:?}", m.mem.regions());
}

/// Does the machine have RAM that the guest may execute but not read?
fn has_execute_only_ram(m: &Machine) -> bool {
    m.mem.regions().iter().any(|r| match r.kind {
        RegionKind::Ram { perms } => perms & PERM_X != 0 && perms & PERM_R == 0,
        RegionKind::Device(_) => false,
    })
}

/// A text segment with p_flags = PF_X only loads as readable and executable (as Linux
/// maps PROT_EXEC), so the program runs.
#[test]
fn execute_only_segment_does_not_crash_the_host() {
    let mut img = one_segment();
    set_ph(&mut img, 0, P_FLAGS, 1);
    let mut m = load(&img).expect("an execute-only text segment loads");
    assert!(!has_execute_only_ram(&m), "execute implies read");
    let exit = run_on(&mut m, Backend::Interp, Some(100));
    assert_eq!(exit, Exit::Exited(42));
}

/// The valid image the property tests damage: it writes, reads stdin, uses brk, loops.
fn fuzz_base() -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(li(A1, DATA_BASE));
    t.extend([addi(A0, ZERO, 1), addi(A2, ZERO, 8), addi(A7, ZERO, 64), ecall()]);
    t.extend([addi(A0, ZERO, 0), addi(A2, ZERO, 8), addi(A7, ZERO, 63), ecall()]);
    t.extend([addi(A0, ZERO, 0), addi(A7, ZERO, 214), ecall()]);
    t.extend([addi(T0, ZERO, 100), addi(T0, T0, -1), b_type(1, T0, ZERO, -4)]);
    t.extend([addi(A0, ZERO, 7)]);
    t.extend(exit_seq());
    elf_image(&t, b"fuzzing\n", 64)
}

fn check_no_panic(img: &[u8]) {
    let argv = vec!["prog".to_string(), "arg".to_string()];
    let env = vec!["K=V".to_string()];
    let config = MachineConfig { huge_pages: false, ..MachineConfig::default() };
    if let Ok(mut m) = Machine::from_elf(img, &argv, &env, config, Io::buffered(b"input".to_vec())) {
        assert!(!has_execute_only_ram(&m), "execute implies read");
        let mut translated = Machine::from_elf(img, &argv, &env, m.config.clone(), Io::buffered(b"input".to_vec()))
            .expect("loads twice");
        let exit = run_on(&mut m, Backend::Interp, Some(10_000));
        // Whatever happened, the run stopped within the budget ...
        assert!(m.cpu.retired <= 10_000, "{:?} after {} instructions", exit, m.cpu.retired);
        // ... and translated code did exactly the same.
        assert_eq!(run_on(&mut translated, Backend::Cranelift, Some(10_000)), exit);
        assert_eq!(translated.cpu.regs, m.cpu.regs);
        assert_eq!(translated.cpu.retired, m.cpu.retired);
    }
}

#[test]
fn fuzz_base_is_valid() {
    let mut m = load(&fuzz_base()).unwrap();
    let exit = run_on(&mut m, Backend::Interp, Some(10_000));
    assert_eq!(exit, Exit::Exited(7));
    assert_eq!(m.io.stdout_bytes(), b"fuzzing\n");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random byte changes (mostly in the headers) and truncations never panic.
    #[test]
    fn damaged_images_never_panic(
        edits in prop::collection::vec(
            (prop_oneof![3 => 0usize..PHOFF + 2 * PHENT, 1 => 0usize..0x1100], any::<u8>()),
            1..8,
        ),
        cut in prop::option::weighted(0.2, 0usize..0x1100),
    ) {
        let mut img = fuzz_base();
        for &(at, byte) in &edits {
            if at < img.len() {
                img[at] = byte;
            }
        }
        if let Some(len) = cut {
            img.truncate(len);
        }
        check_no_panic(&img);
    }

    /// Random 32-bit fields in the header and program headers never panic.
    #[test]
    fn random_header_words_never_panic(
        edits in prop::collection::vec((0usize..(PHOFF + 2 * PHENT) / 4, any::<u32>()), 1..4),
    ) {
        let mut img = fuzz_base();
        for &(word, value) in &edits {
            // Keep the magic so the interesting checks are reached.
            if word > 0 {
                set32(&mut img, word * 4, value);
            }
        }
        check_no_panic(&img);
    }

    /// Random instructions in a valid image never panic the interpreter.
    #[test]
    fn random_code_never_panics(words in prop::collection::vec(any::<u32>(), 1..32)) {
        check_no_panic(&elf_image(&words, b"data", 64));
    }
}
