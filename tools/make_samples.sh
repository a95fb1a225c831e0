#!/usr/bin/env bash
# Regenerates the bundled samples assets/samples/portrait.png and assets/samples/talking.mp4.
# Developer tool only: it needs network access to a Debian mirror (for the photo) and espeak-ng
# (for the speech); neither is a dependency of the project, and nothing here runs at build or
# test time. Provenance and licences: assets/samples/README.md.
#
#   tools/make_samples.sh            # writes into assets/samples/
#
# Needs: apt-get (download only, no install), dpkg, ffmpeg, espeak-ng.
set -euo pipefail
cd "$(dirname "$0")/.."
out=assets/samples
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v espeak-ng >/dev/null || { echo "needs espeak-ng (apt-get install espeak-ng)" >&2; exit 1; }

# 1. The public-domain NASA photo of astronaut Eileen Collins, as shipped by scikit-image in
#    Debian's python3-skimage (512x512 RGB). The package is only unpacked, never installed.
(cd "$work" && apt-get download python3-skimage >/dev/null && dpkg -x python3-skimage_*.deb pkg)
photo=$(find "$work/pkg" -name astronaut.png | head -n 1)
[ -f "$photo" ] || { echo "astronaut.png not found in python3-skimage" >&2; exit 1; }

# 2. portrait.png: a 256x256 head-and-shoulders crop around the face (face centre ~ (225, 115)).
# The photo's ICC profile is dropped: libpng warns on every read that it is an incorrect sRGB one.
ffmpeg -nostdin -v error -y -i "$photo" -vf "crop=256:256:97:0,sidedata=mode=delete:type=ICC_PROFILE" \
    -frames:v 1 "$out/portrait.png"

# 3. Speech from espeak-ng (22.05 kHz mono WAV, about 3.5 s).
espeak-ng -v en-us -s 175 -w "$work/speech.wav" "Hello! I am a sample portrait, and this is my voice."
duration=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$work/speech.wav")
frames=$(awk -v d="$duration" 'BEGIN { printf "%d", d * 25 + 0.999 }')

# 4. talking.mp4: the photo with a slow zoom and sway (every frame differs from the previous one),
#    256x256 at 25 fps, H.264 (yuv420p, CRF 23) + AAC, moov atom at the front. The photo is
#    upscaled 4x first so that zoompan's integer crop offsets do not make the motion jitter.
#    zoompan turns the one input picture into exactly $frames frames. (No -frames:v: reaching
#    it makes ffmpeg close the file before the audio, which it buffers behind the video, is in.)
zoom="2.0+0.12*sin(2*PI*on/${frames})"
ffmpeg -nostdin -v error -y -i "$photo" -i "$work/speech.wav" -filter_complex \
    "[0:v]scale=2048:2048:flags=lanczos,zoompan=z='${zoom}':x='900-iw/zoom/2+40*sin(2*PI*on/50)':y='max(0,470-ih/zoom/2+20*sin(2*PI*on/37))':d=${frames}:s=256x256:fps=25,format=yuv420p[v]" \
    -map "[v]" -map 1:a \
    -c:v libx264 -preset slow -crf 23 -pix_fmt yuv420p \
    -c:a aac -b:a 48k -ar 22050 -ac 1 \
    -movflags +faststart -map_metadata -1 "$out/talking.mp4"

ls -l "$out/portrait.png" "$out/talking.mp4"
ffprobe -v error -show_entries stream=codec_name,width,height,r_frame_rate,nb_frames,sample_rate \
    -of compact "$out/talking.mp4"
