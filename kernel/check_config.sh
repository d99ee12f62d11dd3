#!/bin/bash
# Fails, naming each symbol, when a resolved kernel .config lacks a line that a
# fragment asked for. `make olddefconfig` drops symbols silently when they do
# not exist or their dependencies are unmet; this makes that loud.
#   check_config.sh RESOLVED_CONFIG FRAGMENT...
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 RESOLVED_CONFIG FRAGMENT..." >&2; exit 2; }
resolved="$1"
shift
awk '
  # Pass 1: the resolved .config: "CONFIG_X=v" or "# CONFIG_X is not set".
  FNR == NR {
    if ($0 ~ /^CONFIG_[A-Za-z0-9_]+=/) {
      i = index($0, "="); got[substr($0, 1, i - 1)] = substr($0, i + 1)
    } else if ($0 ~ /^# CONFIG_[A-Za-z0-9_]+ is not set$/) {
      got[$2] = "n"
    }
    next
  }
  # Later files: the fragments.
  /^CONFIG_[A-Za-z0-9_]+=/ {
    i = index($0, "="); sym = substr($0, 1, i - 1); want = substr($0, i + 1)
  }
  /^# CONFIG_[A-Za-z0-9_]+ is not set$/ { sym = $2; want = "n" }
  sym != "" {
    have = (sym in got) ? got[sym] : "n"
    if (have != want) {
      printf "%s:%d: %s=%s requested, resolved config has %s\n", FILENAME, FNR, sym, want,
             (sym in got) ? sym "=" have : "no such symbol (unknown, or dependencies unmet)"
      bad++
    }
    sym = ""
  }
  END {
    if (bad) { printf "kernel config check: %d requested option(s) missing from the resolved .config\n", bad; exit 1 }
  }
' "${resolved}" "$@"
