#!/bin/bash
# `fcvm run` boot phases, wall (host) and guest, under QEMU: runs
# `//runner:vm -d IMAGE` RUNS times per image (default: busybox-httpd and
# nginx), reads the phase times from `fcvm inspect`, and the writable disk's
# creation time from run's output; median, min, max. NETWORK other than
# the default (user: QEMU's own slirp) boots busybox-httpd only, to show
# what setting that network up costs (pasta/slirp4netns: "network ready").
#   bench/run_boot.sh [RUNS] [ACCEL] [NETWORK]   (defaults: 5, tcg, user)
# Rootless networks, inside a namespace of their own with a veth uplink
# (pasta wants a default route; nothing is reachable through it):
#   bazel build //runner:vm //runner:fcvm && sudo unshare -n bash -c '
#     ip link set lo up; ip link add up0 type veth peer name up1
#     ip addr add 10.250.0.1/24 dev up0; ip link set up0 up; ip link set up1 up
#     ip route add default via 10.250.0.254 dev up0 onlink
#     FCVM_BENCH_PREBUILT=1 bench/run_boot.sh 5 tcg pasta'
set -euo pipefail
runs="${1:-5}"
accel="${2:-tcg}"
network="${3:-user}"
images="busybox-httpd nginx"
[[ "${network}" == user ]] || images="busybox-httpd"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# FCVM_BENCH_PREBUILT=1: the binaries are built already (inside a network
# namespace of its own, bazel cannot reach its server).
[[ -n "${FCVM_BENCH_PREBUILT:-}" ]] ||
  bazel build --color=no --curses=no //runner:vm //runner:fcvm >/dev/null 2>&1
# //runner:vm is an alias of //runner/cli:vm (runner/vm/ is a package).
vm="$(pwd)/bazel-bin/runner/cli/vm"
fcvm="$(pwd)/bazel-bin/runner/fcvm"
export FCVM_STATE_DIR="$(mktemp -d /tmp/fcvm-bench.XXXXXX)"
trap '"${fcvm}" ls --json | python3 -c "import json,sys; [print(v[\"name\"]) for v in json.load(sys.stdin)]" |
        xargs -r "${fcvm}" rm -f >/dev/null 2>&1; rm -rf "${FCVM_STATE_DIR}"' EXIT
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB, $(uname -m), $(qemu-system-x86_64 --version | head -1), accel ${accel}, network ${network}"
samples="$(mktemp)"
for image in ${images}; do
  for i in $(seq "${runs}"); do
    name="bench-${i}"
    start=$(date +%s%N)
    err="$("${vm}" -d --accel "${accel}" --network "${network}" --name "${name}" "${image}" 2>&1 >/dev/null)"
    end=$(date +%s%N)
    disk_us="$(sed -n 's/.*writable disk sparse in \([0-9.]*\)\(us\|ms\|s\).*/\1 \2/p' <<<"${err}" |
               awk '{ f = ($2 == "us") ? 1 : ($2 == "ms") ? 1000 : 1e6; print $1 * f }')"
    "${fcvm}" inspect "${name}" | python3 -c '
import json, sys
s = json.load(sys.stdin)[0]
image, run_ms, disk_us = sys.argv[1], float(sys.argv[2]), sys.argv[3]
for p in s.get("phases", []):
    print(image, p["phase"].replace(" ", "_"), "wall", p.get("wall_ms", 0))
    if p.get("guest_ms"):
        print(image, p["phase"].replace(" ", "_"), "guest", p["guest_ms"])
print(image, "fcvm_run_-d_total", "wall", run_ms)
print(image, "writable_disk_created", "us", disk_us)
' "${image}" "$(( (end - start) / 1000000 ))" "${disk_us}" >>"${samples}"
    "${fcvm}" stop "${name}" >/dev/null 2>&1
    "${fcvm}" rm "${name}" >/dev/null 2>&1
  done
done
python3 - "${samples}" <<'PY'
import collections, statistics, sys
data = collections.OrderedDict()
for line in open(sys.argv[1]):
    image, phase, kind, value = line.split()
    data.setdefault((image, phase, kind), []).append(float(value))
for (image, phase, kind), values in data.items():
    values.sort()
    unit = "us" if kind == "us" else "s"
    scale = 1 if kind == "us" else 1000
    print(f"{image:14} {phase.replace('_', ' '):24} {kind:5} median {statistics.median(values)/scale:8.2f} {unit}"
          f"  min {values[0]/scale:.2f}  max {values[-1]/scale:.2f}  (n={len(values)})")
PY
rm -f "${samples}"
