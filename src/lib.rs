//! rvdbt: a dynamic binary translator that runs RISC-V RV32IMAC guest programs (static ELF
//! files) on x86-64 Linux.
//!
//! The module tree is the pipeline, and dependencies point down this list:
//!
//! - [`engine`]: the embedding API: an [`Engine`] per process and [`Guest`]s, each with
//!   its own memory, cache and streams, run on any thread (start there);
//! - [`runner`]: runs a machine to its end on the chosen engine, statistics;
//! - [`backend`]: the code generators ([`backend::cranelift`], [`backend::direct`]); each
//!   only turns a block into bytes in code memory plus its fault-map entries;
//! - [`jit`]: what every backend shares: block discovery, access records and states,
//!   exit slots, the jump cache, the fault map, code memory, the helpers and their ABI,
//!   the entry trampoline and fault handler, the translation cache and the dispatcher,
//!   `--dump` and `--verify`;
//! - [`interp`]: the interpreter, the oracle every backend is tested against;
//! - [`syscall`]: Linux system calls and the guest's streams;
//! - [`machine`]: the whole guest machine and how a run ends;
//! - [`loader`]: ELF files into guest memory;
//! - [`memory`]: the 4 GiB arena, the memory map, the devices;
//! - [`guest`]: the ISA: decoding, disassembly, the CPU state;
//! - [`streams`]: the guest's standard streams and files;
//! - [`stats`]: the counters a run reports.

pub mod backend;
pub mod engine;
pub mod gdb;
pub mod guest;
pub mod host;
pub mod interp;
pub mod jit;
pub mod listing;
pub mod loader;
pub mod machine;
pub mod memory;
pub mod runner;
pub mod stats;
pub mod streams;
pub mod symbols;
pub mod syscall;
pub mod trace;

pub use engine::{Engine, EngineError, Guest, GuestOptions, Input, Outcome, Output, StopHandle};
pub use jit::access::MemMode;
pub use jit::JitConfig;
pub use machine::{EcallHandler, Exit, HostCall, MachineConfig};
pub use runner::Backend;
