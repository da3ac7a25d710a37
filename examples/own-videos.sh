#!/usr/bin/env bash
# The whole pipeline on your own footage: a folder of videos (or frame folders) and a tags CSV.
# Usage: [ITERATIONS=N] examples/own-videos.sh VIDEOS_DIR TAGS_CSV [WORK_DIR]
#   TAGS_CSV has a header `video,tags`, e.g. `clip01,dog-running;adult-walking` (empty = no actor).
#   ITERATIONS: exactly this many training iterations; unset, the cpu preset's: about 50 crops a
#   training frame, at least 600 (docs/decisions/0039-training-length-per-frame.md).
set -euo pipefail
videos=$1 tags=$2 work=${3:-build/own}
mkdir -p "$work"
# every 5th frame for training (docs/decisions/0034-training-frames.md), every frame predicted
vscr edges "$videos" --every 5 --height 320 -o "$work/edges.zarr" --resume
vscr cam "$videos" --tags "$tags" --every 5 --height 320 -o "$work/cam.zarr" --resume
vscr train --edges "$work/edges.zarr" --cam "$work/cam.zarr" -o "$work/model" --preset cpu ${ITERATIONS:+--iterations "$ITERATIONS"} --resume
vscr predict "$videos" -m "$work/model" | vscr align > "$work/aligned.zarr.zip"
vscr info "$work/aligned.zarr.zip"
