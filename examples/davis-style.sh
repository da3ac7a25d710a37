#!/usr/bin/env bash
# A DAVIS-style folder (<sequence>/frames/*.jpg, <sequence>/masks/*.png, tags.csv): weakly
# supervised by the tags CSV only; the masks are used for scoring (foreground IoU, J mean).
# Usage: examples/davis-style.sh [DAVIS_DIR] [WORK_DIR]     (default: ../shared/data/davis-dev)
#   EVERY (5), HEIGHT (320, A2D's clips) and ITERATIONS (600) set the frame sample and the training length.
set -euo pipefail
data=${1:-../shared/data/davis-dev} work=${2:-build/davis}
every=${EVERY:-5} height=${HEIGHT:-320} iterations=${ITERATIONS:-600}
mkdir -p "$work"
vscr edges "$data" --every "$every" --height "$height" -o "$work/edges.zarr" --resume
vscr cam "$data" --tags "$data/tags.csv" --every "$every" --height "$height" -o "$work/cam.zarr" --resume
vscr score "$work/cam.zarr" --gt "$data" --predicted-only --resize --metrics miou,fg_iou,fg_j_mean   # the CAM baseline
vscr train --edges "$work/edges.zarr" --cam "$work/cam.zarr" -o "$work/model" --preset cpu --iterations "$iterations" --resume
vscr predict "$data" --every "$every" -m "$work/model" -o "$work/pred.zarr" --resume
vscr score "$work/pred.zarr" --gt "$data" --predicted-only --resize --metrics miou,fg_iou,fg_j_mean
vscr show "$work/pred.zarr" --gt "$data" --side-by-side -o "$work/first-video.png" --overwrite
