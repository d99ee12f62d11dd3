#!/bin/bash
# static_check.sh BINARY CPU: fails unless BINARY is a fully static ELF for
# CPU ("x86_64" or "aarch64"): no program interpreter, no dynamic section,
# no symbol table (stripped).
# Prints its size (bench/RESULTS.md records it).
set -euo pipefail
binary="$1"
cpu="$2"
case "${cpu}" in
  x86_64) machine="Advanced Micro Devices X86-64" ;;
  aarch64) machine="AArch64" ;;
  *) echo "unknown cpu ${cpu}" >&2; exit 2 ;;
esac
header="$(readelf -h "${binary}")"
grep -q "Machine: *${machine}" <<<"${header}" ||
  { echo "${binary}: not an ELF for ${cpu}:"; echo "${header}"; exit 1; }
if readelf -l "${binary}" | grep -q INTERP; then
  echo "${binary}: has a program interpreter (dynamically linked)"; exit 1
fi
if ! readelf -d "${binary}" | grep -q "no dynamic section"; then
  echo "${binary}: has a dynamic section:"; readelf -d "${binary}"; exit 1
fi
if readelf -S -W "${binary}" | grep -q "\.symtab"; then
  echo "${binary}: has a symbol table (not stripped)"; exit 1
fi
echo "${binary}: static ${cpu} ELF, $(stat -L -c %s "${binary}") bytes"
