#!/bin/bash
# Installs exactly the Debian packages pinned in third_party/debian_packages.txt
# and reports any package whose installed version differs from its pin.
#
#   sudo tools/bootstrap.sh          # install / verify (idempotent)
#   tools/bootstrap.sh --check       # only verify, never install
#
# Environment:
#   FCVM_ALLOW_VERSION_DRIFT=1  when the mirror no longer offers a pinned
#                               version, install what it offers (and say so)
#                               instead of failing.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
manifest="${repo_root}/third_party/debian_packages.txt"
check_only=0
case "${1:-}" in
  --check) check_only=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

log() { echo "bootstrap: $*"; }
die() { echo "bootstrap: error: $*" >&2; exit 1; }

[[ -r "${manifest}" ]] || die "cannot read ${manifest}"

# The manifest as "package version" pairs, comments and blank lines dropped.
mapfile -t pins < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "${manifest}" \
                    | awk 'NF != 2 { printf "bad line: %s\n", $0 > "/dev/stderr"; exit 1 }
                           { print $1, $2 }')
[[ ${#pins[@]} -gt 0 ]] || die "no packages in ${manifest}"

# Prints "package version" for each pin whose installed version differs,
# with "-" as the installed version of a missing package.
native_arch="$(dpkg --print-architecture)"
differing() {
  local pin name version installed
  for pin in "${pins[@]}"; do
    read -r name version <<<"${pin}"
    # With several architectures installed dpkg-query lists each; an
    # unqualified pin means the native (or arch-independent) one.
    installed="$(dpkg-query -W -f='${Architecture} ${db:Status-Abbrev}|${Version}\n' "${name}" 2>/dev/null \
                 | awk -v native="${native_arch}" -v qualified="${name//[^:]/}" \
                     'qualified != "" || $1 == native || $1 == "all" { sub(/^[^ ]* /, ""); print; exit }' || true)"
    if [[ "${installed}" != ii* ]]; then
      echo "${name} -"
    elif [[ "${installed#*|}" != "${version}" ]]; then
      echo "${name} ${installed#*|}"
    fi
  done
}

pinned_version() {
  local pin name version
  for pin in "${pins[@]}"; do
    read -r name version <<<"${pin}"
    [[ "${name}" == "$1" ]] && { echo "${version}"; return; }
  done
}

# The published E2B SDK that the API tests drive `fcvm api` with (tests/api/
# sdk: package.json pins the version, package-lock.json every package's
# sha512). Installed with `npm ci` while the network is there; Bazel tests
# never fetch. Needs Node.js 18 or newer and npm (not Debian packages here:
# Debian 12's nodejs is older than the SDK supports on some machines).
sdk_dir="${repo_root}/tests/api/sdk"
install_e2b_sdk() {
  command -v npm >/dev/null && command -v node >/dev/null \
    || die "Node.js and npm are needed for the E2B SDK tests (tests/api/sdk); install Node.js 18+"
  if [[ ${check_only} -eq 1 ]]; then
    [[ -f "${sdk_dir}/node_modules/e2b/package.json" ]] \
      || die "the E2B SDK is not installed in ${sdk_dir} (run tools/bootstrap.sh)"
    return 0
  fi
  # Already there and whole (npm ls checks the tree against the lockfile):
  # nothing to do, and nothing to delete (an earlier run under sudo may own
  # it).
  if [[ -f "${sdk_dir}/node_modules/e2b/package.json" ]] &&
     (cd "${sdk_dir}" && npm ls --all --offline >/dev/null 2>&1); then
    log "E2B SDK $(node -p "require('${sdk_dir}/node_modules/e2b/package.json').version") already installed in tests/api/sdk"
    return 0
  fi
  local try
  for try in 1 2 3; do
    if (cd "${sdk_dir}" && npm ci --ignore-scripts --no-audit --no-fund \
          --omit-lockfile-registry-resolved --loglevel=error >/dev/null); then
      log "E2B SDK $(node -p "require('${sdk_dir}/node_modules/e2b/package.json').version") installed in tests/api/sdk"
      return 0
    fi
    log "npm ci failed (attempt ${try} of 3)"
    sleep 5
  done
  die "could not install the E2B SDK (npm ci in ${sdk_dir})"
}

report_and_exit() {
  local name installed bad=0
  while read -r name installed; do
    [[ -n "${name}" ]] || continue
    bad=1
    if [[ "${installed}" == "-" ]]; then
      echo "bootstrap: MISSING  ${name} (pinned $(pinned_version "${name}"))" >&2
    else
      echo "bootstrap: DIFFERS  ${name}: pinned $(pinned_version "${name}"), installed ${installed}" >&2
    fi
  done < <(differing)
  if [[ ${bad} -eq 0 ]]; then
    log "all ${#pins[@]} pinned packages are installed at their pinned versions"
    install_e2b_sdk
    exit 0
  fi
  if [[ "${FCVM_ALLOW_VERSION_DRIFT:-0}" == 1 ]]; then
    log "continuing despite the differences above (FCVM_ALLOW_VERSION_DRIFT=1)"
    install_e2b_sdk
    exit 0
  fi
  exit 1
}

todo="$(differing)"
if [[ -z "${todo}" || ${check_only} -eq 1 ]]; then
  report_and_exit
fi

if [[ ${EUID} -ne 0 ]]; then
  if command -v sudo >/dev/null; then
    exec sudo --preserve-env=FCVM_ALLOW_VERSION_DRIFT "$0" "$@"
  fi
  die "must run as root to install packages (try: sudo $0)"
fi

export DEBIAN_FRONTEND=noninteractive
need_update=0
# Cross libraries are multiarch packages of the arm64 architecture.
if printf '%s\n' "${pins[@]}" | grep -q '^[^ ]*:arm64 '; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    log "enabling the arm64 architecture in dpkg (for :arm64 packages)"
    dpkg --add-architecture arm64
    need_update=1
  fi
fi
# Refresh the package lists unless they are recent (idempotent re-runs stay
# fast and need no network when nothing is missing).
lists_age=$(( $(date +%s) - $(stat -c %Y /var/lib/apt/lists 2>/dev/null || echo 0) ))
if [[ ${need_update} -eq 1 || ${lists_age} -gt 3600 ]] \
   || ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then
  log "apt-get update"
  apt-get update -qq || die "apt-get update failed"
fi

# Decide what to ask apt for: the pinned version where the mirror has it.
request=()
drift=()
while read -r name installed; do
  version="$(pinned_version "${name}")"
  if apt-cache madison "${name}" 2>/dev/null | awk -F'|' '{ gsub(/ /, "", $2); print $2 }' \
       | grep -qxF "${version}"; then
    request+=("${name}=${version}")
  else
    offered="$(apt-cache policy "${name}" 2>/dev/null | awk '/Candidate:/ { print $2 }')"
    drift+=("${name}: pinned ${version}, mirror offers ${offered:-nothing}")
    request+=("${name}")
  fi
done <<<"${todo}"

if [[ ${#drift[@]} -gt 0 ]]; then
  for d in "${drift[@]}"; do echo "bootstrap: NOT AVAILABLE  ${d}" >&2; done
  if [[ "${FCVM_ALLOW_VERSION_DRIFT:-0}" != 1 ]]; then
    die "pinned versions above are not offered by the configured mirror; update third_party/debian_packages.txt or set FCVM_ALLOW_VERSION_DRIFT=1"
  fi
fi

log "installing ${#request[@]} package(s): ${request[*]}"
apt-get install -y -qq --no-install-recommends --allow-downgrades "${request[@]}" \
  || die "apt-get install failed"

report_and_exit
