#!/usr/bin/env bash
# Make a synthetic A2D-layout dataset and look at what it holds.
# Usage: examples/synth-and-inspect.sh [OUT_DIR]
set -euo pipefail
out=${1:-build/examples/synth}
mkdir -p "$(dirname "$out")"
vscr synth "$out" --videos 12 --frames 16 --dense --overwrite
head -n 5 "$out/Release/videoset.csv"
cat "$out/tags.csv"
