#!/usr/bin/env bash
# Rebuilds everything from scratch twice and checks that every ELF is byte-identical to the
# ELFs that were there before (and across the two rebuilds).
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make -s all
sha256sum bin/*.elf bin/imac/*.elf > "$tmp/before"
for i in 1 2; do
	make -s clean
	make -s all > /dev/null
	sha256sum -c --quiet "$tmp/before"
done
echo "check-reproducible: $(wc -l < "$tmp/before") ELF files byte-identical across two clean rebuilds"
