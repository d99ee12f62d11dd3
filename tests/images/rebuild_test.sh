#!/bin/bash
# Runs the image tool twice more on the inputs Bazel used and checks that
# both outputs have the same bytes as Bazel's.
#   rebuild_test.sh <built image> <build_image> <tool flags...>
set -euo pipefail
built=$1
tool=$2
shift 2
want=$(sha256sum "$built" | cut -d' ' -f1)
for i in 1 2; do
  out="$TEST_TMPDIR/rebuild-$i"
  "$tool" "$@" --output="$out" 2>/dev/null
  got=$(sha256sum "$out" | cut -d' ' -f1)
  if [[ "$got" != "$want" ]]; then
    echo "rebuild $i of $built differs: $got, Bazel built $want" >&2
    exit 1
  fi
done
echo "$built: two rebuilds identical, sha256 $want"
