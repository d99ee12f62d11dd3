#!/bin/bash
# Formats fcvm's C++ and proto sources with clang-format (Google style, see
# .clang-format).
#   tools/format.sh          rewrite files in place
#   tools/format.sh --check  list files that need formatting; exit 1 if any
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

clang_format="$(command -v clang-format || true)"
[[ -n "${clang_format}" ]] || { echo "clang-format not found: run tools/bootstrap.sh" >&2; exit 1; }

mapfile -t files < <(git ls-files --cached --others --exclude-standard \
                       '*.cc' '*.h' '*.proto')
[[ ${#files[@]} -gt 0 ]] || exit 0

if [[ "${1:-}" == "--check" ]]; then
  bad=0
  for f in "${files[@]}"; do
    if ! diff -q <("${clang_format}" --style=file "${f}") "${f}" >/dev/null; then
      echo "needs formatting: ${f}"
      bad=1
    fi
  done
  exit ${bad}
fi
"${clang_format}" --style=file -i "${files[@]}"
