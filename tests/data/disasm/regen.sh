#!/bin/sh
# Regenerates the objdump references with the GNU RISC-V cross toolchain
# (Debian: apt-get install binutils-riscv64-unknown-elf; tested with binutils 2.40).
# The tests (tests/disasm_objdump.rs, tests/disasm_listing.rs) only read the committed files:
#
# * all.objdump and all.elf: all.S (every RV32IM/Zicsr/Zifencei form) assembled and linked;
# * compressed.objdump: compressed.S (rv32imac: the C and A extensions);
# * hello.objdump, smc.objdump, bad-illegal.objdump: `objdump -d` of bundled guest programs,
#   run from the repository root (the header names guest-programs/bin/NAME.elf).
#
# objdump's CSR names depend on the ELF's Tag_RISCV_priv_spec attribute; gas 2.40
# records 1.11 by default as soon as a CSR instruction is assembled, and src/disasm.rs
# follows that table, so the version is pinned here.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
riscv64-unknown-elf-as -march=rv32im_zicsr_zifencei -mabi=ilp32 -mpriv-spec=1.11 -o "$tmp/all.o" all.S
riscv64-unknown-elf-ld -m elf32lriscv --no-relax -e _start -Ttext=0x10000 \
    --section-start=.lowtext=0x0 --section-start=.hightext=0xfffff000 \
    -o "$tmp/all.elf" "$tmp/all.o"
(cd "$tmp" && riscv64-unknown-elf-objdump -d all.elf) > all.objdump
cp "$tmp/all.elf" all.elf
echo "regenerated all.objdump ($(grep -c '^ *[0-9a-f]*:	' all.objdump) instruction lines) and all.elf"
here=$(pwd)
for prog in hello smc bad-illegal; do
    (cd ../../.. && riscv64-unknown-elf-objdump -d "guest-programs/bin/$prog.elf") > "$here/$prog.objdump"
    echo "regenerated $prog.objdump"
done
riscv64-unknown-elf-as -march=rv32imac -mabi=ilp32 -o "$tmp/compressed.o" compressed.S
riscv64-unknown-elf-ld -m elf32lriscv --no-relax -e _start -Ttext=0x10000 -o "$tmp/compressed.elf" "$tmp/compressed.o"
(cd "$tmp" && riscv64-unknown-elf-objdump -d compressed.elf) > compressed.objdump
echo "regenerated compressed.objdump ($(grep -c '^ *[0-9a-f]*:	' compressed.objdump) instruction lines)"
