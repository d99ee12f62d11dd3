#!/bin/bash
# Boot of the base image under QEMU/TCG: runs //tests/images:base_boot_<cpu>
# (the Podman case) RUNS times and reports, from QEMU start, the wall time
# to the init's shell marker (kernel boot, blank writable disk formatted,
# overlay root, pivot), and the guest's own uptime when the overlay root
# was ready: median, min, max.
#   bench/base_boot.sh [RUNS]     (default 5)
set -euo pipefail
runs="${1:-5}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB, $(uname -m), $(qemu-system-x86_64 --version | head -1)"
stats() {
  sort -n | awk -v what="$1" '{ a[NR] = $1 } END {
    if (NR == 0) { print what ": no samples"; exit 1 }
    m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2;
    printf "%s: median %.2f s, min %.2f s, max %.2f s (n=%d)\n", what, m, a[1], a[NR], NR }'
}
for cpu in x86_64 aarch64; do
  bazel test --color=no --curses=no --runs_per_test="${runs}" --nocache_test_results \
    --test_env=FCVM_TEST_ACCEL=tcg --test_filter='*OverlayRootAndPodman*' \
    "//tests/images:base_boot_${cpu}" >/dev/null 2>&1 || { echo "${cpu}: boot test failed"; exit 1; }
  logs="$(bazel info bazel-testlogs 2>/dev/null)/tests/images/base_boot_${cpu}"
  if [[ "${runs}" -gt 1 ]]; then files=("${logs}"/run_*_of_"${runs}"/test.log); else files=("${logs}/test.log"); fi
  grep -h "boot to shell" "${files[@]}" | sed 's/.*boot to shell \([^,]*\),.*/\1/' | awk '
      /ms$/ { sub(/ms$/, ""); print $0 / 1000; next }
      /s$/  { sub(/s$/, ""); print $0 }' | stats "${cpu} (TCG) QEMU start to shell, wall"
  # The first boot's "overlay root ready" line (the second boot reuses the disk).
  for f in "${files[@]}"; do
    grep -m1 "overlay root ready" "$f" | sed 's/.*\[\([0-9.]*\)\].*/\1/'
  done | stats "${cpu} (TCG) guest uptime at overlay root ready (incl. mke2fs)"
done
