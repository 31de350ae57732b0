#!/usr/bin/env python3
"""A JIT inside the guest: guest-programs/bin/jit-loop.elf writes a small function, runs
fence.i and calls it 200 times, round after round. Times whole processes on every rvdbt
backend and on qemu-riscv32 (runs alternate between configurations; best of --repeat),
and prints each against the interpreter.

    cargo build --release && python3 benches/jit_loop.py [--rounds N] [--repeat K]
"""
import argparse
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RVDBT = ROOT / "target" / "release" / "rvdbt"
PROGRAM = ROOT / "guest-programs" / "bin" / "jit-loop.elf"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20000, help="code rewrites (default 20000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per configuration (best counts)")
    args = ap.parse_args()
    configs = {b: [str(RVDBT), "run", "--backend", b, str(PROGRAM), "--", str(args.rounds)]
               for b in ("interp", "tiered", "direct", "cranelift")}
    if shutil.which("qemu-riscv32"):
        configs["qemu-riscv32"] = ["qemu-riscv32", str(PROGRAM), str(args.rounds)]
    best, outputs = {}, {}
    for _ in range(args.repeat):
        for name, cmd in configs.items():
            start = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, check=True).stdout
            elapsed = time.perf_counter() - start
            best[name] = min(best.get(name, elapsed), elapsed)
            outputs.setdefault(name, out)
    reference = outputs["interp"]
    print(f"jit-loop, {args.rounds} rounds (best of {args.repeat}, seconds, whole process)")
    for name, secs in best.items():
        same = "same output" if outputs[name] == reference else "OUTPUT DIFFERS"
        print(f"  {name:14} {secs:7.3f}  {secs / best['interp']:5.2f}x the interpreter  ({same})")


if __name__ == "__main__":
    main()
