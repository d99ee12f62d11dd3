#!/bin/bash
# //runner:vm (and vm_x86_64, vm_aarch64): `fcvm run "$@"` with the kernel,
# base.ext4, OCI images and baked image root filesystems this launcher
# carries as runfiles (listed in <launcher>_assets.txt); //runner:template:
# `fcvm template "$@"` with them; //runner:api: `fcvm api "$@"`. Global fcvm flags come from the environment
# (FCVM_STATE_DIR, FCVM_FIRECRACKER).
set -euo pipefail
launcher="$(basename "$0")"
for root in "${RUNFILES_DIR:-/nonexistent}/fcvm" "${0}.runfiles/fcvm" \
            "${TEST_SRCDIR:-/nonexistent}/fcvm" "${PWD}"; do
  [[ -f "${root}/runner/cli/${launcher}_assets.txt" ]] && break
done
if [[ ! -f "${root}/runner/cli/${launcher}_assets.txt" ]]; then
  echo "fcvm: //runner:${launcher} cannot find its runfiles (run it with bazel run)" >&2
  exit 2
fi
flags=()
while read -r flag; do
  # --kernel=PATH, --oci=NAME=PATH, --image-rootfs=NAME=PATH: runfiles
  # paths, made absolute.
  case "${flag}" in
    --oci=*) name="${flag#--oci=}"; flags+=("--oci=${name%%=*}=${root}/${name#*=}") ;;
    --image-rootfs=*)
      name="${flag#--image-rootfs=}"
      flags+=("--image-rootfs=${name%%=*}=${root}/${name#*=}") ;;
    --arch=*) flags+=("${flag}") ;;
    *) flags+=("${flag%%=*}=${root}/${flag#*=}") ;;
  esac
done <"${root}/runner/cli/${launcher}_assets.txt"
case "${launcher}" in
  template*) command=template ;;
  api) command=api ;;
  *) command=run ;;
esac
exec "${root}/runner/fcvm" "${flags[@]}" "${command}" "$@"
