#!/usr/bin/env bash
# Checks the guest ELFs named on the command line: 32-bit RISC-V executables, e_flags 0x0
# (no RVC, soft-float ABI), no compressed or floating-point instructions, page-aligned PT_LOAD
# segments, and no RWX segment except in the programs RWX_PROGS names (default: smc). With RVC=1 (the rv32imac builds): e_flags
# 0x1 (RVC, soft-float ABI) and compressed instructions present instead.
set -u
CROSS=${CROSS:-riscv64-unknown-elf-}
status=0
fail() { echo "FAIL $1: $2"; status=1; }
for elf in "$@"; do
	name=$(basename "$elf" .elf)
	hdr=$("${CROSS}readelf" -h "$elf")
	grep -q 'Class:[[:space:]]*ELF32' <<<"$hdr" || fail "$name" "not ELF32"
	grep -q 'Machine:[[:space:]]*RISC-V' <<<"$hdr" || fail "$name" "not RISC-V"
	grep -q 'Type:[[:space:]]*EXEC' <<<"$hdr" || fail "$name" "not a static executable"
	dis=$("${CROSS}objdump" -d "$elf")
	short=$(awk -F'\t' '/^ *[0-9a-f]+:\t/ { h = $2; gsub(/ /, "", h); if (length(h) != 8) print }' <<<"$dis")
	if [ "${RVC:-0}" = 1 ]; then
		grep -q 'Flags:[[:space:]]*0x1, RVC, soft-float ABI$' <<<"$hdr" || fail "$name" "e_flags not 0x1 (RVC): $(grep Flags: <<<"$hdr")"
		[ -n "$short" ] || fail "$name" "no compressed instructions"
	else
		grep -q 'Flags:[[:space:]]*0x0$' <<<"$hdr" || fail "$name" "e_flags not 0x0: $(grep Flags: <<<"$hdr")"
		# every disassembled instruction must be 32 bits wide (8 hex digits)
		[ -z "$short" ] || fail "$name" "compressed instructions: $(head -3 <<<"$short")"
	fi
	# no floating point
	fp=$(awk -F'\t' '/^ *[0-9a-f]+:\t/ && $3 ~ /^f/ && $3 !~ /^fence/' <<<"$dis")
	[ -z "$fp" ] || fail "$name" "floating-point instructions: $(head -3 <<<"$fp")"
	# segments
	while read -r type off vaddr paddr filesz memsz flags align; do
		[ "$type" = LOAD ] || continue
		[ "$align" = 0x1000 ] || fail "$name" "LOAD align $align"
		[ $((vaddr % 4096)) -eq $((off % 4096)) ] || fail "$name" "LOAD offset/vaddr not congruent"
		[ $((vaddr % 4096)) -eq 0 ] || fail "$name" "LOAD at $vaddr not page aligned"
		if [ "$flags" = RWE ] && ! [[ " ${RWX_PROGS:-smc} " == *" $name "* ]]; then fail "$name" "RWX segment at $vaddr"; fi
	done < <("${CROSS}readelf" -lW "$elf" | awk '$1 == "LOAD" { f = $7; if (NF == 9) f = $7 $8; print $1, $2, $3, $4, $5, $6, f, $NF }')
	[ $status -eq 0 ] || continue
done
[ $status -eq 0 ] && echo "check-elfs: $# ELF files ok"
exit $status
