#!/bin/bash
# Firecracker-shaped restores through the stand-in firecracker (its API,
# the VM under QEMU/TCG), in one run, in a network namespace of its own
# (TAPs; needs root): a cold `run -d` of IMAGE to ready; `clone -d` to
# ready with --mem-backend file; with --mem-backend uffd through the real
# memory server, first without a working set (each round a fresh server,
# the recorded working set deleted), then with the working set the first
# clone recorded (the server prefetches it). For uffd the stand-in's own
# restore figure is quoted from its log: the handshake, then every page the
# snapshot's memory holds data for touched and compared (faults served, or
# pages already prefetched), and its private copy of them (UFFDIO_COPY
# never shares: the stand-in's anonymous RSS).
#   bench/run_standin_restore.sh [RUNS] [IMAGE]   (defaults: 5, busybox-httpd)
set -uo pipefail
if [[ -z "${FCVM_BENCH_IN_NETNS:-}" ]]; then
  export FCVM_BENCH_IN_NETNS=1
  exec unshare -n "$0" "$@"
fi
runs="${1:-5}"
image="${2:-busybox-httpd}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ip link set lo up
bazel build --color=no --curses=no //runner:vm //runner:fcvm \
  //runner/vmm/firecracker/testing:standin_firecracker >/dev/null 2>&1
vm="$(pwd)/bazel-bin/runner/cli/vm"
fcvm="$(pwd)/bazel-bin/runner/fcvm"
export FCVM_FIRECRACKER="$(pwd)/bazel-bin/runner/vmm/firecracker/testing/standin_firecracker"
source bench/lib.sh
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB, $(uname -m), stand-in firecracker over $(qemu-system-x86_64 --version | head -1), image ${image}"
server_gone() { # waits until the snapshot's memory server has left
  for _ in $(seq 200); do
    [[ -f "${FCVM_STATE_DIR}/memory-servers/bench/ready" ]] || return 0
    sleep 0.05
  done
}
memory="${FCVM_STATE_DIR}/snapshots/bench/memory"
t=$(date +%s%N); "${vm}" --backend firecracker -d --name src "${image}" >/dev/null 2>&1
echo "cold run -d to ready: $(ms "$t") ms"
"${fcvm}" snapshot create src --tag bench --stop 2>&1 >/dev/null | sed 's/^/  /'
clone_once() { # MODE NAME: prints "WALL_MS TOUCH_MS PAGES ANON_KB"
  local t wall touch pid anon
  t=$(date +%s%N)
  "${fcvm}" clone bench --name "$2" -d --mem-backend "$1" >/dev/null 2>&1 || { echo "clone failed" >&2; return 1; }
  wall="$(ms "$t")"
  touch="$(sed -n 's/.*: \([0-9]*\) pages (.*) touched in \([0-9]*\) ms, 0 differ.*/\2 \1/p' "${FCVM_STATE_DIR}/vms/$2-1/vmm.log" | tail -1)"
  pid="$("${fcvm}" inspect "$2-1" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['vmm_pid'])")"
  anon="$(awk '/^Anonymous:/ { print $2 }' "/proc/${pid}/smaps_rollup")"
  echo "${wall} ${touch:-0 0} ${anon}"
  "${fcvm}" rm -f "$2-1" >/dev/null 2>&1
}
file=() plain=() plain_touch=() warm=() warm_touch=() pages="" anon=""
for i in $(seq "${runs}"); do
  read -r wall _ _ _ < <(clone_once file "file${i}"); file+=("${wall}")
done
for i in $(seq "${runs}"); do
  rm -f "${memory}.working-set"
  # --record_window 0 would not record at all; the default records the
  # first VM's faults, written when it leaves: deleted again above.
  read -r wall touch pages anon < <(clone_once uffd "cold${i}")
  plain+=("${wall}") plain_touch+=("${touch}")
  server_gone
done
ls -l "${memory}.working-set" 2>/dev/null | awk '{ print "working set recorded: " $5 " bytes" }'
for i in $(seq "${runs}"); do
  read -r wall touch pages anon < <(clone_once uffd "warm${i}")
  warm+=("${wall}") warm_touch+=("${touch}")
  server_gone
done
stats "clone -d to ready, --mem-backend file (ms)" "${file[@]}"
stats "clone -d to ready, uffd, no working set (ms)" "${plain[@]}"
stats "clone -d to ready, uffd, working set prefetched (ms)" "${warm[@]}"
stats "stand-in restore through the server, no working set (ms)" "${plain_touch[@]}"
stats "stand-in restore through the server, working set prefetched (ms)" "${warm_touch[@]}"
echo "pages touched per restore: ${pages} ($(( pages * 4 / 1024 )) MiB); the stand-in's private copy (anonymous RSS): $(( anon / 1024 )) MiB"
