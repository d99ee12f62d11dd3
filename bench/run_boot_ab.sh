#!/bin/bash
# The runner's boot phases against another build of fcvm, in one run:
# `run -d IMAGE` alternately with OLD_FCVM and this tree's fcvm, RUNS times
# each per image, same kernel, base.ext4 and images (this tree's), each in
# a fresh state directory; phase times from `inspect`. Medians, ranges and
# new/old ratios. For "no regression beyond noise" after a change to the
# runner: build the old commit's //runner:fcvm, copy it somewhere, pass it.
#   bench/run_boot_ab.sh OLD_FCVM [RUNS]   (default 5)
set -euo pipefail
old="$(realpath "$1")"
runs="${2:-5}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bazel build --color=no --curses=no //runner/cli:vm_x86_64 //runner:fcvm >/dev/null 2>&1
new="$(pwd)/bazel-bin/runner/fcvm"
root="$(pwd)/bazel-bin/runner/cli/vm_x86_64.runfiles/fcvm"
assets=()
while read -r flag; do
  case "${flag}" in
    --oci=*) name="${flag#--oci=}"; assets+=("--oci=${name%%=*}=${root}/${name#*=}") ;;
    --arch=*) ;;
    *) assets+=("${flag%%=*}=${root}/${flag#*=}") ;;
  esac
done <"${root}/runner/cli/vm_x86_64_assets.txt"
samples="$(mktemp)"
trap 'rm -f "${samples}"' EXIT
for image in busybox-httpd nginx; do
  for i in $(seq "${runs}"); do
    for which in old new; do
      fcvm="${old}"; [[ "${which}" == new ]] && fcvm="${new}"
      state="$(mktemp -d /tmp/fcvm-ab.XXXXXX)"
      start=$(date +%s%N)
      "${fcvm}" --state_dir "${state}" "${assets[@]}" run -d --accel tcg \
        --name ab "${image}" >/dev/null 2>&1
      end=$(date +%s%N)
      "${fcvm}" --state_dir "${state}" inspect ab | python3 -c '
import json, sys
s = json.load(sys.stdin)[0]
who, image, total = sys.argv[1], sys.argv[2], float(sys.argv[3])
for p in s.get("phases", []):
    if p["phase"] in ("kernel booted", "agent up", "container ready"):
        print(who, image, p["phase"].replace(" ", "_"), p.get("wall_ms", 0),
              float(p.get("wall_ms", 0)) - float(p.get("guest_ms", 0) or 0))
print(who, image, "run_-d_total", total, 0)
' "${which}" "${image}" "$(( (end - start) / 1000000 ))" >>"${samples}"
      "${fcvm}" --state_dir "${state}" rm -f ab >/dev/null 2>&1 || true
      rm -rf "${state}"
    done
  done
done
python3 - "${samples}" <<'PY'
import collections, statistics, sys
wall = collections.defaultdict(list)
host = collections.defaultdict(list)
for line in open(sys.argv[1]):
    who, image, phase, w, h = line.split()
    wall[(image, phase, who)].append(float(w))
    host[(image, phase, who)].append(float(h))
print(f"{'image':14} {'phase':18} {'old median (min-max) s':26} {'new median (min-max) s':26} new/old")
for (image, phase, who) in sorted(wall):
    if who != "old": continue
    o, n = sorted(wall[(image, phase, "old")]), sorted(wall[(image, phase, "new")])
    mo, mn = statistics.median(o), statistics.median(n)
    print(f"{image:14} {phase.replace('_', ' '):18} {mo/1000:6.2f} ({o[0]/1000:.2f}-{o[-1]/1000:.2f}){'':9} "
          f"{mn/1000:6.2f} ({n[0]/1000:.2f}-{n[-1]/1000:.2f}){'':9} {mn/mo:5.2f}")
for (image, phase, who) in sorted(host):
    if who != "old" or phase != "container_ready": continue
    o, n = host[(image, phase, "old")], host[(image, phase, "new")]
    print(f"{image:14} wall minus guest uptime at ready: old {statistics.median(o):.0f} ms, new {statistics.median(n):.0f} ms")
PY
