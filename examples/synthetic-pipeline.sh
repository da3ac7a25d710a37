#!/usr/bin/env bash
# Every stage on a synthetic dataset in the A2D layout, scored against its ground truth.
# Usage: examples/synthetic-pipeline.sh [WORK_DIR]     (about 10 minutes on 2 CPU cores)
set -euo pipefail
work=${1:-build/synthetic}
mkdir -p "$work"
classes="15,16,17,18,75,76,77,78,65,66,67,68"   # adult/dog/cat x jumping/rolling/running/walking
vscr synth "$work/synth" --videos 48 --classes "$classes" --overwrite > /dev/null
vscr edges "$work/synth" --every 2 -o "$work/edges.zarr" --overwrite
vscr cam "$work/synth" --tags "$work/synth/tags.csv" --every 2 --fit-frames 8 --epochs 3 -o "$work/cam.zarr" --overwrite
vscr train --edges "$work/edges.zarr" --cam "$work/cam.zarr" -o "$work/model" --preset cpu --overwrite
vscr predict "$work/synth" --split test --annotated-only -m "$work/model" | vscr align | vscr score - --gt "$work/synth"
