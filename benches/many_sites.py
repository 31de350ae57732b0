#!/usr/bin/env python3
"""Bookkeeping against code size: a generated guest program with millions of distinct load
sites (straight-line `lw` from a data page, the whole body run --passes times), run under
`/usr/bin/time -v` on the interpreter and on the translating backends. Prints wall time
and peak resident memory of each; rvdbt's access records and fault-map entries are
bounded by --code-cache with the code, so translated runs stay near the interpreter's.

    cargo build --release && python3 benches/many_sites.py [--sites N] [--passes P]
"""
import argparse
import re
import struct
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RVDBT = ROOT / "target" / "release" / "rvdbt"
TEXT, DATA = 0x2000_0000, 0x3000_0000


def i_type(op, f3, rd, rs1, imm):
    return op | rd << 7 | f3 << 12 | rs1 << 15 | (imm & 0xFFF) << 20


def lui(rd, imm20):
    return 0x37 | rd << 7 | (imm20 & 0xFFFFF) << 12


def b_type(f3, rs1, rs2, off):
    o = off & 0x1FFF
    return (0x63 | ((o >> 11) & 1) << 7 | ((o >> 1) & 0xF) << 8 | f3 << 12 | rs1 << 15 | rs2 << 20
            | ((o >> 5) & 0x3F) << 25 | ((o >> 12) & 1) << 31)


def program(sites, passes):
    """ELF bytes: s1 = passes; body: `sites` loads (t0 = lw off(gp)); s1 -= 1; loop back
    through an absolute jump while s1 != 0; exit(0)."""
    gp, s1, t0, t1, a0, a7 = 3, 9, 5, 6, 10, 17
    words = [lui(gp, DATA >> 12), i_type(0x13, 0, s1, 0, passes)]
    body = len(words)
    words += [i_type(0x03, 2, t0, gp, (i * 4) % 2048) for i in range(sites)]
    words.append(i_type(0x13, 0, s1, s1, -1))
    words.append(b_type(0, s1, 0, 12))  # beq s1, zero, +12 (to the exit)
    target = TEXT + 4 * body
    words += [lui(t1, (target + 0x800) >> 12), i_type(0x67, 0, 0, t1, target - ((target + 0x800) >> 12 << 12))]
    words += [i_type(0x13, 0, a0, 0, 0), i_type(0x13, 0, a7, 0, 93), 0x73]
    text = struct.pack(f"<{len(words)}I", *words)
    text_off = 0x1000
    data_off = text_off + ((len(text) + 0xFFF) & ~0xFFF)
    head = b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8)
    head += struct.pack("<HHIIIIIHHHHHH", 2, 243, 1, TEXT, 52, 0, 0, 52, 32, 2, 40, 0, 0)
    head += struct.pack("<8I", 1, text_off, TEXT, TEXT, len(text), len(text), 5, 0x1000)
    head += struct.pack("<8I", 1, data_off, DATA, DATA, 0, 0x1000, 6, 0x1000)
    image = head + bytes(text_off - len(head)) + text
    return image + bytes(data_off - len(image))


def measure(cmd):
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", r.stderr).group(1)
    secs = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall.split(":"))))
    return r.returncode, secs, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=4_000_000, help="distinct load sites (default 4,000,000)")
    ap.add_argument("--passes", type=int, default=3, help="runs of the whole body (default 3)")
    ap.add_argument("--rvdbt", default=str(RVDBT), help="the rvdbt binary (default: this tree's release build)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        elf = Path(tmp) / "many-sites.elf"
        elf.write_bytes(program(args.sites, args.passes))
        print(f"{args.sites} load sites, {args.passes} passes: wall seconds, peak RSS")
        # Warm-up counts and profiled accesses of interpreted code (the default), and
        # translations of every block at once (Cranelift's ~1 ms per block is left out).
        runs = [["interp"], ["tiered"], ["tiered", "--compile-after", "0"], ["direct", "--compile-after", "0"]]
        for backend, *extra in runs:
            code, secs, rss = measure([args.rvdbt, "run", "--backend", backend, *extra, str(elf)])
            label = " ".join([backend, *extra])
            print(f"  {label:28} exit {code}  {secs:6.2f} s  {rss / 1024:7.1f} MiB")


if __name__ == "__main__":
    main()
