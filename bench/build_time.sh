#!/bin/bash
# Measures how long `bazel build //...` takes in a fresh clone of HEAD:
#   cold: empty output base, no disk or repository cache;
#   warm: empty output base, the shared disk cache (~/.cache/fcvm) populated,
#         i.e. what a second clone on the same machine sees.
# Prints each run and the median/min/max, plus Bazel's process counts.
#   bench/build_time.sh [RUNS]      (default 3)
set -euo pipefail
runs="${1:-3}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d /tmp/fcvm-bench-build.XXXXXX)"
trap 'rm -rf "${work}"' EXIT

# One build in a new clone with a new output base; prints "seconds|processes".
build_once() {
  local mode="$1" i="$2" dir="${work}/${1}${2}" out="${work}/out-${1}${2}"
  git clone -q "${repo}" "${dir}"
  local flags=()
  [[ "${mode}" == cold ]] && flags=(--disk_cache= --repository_cache=)
  local t0 t1 log="${work}/${mode}${i}.log"
  t0=$(date +%s.%N)
  (cd "${dir}" && bazel --output_base="${out}" build "${flags[@]}" //... >"${log}" 2>&1)
  t1=$(date +%s.%N)
  (cd "${dir}" && bazel --output_base="${out}" shutdown)
  rm -rf "${out}" "${dir}"
  printf '%s|%s\n' "$(awk -v a="${t0}" -v b="${t1}" 'BEGIN { printf "%.1f", b - a }')" \
    "$(grep -o 'INFO: [0-9]* processes.*' "${log}" | tail -1 | sed 's/^INFO: //')"
}

stats() {  # median min max of the numbers on stdin
  sort -n | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2;
                  printf "median %.1f s, min %.1f s, max %.1f s (n=%d)\n", m, a[1], a[NR], NR }'
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB, $(uname -m), $(. /etc/os-release; echo "${PRETTY_NAME}")"
echo "commit:  $(git -C "${repo}" rev-parse --short HEAD)"
# Populate the shared disk cache for the warm runs.
build_once warm 0 >/dev/null
for mode in cold warm; do
  : >"${work}/${mode}.times"
  for i in $(seq 1 "${runs}"); do
    r="$(build_once "${mode}" "${i}")"
    echo "${mode} run ${i}: ${r%%|*} s  (${r#*|})"
    echo "${r%%|*}" >>"${work}/${mode}.times"
  done
  echo "${mode}: $(stats <"${work}/${mode}.times")"
done
