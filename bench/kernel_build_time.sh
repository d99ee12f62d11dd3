#!/bin/bash
# Cold build time of each guest kernel: kernel/build.sh from the pinned
# tarball (unpack, configure, compile), one architecture at a time, nothing
# else running. Prints each run, then median/min/max per architecture.
#   bench/kernel_build_time.sh [RUNS]        (default 1; each run is minutes)
set -euo pipefail
runs="${1:-1}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src_bzl="${repo}/kernel/source.bzl"
field() { sed -n "s/^ *$1 = \"\\(.*\\)\",/\\1/p" "${src_bzl}"; }
tarball="$(field path)" sha256="$(field sha256)" top_dir="$(field top_dir)"
work="$(mktemp -d /tmp/fcvm-bench-kernel.XXXXXX)"
trap 'rm -rf "${work}"' EXIT

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB, $(uname -m)"
echo "source:  ${tarball} (${sha256:0:12}...)"
for arch in x86_64 aarch64; do
  times=()
  for i in $(seq 1 "${runs}"); do
    t0=$(date +%s.%N)
    TMPDIR="${work}" "${repo}/kernel/build.sh" "${arch}" "${tarball}" "${sha256}" "${top_dir}" \
      "${repo}/kernel/check_config.sh" "${work}/image" "${work}/config" \
      "${repo}/kernel/configs/common.config" "${repo}/kernel/configs/${arch}.config"
    t=$(awk -v a="${t0}" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
    times+=("${t}")
    echo "${arch} run ${i}: ${t} s, image $(stat -c %s "${work}/image") bytes"
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v arch="${arch}" '{ a[NR] = $1 } END {
    m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2;
    printf "%s: median %d s, min %d s, max %d s (n=%d)\n", arch, m, a[1], a[NR], NR }'
done
