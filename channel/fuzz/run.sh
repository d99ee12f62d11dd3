#!/bin/bash
# Builds the channel's libFuzzer target with clang (ASan + UBSan) and runs
# it for SECONDS (default 180) over a copy of the committed corpus, with
# the frame dictionary. New inputs stay in the temporary copy (the
# committed corpus is kept small by hand: add one only for a new reason).
# A crashing input is kept in ARTIFACTS (default /tmp/fcvm-channel-fuzz-
# artifacts); run the built fuzzer on it, or add it to corpus/ once fixed.
#   channel/fuzz/run.sh [SECONDS]
set -euo pipefail
seconds="${1:-180}"
artifacts="${ARTIFACTS:-/tmp/fcvm-channel-fuzz-artifacts}"
if ! command -v clang++ >/dev/null; then
  echo "channel/fuzz/run.sh: clang++ is not installed (libFuzzer comes with" \
       "clang); install clang to fuzz" >&2
  exit 1
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d /tmp/fcvm-channel-fuzz.XXXXXX)"
trap 'rm -rf "${work}"' EXIT
protoc --proto_path="${root}" --cpp_out="${work}" "${root}/channel/channel.proto"
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -I"${root}" -I"${work}")
clang++ "${flags[@]}" \
  "${root}/channel/fuzz/frame_fuzzer.cc" "${root}/channel/frame.cc" \
  "${root}/channel/link.cc" "${root}/base/status.cc" \
  "${root}/base/unique_fd.cc" "${work}/channel/channel.pb.cc" \
  $(pkg-config --libs protobuf absl_status absl_statusor absl_strings) \
  -o "${work}/frame_fuzzer"
cp -r "${root}/channel/fuzz/corpus" "${work}/corpus"
mkdir -p "${artifacts}"
cd "${work}"
./frame_fuzzer -max_total_time="${seconds}" -max_len=4096 -timeout=10 \
  -artifact_prefix="${artifacts}/" \
  -dict="${root}/channel/fuzz/frame.dict" -print_final_stats=1 corpus
echo "fuzz: ${seconds} s clean; corpus grew from $(ls "${root}/channel/fuzz/corpus" | wc -l) to $(ls corpus | wc -l) inputs"
