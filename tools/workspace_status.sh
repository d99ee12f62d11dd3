#!/bin/bash
# Bazel's --workspace_status_command (.bazelrc): what a release tarball
# records of its source (release/release.bzl reads the stable status):
#   STABLE_FCVM_COMMIT             the checkout's commit ("unknown" outside git;
#                                  "+dirty" when tracked files differ)
#   STABLE_FCVM_SOURCE_DATE_EPOCH  $SOURCE_DATE_EPOCH, else the commit's time,
#                                  else 0: every mtime in the tarball
# Only these keys, so the status (and the packing action) is the same for
# every user and machine building the same commit.
set -u
git=(git -c "safe.directory=$PWD")
commit="$("${git[@]}" rev-parse HEAD 2>/dev/null)" || commit=""
if [[ -n "${commit}" ]]; then
  "${git[@]}" diff --quiet HEAD -- 2>/dev/null || commit="${commit}+dirty"
  time="$("${git[@]}" log -1 --format=%ct HEAD 2>/dev/null)" || time=0
else
  commit=unknown
  time=0
fi
echo "STABLE_FCVM_COMMIT ${commit}"
echo "STABLE_FCVM_SOURCE_DATE_EPOCH ${SOURCE_DATE_EPOCH:-${time}}"
