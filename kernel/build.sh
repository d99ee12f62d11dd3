#!/bin/bash
# Builds a guest kernel reproducibly from the pinned source tarball. Called by
# the kernel_image rule (kernel.bzl); runs as one Bazel action.
#   build.sh ARCH TARBALL SHA256 TOP_DIR CHECK_SCRIPT OUT_IMAGE OUT_CONFIG FRAGMENT...
# ARCH is x86_64 (output: the ELF vmlinux, booted through its PVH note) or
# aarch64 (output: the uncompressed arch/arm64/boot/Image).
set -euo pipefail
[[ $# -ge 8 ]] || { echo "usage: $0 ARCH TARBALL SHA256 TOP_DIR CHECK_SCRIPT OUT_IMAGE OUT_CONFIG FRAGMENT..." >&2; exit 2; }
arch="$1" tarball="$2" want_sha256="$3" top_dir="$4" check="$5" out_image="$6" out_config="$7"
shift 7
abs() { [[ "$1" == /* ]] && echo "$1" || echo "${PWD}/$1"; }
check="$(abs "${check}")" out_image="$(abs "${out_image}")" out_config="$(abs "${out_config}")"
fragments=()
for f in "$@"; do fragments+=("$(abs "${f}")"); done

case "${arch}" in
  x86_64)  make_args=(ARCH=x86) target=vmlinux built=vmlinux ;;
  aarch64) make_args=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-) target=Image built=arch/arm64/boot/Image ;;
  *) echo "kernel build: unknown architecture '${arch}' (want x86_64 or aarch64)" >&2; exit 2 ;;
esac

found_sha256="$(sha256sum "${tarball}" | cut -d' ' -f1)"
if [[ "${found_sha256}" != "${want_sha256}" ]]; then
  cat >&2 <<MSG
kernel build: source tarball ${tarball} does not match its pin:
  expected sha256 ${want_sha256}
  found    sha256 ${found_sha256}
The installed linux-source package differs from the one pinned in kernel/source.bzl
and third_party/debian_packages.txt: run tools/bootstrap.sh, or update both pins.
MSG
  exit 1
fi

# Everything that could leak the build machine, user, time or locale into the
# image is fixed; the tree is built in place so paths stay relative.
export KBUILD_BUILD_TIMESTAMP="Thu Jan  1 00:00:00 UTC 1970"
export KBUILD_BUILD_USER=fcvm KBUILD_BUILD_HOST=fcvm KBUILD_BUILD_VERSION=1
export LC_ALL=C TZ=UTC
unset ARCH CROSS_COMPILE KCONFIG_CONFIG KBUILD_OUTPUT O

work="$(mktemp -d "${TMPDIR:-/tmp}/fcvm-kernel-${arch}.XXXXXX")"
trap 'rm -rf "${work}"' EXIT
tar -xJf "${tarball}" -C "${work}"
cd "${work}/${top_dir}"

make -s "${make_args[@]}" allnoconfig
if ! scripts/kconfig/merge_config.sh -m .config "${fragments[@]}" >"${work}/merge.log" 2>&1; then
  cat "${work}/merge.log" >&2
  exit 1
fi
make -s "${make_args[@]}" olddefconfig
"${check}" .config "${fragments[@]}"
make -s -j"$(nproc)" "${make_args[@]}" "${target}"

cp "${built}" "${out_image}"
cp .config "${out_config}"
