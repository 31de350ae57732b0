//! The ELF loader: validates a static RV32 ELF executable, maps its PT_LOAD segments into
//! guest memory with their permissions, places the brk heap and the stack, and lays out
//! argc/argv/envp/auxv on the stack as Linux does.
//!
//! Every reason to refuse a file is a [`LoadError`] with a one-line message.

use crate::memory::{page_down, page_up, Memory, PAGE, PERM_R, PERM_W, PERM_X};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::LittleEndian as LE;
use std::collections::BTreeMap;

/// The stack's top (exclusive); the stack grows down from here.
pub const STACK_TOP: u32 = 0x7fff_0000;
/// The gap below the stack that the heap never reaches (Linux's `stack_guard_gap`): an
/// access there is reported as a stack overflow.
pub const STACK_GUARD: u32 = 1 << 20;
/// Default stack size (8 MiB, like Linux's default `ulimit -s`).
pub const DEFAULT_STACK_SIZE: u32 = 8 << 20;
/// Total size of all segments we agree to load.
const MAX_IMAGE_BYTES: u64 = 1 << 30;

/// Why a file cannot be run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LoadError {
    #[error("not an ELF file")]
    NotElf,
    #[error("truncated ELF file: {0}")]
    Truncated(&'static str),
    #[error("unsupported ELF file: {0}")]
    Unsupported(String),
    #[error("malformed ELF file: {0}")]
    Malformed(String),
    #[error("cannot set up guest memory: {0}")]
    Memory(String),
}

/// What the rest of the machine needs to know about a loaded image.
#[derive(Clone, Debug)]
pub struct Image {
    pub entry: u32,
    /// Guest address of the program headers (AT_PHDR), as qemu-riscv32 reports it.
    pub phdr: u32,
    pub phnum: u32,
    pub phent: u32,
    /// End of the highest segment (the brk heap starts at the next page).
    pub end: u32,
}

fn unsupported(msg: impl Into<String>) -> LoadError {
    LoadError::Unsupported(msg.into())
}
fn malformed(msg: impl Into<String>) -> LoadError {
    LoadError::Malformed(msg.into())
}

struct Segment<'a> {
    vaddr: u32,
    memsz: u32,
    perms: u8,
    bytes: &'a [u8],
}

/// Validates `data` and loads its segments into `mem`. The stack must already be mapped
/// (overlap with it is reported as an error).
pub fn load_elf(mem: &mut Memory, data: &[u8]) -> Result<Image, LoadError> {
    if data.len() < 4 || &data[..4] != b"\x7fELF" {
        return Err(LoadError::NotElf);
    }
    if data.len() < 16 {
        return Err(LoadError::Truncated("ELF identification"));
    }
    match data[4] {
        elf::ELFCLASS32 => {}
        elf::ELFCLASS64 => return Err(unsupported("64-bit ELF (ELFCLASS64); rvdbt runs RV32 programs only")),
        c => return Err(malformed(format!("invalid ELF class {c}"))),
    }
    match data[5] {
        elf::ELFDATA2LSB => {}
        elf::ELFDATA2MSB => return Err(unsupported("big-endian ELF; RISC-V is little endian")),
        d => return Err(malformed(format!("invalid ELF data encoding {d}"))),
    }
    let header = elf::FileHeader32::<LE>::parse(data).map_err(|_| LoadError::Truncated("ELF header"))?;
    let e = LE;
    let machine = header.e_machine(e);
    if machine != elf::EM_RISCV {
        return Err(unsupported(format!("not a RISC-V program (e_machine = {machine})")));
    }
    match header.e_type(e) {
        elf::ET_EXEC => {}
        elf::ET_DYN => {
            return Err(unsupported(
                "position-independent or shared object (ET_DYN); build a static executable (-static, no -pie)",
            ))
        }
        t => return Err(unsupported(format!("not an executable (e_type = {t})"))),
    }
    let flags = header.e_flags(e);
    // EF_RISCV_RVC (compressed code) needs no check: instruction fetch decodes what the
    // run's ISA allows, and under `--isa rv32im` a compressed instruction is illegal
    // when it runs, as on a core without C.
    match flags & elf::EF_RISCV_FLOAT_ABI {
        elf::EF_RISCV_FLOAT_ABI_SOFT => {}
        abi => {
            let which = match abi {
                elf::EF_RISCV_FLOAT_ABI_SINGLE => "single",
                elf::EF_RISCV_FLOAT_ABI_DOUBLE => "double",
                _ => "quad",
            };
            return Err(unsupported(format!(
                "the program uses the {which}-float ABI; rvdbt has no floating point, build with -mabi=ilp32"
            )));
        }
    }
    if flags & elf::EF_RISCV_RVE != 0 {
        return Err(unsupported("RV32E programs are not supported"));
    }
    if usize::from(header.e_phentsize(e)) != std::mem::size_of::<elf::ProgramHeader32<LE>>() && header.e_phnum(e) != 0 {
        return Err(malformed(format!("program header size {}", header.e_phentsize(e))));
    }
    let phdrs = header.program_headers(e, data).map_err(|_| LoadError::Truncated("program headers"))?;

    let mut segments = Vec::new();
    let mut total: u64 = 0;
    for ph in phdrs {
        match ph.p_type(e) {
            elf::PT_LOAD => {}
            elf::PT_INTERP => return Err(unsupported("dynamically linked (has PT_INTERP); build with -static")),
            elf::PT_DYNAMIC => return Err(unsupported("dynamically linked (has PT_DYNAMIC); build with -static")),
            _ => continue,
        }
        let (vaddr, memsz, filesz) = (ph.p_vaddr(e), ph.p_memsz(e), ph.p_filesz(e));
        if memsz == 0 {
            continue;
        }
        if filesz > memsz {
            return Err(malformed(format!("segment at {vaddr:#x} has p_filesz {filesz:#x} > p_memsz {memsz:#x}")));
        }
        if u64::from(vaddr) + u64::from(memsz) > 1 << 32 {
            return Err(malformed(format!("segment at {vaddr:#x} of {memsz:#x} bytes runs past 4 GiB")));
        }
        total += u64::from(memsz);
        if total > MAX_IMAGE_BYTES {
            return Err(unsupported(format!("segments total {total:#x} bytes, more than rvdbt loads (1 GiB)")));
        }
        let bytes = ph.data(e, data).map_err(|_| LoadError::Truncated("segment data"))?;
        let flags = ph.p_flags(e);
        let mut perms = 0;
        if flags & elf::PF_R != 0 {
            perms |= PERM_R;
        }
        if flags & elf::PF_W != 0 {
            perms |= PERM_W | PERM_R;
        }
        if flags & elf::PF_X != 0 {
            // Executable implies readable, as Linux maps PROT_EXEC on most targets.
            perms |= PERM_X | PERM_R;
        }
        segments.push(Segment { vaddr, memsz, perms, bytes });
    }
    if segments.is_empty() {
        return Err(malformed("no loadable segment"));
    }
    segments.sort_by_key(|s| s.vaddr);
    for pair in segments.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if u64::from(a.vaddr) + u64::from(a.memsz) > u64::from(b.vaddr) {
            return Err(malformed(format!("segments at {:#x} and {:#x} overlap", a.vaddr, b.vaddr)));
        }
    }
    // Segments may share a page: the page gets the union of their permissions.
    let mut pages: BTreeMap<u32, u8> = BTreeMap::new();
    for s in &segments {
        let start = page_down(u64::from(s.vaddr));
        let end = page_up(u64::from(s.vaddr) + u64::from(s.memsz));
        if let Some(r) = mem.first_overlap(start as u32, end) {
            let hint = match r.kind {
                crate::memory::RegionKind::Device(_) => " (--no-devices runs it without devices)",
                crate::memory::RegionKind::Ram { .. } => "",
            };
            return Err(malformed(format!(
                "segment at {:#x}..{:#x} overlaps the {} region at {:#x}{hint}",
                s.vaddr,
                u64::from(s.vaddr) + u64::from(s.memsz),
                r.name,
                r.start
            )));
        }
        let mut p = start;
        while p < end {
            *pages.entry(p as u32).or_insert(0) |= s.perms;
            p += u64::from(PAGE);
        }
    }
    // Coalesce runs of pages with equal permissions into regions.
    let mut run: Option<(u32, u64, u8)> = None;
    let mut runs = Vec::new();
    for (&page, &perms) in &pages {
        match run {
            Some((s, e, p)) if e == u64::from(page) && p == perms => run = Some((s, e + u64::from(PAGE), p)),
            _ => {
                runs.extend(run);
                run = Some((page, u64::from(page) + u64::from(PAGE), perms));
            }
        }
    }
    runs.extend(run);
    let mem_err = |e: std::io::Error| LoadError::Memory(e.to_string());
    for (start, end, perms) in runs {
        let name = match (perms & PERM_W != 0, perms & PERM_X != 0) {
            (false, true) => "text",
            (true, true) => "text+data",
            (true, false) => "data",
            (false, false) => "rodata",
        };
        mem.add_ram(start, end, perms, name).map_err(mem_err)?;
    }
    for s in &segments {
        if !mem.write_initial(s.vaddr, s.bytes).map_err(mem_err)? {
            return Err(malformed("segment data outside its segment"));
        }
    }

    let entry = header.e_entry(e);
    if entry % 4 != 0 {
        return Err(malformed(format!("entry point {entry:#x} is not 4-byte aligned")));
    }
    if !segments.iter().any(|s| {
        s.perms & PERM_X != 0 && entry >= s.vaddr && u64::from(entry) + 4 <= u64::from(s.vaddr) + u64::from(s.memsz)
    }) {
        return Err(malformed(format!("entry point {entry:#x} is not inside an executable segment")));
    }
    let phoff = header.e_phoff(e);
    let phnum = u32::from(header.e_phnum(e));
    // AT_PHDR as qemu-riscv32 computes it: the page of the lowest segment plus e_phoff,
    // also when the program headers are not in a loaded segment (Linux kernels differ
    // there: 0 since 5.18, the first segment's base plus e_phoff before).
    let phdr = segments.first().map_or(0, |s| (page_down(u64::from(s.vaddr)) as u32).wrapping_add(phoff));
    let end = segments.iter().map(|s| u64::from(s.vaddr) + u64::from(s.memsz)).max().unwrap_or(0);
    Ok(Image { entry, phdr, phnum, phent: 32, end: end.min(u64::from(u32::MAX)) as u32 })
}

/// Linux auxiliary vector keys used in the initial stack.
mod at {
    pub const NULL: u32 = 0;
    pub const PHDR: u32 = 3;
    pub const PHENT: u32 = 4;
    pub const PHNUM: u32 = 5;
    pub const PAGESZ: u32 = 6;
    pub const BASE: u32 = 7;
    pub const FLAGS: u32 = 8;
    pub const ENTRY: u32 = 9;
    pub const UID: u32 = 11;
    pub const EUID: u32 = 12;
    pub const GID: u32 = 13;
    pub const EGID: u32 = 14;
    pub const HWCAP: u32 = 16;
    pub const CLKTCK: u32 = 17;
    pub const SECURE: u32 = 23;
    pub const RANDOM: u32 = 25;
    pub const EXECFN: u32 = 31;
}

/// Writes argc, argv, envp and auxv onto the stack as the Linux kernel does and returns
/// the initial stack pointer (16-byte aligned, pointing at argc).
pub fn build_stack(mem: &mut Memory, image: &Image, args: &[String], env: &[String]) -> Result<u32, LoadError> {
    let overflow = || LoadError::Memory("arguments and environment do not fit on the stack".into());
    let mut sp = STACK_TOP;
    let mut push_bytes = |mem: &mut Memory, bytes: &[u8]| -> Result<u32, LoadError> {
        sp = sp.checked_sub(bytes.len() as u32).ok_or_else(overflow)?;
        mem.write_bytes(sp, bytes).map_err(|_| overflow())?;
        Ok(sp)
    };
    let cstr = |s: &str| {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        v
    };
    let execfn = push_bytes(mem, &cstr(args.first().map_or("", |s| s.as_str())))?;
    let mut env_ptrs = Vec::new();
    for s in env.iter().rev() {
        env_ptrs.push(push_bytes(mem, &cstr(s))?);
    }
    env_ptrs.reverse();
    let mut arg_ptrs = Vec::new();
    for s in args.iter().rev() {
        arg_ptrs.push(push_bytes(mem, &cstr(s))?);
    }
    arg_ptrs.reverse();
    // AT_RANDOM: 16 fixed bytes, so runs are reproducible.
    let random = push_bytes(mem, b"rvdbt-at-random!")?;

    let auxv: [(u32, u32); 16] = [
        (at::PHDR, image.phdr),
        (at::PHENT, image.phent),
        (at::PHNUM, image.phnum),
        (at::PAGESZ, PAGE),
        (at::BASE, 0),
        (at::FLAGS, 0),
        (at::ENTRY, image.entry),
        (at::UID, 0),
        (at::EUID, 0),
        (at::GID, 0),
        (at::EGID, 0),
        (at::HWCAP, (1 << (b'i' - b'a')) | (1 << (b'm' - b'a'))),
        (at::CLKTCK, 100),
        (at::SECURE, 0),
        (at::RANDOM, random),
        (at::EXECFN, execfn),
    ];
    let mut words: Vec<u32> = Vec::new();
    words.push(args.len() as u32);
    words.extend(&arg_ptrs);
    words.push(0);
    words.extend(&env_ptrs);
    words.push(0);
    for (k, v) in auxv {
        words.extend([k, v]);
    }
    words.extend([at::NULL, 0]);
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let start = sp.checked_sub(bytes.len() as u32).ok_or_else(overflow)? & !15;
    mem.write_bytes(start, &bytes).map_err(|_| overflow())?;
    Ok(start)
}
