//! Embeds rvdbt: runs several bundled guest programs at once, each on its own thread
//! with its own backend, and prints how each ended and what it wrote.
//!
//!     cargo run --release --example embed [PROGRAM.elf ...]
//!
//! Without arguments it runs a few of `guest-programs/bin`; stdin-wc gets a line of
//! input from a buffer, and bad-syscall's unknown syscall is answered by the host.

use rvdbt::{Backend, Engine, GuestOptions, Input};
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("guest-programs/bin");
    let mut programs: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if programs.is_empty() {
        programs = ["hello", "fib", "stdin-wc", "bad-syscall", "bad-wild", "smc"]
            .iter()
            .map(|name| bin.join(format!("{name}.elf")))
            .collect();
    }
    let engine = Engine::new()?;
    let backends = [Backend::Tiered, Backend::Direct, Backend::Cranelift, Backend::Interp];
    let results = std::thread::scope(|s| {
        let threads: Vec<_> = programs
            .iter()
            .zip(backends.iter().cycle())
            .map(|(path, &backend)| {
                let engine = engine.clone();
                s.spawn(move || {
                    let options = GuestOptions {
                        backend,
                        stdin: Input::Buffer(b"one two three\n".to_vec()),
                        // The host's answer to a syscall rvdbt does not know.
                        ecall_handler: Some(Box::new(|call| (call.nr == 999).then_some(42))),
                        ..GuestOptions::default()
                    };
                    let mut guest = engine.guest_from_path(path, options)?;
                    let outcome = guest.run()?;
                    Ok::<_, rvdbt::EngineError>((path, backend, outcome, guest.stdout().to_vec()))
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("guest thread")).collect::<Vec<_>>()
    });
    for result in results {
        let (path, backend, outcome, stdout) = result?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let (exit, status, retired) = (outcome.exit, outcome.status, outcome.retired);
        println!("{name} on {}: {exit}; exit status {status}, {retired} instructions", backend.name());
        if let Some(diagnostic) = outcome.diagnostic {
            println!("  {diagnostic}");
        }
        for line in String::from_utf8_lossy(&stdout).lines().take(3) {
            println!("  | {line}");
        }
    }
    Ok(())
}
