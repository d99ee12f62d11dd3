#!/bin/bash
# Snapshots and clones under QEMU, in one run: cold `run -d` of IMAGE to
# ready vs `clone` of a snapshot of it to ready (RUNS each, median, min,
# max, and the ratio), snapshot create time and file sizes, `clone --count
# N` wall time to all ready for N = 1, 5, 10, and the fleet's summed PSS
# against the same number of cold-booted VMs.
#   bench/run_clone.sh [RUNS] [IMAGE]   (defaults: 5, busybox-httpd)
set -uo pipefail
runs="${1:-5}"
image="${2:-busybox-httpd}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bazel build --color=no --curses=no //runner:vm //runner:fcvm >/dev/null 2>&1
vm="$(pwd)/bazel-bin/runner/cli/vm"
fcvm="$(pwd)/bazel-bin/runner/fcvm"
source bench/lib.sh
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB, $(uname -m), $(qemu-system-x86_64 --version | head -1), image ${image}"
pss() { # summed PSS (kB) of the VMMs of the VMs named
  for name in "$@"; do
    pid="$("${fcvm}" inspect "${name}" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['vmm_pid'])")"
    awk '/^Pss:/ { print $2 }' "/proc/${pid}/smaps_rollup"
  done | awk '{ s += $1 } END { print s }'
}
cold=() clone=()
for i in $(seq "${runs}"); do
  t=$(date +%s%N); "${vm}" -d --name "cold-${i}" "${image}" >/dev/null 2>&1; cold+=("$(ms "$t")")
done
snap_start=$(date +%s%N)
"${fcvm}" snapshot create cold-1 --tag bench 2>/tmp/fcvm-bench-snap.err >/dev/null
echo "snapshot create: $(ms "$snap_start") ms wall; $(cat /tmp/fcvm-bench-snap.err)"
ls -ls --block-size=K "${FCVM_STATE_DIR}/snapshots/bench" | awk 'NR > 1 { print "  " $NF ": " $6 " apparent, " $1 " allocated" }'
for i in $(seq "${runs}"); do
  t=$(date +%s%N); "${fcvm}" clone bench --name "one${i}" -d >/dev/null 2>&1; clone+=("$(ms "$t")")
done
stats "cold run -d to ready (ms)" "${cold[@]}"
stats "clone -d to ready (ms)" "${clone[@]}"
python3 -c "import statistics,sys; a=[float(x) for x in sys.argv[1].split()]; b=[float(x) for x in sys.argv[2].split()]; print('ratio cold/clone (medians): %.1fx' % (statistics.median(a)/statistics.median(b)))" "${cold[*]}" "${clone[*]}"
cold_names=(); for i in $(seq "${runs}"); do cold_names+=("cold-${i}"); done
echo "summed PSS of ${runs} cold VMs: $(( $(pss "${cold_names[@]}") / 1024 )) MiB"
for i in $(seq "${runs}"); do "${fcvm}" rm -f "one${i}" >/dev/null 2>&1; done
for n in 1 5 10; do
  t=$(date +%s%N); "${fcvm}" clone bench --count "${n}" --name "f${n}" -d >/dev/null 2>&1
  wall="$(ms "$t")"
  names=(); for i in $(seq "${n}"); do names+=("f${n}-${i}"); done
  echo "clone --count ${n}: all ready in ${wall} ms; fleet PSS $(( $(pss "${names[@]}") / 1024 )) MiB"
  for name in "${names[@]}"; do "${fcvm}" rm -f "${name}" >/dev/null 2>&1; done
done
