#!/usr/bin/env bash
# A DAVIS-style folder (<sequence>/frames/*.jpg, <sequence>/masks/*.png, tags.csv): weakly
# supervised by the tags CSV only; the masks are used for scoring (foreground IoU, J mean).
# Usage: examples/davis-style.sh [DAVIS_DIR] [WORK_DIR]     (default: ../shared/data/davis-dev)
#   EVERY (5) and HEIGHT (320, A2D's clips) set the frame sample; ITERATIONS, when set, the training
#   length (unset: the cpu preset's, about 50 crops a training frame, at least 600).
set -euo pipefail
data=${1:-../shared/data/davis-dev} work=${2:-build/davis}
every=${EVERY:-5} height=${HEIGHT:-320}
mkdir -p "$work"
vscr edges "$data" --every "$every" --height "$height" -o "$work/edges.zarr" --resume
vscr cam "$data" --tags "$data/tags.csv" --every "$every" --height "$height" -o "$work/cam.zarr" --resume
vscr score "$work/cam.zarr" --gt "$data" --predicted-only --resize --metrics miou,fg_iou,fg_j_mean   # the CAM baseline
vscr train --edges "$work/edges.zarr" --cam "$work/cam.zarr" -o "$work/model" --preset cpu ${ITERATIONS:+--iterations "$ITERATIONS"} --resume
vscr predict "$data" --every "$every" -m "$work/model" -o "$work/pred.zarr" --resume
vscr score "$work/pred.zarr" --gt "$data" --predicted-only --resize --metrics miou,fg_iou,fg_j_mean
vscr show "$work/pred.zarr" --gt "$data" --side-by-side -o "$work/first-video.png" --overwrite
