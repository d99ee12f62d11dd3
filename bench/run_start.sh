#!/bin/bash
# Fast start, in one run: for each image, RUNS detached starts to ready
# (the wall time of `run -d`, which returns once the container is ready)
# on each path: cold from the OCI archive (--no-cache, the path before
# baked images: `podman load` in the guest), cold from the baked root
# filesystem (--no-cache, //runner:vm's default), and from the startup
# cache (a hit: a clone of the first run's snapshot); the
# cold path's phases (median wall time at which each was reached); then
# `fcvm template build` of images/templates/busybox-httpd-hello.textproto
# RUNS times (its snapshot removed between builds) and once unchanged.
# Every VM is removed after its start, so each run has the host to itself.
#   bench/run_start.sh [RUNS] [IMAGE...]   (defaults: 5, busybox-httpd nginx)
set -uo pipefail
runs="${1:-5}"
shift || true
images=("$@")
[[ ${#images[@]} -gt 0 ]] || images=(busybox-httpd nginx)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bazel build --color=no --curses=no //runner:vm //runner:template //runner:fcvm >/dev/null 2>&1
vm="$(pwd)/bazel-bin/runner/cli/vm"
template="$(pwd)/bazel-bin/runner/cli/template"
fcvm="$(pwd)/bazel-bin/runner/fcvm"
source bench/lib.sh
# The archive path: the launcher's assets without --image-rootfs.
runfiles="${vm}.runfiles/fcvm"
archive=("${fcvm}")
while read -r flag; do
  case "${flag}" in
    --image-rootfs=*) ;;
    --oci=*) n="${flag#--oci=}"; archive+=("--oci=${n%%=*}=${runfiles}/${n#*=}") ;;
    --arch=*) archive+=("${flag}") ;;
    *) archive+=("${flag%%=*}=${runfiles}/${flag#*=}") ;;
  esac
done <"${runfiles}/runner/cli/vm_assets.txt"
archive+=(run)
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB, $(uname -m), $(qemu-system-x86_64 --version | head -1)"
# NAME: the phases of its state as "phase=seconds" words.
phases() { "${fcvm}" inspect "$1" | python3 -c "
import json,sys
for p in json.load(sys.stdin)[0].get('phases', []):
  print('%s=%.3f' % (p['phase'].replace(' ', '_'), float(p.get('wall_ms', 0)) / 1000))"; }
# LABEL WORDS...: the median of each phase over the runs.
phase_medians() { python3 -c "
import statistics,sys,collections
d=collections.OrderedDict()
for w in sys.argv[2:]:
  k,v=w.split('='); d.setdefault(k,[]).append(float(v))
print('%s: %s' % (sys.argv[1], ', '.join('%s %.2f s' % (k.replace('_',' '), statistics.median(v)) for k,v in d.items())))" "$@"; }
# LAUNCHER IMAGE LABEL FLAGS...: RUNS starts, each removed after.
starts() {
  local launcher="$1" image="$2" label="$3"; shift 3
  local times=() words=()
  for i in $(seq "${runs}"); do
    local t; t=$(date +%s%N)
    local name
    name="$(${launcher} -d "$@" "${image}" 2>>"${FCVM_STATE_DIR}/bench.log")" || { echo "${label}: run failed"; return 1; }
    times+=("$(ms "$t")")
    words+=($(phases "${name}"))
    grep -q "cached" <<<"$(tail -5 "${FCVM_STATE_DIR}/bench.log")" && [[ "${label}" == cold* ]] && echo "(${label}: unexpectedly cached)"
    "${fcvm}" rm -f "${name}" >/dev/null 2>&1
  done
  stats "${image}, ${label}, run -d to ready (ms)" "${times[@]}"
  [[ "${label}" == cold* ]] && phase_medians "${image}, ${label}, phases" "${words[@]}"
}
for image in "${images[@]}"; do
  starts "${archive[*]}" "${image}" "cold, OCI archive (--no-cache)" --no-cache
  starts "${vm}" "${image}" "cold, baked rootfs (--no-cache)" --no-cache
  # The first run stores the entry once ready; wait for it.
  first="$("${vm}" -d "${image}" 2>>"${FCVM_STATE_DIR}/bench.log")"
  for i in $(seq 120); do
    [[ "$("${fcvm}" cache ls --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -gt 0 ]] && break
    sleep 0.5
  done
  grep "stored startup-cache entry" "${FCVM_STATE_DIR}/vms/${first}/supervisor.log" | sed "s/^/${image}: /"
  "${fcvm}" rm -f "${first}" >/dev/null 2>&1
  starts "${vm}" "${image}" "cached start"
  "${fcvm}" cache rm --all >/dev/null
done
file="$(pwd)/images/templates/busybox-httpd-hello.textproto"
times=()
for i in $(seq "${runs}"); do
  t=$(date +%s%N)
  "${template}" build "${file}" >/dev/null 2>>"${FCVM_STATE_DIR}/bench.log" || { echo "template build failed"; break; }
  times+=("$(ms "$t")")
  [[ "${i}" -lt "${runs}" ]] && "${fcvm}" snapshot rm busybox-httpd-hello >/dev/null
done
stats "template build busybox-httpd-hello (ms)" "${times[@]}"
t=$(date +%s%N); "${template}" build "${file}" >/dev/null 2>&1
echo "template build unchanged: $(ms "$t") ms"
t=$(date +%s%N); name="$("${vm}" -d --template busybox-httpd-hello 2>/dev/null)"
echo "run -d --template busybox-httpd-hello to ready: $(ms "$t") ms"
