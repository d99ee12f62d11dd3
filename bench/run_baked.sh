#!/bin/bash
# Baked root filesystem vs OCI archive: cold `fcvm run -d IMAGE` to ready
# under QEMU, RUNS times per image and form, the two forms alternating (so
# drift on a shared machine hits both alike). "baked" is //runner:vm as it
# is (--image-rootfs: the agent mounts the ext4 and runs podman run
# --rootfs); "archive" is the same launcher's assets without
# --image-rootfs (the agent runs podman load). Phases from `fcvm inspect`
# (wall, from the VMM's start), plus run -d's own wall time; median, min,
# max.
#   bench/run_baked.sh [RUNS] [ACCEL]   (defaults: 5, tcg)
set -euo pipefail
runs="${1:-5}"
accel="${2:-tcg}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ -n "${FCVM_BENCH_PREBUILT:-}" ]] ||
  bazel build --color=no --curses=no //runner:vm //runner:fcvm >/dev/null 2>&1
vm="$(pwd)/bazel-bin/runner/cli/vm"
fcvm="$(pwd)/bazel-bin/runner/fcvm"
root="${vm}.runfiles/fcvm"
# The archive form: the launcher's assets (runfiles paths made absolute),
# less the baked root filesystems.
archive_flags=()
while read -r flag; do
  case "${flag}" in
    --image-rootfs=*) ;;
    --oci=*) name="${flag#--oci=}"; archive_flags+=("--oci=${name%%=*}=${root}/${name#*=}") ;;
    --arch=*) archive_flags+=("${flag}") ;;
    *) archive_flags+=("${flag%%=*}=${root}/${flag#*=}") ;;
  esac
done <"${root}/runner/cli/vm_assets.txt"
export FCVM_STATE_DIR="$(mktemp -d /tmp/fcvm-bench.XXXXXX)"
trap '"${fcvm}" ls --json | python3 -c "import json,sys; [print(v[\"name\"]) for v in json.load(sys.stdin)]" |
        xargs -r "${fcvm}" rm -f >/dev/null 2>&1; rm -rf "${FCVM_STATE_DIR}"' EXIT
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB, $(uname -m), $(qemu-system-x86_64 --version | head -1), accel ${accel}"
samples="$(mktemp)"
for image in busybox-httpd nginx; do
  for i in $(seq "${runs}"); do
    for form in baked archive; do
      name="bench-${form}-${i}"
      start=$(date +%s%N)
      if [[ "${form}" == baked ]]; then
        err="$("${vm}" -d --accel "${accel}" --name "${name}" "${image}" 2>&1 >/dev/null)"
      else
        err="$("${fcvm}" "${archive_flags[@]}" run -d --accel "${accel}" --name "${name}" "${image}" 2>&1 >/dev/null)"
      fi
      end=$(date +%s%N)
      want="baked rootfs"; [[ "${form}" == baked ]] || want="OCI archive"
      grep -q "image ${image}: ${want}" <<<"${err}" || { echo "${name}: not the ${want}: ${err}" >&2; exit 1; }
      "${fcvm}" inspect "${name}" | python3 -c '
import json, sys
s = json.load(sys.stdin)[0]
key, run_ms = sys.argv[1], float(sys.argv[2])
for p in s.get("phases", []):
    if p["phase"] in ("image loaded", "container ready"):
        print(key, p["phase"].replace(" ", "_"), p.get("wall_ms", 0))
print(key, "run_-d_total", run_ms)
' "${image}/${form}" "$(( (end - start) / 1000000 ))" >>"${samples}"
      "${fcvm}" stop "${name}" >/dev/null 2>&1
      "${fcvm}" rm "${name}" >/dev/null 2>&1
    done
  done
done
python3 - "${samples}" <<'PY'
import collections, statistics, sys
data = collections.OrderedDict()
for line in open(sys.argv[1]):
    key, phase, ms = line.split()
    data.setdefault((key, phase), []).append(float(ms) / 1000)
print(f"{'image/form':24} {'phase (wall from VMM start)':28} {'median':>7} {'min':>7} {'max':>7}  n")
for (key, phase), v in data.items():
    print(f"{key:24} {phase:28} {statistics.median(v):7.2f} {min(v):7.2f} {max(v):7.2f}  {len(v)}")
PY
