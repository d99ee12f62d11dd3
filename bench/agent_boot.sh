#!/bin/bash
# The guest agent under QEMU/TCG: runs //tests/agent:agent_boot_<cpu> RUNS
# times and reports, from the agent's own events (guest clock):
# - uptime when the agent started and when the plan was accepted (fw_cfg);
# - identity applied (hostname, entropy, machine-id, clock), µs;
# - OCI archive loaded (podman load), s;
# - podman run to READY (container started and GET / answered), s;
# - re-identification of a running VM on a new MMDS generation, from the
#   poll that saw it to applied (incl. the 401 and the new token), ms;
#   and the identity step alone, µs.
# median, min, max.
#   bench/agent_boot.sh [RUNS]     (default 3)
set -euo pipefail
runs="${1:-3}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB, $(uname -m), $(qemu-system-x86_64 --version | head -1)"
stats() {
  sort -n | awk -v what="$1" -v unit="$2" '{ a[NR] = $1 } END {
    if (NR == 0) { print what ": no samples"; exit 1 }
    m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2;
    printf "%s: median %.2f %s, min %.2f, max %.2f (n=%d)\n", what, m, unit, a[1], a[NR], NR }'
}
# Lines the test prints: "  uptime <ms> ms  <KIND>  took <us> us  <message>"
field() {  # field KIND uptime|took
  awk -v kind="$1" -v what="$2" '$1 == "uptime" && $4 == kind {
      print (what == "uptime") ? $2 : $6 }'
}
for cpu in x86_64 aarch64; do
  bazel test --color=no --curses=no --runs_per_test="${runs}" --nocache_test_results \
    --test_env=FCVM_TEST_ACCEL=tcg "//tests/agent:agent_boot_${cpu}" >/dev/null 2>&1 ||
    { echo "${cpu}: agent boot test failed"; exit 1; }
  logs="$(bazel info bazel-testlogs 2>/dev/null)/tests/agent/agent_boot_${cpu}"
  if [[ "${runs}" -gt 1 ]]; then files=("${logs}"/run_*_of_"${runs}"/test.log); else files=("${logs}/test.log"); fi
  all="$(cat "${files[@]}")"
  field AGENT_STARTED uptime <<<"${all}" | awk '{ print $1 / 1000 }' | stats "${cpu} guest uptime at AGENT_STARTED" s
  field PLAN_ACCEPTED uptime <<<"${all}" | awk '{ print $1 / 1000 }' | stats "${cpu} guest uptime at PLAN_ACCEPTED (fw_cfg)" s
  field IDENTITY_APPLIED took <<<"${all}" | stats "${cpu} identity applied at boot" us
  field IMAGE_READY took <<<"${all}" | awk '{ print $1 / 1e6 }' | stats "${cpu} podman load of busybox-httpd" s
  field READY took <<<"${all}" | awk '{ print $1 / 1e6 }' | stats "${cpu} podman run to READY" s
  grep -h "re-identification:" "${files[@]}" | sed 's/.*re-identification: \([0-9]*\) us.*/\1/' |
    awk '{ print $1 / 1000 }' | stats "${cpu} re-identification (poll saw it -> applied)" ms
  grep -h "re-identification:" "${files[@]}" | sed 's/.*applying took \([0-9]*\) us.*/\1/' |
    stats "${cpu} re-identification, identity step alone" us
done
