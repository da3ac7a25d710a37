#!/usr/bin/env bash
# The paper's protocol on an A2D Release root: stages I and II on the train split, prediction
# and scoring on the test split (annotated frames), with the tags A2D's annotations give.
# Usage: examples/a2d-release.sh A2D_RELEASE_ROOT [WORK_DIR]
#   Any folder in A2D's layout works, e.g. one from `vscr synth data/a2d` (then pass data/a2d).
#   As the paper, '<actor>-none' videos are unlabeled (D_u, no CAM): vscr cam --none-tags unlabeled;
#   and its inference has no dense CRF: vscr predict --no-crf.
#   MODE=cpu (default): EfficientNet-Lite0 and the flow encoder, every train frame;
#     ITERATIONS and PRESET override the training length and preset (default: cpu, 600).
#   MODE=paper: the paper's method on CUDA, every stage by its `--preset paper` (cam: ResNet-50,
#     Grad-CAM++ at 224, SLIC at 0.5, '-none' videos unlabeled; train: ResNet-101 DeepLab at output
#     stride 8 + ASPP, the Kinetics-400 I3D clip vector, Eq. 4 only, 40,000 iterations; predict:
#     the softmax's arg-max per frame, no CRF; then vscr align) on the annotated train frames. NGPU=1 (default) trains in one process; NGPU=2 or 5 trains
#     with torchrun, one process per GPU (the batch of 10 frames splits evenly, at least 2 per process).
#     WORKERS sets the data-loading processes per training process (default 8 / NGPU).
#     Expected time per stage: docs/train.md, "A2D at the paper's scale".
set -euo pipefail
root=$1 work=${2:-build/a2d}
mode=${MODE:-cpu}
mkdir -p "$work"
case $mode in
cpu)
  preset=${PRESET:-cpu} iterations=${ITERATIONS:-600}
  vscr edges "$root" --split train -o "$work/edges.zarr" --resume
  vscr cam "$root" --split train --tags "$root" --none-tags unlabeled -o "$work/cam.zarr" --resume
  vscr train --edges "$work/edges.zarr" --cam "$work/cam.zarr" -o "$work/model" --preset "$preset" --iterations "$iterations" --resume
  vscr predict "$root" --split test --annotated-only -m "$work/model" --no-crf | vscr align > "$work/aligned.zarr.zip"
  ;;
paper)
  ngpu=${NGPU:-1}
  workers=${WORKERS:-$((8 / ngpu > 0 ? 8 / ngpu : 1))}
  if (( 10 % ngpu || ngpu == 10 )); then
    echo "NGPU=$ngpu: use 1, 2 or 5 (the batch of 10 frames splits evenly, at least 2 per process for ASPP's pooled batch norm)" >&2
    exit 2
  fi
  # Once, before any training process starts: torchvision's and pytorchvideo's checkpoints into
  # torch.hub's cache ($TORCH_HOME/hub/checkpoints). Offline: place the files there (docs/weights.md).
  vscr weights fetch resnet50-imagenet resnet101-imagenet i3d-r50-kinetics400
  vscr edges "$root" --split train --annotated-only --device cuda -o "$work/edges.zarr" --resume
  vscr cam "$root" --split train --annotated-only --tags "$root" --preset paper --device cuda \
      --classifier "$work/cam.classifier" -o "$work/cam.zarr" --resume
  train=(train --edges "$work/edges.zarr" --cam "$work/cam.zarr" -o "$work/model" --preset paper
         --device cuda --workers "$workers" --resume)
  if (( ngpu == 1 )); then
    vscr "${train[@]}"
  else
    torchrun --standalone --nproc-per-node "$ngpu" -m vscr_cli "${train[@]}"
  fi
  vscr predict "$root" --split test --annotated-only -m "$work/model" --device cuda --preset paper | vscr align > "$work/aligned.zarr.zip"
  ;;
*)
  echo "MODE must be cpu or paper, not $mode" >&2
  exit 2
  ;;
esac
vscr score "$work/aligned.zarr.zip" --gt "$root" --split test --json "$work/scores.json"
