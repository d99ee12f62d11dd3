#!/bin/bash
# Shows `--config=shared-cache` working against a real HTTP cache: starts
# nginx (WebDAV PUT) on 127.0.0.1 at a free port, builds the targets twice,
# each time in a fresh output base with the disk cache off, and checks that
# the second build took from the HTTP cache what the first one stored.
#
#   tools/shared_cache_check.sh [--workspace DIR] [TARGETS...]
#
# TARGETS default to //kernel:vmlinux_x86_64 //images:base_x86_64
# //images/oci:nginx_x86_64. DIR defaults to the repository this script is
# in (use a separate clone to leave your own build alone). Both builds start
# cold, so expect a full build's time for the first one.
#
# Prints, for each build: Bazel's elapsed seconds, its processes (internal,
# remote cache hits, run locally), the HTTP requests nginx answered and the
# bytes in the cache (HTTP-err: any other answer to a GET or PUT of
# /ac/ or /cas/). Exits 1 if build 2 had no remote cache hit or ran
# locally an action whose result build 1 stored.
#
# Environment: TMPDIR (the temp dir: the cache and two output bases, so room
# for two builds), BAZEL (default bazel), NGINX (default /usr/sbin/nginx).
set -Eeuo pipefail

readonly kDefaultTargets=(//kernel:vmlinux_x86_64 //images:base_x86_64 //images/oci:nginx_x86_64)
bazel_bin="${BAZEL:-bazel}"
nginx_bin="${NGINX:-/usr/sbin/nginx}"

log() { echo "shared_cache_check: $*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,/^set -/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; }

workspace="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --workspace) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; workspace="$2"; shift 2 ;;
    --workspace=*) workspace="${1#*=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; targets+=("$@"); break ;;
    -*) log "unknown option $1"; usage >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=("${kDefaultTargets[@]}")
workspace="$(cd "${workspace}" && pwd)" || die "no workspace directory ${workspace}"
[[ -f "${workspace}/WORKSPACE" || -f "${workspace}/WORKSPACE.bazel" ]] \
  || die "${workspace} has no WORKSPACE file"
[[ -x "${nginx_bin}" ]] || die "no nginx at ${nginx_bin} (Debian package nginx)"
command -v curl >/dev/null || die "curl is needed to probe nginx"
command -v python3 >/dev/null || die "python3 is needed to read Bazel's execution logs"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/shared_cache_check.XXXXXX")"
nginx_pid=""
port=""
row_2=""
failed=1  # Cleared once the check passed: the error log is printed otherwise.

cleanup() {
  local ob
  if [[ -n "${nginx_pid}" ]]; then
    kill -TERM "${nginx_pid}" 2>/dev/null || true
    wait "${nginx_pid}" 2>/dev/null || true
  fi
  if [[ ${failed} -ne 0 ]] && [[ -s "${tmp}/nginx/error.log" || -s "${tmp}/nginx/stderr.log" ]]; then
    log "nginx error log:"
    cat "${tmp}/nginx/error.log" "${tmp}/nginx/stderr.log" 2>/dev/null >&2 || true
  fi
  for ob in "${tmp}/ob1" "${tmp}/ob2"; do
    [[ -d "${ob}" ]] || continue
    (cd "${workspace}" && "${bazel_bin}" --output_base="${ob}" shutdown) >/dev/null 2>&1 || true
  done
  # Bazel leaves its outputs and external repositories read-only.
  chmod -R u+w "${tmp}" 2>/dev/null || true
  rm -rf "${tmp}"
}
trap cleanup EXIT
trap 'log "error: line ${LINENO} failed: ${BASH_COMMAND}"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# --- The cache server: nginx as this user, everything under ${tmp}. ---------

mkdir -p "${tmp}/nginx/tmp" "${tmp}/cache"
# nginx started by root drops its workers to nobody, who could not write
# here: keep them as the current user.
user_line=""
[[ ${EUID} -ne 0 ]] || user_line="user $(id -un) $(id -gn);"

write_nginx_conf() {  # PORT
  cat >"${tmp}/nginx/nginx.conf" <<EOF
${user_line}
daemon off;
worker_processes 1;
pid ${tmp}/nginx/nginx.pid;
lock_file ${tmp}/nginx/nginx.lock;
error_log ${tmp}/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log ${tmp}/nginx/access.log;
  client_body_temp_path ${tmp}/nginx/tmp/body;
  proxy_temp_path ${tmp}/nginx/tmp/proxy;
  fastcgi_temp_path ${tmp}/nginx/tmp/fastcgi;
  uwsgi_temp_path ${tmp}/nginx/tmp/uwsgi;
  scgi_temp_path ${tmp}/nginx/tmp/scgi;
  server {
    listen 127.0.0.1:$1;
    root ${tmp}/cache;
    dav_methods PUT;
    create_full_put_path on;
    client_max_body_size 0;
    log_not_found off;
  }
}
EOF
}

# Tries random ports until one binds. nginx writes its pid file only after
# it opened its listening socket, so the file names our child once it serves.
start_nginx() {
  local _
  for _ in $(seq 1 10); do
    port=$((20000 + RANDOM % 40000))
    write_nginx_conf "${port}"
    rm -f "${tmp}/nginx/nginx.pid"
    "${nginx_bin}" -p "${tmp}/nginx/" -c "${tmp}/nginx/nginx.conf" \
      -e "${tmp}/nginx/error.log" 2>>"${tmp}/nginx/stderr.log" &
    nginx_pid=$!
    for _ in $(seq 1 100); do
      if [[ "$(cat "${tmp}/nginx/nginx.pid" 2>/dev/null)" == "${nginx_pid}" ]]; then
        return 0
      fi
      kill -0 "${nginx_pid}" 2>/dev/null || break
      sleep 0.1
    done
    wait "${nginx_pid}" 2>/dev/null || true
    nginx_pid=""
    grep -qs 'Address already in use' "${tmp}/nginx/error.log" "${tmp}/nginx/stderr.log" \
      || die "nginx exited at start"
  done
  die "no free port found for nginx in 10 tries"
}

start_nginx
cache_url="http://127.0.0.1:${port}"
probe="$(curl -sS -o /dev/null -w '%{http_code}' -T - "${cache_url}/probe/put" <<<probe)"
[[ "${probe}" == 201 ]] || die "nginx answered a PUT with HTTP ${probe}, not 201"
log "nginx ${nginx_pid} serves ${tmp}/cache at ${cache_url}"

# --- The two builds. --------------------------------------------------------

# The bytes of the files in ac/ and cas/ (what du -b counts, less directories).
cache_bytes() {
  { find "${tmp}/cache/ac" "${tmp}/cache/cas" -type f -printf '%s\n' 2>/dev/null || true; } \
    | awk '{s += $1} END {print s + 0}'
}

# Prints "GET-hits GET-misses PUTs other" for the access log after line $1.
http_counts() {
  tail -n "+$(($1 + 1))" "${tmp}/nginx/access.log" | awk '
    $7 !~ /^\/(ac|cas)\// { next }
    $6 == "\"GET" && $9 == 200 { hit++; next }
    $6 == "\"GET" && $9 == 404 { miss++; next }
    $6 == "\"PUT" && ($9 == 201 || $9 == 204) { put++; next }
    { other++ }
    END { print hit + 0, miss + 0, put + 0, other + 0 }'
}

# Sets row_N to "seconds processes internal hits local get-hit get-miss put
# other bytes" for build N.
run_build() {  # N EXTRA_FLAGS...
  local n="$1" before status line total hits internal
  shift
  before="$(wc -l <"${tmp}/nginx/access.log")"
  log "build ${n}: fresh output base ${tmp}/ob${n}, disk cache off"
  # --symlink_prefix=/: no bazel-* links in the workspace (they are yours).
  status=0
  { (cd "${workspace}" && "${bazel_bin}" --output_base="${tmp}/ob${n}" --max_idle_secs=300 \
       build --config=shared-cache --remote_cache="${cache_url}" --disk_cache= \
       --symlink_prefix=/ --color=no --curses=no \
       --execution_log_json_file="${tmp}/exec${n}.json" "$@" -- "${targets[@]}") \
      2>&1 | tee "${tmp}/build${n}.log" >&2; } || status=$?
  [[ "${status}" -eq 0 ]] || die "build ${n} failed (bazel exit ${status})"
  # "INFO: 5 processes: 3 remote cache hit, 1 internal, 1 processwrapper-sandbox."
  line="$(grep -E '^INFO: [0-9]+ process(es)?[:.]' "${tmp}/build${n}.log" | tail -n 1)"
  [[ -n "${line}" ]] || die "build ${n}: no 'INFO: N processes' line in Bazel's output"
  total="$(sed -E 's/^INFO: ([0-9]+) .*/\1/' <<<"${line}")"
  hits="$( (grep -oE '[0-9]+ [a-z ]*cache hit' <<<"${line}" || true) | awk '{s += $1} END {print s + 0}')"
  internal="$( (grep -oE '[0-9]+ internal' <<<"${line}" || true) | awk '{s += $1} END {print s + 0}')"
  printf -v "row_${n}" '%s %s %s %s %s %s %s' \
    "$(sed -nE 's/^INFO: Elapsed time: ([0-9.]+)s.*/\1/p' "${tmp}/build${n}.log" | tail -n 1)" \
    "${total}" "${internal}" "${hits}" "$((total - internal - hits))" \
    "$(http_counts "${before}")" "$(cache_bytes)"
}

# Build 1 is the CI host that fills the cache, whatever user.bazelrc says.
run_build 1 --remote_upload_local_results
run_build 2

# --- Report. ----------------------------------------------------------------

echo
echo "workspace ${workspace}, cache ${cache_url} (nginx $("${nginx_bin}" -v 2>&1 | sed 's|.*/||'))"
echo "targets: ${targets[*]}"
printf '%-5s %7s %9s %8s %11s %5s %7s %8s %4s %8s %11s\n' \
  build seconds processes internal remote-hits local GET-hit GET-miss PUT HTTP-err cache-bytes
for n in 1 2; do
  row="row_${n}"
  # shellcheck disable=SC2086  # the row is a list of numbers
  printf '%-5s %7s %9s %8s %11s %5s %7s %8s %4s %8s %11s\n' "${n}" ${!row}
done

# Release tarballs among the outputs (//release:tarball*): their sha256 in
# each build. Build 1 started from an empty cache, so its tarball is a cold
# build's, to compare with tools/repro_check.sh's or another host's.
for n in 1 2; do
  find "${tmp}/ob${n}/execroot" -path '*/bin/release/fcvm-*.tar.gz' -type f 2>/dev/null |
    sort | while read -r f; do
      echo "build ${n}: $(sha256sum "${f}" | cut -d' ' -f1)  $(basename "${f}")"
    done
done

# Which actions build 2 ran itself although build 1 stored their result,
# matched by output path (the same in both output bases). "internal"
# processes are not spawns and are not in the logs; actions that may not be
# cached remotely (no-remote-cache, no-cache, local tags) run in both builds
# and are fine.
missed_status=0
python3 - "${tmp}/exec1.json" "${tmp}/exec2.json" <<'EOF' || missed_status=$?
import json, sys

def spawns(path):
    text, pos, dec = open(path).read(), 0, json.JSONDecoder()
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return
        obj, pos = dec.raw_decode(text, pos)
        yield obj

def outputs(spawn):
    return tuple(sorted(spawn.get("listedOutputs", [])))

stored = {outputs(s): s for s in spawns(sys.argv[1])
          if s.get("remoteCacheable") and not s.get("remoteCacheHit")
          and s.get("exitCode", 0) == 0}
ran = [s for s in spawns(sys.argv[2]) if not s.get("remoteCacheHit")]
missed = [s for s in ran if outputs(s) in stored]
print(f"build 1 stored {len(stored)} action results; build 2 ran {len(ran)} "
      f"actions itself, {len(missed)} of them stored by build 1")
for s in missed[:20]:
    outs = s.get("listedOutputs") or ["?"]
    print(f"  ran again: {s.get('mnemonic', '?')} {outs[0]} "
          f"({s.get('progressMessage', '')})")
sys.exit(3 if missed else 0)
EOF
hits_2="$(awk '{print $4}' <<<"${row_2}")"
if [[ "${hits_2}" -eq 0 ]]; then
  log "FAIL: build 2 had no remote cache hit"
  exit 1
fi
case "${missed_status}" in
  0) ;;
  3) log "FAIL: build 2 ran actions that build 1 stored (or failed to: see HTTP-err)"; exit 1 ;;
  *) die "could not read Bazel's execution logs" ;;
esac
failed=0
log "OK: build 2 took ${hits_2} results from the HTTP cache and ran nothing build 1 stored"
