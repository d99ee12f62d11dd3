#!/bin/bash
# Runs the image tool twice more on the inputs Bazel used and checks that
# both outputs have the same bytes as Bazel's. The first rebuild runs in this
# test's environment (another process, path and time than Bazel's action);
# the second varies what a build must not depend on, as reprotest does:
# time zone (UTC+14, as a POSIX TZ that needs no tzdata), locale, umask,
# HOME, the working directory, the inputs' paths (absolute, elsewhere) and
# the order the archives were written to their directory in.
#   rebuild_test.sh <built image> <build_image> <tool flags...>
# Tool flags are --name=value; values that name files or directories here
# are made absolute for the second rebuild, and --debs_dir is copied. An
# ext4 image (a baked container root filesystem) must also be e2fsck-clean.
set -euo pipefail
built=$1
tool=$2
shift 2
want=$(sha256sum "$built" | cut -d' ' -f1)

if [[ "$built" == *.ext4 ]]; then
  # Actions and tests have no /usr/sbin in PATH.
  fsck=$(PATH="$PATH:/usr/sbin:/sbin" command -v e2fsck)
  if ! report=$("$fsck" -fn "$built" 2>&1); then
    echo "e2fsck -fn $built:" >&2
    echo "$report" >&2
    exit 1
  fi
fi

check() {  # check N OUTPUT
  local got
  got=$(sha256sum "$2" | cut -d' ' -f1)
  if [[ "$got" != "$want" ]]; then
    echo "rebuild $1 of $built differs: $got, Bazel built $want" >&2
    exit 1
  fi
}

# 1: as Bazel ran it.
out="$TEST_TMPDIR/rebuild-1"
"$tool" "$@" --output="$out" 2>/dev/null
check 1 "$out"

# 2: another environment.
elsewhere="$TEST_TMPDIR/elsewhere"
mkdir -p "$elsewhere/cwd" "$elsewhere/home" "$elsewhere/debs"
flags=()
for flag in "$@"; do
  name="${flag%%=*}" value="${flag#*=}"
  if [[ "$flag" == --debs_dir=* ]]; then
    # Written newest name first: a directory listing comes out in another
    # order than Bazel's.
    for deb in $(ls "$value" | sort -r); do
      cp "$value/$deb" "$elsewhere/debs/$deb"
    done
    flags+=("--debs_dir=$elsewhere/debs")
  elif [[ "$flag" == --*=* && -e "$value" ]]; then
    [[ "$value" == /* ]] || value="$PWD/$value"
    flags+=("$name=$value")
  else
    flags+=("$flag")
  fi
done
[[ "$tool" == /* ]] || tool="$PWD/$tool"
(
  cd "$elsewhere/cwd"
  umask 0077
  env -i PATH="$PATH" HOME="$elsewhere/home" TZ=FCVM-14 \
    LANG=C.UTF-8 LC_ALL=C.UTF-8 TMPDIR="$elsewhere" \
    "$tool" "${flags[@]}" --output="$elsewhere/rebuild-2" 2>/dev/null
)
check 2 "$elsewhere/rebuild-2"
echo "$built: ${fsck:+e2fsck-clean, }two rebuilds identical (the second in another time zone, locale," \
  "umask, working directory and input order), sha256 $want"
