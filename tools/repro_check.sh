#!/bin/bash
# Proves a release tarball reproducible: two clean clones of one commit, in
# different directories, two Bazel output bases, no disk, repository or
# remote cache shared between them, each builds the tarballs, and their
# sha256s must be equal. Two cold builds of both CPUs' tarballs (57 min in
# all on a 2-core x86_64 machine, 2026-12-03), so CI does not run it; run
# it before tagging a release.
#
#   tools/repro_check.sh [COMMIT] [TARGETS...]
#     COMMIT   default HEAD of this checkout
#     TARGETS  default //release:tarball_x86_64 //release:tarball_aarch64
#
# The network is needed (each clone fetches the locked package archives into
# its own repository cache). SOURCE_DATE_EPOCH, if set, applies to both.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
commit="${1:-HEAD}"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] ||
  targets=(//release:tarball_x86_64 //release:tarball_aarch64)
commit="$(git -C "${repo}" rev-parse "${commit}")"
work="$(mktemp -d /tmp/fcvm-repro.XXXXXX)"
cleanup() {
  for side in a b; do
    [[ -d "${work}/${side}/src" ]] &&
      (cd "${work}/${side}/src" &&
       bazel --output_base="${work}/${side}/ob" shutdown >/dev/null 2>&1 || true)
  done
  rm -rf "${work}"
}
trap cleanup EXIT

build() {
  local side=$1
  mkdir -p "${work}/${side}"
  # Different depths too: a path that leaked would differ.
  local src="${work}/${side}/src"
  [[ "${side}" == b ]] && src="${work}/${side}/deeper/checkout/src"
  git clone -q "${repo}" "${src}"
  git -C "${src}" checkout -q "${commit}"
  local start=$(date +%s)
  (cd "${src}" &&
   bazel --output_base="${work}/${side}/ob" build --color=no --curses=no \
     --disk_cache= --repository_cache="${work}/${side}/repo" \
     "${targets[@]}" >"${work}/${side}.log" 2>&1) ||
    { tail -30 "${work}/${side}.log"; echo "repro_check: build ${side} failed" >&2; exit 1; }
  echo "build ${side}: $(( $(date +%s) - start )) s" >&2
  (cd "${src}" && for f in bazel-bin/release/fcvm-*.tar.gz; do
     echo "$(sha256sum "$f" | cut -d' ' -f1)  $(basename "$f")"; done) \
    >"${work}/${side}.sums"
}

build a
build b
echo "commit ${commit}"
paste -d' ' "${work}/a.sums" "${work}/b.sums" | while read -r sa na sb nb; do
  printf '%s  %s  %s\n' "$([[ ${sa} == "${sb}" ]] && echo same || echo DIFFERENT)" "${sa}" "${na}"
done
if cmp -s "${work}/a.sums" "${work}/b.sums"; then
  echo "repro_check: reproducible"
else
  echo "repro_check: NOT reproducible (b: $(cat "${work}/b.sums"))" >&2
  exit 1
fi
