#!/usr/bin/env bash
# The demo job of `make demo`: scripts/demo.sh PATH/TO/avatar
# For now it re-encodes the bundled talking-head sample (decode -> H.264 encode, speech audio
# copied unchanged); the DPE issue replaces this with real animation of the sample portrait.
set -euo pipefail
cd "$(dirname "$0")/.."
avatar=${1:-build/avatar}
[ -x "$avatar" ] || { echo "demo: $avatar not found or not executable (build first: make build)" >&2; exit 1; }

mkdir -p out
"$avatar" transcode assets/samples/talking.mp4 -o out/demo.mp4
echo "demo: result in $(pwd)/out/demo.mp4"
