//! `rvdbt run --gdb PORT`: the remote stub driven over TCP.
//!
//! The protocol tests speak the gdb remote serial protocol directly (packets with
//! checksums and acks): qSupported, the target description, `?`, `g`/`G`, `p`/`P`,
//! `m`/`M` (including unmapped memory), `Z0`/`z0`, `c`, `s`, stop replies for
//! breakpoints, steps, faults (SIGSEGV) and exit (`W`), and termination by a delivered
//! signal (`vCont;C0b` -> `X0b`, exit status 139), Ctrl-C and detach. When `gdb-multiarch` is installed, a real
//! gdb session runs too (breakpoint at a function, continue, registers, memory, stepi,
//! continue to exit). Every test says which one ran. The stub listens on a port the
//! kernel picks (`--gdb 0`, printed on stderr), and every read has a timeout.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);

/// Prints on the real stderr, past the test harness's capture, so that every run shows
/// which variant ran.
fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// exit(a0) after a few steps with a store and a load (no symbols).
fn program() -> Vec<u32> {
    vec![
        addi(A0, ZERO, 5),  // 10000
        addi(A0, A0, 1),    // 10004
        lui(T0, 0x20),      // 10008  <- breakpoint
        sw(T0, A0, 0),      // 1000c
        lw(A1, T0, 0),      // 10010
        addi(A7, ZERO, 93), // 10014
        ecall(),            // 10018
    ]
}

/// A program whose load faults (address 16 is unmapped).
fn faulting_program() -> Vec<u32> {
    vec![addi(A0, ZERO, 1), lw(A1, ZERO, 16), addi(A7, ZERO, 93), ecall()]
}

/// A temporary ELF file, removed when dropped.
struct TempElf(PathBuf);

impl TempElf {
    fn new(name: &str, text: &[u32]) -> TempElf {
        let path = std::env::temp_dir().join(format!("rvdbt-gdb-test-{}-{name}.elf", std::process::id()));
        std::fs::write(&path, elf_image(text, &[0; 16], 0)).expect("write ELF");
        TempElf(path)
    }
}

impl Drop for TempElf {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// rvdbt serving gdb; killed when dropped (a failing test leaves nothing behind).
struct Stub {
    child: Option<Child>,
    port: u16,
    stderr: mpsc::Receiver<String>,
}

impl Stub {
    fn start(program: &Path, extra: &[&str]) -> Stub {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rvdbt"))
            .arg("run")
            .args(extra)
            .args(["--gdb", "0"])
            .arg(program)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rvdbt");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr pipe");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stub = Stub { child: Some(child), port: 0, stderr: rx };
        let line = stub.stderr.recv_timeout(TIMEOUT).expect("rvdbt announces its port");
        let port = line.split("127.0.0.1:").nth(1).and_then(|rest| rest.split(' ').next());
        stub.port = port.and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no port in {line:?}"));
        stub
    }

    fn connect(&self) -> Remote {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the stub");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        Remote { stream }
    }

    /// Waits for rvdbt to end (with a timeout) and returns its status, stdout, stderr.
    fn finish(mut self) -> (Option<i32>, String, String) {
        let mut child = self.child.take().expect("running");
        let deadline = std::time::Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(std::time::Instant::now() < deadline, "rvdbt did not end");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        child.stdout.take().expect("stdout").read_to_string(&mut out).unwrap();
        // The reader thread ends at the pipe's end of file, which follows the exit.
        let mut err = Vec::new();
        while let Ok(line) = self.stderr.recv_timeout(TIMEOUT) {
            err.push(line);
        }
        (status.code(), out, err.join("\n"))
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A minimal gdb remote protocol client.
struct Remote {
    stream: TcpStream,
}

fn checksum(data: &str) -> u8 {
    data.bytes().fold(0u8, |s, b| s.wrapping_add(b))
}

impl Remote {
    fn byte(&mut self) -> u8 {
        let mut b = [0u8];
        self.stream.read_exact(&mut b).expect("read from the stub (timeout?)");
        b[0]
    }

    /// Sends one packet and returns the reply's payload (checksum verified, acked).
    fn ask(&mut self, packet: &str) -> String {
        let framed = format!("${packet}#{:02x}", checksum(packet));
        self.stream.write_all(framed.as_bytes()).expect("send");
        assert_eq!(self.byte(), b'+', "stub acks {packet}");
        self.reply()
    }

    /// Reads one reply packet (for `c`/`s`, the stop reply).
    fn reply(&mut self) -> String {
        while self.byte() != b'$' {}
        let mut payload = Vec::new();
        loop {
            match self.byte() {
                b'#' => break,
                b => payload.push(b),
            }
        }
        let sum = [self.byte(), self.byte()];
        let payload = String::from_utf8(payload).expect("ASCII reply");
        let sum = u8::from_str_radix(std::str::from_utf8(&sum).unwrap(), 16).expect("hex checksum");
        assert_eq!(sum, checksum(&payload), "checksum of {payload:?}");
        self.stream.write_all(b"+").expect("ack");
        run_length_decode(&payload)
    }
}

/// Expands the protocol's run-length encoding: `c*N` repeats `c` N - 29 more times.
fn run_length_decode(payload: &str) -> String {
    let mut out = String::new();
    let mut chars = payload.chars();
    while let Some(c) = chars.next() {
        if c == '*' {
            let count = chars.next().expect("run length") as usize - 29;
            let last = out.chars().last().expect("a character to repeat");
            out.extend(std::iter::repeat_n(last, count));
        } else {
            out.push(c);
        }
    }
    out
}

/// Is `reply` a stop reply (`S` or `T`) for gdb signal `sig`?
fn stopped_with(reply: &str, sig: u8) -> bool {
    (reply.starts_with('S') || reply.starts_with('T')) && reply.get(1..3) == Some(format!("{sig:02x}").as_str())
}

/// A 32-bit value as gdb sends registers and memory words (little-endian hex).
fn le(v: u32) -> String {
    v.to_le_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Every engine the stub serves: the interpreter and each translating backend,
/// translating at once.
const ENGINES: [&[&str]; 4] = [
    &["--backend", "interp"],
    &["--backend", "direct", "--compile-after", "0"],
    &["--backend", "cranelift", "--compile-after", "0"],
    &["--backend", "tiered", "--compile-after", "0", "--tier-up", "2", "--no-compile-thread"],
];

#[test]
fn remote_protocol_session() {
    say("gdb stub test: speaking the remote protocol directly");
    for engine in ENGINES {
        session_on(engine);
    }
}

fn session_on(engine: &[&str]) {
    let elf = TempElf::new("session", &program());
    let stub = Stub::start(&elf.0, engine);
    let mut gdb = stub.connect();

    let features = gdb.ask("qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=riscv");
    assert!(features.contains("PacketSize="), "{features}");
    assert!(features.contains("qXfer:features:read+"), "{features}");
    let xml = gdb.ask("qXfer:features:read:target.xml:0,ffff");
    assert!(xml.starts_with('l') || xml.starts_with('m'), "{xml}");
    assert!(xml.contains("<architecture>riscv:rv32</architecture>"), "{xml}");
    let why = gdb.ask("?");
    assert!(stopped_with(&why, 5), "{why}");

    // All registers: x0..x31 then pc, 8 hex digits each; pc is the entry point.
    let regs = gdb.ask("g");
    assert_eq!(regs.len(), 33 * 8, "{regs}");
    assert_eq!(&regs[32 * 8..], le(TEXT_BASE));
    assert_eq!(gdb.ask("p20"), le(TEXT_BASE));

    // Memory: the first instruction, and an error for unmapped memory.
    assert_eq!(gdb.ask("m10000,4"), le(addi(A0, ZERO, 5)));
    assert!(gdb.ask("m0,4").starts_with('E'));
    assert!(gdb.ask("M0,4:00000000").starts_with('E'));

    // Breakpoint, continue: stopped before the lui, a0 = 6.
    assert_eq!(gdb.ask("Z0,10008,4"), "OK");
    let stop = gdb.ask("c");
    assert!(stopped_with(&stop, 5), "{stop}");
    assert_eq!(gdb.ask("p20"), le(0x10008));
    assert_eq!(gdb.ask("pa"), le(6));

    // Write a0 with P, a1 with G; read them back.
    assert_eq!(gdb.ask(&format!("Pa={}", le(42))), "OK");
    assert_eq!(gdb.ask("pa"), le(42));
    let mut regs = gdb.ask("g");
    regs.replace_range(11 * 8..12 * 8, &le(0x1234_5678));
    assert_eq!(gdb.ask(&format!("G{regs}")), "OK");
    assert_eq!(gdb.ask("pb"), le(0x1234_5678));

    // Step over the lui and the store; the store is visible through m; M writes.
    assert!(stopped_with(&gdb.ask("s"), 5));
    assert_eq!(gdb.ask("p20"), le(0x1000c));
    assert_eq!(gdb.ask("p5"), le(0x20000));
    assert!(stopped_with(&gdb.ask("s"), 5));
    assert_eq!(gdb.ask("m20000,4"), le(42));
    assert_eq!(gdb.ask(&format!("M20004,4:{}", le(7))), "OK");
    assert_eq!(gdb.ask("m20004,4"), le(7));

    // Remove the breakpoint and run to the exit: W with a0.
    assert_eq!(gdb.ask("z0,10008,4"), "OK");
    assert_eq!(gdb.ask("c"), "W2a");
    let (status, _, err) = stub.finish();
    assert_eq!(status, Some(42), "{engine:?}: {err}");
}

#[test]
fn breakpoints_inside_translated_loops_stop_every_iteration() {
    say("gdb stub test: speaking the remote protocol directly");
    // li a0,0; li t0,5; loop: addi a0,a0,1; addi t1,a0,0 (breakpoint); addi t0,t0,-1;
    // bnez t0,loop; li a7,93; ecall. The loop block is translated (and, tiered, tiered
    // up) with the breakpoint inside it.
    let text = [
        addi(A0, ZERO, 0),
        addi(T0, ZERO, 5),
        addi(A0, A0, 1),
        addi(T1, A0, 0),
        addi(T0, T0, -1),
        bne(T0, ZERO, -12),
        addi(A7, ZERO, 93),
        ecall(),
    ];
    for engine in ENGINES {
        let elf = TempElf::new("loop", &text);
        let stub = Stub::start(&elf.0, engine);
        let mut gdb = stub.connect();
        let _ = gdb.ask("qSupported:swbreak+");
        assert_eq!(gdb.ask("Z0,1000c,4"), "OK");
        for round in 1..=5u32 {
            let stop = gdb.ask("c");
            assert!(stopped_with(&stop, 5), "{engine:?} round {round}: {stop}");
            assert_eq!(gdb.ask("p20"), le(0x1000c), "{engine:?} round {round}");
            assert_eq!(gdb.ask("pa"), le(round), "{engine:?} round {round}");
            assert_eq!(gdb.ask("p6"), le(round - 1), "{engine:?}: t1 not yet written");
        }
        // A single step from the breakpoint runs exactly the instruction there.
        assert!(stopped_with(&gdb.ask("s"), 5));
        assert_eq!(gdb.ask("p20"), le(0x10010));
        assert_eq!(gdb.ask("p6"), le(5));
        assert_eq!(gdb.ask("c"), "W05", "{engine:?}");
        let (status, _, err) = stub.finish();
        assert_eq!(status, Some(5), "{engine:?}: {err}");
    }
}

#[test]
fn remote_protocol_fault_stops_with_sigsegv() {
    say("gdb stub test: speaking the remote protocol directly");
    let elf = TempElf::new("fault", &faulting_program());
    let stub = Stub::start(&elf.0, &["--backend", "cranelift"]);
    let mut gdb = stub.connect();
    let _ = gdb.ask("qSupported:swbreak+");
    // The load faults: SIGSEGV (11), the state is as before the load.
    let stop = gdb.ask("c");
    assert!(stopped_with(&stop, 11), "{stop}");
    assert_eq!(gdb.ask("p20"), le(0x10004));
    assert_eq!(gdb.ask("pa"), le(1));
    // Continuing without the signal runs the load again.
    assert!(stopped_with(&gdb.ask("c"), 11));
    // Delivering it terminates the guest as the kernel would.
    assert_eq!(gdb.ask("vCont;C0b"), "X0b");
    let (status, _, err) = stub.finish();
    assert_eq!(status, Some(139), "{err}");
    assert!(err.contains("load access fault"), "{err}");
}

#[test]
fn remote_protocol_interrupt_and_detach() {
    say("gdb stub test: speaking the remote protocol directly");
    // li a0,3; j .; li a7,93; ecall
    let text = [addi(A0, ZERO, 3), j_type(ZERO, 0), addi(A7, ZERO, 93), ecall()];
    let elf = TempElf::new("interrupt", &text);
    let stub = Stub::start(&elf.0, &[]);
    let mut gdb = stub.connect();
    let _ = gdb.ask("qSupported:swbreak+");
    // Continue into the endless loop, then Ctrl-C (a raw 0x03 byte): SIGINT.
    let framed = format!("$c#{:02x}", checksum("c"));
    gdb.stream.write_all(framed.as_bytes()).unwrap();
    assert_eq!(gdb.byte(), b'+');
    std::thread::sleep(Duration::from_millis(100));
    gdb.stream.write_all(&[0x03]).unwrap();
    let stop = gdb.reply();
    assert!(stopped_with(&stop, 2), "{stop}");
    assert_eq!(gdb.ask("p20"), le(0x10004));
    // Jump out of the loop and detach: the guest runs on to its exit.
    assert_eq!(gdb.ask(&format!("P20={}", le(0x10008))), "OK");
    assert_eq!(gdb.ask("D"), "OK");
    let (status, _, err) = stub.finish();
    assert_eq!(status, Some(3), "{err}");
    assert!(err.contains("gdb detached"), "{err}");
}

#[test]
fn gdb_multiarch_session() {
    let gdb = "gdb-multiarch";
    if Command::new(gdb).arg("--version").output().is_err() {
        say(&format!("gdb stub test: {gdb} is not installed; the remote protocol tests ran instead"));
        return;
    }
    say(&format!("gdb stub test: driving {gdb}"));
    let hello = Path::new("guest-programs/bin/hello.elf");
    let stub = Stub::start(hello, &[]);
    let target = format!("target remote 127.0.0.1:{}", stub.port);
    let output = Command::new("timeout")
        .args(["60", gdb, "-batch", "-nx"])
        .args(["-ex", "set confirm off", "-ex", "file guest-programs/bin/hello.elf", "-ex", &target])
        .args(["-ex", "break *sys_write", "-ex", "continue"])
        .args(["-ex", "info registers pc a7", "-ex", "x/2xw $sp", "-ex", "x/s $a1"])
        .args(["-ex", "stepi", "-ex", "info registers pc", "-ex", "delete", "-ex", "continue"])
        .stdin(Stdio::null())
        .output()
        .expect("run gdb");
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    for expected in [
        "Breakpoint 1, 0x80000050 in sys_write ()",
        "pc             0x80000050",
        "a7             0x",
        "\"Hello, world!\\n\"",
        "pc             0x80000054",
        "[Inferior 1 (process 1) exited normally]",
    ] {
        assert!(text.contains(expected), "gdb output lacks {expected:?}:\n{text}");
    }
    let (status, out, err) = stub.finish();
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(out, "Hello, world!\n");
}
