#!/usr/bin/env python3
"""Side-by-side run times of the bundled guest programs: rvdbt's backends and memory
modes, qemu-riscv32 (when installed), in one run so the ratios are comparable.

    cargo build --release && python3 benches/compare.py [--repeat N] [--mem MODES] [PROGRAMS...]

Each configuration runs N times (default 3); the fastest wall time counts. rvdbt's
own times come from --stats-json (guest run time, without process start-up); qemu's
is the whole process. Prints a table and, with --json FILE, writes every measurement.
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
DEFAULT = ["fib", "sieve", "qsort", "matmul", "crc32", "sha256", "strings", "malloc", "memheavy"]


def guest_args(name):
    path = os.path.join(PROGRAMS, "expected", name + ".args")
    return open(path).read().split("\n")[:-1] if os.path.exists(path) else []


def run_rvdbt(name, extra, repeat):
    elf = os.path.join(PROGRAMS, "bin", name + ".elf")
    best = None
    for _ in range(repeat):
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            cmd = [BIN, "run", *extra, "--stats-json", f.name, elf, "--", *guest_args(name)]
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, check=False)
            stats = json.load(open(f.name))
        if best is None or stats["wall_ns"] < best["wall_ns"]:
            best = stats
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mem", default="", help="comma-separated --mem modes to compare (e.g. calls,adaptive,fastmem)")
    ap.add_argument("--json", help="write all measurements here")
    ap.add_argument("programs", nargs="*", default=DEFAULT)
    a = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    configs = [("interp", ["--backend", "interp"]), ("cranelift", ["--backend", "cranelift"])]
    for mode in filter(None, a.mem.split(",")):
        configs.append((f"cl-{mode}", ["--backend", "cranelift", "--mem", mode]))
    results = {}
    head = f"{'program':<10} {'Minsns':>8}" + "".join(f" {c:>12}" for c, _ in configs)
    head += f" {'qemu ms':>9} {'cl/interp':>9} {'qemu/cl':>8} {'blocks':>7} {'us/block':>8} {'ns/insn':>8}"
    print("times in ms (guest run, best of %d)" % a.repeat)
    print(head)
    for name in a.programs:
        row = {c: run_rvdbt(name, extra, a.repeat) for c, extra in configs}
        qemu = run_qemu(name, a.repeat)
        results[name] = {"rvdbt": row, "qemu_ns": qemu}
        cl = row["cranelift"]
        line = f"{name:<10} {cl['guest_instructions'] / 1e6:>8.2f}"
        line += "".join(f" {row[c]['wall_ns'] / 1e6:>12.2f}" for c, _ in configs)
        line += f" {qemu / 1e6:>9.2f}" if qemu else f" {'-':>9}"
        line += f" {row['interp']['wall_ns'] / cl['wall_ns']:>9.1f}"
        line += f" {qemu / cl['wall_ns']:>8.2f}" if qemu else f" {'-':>8}"
        blocks = max(cl["blocks_compiled"], 1)
        line += f" {cl['blocks_compiled']:>7} {cl['compile_ns'] / blocks / 1e3:>8.1f}"
        line += f" {cl['compile_ns'] / max(cl['guest_insns_compiled'], 1):>8.0f}"
        print(line, flush=True)
    if a.json:
        json.dump(results, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
