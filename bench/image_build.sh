#!/bin/bash
# Image build time and size: runs the image tool (//rootfs/image:build_image,
# what the rootfs_image rule runs) RUNS times on each image's pinned inputs
# (the base image with the same extra files as images/BUILD.bazel gives it)
# and reports wall time (median, min, max), then the size of each output:
# apparent and allocated for ext4 (sparse), bytes for OCI archives.
#   bench/image_build.sh [RUNS]     (default 5)
set -euo pipefail
runs="${1:-5}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bazel build //rootfs/image:build_image \
  //rootfs/init:init_x86_64 //rootfs/init:init_aarch64 \
  //agent:fc-agent_x86_64 //agent:fc-agent_aarch64 \
  @base_amd64//:debs @base_arm64//:debs @oci_nginx_amd64//:debs @oci_nginx_arm64//:debs \
  @oci_busybox_httpd_amd64//:debs @oci_busybox_httpd_arm64//:debs >/dev/null 2>&1
bin="$(bazel info bazel-bin 2>/dev/null)"
ext="$(bazel info output_base 2>/dev/null)/external"
out="$(mktemp -d)"
trap 'rm -rf "${out}"' EXIT
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB, $(uname -m)"
stats() {
  sort -n | awk -v what="$1" '{ a[NR] = $1 } END {
    m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2;
    printf "%-28s build median %.2f s, min %.2f s, max %.2f s (n=%d)\n", what, m, a[1], a[NR], NR }'
}
build() {  # name format definition lock repo [extra]
  local name=$1 format=$2 definition=$3 lock=$4 repo=$5 extra=${6:-}
  local args=(--format="${format}" --definition="${definition}" --lock="${lock}"
              --debs_dir="${ext}/${repo}/debs" --output="${out}/${name}")
  [[ -n "${extra}" ]] && args+=(--extra="${extra}")
  for _ in $(seq "${runs}"); do
    local start end
    start=$(date +%s.%N)
    "${bin}/rootfs/image/build_image" "${args[@]}" 2>/dev/null
    end=$(date +%s.%N)
    echo "${end} - ${start}" | bc
  done | stats "${name}"
  if [[ "${format}" == ext4 ]]; then
    echo "$(printf '%-28s' "${name}") apparent $(( $(stat -c %s "${out}/${name}") >> 20 )) MiB, allocated $(( $(du -k "${out}/${name}" | cut -f1) >> 10 )) MiB"
  else
    echo "$(printf '%-28s' "${name}") $(( $(stat -c %s "${out}/${name}") >> 10 )) KiB"
  fi
}
build base_x86_64.ext4 ext4 images/base/image.textproto images/base/amd64.lock base_amd64 \
  "/usr/sbin/fc-agent=${bin}/agent/fc-agent_x86_64:0755,/sbin/fcvm-init=${bin}/rootfs/init/init_x86_64:0755"
build base_aarch64.ext4 ext4 images/base/image.textproto images/base/arm64.lock base_arm64 \
  "/usr/sbin/fc-agent=${bin}/agent/fc-agent_aarch64:0755,/sbin/fcvm-init=${bin}/rootfs/init/init_aarch64:0755"
for image in nginx busybox-httpd; do
  repo="oci_${image//-/_}"
  build "${image}_x86_64.tar" oci "images/oci/${image}/image.textproto" "images/oci/${image}/amd64.lock" "${repo}_amd64"
  build "${image}_aarch64.tar" oci "images/oci/${image}/image.textproto" "images/oci/${image}/arm64.lock" "${repo}_arm64"
done
