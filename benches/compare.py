#!/usr/bin/env python3
"""Side-by-side run times of the bundled guest programs: each rvdbt backend (interp,
direct, cranelift, tiered), qemu-riscv32 (when installed) and native x86-64 builds of
the same C (built here with the host `cc` against the same runtime, with its x86-64
entry and syscalls), in one run so the ratios are comparable. Runs alternate between
the configurations (round-robin), so machine noise spreads over all of them.

    cargo build --release && python3 benches/compare.py [--repeat N] [--json FILE]
        [--svg FILE] [--modes] [--long] [PROGRAMS...]
    python3 benches/compare.py --isa-builds [--repeat N] [PROGRAMS...]

Times are whole-process wall times, best of N runs (default 5). Prints a table of
milliseconds and of slowdowns against native, geometric means, and rvdbt's compile
statistics; --svg draws the slowdown against native per program and backend; --modes
adds the memory modes of the Cranelift backend (guest run times, from --stats-json).

--isa-builds compares instead the rv32im build of each program (bin/NAME.elf) with its
rv32imac build (bin/imac/NAME.elf, compressed code) on each translating backend: the
CPU time (user + system) of the whole rvdbt process, which other load on the machine
disturbs far less than wall time, and its ratio (imac / im; above 1 the compressed build
is slower). The two builds of a configuration run alternately, so what noise remains
hits both alike.

--long runs the long-running benchmark programs (guest-programs/src/bench-*.c) at their
default size (no argument: 1-3 s each under qemu-riscv32) instead of the short programs,
best of 3 unless --repeat says otherwise. Their expected/ files are for the small size the
tests use, so each configuration's stdout is checked against the native build's stdout
(qemu's when there is no native build). The interpreter is left out (it would take tens of
seconds per run); the tables name the programs without the "bench-" prefix.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "rvdbt")
PROGRAMS = os.path.join(ROOT, "guest-programs")
DEFAULT = ["hello", "fib", "sieve", "qsort", "matmul", "crc32", "sha256", "strings", "malloc", "memheavy"]
LONG = ["bench-coremark", "bench-dhrystone", "bench-sieve", "bench-primes", "bench-matmul", "bench-hash",
        "bench-aes", "bench-sort"]
BACKENDS = ["interp", "direct", "cranelift", "tiered"]
MODES = ["calls", "adaptive", "fastmem"]


def guest_args(name):
    path = os.path.join(PROGRAMS, "expected", name + ".args")
    return open(path).read().split("\n")[:-1] if os.path.exists(path) else []


def expected_stdout(name):
    return open(os.path.join(PROGRAMS, "expected", name + ".stdout"), "rb").read()


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


class Config:
    """One way of running a program: a command, and whether it reports rvdbt stats."""

    def __init__(self, label, cmd, stats):
        self.label, self.cmd, self.stats = label, cmd, stats
        self.best_ns, self.best_stats, self.ok = None, None, True

    def run_once(self, expected):
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            cmd = self.cmd
            if self.stats:
                # rvdbt's own options go before the program.
                cmd = self.cmd[:2] + ["--stats-json", f.name] + self.cmd[2:]
            t0 = time.perf_counter_ns()
            out = subprocess.run(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ns = time.perf_counter_ns() - t0
            if out.stdout != expected:
                self.ok = False
                return
            stats = json.load(open(f.name)) if self.stats else None
        if self.best_ns is None or ns < self.best_ns:
            self.best_ns = ns
        if stats and (self.best_stats is None or stats["wall_ns"] < self.best_stats["wall_ns"]):
            self.best_stats = stats


def configs_for(name, native_exe, modes, long=False):
    elf = os.path.join(PROGRAMS, "bin", name + ".elf")
    args = [] if long else guest_args(name)
    backends = [b for b in BACKENDS if not (long and b == "interp")]
    out = [Config(b, [BIN, "run", "--backend", b, elf, "--", *args], True) for b in backends]
    if modes:
        out += [Config("cl-" + m, [BIN, "run", "--backend", "cranelift", "--mem", m, elf, "--", *args], True)
                for m in MODES]
    qemu = shutil.which("qemu-riscv32")
    if qemu:
        out.append(Config("qemu", [qemu, elf, *args], False))
    if native_exe:
        out.append(Config("native", [native_exe, *args], False))
    return out


def reference_stdout(name, native_exe):
    """--long: the stdout of the default size, from the native build (or qemu-riscv32)."""
    cmd = [native_exe] if native_exe else None
    if not cmd and shutil.which("qemu-riscv32"):
        cmd = [shutil.which("qemu-riscv32"), os.path.join(PROGRAMS, "bin", name + ".elf")]
    if not cmd:
        sys.exit(f"{name}: --long needs a native build (cc) or qemu-riscv32 for the reference output")
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if out.returncode != 0:
        sys.exit(f"{name}: the reference run ({cmd[0]}) exited with {out.returncode}")
    return out.stdout


def geomean(xs):
    xs = [x for x in xs if x]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def svg_chart(rows, labels, path):
    """Grouped bars: slowdown against native (log scale) per program and configuration."""
    colors = {"interp": "#999999", "direct": "#e6862a", "cranelift": "#3b75af", "tiered": "#519e3e",
              "qemu": "#c03d3e"}
    labels = [l for l in labels if l in colors]
    names = [n for n in rows if rows[n].get("native")]
    if not names:
        return
    width, height, left, top, bottom = 120 + 70 * len(names), 420, 60, 40, 60
    plot_h = height - top - bottom
    vmax = max(rows[n][l] / rows[n]["native"] for n in names for l in labels if rows[n].get(l))
    ymax = 10 ** math.ceil(math.log10(max(vmax, 10)))

    def y(v):
        return top + plot_h * (1 - math.log10(max(v, 1)) / math.log10(ymax))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="11">', f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="20" font-size="13">Whole-process time / native x86-64 (log scale, lower is '
           f'better)</text>']
    tick = 1
    while tick <= ymax:
        out.append(f'<line x1="{left}" x2="{width - 10}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick}x</text>')
        tick *= 10
    bar = 60 / len(labels)
    for i, n in enumerate(names):
        x0 = left + 10 + 70 * i
        for j, l in enumerate(labels):
            v = rows[n].get(l)
            if not v:
                continue
            r = v / rows[n]["native"]
            out.append(f'<rect x="{x0 + j * bar:.1f}" y="{y(r):.1f}" width="{bar - 1:.1f}" '
                       f'height="{top + plot_h - y(r):.1f}" fill="{colors[l]}"><title>{n} {l}: {r:.2f}x'
                       f'</title></rect>')
        out.append(f'<text x="{x0 + 30}" y="{top + plot_h + 16}" text-anchor="middle">{n}</text>')
    for j, l in enumerate(labels):
        out.append(f'<rect x="{left + 90 * j}" y="{height - 22}" width="12" height="12" fill="{colors[l]}"/>')
        out.append(f'<text x="{left + 90 * j + 16}" y="{height - 12}">{l}</text>')
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")


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
    ap.add_argument("--repeat", type=int, help="runs per configuration (default 5; 3 with --long)")
    ap.add_argument("--json", help="write all measurements here")
    ap.add_argument("--svg", help="write the slowdown chart here")
    ap.add_argument("--modes", action="store_true", help="also the Cranelift memory modes")
    ap.add_argument("--long", action="store_true", help="the bench-* programs at their default size")
    ap.add_argument("--isa-builds", action="store_true", help="compare the rv32im and rv32imac builds")
    ap.add_argument("programs", nargs="*")
    a = ap.parse_args()
    a.programs = a.programs or (LONG if a.long else DEFAULT)
    a.repeat = a.repeat or (3 if a.long else 5)
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    if a.isa_builds:
        return isa_builds(a)
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    native_dir = tempfile.mkdtemp(prefix="rvdbt-native-")
    rows, stats, labels = {}, {}, []
    for prog in a.programs:
        name = prog[len("bench-"):] if a.long and prog.startswith("bench-") else prog
        exe = build_native(prog, native_dir)
        expected = reference_stdout(prog, exe) if a.long else expected_stdout(prog)
        configs = configs_for(prog, exe, a.modes, a.long)
        for _ in range(a.repeat):
            for c in configs:
                c.run_once(expected)
        rows[name] = {c.label: c.best_ns for c in configs if c.ok and c.best_ns}
        stats[name] = {c.label: c.best_stats for c in configs if c.best_stats}
        labels = [c.label for c in configs] if len(configs) > len(labels) else labels
        ms = " ".join(f"{c.label}={rows[name].get(c.label, 0) / 1e6:.2f}" for c in configs)
        print(f"  {name}: {ms}", file=sys.stderr, flush=True)
    shutil.rmtree(native_dir, ignore_errors=True)

    print(f"whole-process wall time in ms, best of {a.repeat} (runs alternate between configurations)")
    print(f"{'program':<9} {'Minsns':>7}" + "".join(f" {l:>9}" for l in labels))
    for name, row in rows.items():
        insns = (stats[name].get("interp") or next(iter(stats[name].values()), {})).get("guest_instructions", 0)
        print(f"{name:<9} {insns / 1e6:>7.2f}" + "".join(
            f" {row[l] / 1e6:>9.2f}" if l in row else f" {'-':>9}" for l in labels))
    if any("native" in r for r in rows.values()):
        print("\nslowdown against native (whole process; lower is better)")
        print(f"{'program':<9}" + "".join(f" {l:>9}" for l in labels if l != "native"))
        for name, row in rows.items():
            nat = row.get("native")
            print(f"{name:<9}" + "".join(f" {row[l] / nat:>9.2f}" if nat and l in row else f" {'-':>9}"
                                         for l in labels if l != "native"))
        print(f"{'geomean':<9}" + "".join(
            f" {geomean([r[l] / r['native'] for r in rows.values() if 'native' in r and l in r]) or 0:>9.2f}"
            for l in labels if l != "native"))
    if any("qemu" in r for r in rows.values()):
        print("\nspeed against qemu-riscv32 (qemu's time / rvdbt's; > 1: rvdbt is faster)")
        rv = [l for l in labels if l not in ("qemu", "native")]
        print(f"{'program':<9}" + "".join(f" {l:>9}" for l in rv))
        for name, row in rows.items():
            q = row.get("qemu")
            print(f"{name:<9}" + "".join(f" {q / row[l]:>9.2f}" if q and l in row else f" {'-':>9}" for l in rv))
        print(f"{'geomean':<9}" + "".join(
            f" {geomean([r['qemu'] / r[l] for r in rows.values() if 'qemu' in r and l in r]) or 0:>9.2f}"
            for l in rv))
    print("\ncompile statistics (best run): blocks and microseconds per block, per code generator")
    for name in rows:
        parts = []
        for l in ("direct", "cranelift", "tiered"):
            s = stats[name].get(l)
            if not s:
                continue
            per = ", ".join(f"{k} {v['blocks']} x {v['compile_ns'] / max(v['blocks'], 1) / 1e3:.1f}us"
                            for k, v in s.get("by_backend", {}).items())
            parts.append(f"{l}: {per}" + (f", {s['tier_ups']} tier-ups" if l == "tiered" else ""))
        print(f"{name:<9} " + "; ".join(parts))
    if a.svg:
        svg_chart(rows, labels, a.svg)
    if a.json:
        json.dump({"times_ns": rows, "stats": stats}, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
