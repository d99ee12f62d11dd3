#!/bin/bash
# //runner:snapshot and //runner:clone: `fcvm "$@"`, their target's args
# (`snapshot create`, `clone`) first. Global fcvm flags come from the
# environment (FCVM_STATE_DIR, FCVM_FIRECRACKER).
set -euo pipefail
for root in "${RUNFILES_DIR:-/nonexistent}/fcvm" "${0}.runfiles/fcvm" \
            "${TEST_SRCDIR:-/nonexistent}/fcvm"; do
  [[ -x "${root}/runner/fcvm" ]] && exec "${root}/runner/fcvm" "$@"
done
echo "fcvm: $(basename "$0") cannot find its runfiles (run it with bazel run)" >&2
exit 2
