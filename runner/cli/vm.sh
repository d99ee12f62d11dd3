#!/bin/bash
# //runner:vm: `fcvm run "$@"` with the kernel, base.ext4 and the OCI
# images this target carries as runfiles (listed in vm_assets.txt).
# Global fcvm flags come from the environment (FCVM_STATE_DIR).
set -euo pipefail
for root in "${RUNFILES_DIR:-/nonexistent}/fcvm" "${0}.runfiles/fcvm" \
            "${TEST_SRCDIR:-/nonexistent}/fcvm" "${PWD}"; do
  [[ -f "${root}/runner/cli/vm_assets.txt" ]] && break
done
if [[ ! -f "${root}/runner/cli/vm_assets.txt" ]]; then
  echo "fcvm: //runner:vm cannot find its runfiles (run it with bazel run)" >&2
  exit 2
fi
flags=()
while read -r flag; do
  # --kernel=PATH, --oci=NAME=PATH: runfiles paths, made absolute.
  case "${flag}" in
    --oci=*) name="${flag#--oci=}"; flags+=("--oci=${name%%=*}=${root}/${name#*=}") ;;
    *) flags+=("${flag%%=*}=${root}/${flag#*=}") ;;
  esac
done <"${root}/runner/cli/vm_assets.txt"
exec "${root}/runner/fcvm" "${flags[@]}" run "$@"
