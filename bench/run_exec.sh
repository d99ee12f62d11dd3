#!/bin/bash
# exec and cp through the control channel, in one run on one busybox-httpd
# VM: the round trip of `fcvm exec web -- true` (podman exec in the
# container) and of `fcvm exec --vm web -- true` (the channel and a fork in
# the guest, no Podman), RUNS each (median, p99, min, max); the throughput
# of a large stdout through the channel and of the same bytes written to the
# serial console (what the VM had before: the console is the one path the
# container's output took); cp of a SIZE_MIB file in each direction.
#   bench/run_exec.sh [RUNS] [SIZE_MIB]   (defaults: 100, 256)
set -uo pipefail
runs="${1:-100}"
size="${2:-256}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bazel build --color=no --curses=no //runner:vm //runner:fcvm >/dev/null 2>&1
vm="$(pwd)/bazel-bin/runner/cli/vm"
fcvm="$(pwd)/bazel-bin/runner/fcvm"
source bench/lib.sh
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB, $(uname -m), $(qemu-system-x86_64 --version | head -1)"
# LABEL VALUE...: median, p99, min, max.
pstats() { python3 -c "
import statistics,sys; v=sorted(float(x) for x in sys.argv[2:])
p99=v[min(len(v)-1, int(round(0.99*(len(v)-1))))]
print('%s: median %.1f, p99 %.1f (%.1f to %.1f), n=%d' % (sys.argv[1], statistics.median(v), p99, v[0], v[-1], len(v)))" "$@"; }
# LABEL BYTES MS: MB/s.
rate() { python3 -c "import sys; print('%s: %d MiB in %d ms = %.1f MB/s' % (sys.argv[1], int(sys.argv[2])>>20, int(sys.argv[3]), int(sys.argv[2])/1e6/(int(sys.argv[3])/1000)))" "$@"; }
"${vm}" -d --name web busybox-httpd >/dev/null 2>&1 || { echo "the VM did not start"; exit 1; }
"${fcvm}" exec web -- true  # Warm: the first podman exec loads its caches.
container=() guest=()
for i in $(seq "${runs}"); do
  t=$(date +%s%N); "${fcvm}" exec web -- true; container+=("$(ms "$t")")
  t=$(date +%s%N); "${fcvm}" exec --vm web -- true; guest+=("$(ms "$t")")
done
pstats "exec web -- true, round trip (ms)" "${container[@]}"
pstats "exec --vm web -- true, round trip (ms)" "${guest[@]}"
bytes=$((size << 20))
t=$(date +%s%N)
got="$("${fcvm}" exec --vm web -- sh -c "head -c ${bytes} /dev/zero" | wc -c)"
rate "stdout through the channel (exec --vm, head | wc)" "${got}" "$(ms "$t")"
t=$(date +%s%N)
got="$("${fcvm}" exec web -- sh -c "head -c ${bytes} /dev/zero" | wc -c)"
rate "stdout through the channel (exec in the container)" "${got}" "$(ms "$t")"
# The serial console, what carried output before: 4 MiB is enough to see
# its rate (its UART takes bytes one at a time under TCG).
console=$((4 << 20))
t=$(date +%s%N)
"${fcvm}" exec --vm web -- sh -c "head -c ${console} /dev/zero | tr '\\0' x | fold -w 99 > /dev/ttyS0"
rate "the same bytes to the serial console (ttyS0)" "${console}" "$(ms "$t")"
file="${FCVM_STATE_DIR}/big"
head -c "${bytes}" /dev/urandom >"${file}"
t=$(date +%s%N); "${fcvm}" cp "${file}" web:/tmp/big; rate "cp host -> VM" "${bytes}" "$(ms "$t")"
rm -f "${file}"
t=$(date +%s%N); "${fcvm}" cp web:/tmp/big "${file}"; rate "cp VM -> host" "${bytes}" "$(ms "$t")"
echo "sizes equal: $(stat -c %s "${file}") bytes"
