#!/usr/bin/env bash
# The demo job of `make demo`: scripts/demo.sh PATH/TO/avatar
# Animates the bundled portrait photo with the bundled talking-head clip using the project's own
# DPE model (models/dpe-synth128, trained on the synthetic world), pose and expression, pasted back
# into the full photo, with the clip's audio: out/demo.mp4.
set -euo pipefail
cd "$(dirname "$0")/.."
avatar=${1:-build/avatar}
[ -x "$avatar" ] || { echo "demo: $avatar not found or not executable (build first: make build)" >&2; exit 1; }

mkdir -p out
"$avatar" animate -m dpe --weights dpe-own -s assets/samples/portrait.png \
    -d assets/samples/talking.mp4 --transfer both -o out/demo.mp4
echo "demo: result in $(pwd)/out/demo.mp4"
