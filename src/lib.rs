//! rvdbt: a dynamic binary translator that runs RISC-V RV32IM guest programs (static ELF
//! files) on x86-64 Linux.
//!
//! Pipeline: [`loader`] -> [`memory`] -> dispatcher -> decode -> backend -> run. The
//! [`interp`]reter is the oracle every translating backend is tested against.

pub mod access;
pub mod block;
pub mod cache;
pub mod codemem;
pub mod cpu;
pub mod decode;
pub mod disasm;
pub mod dispatch;
pub mod fault;
pub mod host;
pub mod interp;
pub mod lift;
pub mod loader;
pub mod machine;
pub mod memory;
pub mod runner;
pub mod syscall;
