#!/usr/bin/env bash
# The paper's protocol on an A2D Release root: stages I and II on the train split, prediction
# and scoring on the test split (annotated frames), with the tags A2D's annotations give.
# Usage: examples/a2d-release.sh A2D_RELEASE_ROOT [WORK_DIR]
#   Any folder in A2D's layout works, e.g. one from `vscr synth data/a2d` (then pass data/a2d).
#   ITERATIONS and PRESET override the training length and preset (default: cpu, 600).
set -euo pipefail
root=$1 work=${2:-build/a2d}
preset=${PRESET:-cpu} iterations=${ITERATIONS:-600}
mkdir -p "$work"
vscr edges "$root" --split train -o "$work/edges.zarr" --resume
vscr cam "$root" --split train --tags "$root" -o "$work/cam.zarr" --resume
vscr train --edges "$work/edges.zarr" --cam "$work/cam.zarr" -o "$work/model" --preset "$preset" --iterations "$iterations" --resume
vscr predict "$root" --split test --annotated-only -m "$work/model" | vscr align > "$work/aligned.zarr.zip"
vscr score "$work/aligned.zarr.zip" --gt "$root" --split test --json "$work/scores.json"
