#!/bin/bash
# Builds the handshake parser's libFuzzer target with clang (ASan + UBSan)
# and runs it for SECONDS (default 180) over a copy of the committed corpus,
# with the JSON dictionary. New inputs stay in the temporary copy (the
# committed corpus is kept small by hand: add one only for a new reason).
#   uffd/fuzz/run.sh [SECONDS]
set -euo pipefail
seconds="${1:-180}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d /tmp/fcvm-uffd-fuzz.XXXXXX)"
trap 'rm -rf "${work}"' EXIT
protoc --proto_path="${root}" --cpp_out="${work}" "${root}/uffd/handshake.proto"
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -I"${root}" -I"${work}")
clang++ "${flags[@]}" \
  "${root}/uffd/fuzz/handshake_fuzzer.cc" "${root}/uffd/handshake.cc" \
  "${root}/uffd/region_table.cc" "${work}/uffd/handshake.pb.cc" \
  $(pkg-config --libs protobuf absl_status absl_statusor absl_strings) \
  -o "${work}/handshake_fuzzer"
cp -r "${root}/uffd/fuzz/corpus" "${work}/corpus"
cd "${work}"
./handshake_fuzzer -max_total_time="${seconds}" -max_len=4096 \
  -dict="${root}/uffd/fuzz/json.dict" -print_final_stats=1 corpus
echo "fuzz: ${seconds} s clean; corpus grew from $(ls "${root}/uffd/fuzz/corpus" | wc -l) to $(ls corpus | wc -l) inputs"
