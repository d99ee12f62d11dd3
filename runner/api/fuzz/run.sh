#!/bin/bash
# Builds the API's request-parser fuzz target with clang's libFuzzer (ASan +
# UBSan) and runs it for SECONDS (default 180) over a copy of the committed
# corpus. New inputs stay in the temporary copy (add one to corpus/, with
# its verdict in corpus_test.cc, only for a new reason). A crashing input
# is kept in ARTIFACTS (default /tmp/fcvm-api-fuzz-artifacts).
#   runner/api/fuzz/run.sh [SECONDS]
set -euo pipefail
seconds="${1:-180}"
artifacts="${ARTIFACTS:-/tmp/fcvm-api-fuzz-artifacts}"
if ! command -v clang++ >/dev/null; then
  echo "runner/api/fuzz/run.sh: clang++ is not installed (libFuzzer comes" \
       "with clang); install clang to fuzz" >&2
  exit 1
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
work="$(mktemp -d /tmp/fcvm-api-fuzz.XXXXXX)"
trap 'rm -rf "${work}"' EXIT
protos=(runner/api/connect.proto runner/api/e2b/api.proto
        runner/api/e2b/process.proto runner/api/e2b/filesystem.proto)
(cd "${root}" && protoc --proto_path=. --proto_path=/usr/include \
   --cpp_out="${work}" "${protos[@]}")
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -DFCVM_LIBFUZZER -I"${root}" -I"${work}")
clang++ "${flags[@]}" \
  "${root}/runner/api/fuzz/request_fuzzer.cc" "${root}/runner/api/connect.cc" \
  "${work}/runner/api/connect.pb.cc" "${work}/runner/api/e2b/api.pb.cc" \
  "${work}/runner/api/e2b/process.pb.cc" \
  "${work}/runner/api/e2b/filesystem.pb.cc" \
  $(pkg-config --libs protobuf absl_status absl_statusor absl_strings) \
  -o "${work}/request_fuzzer"
cp -r "${root}/runner/api/fuzz/corpus" "${work}/corpus"
mkdir -p "${artifacts}"
cd "${work}"
./request_fuzzer -max_total_time="${seconds}" -max_len=4096 -timeout=10 \
  -artifact_prefix="${artifacts}/" -print_final_stats=1 corpus
echo "fuzz: ${seconds} s clean; corpus grew from $(ls "${root}/runner/api/fuzz/corpus" | wc -l) to $(ls corpus | wc -l) inputs"
