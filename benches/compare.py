#!/usr/bin/env python3
"""Side-by-side run times of the bundled guest programs: rvdbt's backends and memory
modes, qemu-riscv32 (when installed) and native x86-64 builds of the same C (built here
with the host `cc` against the same runtime, with its x86-64 entry and syscalls), in one
run so the ratios are comparable.

    cargo build --release && python3 benches/compare.py [--repeat N] [--json FILE] [PROGRAMS...]
    python3 benches/compare.py --isa-builds [--repeat N] [PROGRAMS...]

Each configuration runs N times (default 3); the fastest time counts. Mode-to-mode
ratios use rvdbt's guest run time (--stats-json wall_ns); the comparison with qemu
uses whole-process times for both. Prints a table and, with --json FILE, writes every
measurement.

--isa-builds compares instead the rv32im build of each program (bin/NAME.elf) with its
rv32imac build (bin/imac/NAME.elf, compressed code) on each translating backend: the
CPU time (user + system) of the whole rvdbt process, which other load on the machine
disturbs far less than wall time, and its ratio (imac / im; above 1 the compressed build
is slower). The two builds of a configuration run alternately, so what noise remains
hits both alike.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "rvdbt")
PROGRAMS = os.path.join(ROOT, "guest-programs")
DEFAULT = ["fib", "sieve", "qsort", "matmul", "crc32", "sha256", "strings", "malloc", "memheavy", "mixed-regions"]
# mixed-regions uses the UART: its native build cannot run (nor can qemu-riscv32 run it).


def guest_args(name):
    path = os.path.join(PROGRAMS, "expected", name + ".args")
    return open(path).read().split("\n")[:-1] if os.path.exists(path) else []


def run_rvdbt(name, extra, repeat, bin_dir="bin"):
    """Best run by guest time; `process_ns` is the best whole-process time and `cpu_ns`
    the least CPU time (user + system) of the process."""
    elf = os.path.join(PROGRAMS, bin_dir, name + ".elf")
    best, process, cpu = None, None, None
    for _ in range(repeat):
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            cmd = [BIN, "run", *extra, "--stats-json", f.name, elf, "--", *guest_args(name)]
            t0 = time.perf_counter_ns()
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
            _, _, usage = os.wait4(p.pid, 0)
            ns = time.perf_counter_ns() - t0
            stats = json.load(open(f.name))
        process = ns if process is None else min(process, ns)
        used = int((usage.ru_utime + usage.ru_stime) * 1e9)
        cpu = used if cpu is None else min(cpu, used)
        if best is None or stats["wall_ns"] < best["wall_ns"]:
            best = stats
    best["process_ns"] = process
    best["cpu_ns"] = cpu
    return best


def run_qemu(name, repeat):
    qemu = shutil.which("qemu-riscv32")
    if not qemu:
        return None
    elf = os.path.join(PROGRAMS, "bin", name + ".elf")
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        subprocess.run([qemu, elf, *guest_args(name)], stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        ns = time.perf_counter_ns() - t0
        best = ns if best is None else min(best, ns)
    return best


def build_native(name, out_dir):
    """Builds guest-programs/src/NAME.c for x86-64 with the same runtime; None if no cc."""
    cc = shutil.which("cc")
    if not cc:
        return None
    rt = os.path.join(PROGRAMS, "runtime")
    exe = os.path.join(out_dir, name)
    cmd = [cc, "-O2", "-std=gnu11", "-ffreestanding", "-fno-builtin", "-nostdlib", "-static", "-fno-pie",
           "-no-pie", "-fno-stack-protector", "-fno-tree-loop-distribute-patterns", "-I" + rt,
           os.path.join(PROGRAMS, "src", name + ".c"),
           *[os.path.join(rt, f) for f in ("printf.c", "malloc.c", "string.c", "syscalls.c", "crt0_x86_64.S")],
           "-lgcc",
           "-o", exe]
    if subprocess.run(cmd, stderr=subprocess.DEVNULL).returncode != 0:
        return None
    return exe


def run_native(exe, name, repeat):
    """Best time of the native build; None unless it prints exactly the expected output."""
    expected = open(os.path.join(PROGRAMS, "expected", name + ".stdout"), "rb").read()
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        out = subprocess.run([exe, *guest_args(name)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        ns = time.perf_counter_ns() - t0
        if out.returncode != 0 or out.stdout != expected:
            return None
        best = ns if best is None else min(best, ns)
    return best


def isa_builds(a):
    """The rv32im and rv32imac builds of each program side by side, per backend."""
    configs = [
        ("cranelift", ["--backend", "cranelift"]),
        ("direct", ["--backend", "direct"]),
        ("tiered", ["--backend", "tiered"]),
    ]
    results = {}
    print("process CPU times in ms, best of %d; imac/im = rv32imac build over rv32im build" % a.repeat)
    head = f"{'program':<9} {'Minsns':>7}"
    for c, _ in configs:
        head += f" | {c + ' im':>13} {'imac':>8} {'imac/im':>7}"
    head += f" | {'code im':>7} {'imac':>6}"
    print(head)
    ratios = {c: [] for c, _ in configs}
    for name in a.programs:
        if not os.path.exists(os.path.join(PROGRAMS, "bin", "imac", name + ".elf")):
            print(f"{name:<9} (no rv32imac build)")
            continue
        row = {}
        for c, extra in configs:
            best = {"im": None, "imac": None}
            for _ in range(a.repeat):
                for build, bin_dir in (("im", "bin"), ("imac", "bin/imac")):
                    r = run_rvdbt(name, extra, 1, bin_dir)
                    if best[build] is None or r["cpu_ns"] < best[build]["cpu_ns"]:
                        best[build] = r
            row[c] = best
        results[name] = row
        first = row[configs[0][0]]
        line = f"{name:<9} {first['im']['guest_instructions'] / 1e6:>7.2f}"
        for c, _ in configs:
            im, imac = row[c]["im"]["cpu_ns"], row[c]["imac"]["cpu_ns"]
            ratios[c].append(imac / im)
            line += f" | {im / 1e6:>13.2f} {imac / 1e6:>8.2f} {imac / im:>7.3f}"
        line += f" | {first['im']['code_bytes']:>7} {first['imac']['code_bytes']:>6}"
        print(line, flush=True)
    line = f"{'geomean':<9} {'':>7}"
    for c, _ in configs:
        rs = ratios[c]
        g = 1.0
        for r in rs:
            g *= r
        g = g ** (1 / len(rs)) if rs else float("nan")
        line += f" | {'':>13} {'':>8} {g:>7.3f}"
    print(line)
    print("Minsns: guest instructions (the same for both builds); code: host code bytes compiled (first backend).")
    if a.json:
        json.dump(results, open(a.json, "w"), indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write all measurements here")
    ap.add_argument("--isa-builds", action="store_true", help="compare the rv32im and rv32imac builds")
    ap.add_argument("programs", nargs="*", default=DEFAULT)
    a = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    if a.isa_builds:
        return isa_builds(a)
    configs = [
        ("interp", ["--backend", "interp"]),
        ("calls", ["--mem", "calls"]),
        ("adaptive", ["--mem", "adaptive"]),
        ("fastmem", ["--mem", "fastmem"]),
    ]
    results = {}
    native_dir = tempfile.mkdtemp(prefix="rvdbt-native-")
    print("guest run times in ms, best of %d; speedups are ratios of those times" % a.repeat)
    head = f"{'program':<9} {'Minsns':>7}" + "".join(f" {c:>9}" for c, _ in configs)
    head += f" {'ad proc':>7} {'qemu':>7} {'native':>7} | {'ad/int':>6} {'ad/call':>7} {'fm/call':>7}"
    head += f" {'qemu/ad':>7} {'ad/nat':>6}"
    head += f" | {'blocks':>6} {'us/blk':>6} {'ns/ins':>6} {'recomp':>6} {'faults':>6}"
    print(head)
    for name in a.programs:
        row = {c: run_rvdbt(name, extra, a.repeat) for c, extra in configs}
        qemu = run_qemu(name, a.repeat)
        exe = build_native(name, native_dir)
        native = run_native(exe, name, a.repeat) if exe else None
        results[name] = {"rvdbt": row, "qemu_ns": qemu, "native_ns": native}
        t = {c: row[c]["wall_ns"] for c, _ in configs}
        ad = row["adaptive"]
        line = f"{name:<9} {ad['guest_instructions'] / 1e6:>7.2f}"
        line += "".join(f" {t[c] / 1e6:>9.2f}" for c, _ in configs)
        line += f" {ad['process_ns'] / 1e6:>7.2f}"
        line += f" {qemu / 1e6:>7.2f}" if qemu else f" {'-':>7}"
        line += f" {native / 1e6:>7.2f}" if native else f" {'-':>7}"
        line += f" | {t['interp'] / t['adaptive']:>6.1f} {t['calls'] / t['adaptive']:>7.2f}"
        line += f" {t['calls'] / t['fastmem']:>7.2f}"
        line += f" {qemu / ad['process_ns']:>7.2f}" if qemu else f" {'-':>7}"
        line += f" {ad['process_ns'] / native:>6.1f}" if native else f" {'-':>6}"
        blocks = max(ad["blocks_compiled"], 1)
        line += f" | {ad['blocks_compiled']:>6} {ad['compile_ns'] / blocks / 1e3:>6.1f}"
        line += f" {ad['compile_ns'] / max(ad['guest_insns_compiled'], 1):>6.0f}"
        line += f" {ad['recompiles']:>6} {row['fastmem']['faults_handled']:>6}"
        print(line, flush=True)
    print("ad = --mem adaptive, fm = --mem fastmem, call = --mem calls, int = interpreter;")
    print("ad proc: whole rvdbt process (adaptive); qemu/ad: qemu-riscv32's process time over rvdbt's")
    print("(> 1: rvdbt is faster); ad/nat: rvdbt's process time over the native x86-64 build's;")
    print("the mode ratios use guest run times (--stats-json wall_ns);")
    print("us/blk and ns/ins: Cranelift compile time per block and per guest instruction (adaptive);")
    print("recomp: adaptive recompiles; faults: inline accesses repaired in fastmem mode.")
    shutil.rmtree(native_dir, ignore_errors=True)
    if a.json:
        json.dump(results, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
