#!/usr/bin/env bash
# Regenerates expected/<name>.stdout and expected/<name>.code from qemu-riscv32 (Linux user
# mode) for the programs named on the command line (the Makefile passes every program qemu can
# run). Arguments come from expected/<name>.args (one per line), stdin from
# expected/<name>.stdin (or /dev/null when absent). The guest sees argv[0] = bin/<name>.elf and
# an empty environment. A guest killed by signal N gets code 128 + N, as a shell reports it.
# Hand-written files (.stderr, and everything of the device/CSR programs) are not touched.
set -u
cd "$(dirname "$0")/.."
QEMU=${QEMU:-qemu-riscv32}
QEMU_PATH=$(command -v "$QEMU") || { echo "gen-expected: $QEMU not found" >&2; exit 1; }
ulimit -c 0 # qemu-user would otherwise dump a core file for the bad-* programs
status=0
for name in "$@"; do
	elf=bin/$name.elf
	[ -f "$elf" ] || { echo "gen-expected: missing $elf" >&2; status=1; continue; }
	args=()
	if [ -f "expected/$name.args" ]; then
		mapfile -t args < "expected/$name.args"
	fi
	stdin=/dev/null
	[ -f "expected/$name.stdin" ] && stdin=expected/$name.stdin
	# the braces keep the shell's "Illegal instruction"-style job messages out of the log
	code=$( {
		env -i timeout 120 "$QEMU_PATH" "$elf" "${args[@]}" < "$stdin" > "expected/$name.stdout"
		echo $?
	} 2> /dev/null)
	echo "$code" > "expected/$name.code"
	printf '%-16s exit %3d  stdout %6d bytes\n' "$name" "$code" "$(wc -c < "expected/$name.stdout")"
done
exit $status
