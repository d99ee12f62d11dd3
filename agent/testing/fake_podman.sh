#!/bin/bash
# A stand-in for podman in agent_test (a unit test of the agent's control
# loop; the real Podman runs in //tests/agent). State lives in
# $FAKE_PODMAN_DIR: each run/start appends its argv to `calls` and then
# does what `behaviour.<n>` (or `behaviour`) says: "exit N", or "wait"
# (until `podman stop` sends SIGTERM). Flag files: load_fails, load_slow,
# not_local (`image exists` fails, so the agent pulls).
set -u
dir="${FAKE_PODMAN_DIR:?}"
echo "$*" >>"${dir}/calls"
case "$1" in
  load)
    if [[ -f "${dir}/load_fails" ]]; then
      echo "Error: payload does not match any of the supported image formats" >&2
      exit 125
    fi
    [[ -f "${dir}/load_slow" ]] && sleep 1
    echo "Loaded image: localhost/fake/image:latest" ;;
  image) [[ ! -f "${dir}/not_local" ]] ;;  # image exists
  pull) echo "sha256:0123" ;;
  container) echo false ;;  # inspect: not running (READY=1 is the signal)
  stop) kill -TERM "$(cat "${dir}/pid")" ;;
  run | start)
    n=$(($(cat "${dir}/runs" 2>/dev/null || echo 0) + 1))
    echo "${n}" >"${dir}/runs"
    echo $$ >"${dir}/pid"
    # Before READY=1: the agent may stop us as soon as it has that.
    trap 'echo "got SIGTERM"; exit 143' TERM
    echo "hello from run ${n}"
    echo "run ${n} on stderr" >&2
    python3 -c 'import os, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"MAINPID=1\nREADY=1", os.environ["NOTIFY_SOCKET"])'
    behaviour="$(cat "${dir}/behaviour.${n}" 2>/dev/null || cat "${dir}/behaviour")"
    case "${behaviour}" in
      exit*) exit "${behaviour#exit }" ;;
      wait)
        while true; do sleep 0.05; done ;;
    esac ;;
  *) echo "fake podman: unexpected $*" >&2; exit 125 ;;
esac
