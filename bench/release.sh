#!/bin/bash
# Release tarballs: size per CPU (gzip as shipped; zstd and xz of the same
# tar for comparison, with their decompression times), the packing step's
# time, `fcvm setup install` time, and the time from `tar x` to the first
# VM ready (busybox-httpd and nginx, detached, cold: --no-cache), RUNS
# times each, every run in a fresh directory with its own state.
#   bench/release.sh [RUNS]   (default 3)
set -uo pipefail
runs="${1:-3}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bazel build --color=no --curses=no //release:tarball_x86_64 //release:tarball_aarch64 >/dev/null 2>&1 ||
  { echo "bench/release.sh: bazel build failed" >&2; exit 1; }
bin="$(pwd)/bazel-bin/release"
host="$(uname -m)"
host_tarball="$(ls "${bin}"/fcvm-*-linux-"${host}".tar.gz)"
work="$(mktemp -d /tmp/fcvm-bench-release.XXXXXX)"
fcvm="${work}/unpacked/$(basename "${host_tarball}" .tar.gz)/bin/fcvm"
mkdir -p "${work}/unpacked" && tar -xzf "${host_tarball}" -C "${work}/unpacked"
source bench/lib.sh
trap 'bench_cleanup; rm -rf "${work}"' EXIT
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB, $(uname -m), $(qemu-system-x86_64 --version | head -1)"

echo "## sizes (MiB; decompression seconds)"
for t in "${bin}"/fcvm-*.tar.gz; do
  gunzip -c "$t" >"${work}/t.tar"
  zstd -q -19 -T2 -f "${work}/t.tar" -o "${work}/t.tar.zst"
  xz -q -6 -T2 -k -f "${work}/t.tar"
  s=$(date +%s%N); gunzip -c "$t" >/dev/null; gz_ms=$(ms "$s")
  s=$(date +%s%N); zstd -q -d -c "${work}/t.tar.zst" >/dev/null; zst_ms=$(ms "$s")
  s=$(date +%s%N); xz -q -d -c "${work}/t.tar.xz" >/dev/null; xz_ms=$(ms "$s")
  mib() { python3 -c "import os,sys; print('%.1f' % (os.path.getsize(sys.argv[1]) / 1048576))" "$1"; }
  printf '%s: tar %s, gzip -9 %s (%.2f s), zstd -19 %s (%.2f s), xz -6 %s (%.2f s)\n' \
    "$(basename "$t")" "$(mib "${work}/t.tar")" "$(mib "$t")" "$(bc -l <<<"${gz_ms}/1000")" \
    "$(mib "${work}/t.tar.zst")" "$(bc -l <<<"${zst_ms}/1000")" \
    "$(mib "${work}/t.tar.xz")" "$(bc -l <<<"${xz_ms}/1000")"
  rm -f "${work}"/t.tar*
done

echo "## packing (the FcvmRelease action alone, host tarball; RUNS times)"
pack=()
for _ in $(seq "${runs}"); do
  # A change to the stable status re-runs only the packing.
  s=$(date +%s%N)
  SOURCE_DATE_EPOCH=$((1700000000 + RANDOM)) bazel build --color=no --curses=no \
    "//release:tarball_${host}" >/dev/null 2>&1
  pack+=("$(ms "$s")")
done
stats "bazel build //release:tarball_${host} re-packing (ms)" "${pack[@]}"

echo "## install and first VM"
install=(); first=(); first_nginx=()
for i in $(seq "${runs}"); do
  prefix="${work}/prefix$i"
  s=$(date +%s%N)
  "${fcvm}" setup install "${host_tarball}" --prefix "${prefix}" >/dev/null 2>&1 ||
    { echo "setup install failed" >&2; exit 1; }
  install+=("$(ms "$s")")
  for image in busybox-httpd nginx; do
    dir="${work}/x$i-${image}"
    mkdir -p "${dir}"
    s=$(date +%s%N)
    tar -xzf "${host_tarball}" -C "${dir}"
    "${dir}"/fcvm-*/bin/fcvm run -d --no-cache --name "first-$i-${image}" "${image}" >/dev/null 2>&1 ||
      { echo "run ${image} failed" >&2; exit 1; }
    if [[ ${image} == nginx ]]; then first_nginx+=("$(ms "$s")"); else first+=("$(ms "$s")"); fi
    "${fcvm}" rm -f "first-$i-${image}" >/dev/null 2>&1
    rm -rf "${dir}"
  done
  rm -rf "${prefix}"
done
stats "fcvm setup install (ms)" "${install[@]}"
stats "tar x + run -d busybox-httpd to ready (ms)" "${first[@]}"
stats "tar x + run -d nginx to ready (ms)" "${first_nginx[@]}"
