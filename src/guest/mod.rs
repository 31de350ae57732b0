//! The guest ISA: instruction decoding ([`decode`]), disassembly ([`disasm`]) and the
//! hart's architectural state ([`cpu`]). Nothing here knows about memory or the host.

pub mod cpu;
pub mod decode;
pub mod disasm;
