#!/bin/bash
# Signs a release: a detached signify-openbsd signature of the tarball's
# SHA256SUMS, written beside it as TARBALL.sig, which
# `fcvm setup install TARBALL --public-key KEY.pub` verifies before it trusts
# any digest. The secret key never enters the build.
#
#   signify-openbsd -G -p fcvm-release.pub -s fcvm-release.sec   # once
#   tools/sign_release.sh fcvm-VERSION-linux-ARCH.tar.gz fcvm-release.sec
set -euo pipefail
if [[ $# -ne 2 ]]; then
  echo "usage: $0 TARBALL SECRET_KEY" >&2
  exit 2
fi
tarball=$1
key=$2
command -v signify-openbsd >/dev/null ||
  { echo "$0: needs signify-openbsd (Debian package signify-openbsd)" >&2; exit 1; }
top="$(tar -tzf "${tarball}" | awk 'NR == 1')"
top="${top%%/*}"
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
tar -xzf "${tarball}" -C "${tmp}" "${top}/SHA256SUMS"
signify-openbsd -S -s "${key}" -m "${tmp}/${top}/SHA256SUMS" -x "${tarball}.sig"
echo "${tarball}.sig"
