#!/bin/bash
# Rebuilds a guest kernel with kernel/build.sh in this test's own temporary
# directory (another path, another time, another process environment than the
# Bazel action that built it) and checks that the image and the resolved
# .config are byte-identical to Bazel's.
#   reproducible_test.sh ARCH BUILD_SH CHECK_SH TARBALL SHA256 TOP_DIR IMAGE CONFIG FRAGMENT...
set -euo pipefail
arch="$1" build="$2" check="$3" tarball="$4" sha256="$5" top_dir="$6" image="$7" config="$8"
shift 8

work="${TEST_TMPDIR:-$(mktemp -d)}/rebuild-${arch}"
mkdir -p "${work}"
# A different TMPDIR too: build.sh unpacks the source under it.
start=$(date +%s)
TMPDIR="${work}" "${build}" "${arch}" "${tarball}" "${sha256}" "${top_dir}" "${check}" \
  "${work}/image" "${work}/config" "$@"
echo "${arch} kernel rebuilt from scratch in $(( $(date +%s) - start )) s on $(nproc) cores"

status=0
for pair in "image:${image}" "config:${config}"; do
  name="${pair%%:*}" bazel_built="${pair#*:}"
  a="$(sha256sum "${bazel_built}" | cut -d' ' -f1)"
  b="$(sha256sum "${work}/${name}" | cut -d' ' -f1)"
  echo "${arch} ${name}: bazel ${a}, rebuilt ${b}"
  if [[ "${a}" != "${b}" ]]; then
    echo "FAIL: ${arch} kernel ${name} is not reproducible" >&2
    cmp "${bazel_built}" "${work}/${name}" | head -5 >&2 || true
    status=1
  fi
done
exit ${status}
