#!/usr/bin/env bash
# Runs one fuzz target for a bounded time and prints what it did:
#
#     fuzz/run.sh elf_loader|decoder|whole_run SECONDS [LIBFUZZER OPTIONS...]
#
# The corpus grows in fuzz/corpus/TARGET (kept between runs, not committed); the run
# also reads the committed seeds in fuzz/seeds/TARGET and the saved crash inputs in
# tests/data/fuzz/TARGET. A crash stops the run with a non-zero status and leaves the
# input in fuzz/artifacts/TARGET/ (replay it with `cargo fuzz run --sanitizer none
# TARGET FILE`; keep it under tests/data/fuzz/TARGET/ once fixed). At the end it prints
# one line: executions run and libFuzzer's coverage (`cov:` edges, `ft:` features,
# `corp:` corpus entries); the whole output is in fuzz/logs/TARGET.log. Needs
# cargo-fuzz (`cargo install cargo-fuzz`); builds with `--sanitizer none`, which the
# stable toolchain supports.
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: fuzz/run.sh elf_loader|decoder|whole_run SECONDS [LIBFUZZER OPTIONS...]"
target=${1:?$usage}
seconds=${2:?$usage}
shift 2
case $target in
elf_loader | decoder | whole_run) ;;
*) echo "$usage" >&2; exit 2 ;;
esac
[[ $seconds =~ ^[0-9]+$ ]] || { echo "$usage" >&2; exit 2; }

# Inputs: whole ELF files for the loader, up to 1024 instruction words for the
# decoder, and enough generator choices for the longest random program.
case $target in
elf_loader) max_len=65536 ;;
decoder) max_len=4096 ;;
whole_run) max_len=8192 ;;
esac

corpus=fuzz/corpus/$target
mkdir -p "$corpus"
inputs=("$corpus" "fuzz/seeds/$target")
[[ -d tests/data/fuzz/$target ]] && inputs+=("tests/data/fuzz/$target")

mkdir -p fuzz/logs
log=fuzz/logs/$target.log
status=0
cargo fuzz run --sanitizer none "$target" "${inputs[@]}" -- \
    -max_total_time="$seconds" -timeout=60 -max_len="$max_len" -print_final_stats=1 "$@" \
    2>&1 | tee "$log" | grep -v '^#[0-9]*\s*\(NEW\|REDUCE\)' || status=$?

executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
coverage=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*' "$log" | tail -1)
echo "fuzz $target: ${executions:-?} executions in ${seconds} s; ${coverage:-no coverage line}"
exit "$status"
