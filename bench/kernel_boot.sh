#!/bin/bash
# Boot time of each guest kernel under QEMU/TCG: boots it RUNS times through
# //tests/kernel:boot_<arch> (init = the in-guest probe, which runs all its
# checks and resets the VM) and reports the wall time from starting QEMU to
# its exit: median, min, max.
#   bench/kernel_boot.sh [RUNS]     (default 10)
set -euo pipefail
runs="${1:-10}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB, $(uname -m), $(qemu-system-x86_64 --version | head -1)"
for arch in x86_64 aarch64; do
  bazel test --color=no --curses=no --runs_per_test="${runs}" --nocache_test_results \
    --test_env=FCVM_TEST_ACCEL=tcg "//tests/kernel:boot_${arch}" >/dev/null 2>&1 || {
    echo "${arch}: boot test failed"; exit 1; }
  logs="$(bazel info bazel-testlogs 2>/dev/null)/tests/kernel/boot_${arch}"
  # One log per run (run_K_of_N/ when RUNS > 1).
  if [[ "${runs}" -gt 1 ]]; then files=("${logs}"/run_*_of_"${runs}"/test.log); else files=("${logs}/test.log"); fi
  grep -h "^accel=tcg wall=" "${files[@]}" \
    | sed 's/.*wall=//' | awk '
      /ms$/ { sub(/ms$/, ""); print $0 / 1000; next }
      /s$/  { sub(/s$/, ""); print $0 }' \
    | sort -n | awk -v arch="${arch}" '{ a[NR] = $1 } END {
        if (NR == 0) { print arch ": no samples"; exit 1 }
        m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2;
        printf "%s (TCG): median %.2f s, min %.2f s, max %.2f s (n=%d)\n", arch, m, a[1], a[NR], NR }'
done
