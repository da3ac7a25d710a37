"""Throughput of the CAM stage at A2D resolution: classifier fine-tuning, multi-scale Grad-CAM++, SLIC.

    python bench/bench_cam.py [--videos 7] [--frames 20] [--epochs 3] [--threads 1] [--cam-batch-sizes 8 1] [--out bench/results/cam.json]

Synthesises --videos single-actor 320x426 clips (A2D's clip height; one per actor, so the
classifier has all 7 classes to learn), then, per thread count and round, runs in fresh worker
processes (each its own peak RSS):

* ``fit``: `fit_classifier` as `vscr cam` runs it (EfficientNet-Lite0 from the ImageNet
  weights, input height 224, batches of 16 augmented frames, AdamW), on the frames
  `fitting_frames` picks (the last 20% of each clip held out), in fp32 and under the
  reduced-precision autocast the device runs natively (bf16 on CPUs with avx512_bf16/AMX).
  Images/s is taken over the steps after the first (the first includes one-off allocation).
* ``cam``: `CamExtractor` with the default heights (224, 448) on batches of each of
  --cam-batch-sizes frames (1 is the command's default), each height alone for the cost
  split, then SLIC (150 superpixels) and `pseudo_label` per frame; a check of what
  Grad-CAM++ does under bf16 autocast; and ``video_cam_defaults``: the whole per-video
  stage (decoding, maps, motion, SLIC, pseudo-labels) with the default `CamParams` on
  --cam-frames frames of the first clip.

Every measurement records wall time, CPU time of the process (all its threads) and the 1-minute
load average; each keeps its fastest round. On a machine shared with other work the wall
times of multi-threaded runs suffer most, so single-threaded runs are the fair comparison there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_edges import run_measured, timed  # beside this script

from vscr_cli import labels, weights
from vscr_cli.core.precision import autocast, autocast_dtype
from vscr_cli.datasets.synth import SynthConfig, synthesize
from vscr_cli.sources import discover
from vscr_cli.video import FrameSelection
from vscr_cli.settings.cam import DEFAULT_CAM_HEIGHTS, DEFAULT_THRESHOLD, CamParams, ClassifierConfig
from vscr_cli.stages.cam import (
    CamExtractor,
    fit_classifier,
    fitting_frames,
    load_classifier,
    pseudo_label,
    save_classifier,
    superpixels,
    video_cam,
)
from vscr_cli.tags import read_tags_csv

REPO = Path(__file__).resolve().parents[1]
FRAME_SIZE = (320, 426)


def one_class_per_actor() -> tuple[int, ...]:
    """The first valid actor-action id of each actor that is not ``<actor>-none``."""
    first: dict[int, int] = {}
    for label_id in labels.VALID_IDS:
        if labels.ACTIONS[labels.action_of(label_id) - 1] != "none":
            first.setdefault(labels.actor_of(label_id), label_id)
    return tuple(first.values())


def fit_worker(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Fine-tune the classifier once; steady-state images/s (steps after the first) and the whole call."""
    videos = discover([args.data])
    config = ClassifierConfig(epochs=args.epochs, frames_per_video=args.frames)
    train, holdout = fitting_frames(videos, read_tags_csv(args.data / "tags.csv"), FrameSelection(), config, "labeled")
    if len(train) % config.batch_size:
        raise SystemExit(f"{len(train)} training frames do not fill batches of {config.batch_size}: change --videos/--frames")
    dtype = autocast_dtype(device) if args.precision == "reduced" else None
    imagenet = weights.load_state_dict("efficientnet-lite0-imagenet")
    steps: list[tuple[float, float]] = []  # (wall, cpu) when each step ended

    def on_step(_: int) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        steps.append((time.perf_counter(), time.process_time()))

    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    model = fit_classifier(train, holdout, config, imagenet, device, dtype, on_step)
    total_wall, total_cpu = time.perf_counter() - wall, time.process_time() - cpu
    if dtype is None:  # the CAM worker uses the fp32 classifier
        save_classifier(args.save, model, config)
    images = (len(steps) - 1) * config.batch_size
    steady_wall, steady_cpu = steps[-1][0] - steps[0][0], steps[-1][1] - steps[0][1]
    return {
        "dtype": str(dtype or torch.float32).removeprefix("torch."),
        "steps": len(steps),
        "batch_size": config.batch_size,
        "input_size": [config.input_height, round(FRAME_SIZE[1] * config.input_height / FRAME_SIZE[0])],
        "train_frames": len(train),
        "images_per_second": images / steady_wall,
        "cpu_seconds_per_image": steady_cpu / images,
        "first_step_seconds": steps[0][0] - wall,
        "fit_classifier_seconds": total_wall,
        "fit_classifier_cpu_seconds": total_cpu,
        "holdout_frames": len(holdout),
        "holdout_accuracy": config.accuracy,
        "load_average_1min": load,
    }


def bf16_check(model: torch.nn.Module, config: ClassifierConfig, device: torch.device, frames: np.ndarray, actor: int) -> str:
    """What Grad-CAM++ (through CamExtractor) does when called under bf16 autocast."""
    extractor = CamExtractor(model, config, device)
    try:
        with autocast(device, torch.bfloat16):
            maps = extractor(frames, actor)
        return f"ran: maps {maps.dtype} {maps.shape}"
    except (TypeError, RuntimeError) as error:
        return f"{type(error).__name__}: {error}"
    finally:
        extractor.close()


def extract_all(extractor: CamExtractor, batches: list[np.ndarray], actor: int) -> np.ndarray:
    """(N, H, W) activation maps of all the batches."""
    return np.concatenate([extractor(batch, actor) for batch in batches])


def slic_all(frames: np.ndarray) -> list[np.ndarray]:
    return [superpixels(frame, CamParams.slic_segments) for frame in frames]


def pseudo_label_all(activations: np.ndarray, regions: list[np.ndarray], tag: int) -> list[np.ndarray]:
    return [pseudo_label(a, r, tag, DEFAULT_THRESHOLD) for a, r in zip(activations, regions)]


def cam_worker(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Multi-scale Grad-CAM++ per frame (default heights and each alone), SLIC and pseudo_label per frame."""
    model, config = load_classifier(args.save, device)
    videos = discover([args.data])
    frames = np.stack([frame for video in videos for _, frame in video.read(video.select(FrameSelection()))])[: args.cam_frames]
    tags = read_tags_csv(args.data / "tags.csv")
    tag = tags[videos[0].video_id][0]
    actor = labels.actor_of(tag) - 1
    batches = [frames[i : i + args.cam_batch] for i in range(0, len(frames), args.cam_batch)]
    report: dict[str, Any] = {"frames": len(frames), "batch_size": args.cam_batch}
    activations: np.ndarray | None = None
    for heights in (DEFAULT_CAM_HEIGHTS, *((height,) for height in DEFAULT_CAM_HEIGHTS)):
        extractor = CamExtractor(model, config, device, heights)
        extractor(batches[0], actor)  # warm-up
        stats, maps = timed(partial(extract_all, extractor, batches, actor), len(frames))
        extractor.close()
        report["cam_heights_" + "+".join(map(str, heights))] = stats
        if heights == DEFAULT_CAM_HEIGHTS:
            activations = maps
    report["slic"], regions = timed(partial(slic_all, frames), len(frames))
    report["pseudo_label"] = timed(partial(pseudo_label_all, activations, regions, tag), len(frames))[0]
    report["bf16_autocast_check"] = bf16_check(model, config, device, frames[:2], actor)
    # the whole per-video stage with the command's default refinements, decoding included
    params = CamParams()
    extractor = CamExtractor(model, config, device, params.cam_heights, params.cam_pad, params.cam_flip)
    selection = FrameSelection(max_frames=args.cam_frames)
    report["video_cam_defaults"] = timed(lambda: video_cam(videos[0], tags, selection, extractor, params, args.cam_batch), args.cam_frames)[0]
    extractor.close()
    return report


def run_worker(kind: str, args: argparse.Namespace, threads: int, precision: str, save: Path, cam_batch: int = 8) -> dict[str, Any]:
    """Run one worker in a fresh process with ``threads`` threads; its report."""
    with tempfile.TemporaryDirectory(prefix="bench-cam-") as folder:
        result = Path(folder) / "result.json"
        command = [sys.executable, __file__, "--worker", kind, "--data", str(args.data), "--result", str(result),
                   "--threads", str(threads), "--precision", precision, "--save", str(save),
                   "--frames", str(args.frames), "--epochs", str(args.epochs), "--cam-frames", str(args.cam_frames), "--cam-batch", str(cam_batch)]
        usage = run_measured(command)
        return {**json.loads(result.read_text()), "worker_peak_rss_mib": usage["peak_rss_mib"]}


def best_round(rounds: list[dict[str, Any]], key: str) -> dict[str, Any]:
    chosen = dict(max(rounds, key=lambda r: r[key]))
    chosen[f"{key}_each_round"] = [r[key] for r in rounds]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=7, help="single-actor clips (one per actor up to 7)")
    parser.add_argument("--frames", type=int, default=20, help="frames per clip; all are used for fitting (20%% held out)")
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs (steps = epochs x train frames / 16)")
    parser.add_argument("--cam-frames", type=int, default=16, help="frames given to Grad-CAM++ and SLIC")
    parser.add_argument("--cam-batch-sizes", type=int, nargs="+", default=[8, 1], help="Grad-CAM++ batch sizes (8: the command's default)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1],
                        help="CPU thread counts, each a separate set of runs (more only on an otherwise idle machine)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds; each measurement keeps its fastest")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cam.json")
    parser.add_argument("--worker", choices=("fit", "cam"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--precision", choices=("fp32", "reduced"), default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--cam-batch", type=int, default=8, help=argparse.SUPPRESS)
    parser.add_argument("--save", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    if args.worker:
        torch.set_num_threads(args.threads[0])
        report = (fit_worker if args.worker == "fit" else cam_worker)(args, device)
        args.result.write_text(json.dumps(report))
        return

    reduced = autocast_dtype(device)
    work = Path(tempfile.mkdtemp(prefix="vscr-bench-cam-"))
    args.data = work / "data"
    classes = one_class_per_actor()[: args.videos]
    synthesize(args.data, SynthConfig(videos=args.videos, frames=args.frames, height=FRAME_SIZE[0], width=FRAME_SIZE[1],
                                       annotated=1, empty_fraction=0, multi_fraction=0, classes=classes))
    load_before = os.getloadavg()
    fits = ["fp32"] + (["reduced"] if reduced is not None else [])
    default_heights = "cam_heights_" + "+".join(map(str, DEFAULT_CAM_HEIGHTS))
    rounds: dict[tuple[int, str], list[dict]] = {}
    for round_index in range(args.rounds):
        for threads in args.threads:
            for precision in fits:
                stats = run_worker("fit", args, threads, precision, work / f"classifier-{threads}")
                rounds.setdefault((threads, f"fit_{precision}"), []).append(stats)
                print(f"round {round_index + 1}, {threads} threads: fit {precision}: {stats['images_per_second']:.2f} images/s "
                      f"(load {stats['load_average_1min']:.2f})", file=sys.stderr)
            for batch in args.cam_batch_sizes:
                stats = run_worker("cam", args, threads, "fp32", work / f"classifier-{threads}", batch)
                rounds.setdefault((threads, f"cam_batch_{batch}"), []).append(stats)
                print(f"round {round_index + 1}, {threads} threads: CAM batch {batch}: "
                      f"{stats[default_heights]['frames_per_second']:.2f} frames/s (load {stats[default_heights]['load_average_1min']:.2f})", file=sys.stderr)

    results = []
    for threads in args.threads:
        section: dict[str, Any] = {"threads": threads}
        for precision in fits:
            section[f"fit_{precision}"] = best_round(rounds[threads, f"fit_{precision}"], "images_per_second")
        if "fit_reduced" in section:
            section["fit_reduced_over_fp32"] = section["fit_reduced"]["images_per_second"] / section["fit_fp32"]["images_per_second"]
        for batch in args.cam_batch_sizes:
            cam = dict(max(rounds[threads, f"cam_batch_{batch}"], key=lambda r: r[default_heights]["frames_per_second"]))
            cam["cam_stage_frames_per_second"] = 1 / sum(cam[k]["seconds_per_frame"] for k in (default_heights, "slic", "pseudo_label"))
            section[f"cam_batch_{batch}"] = cam
        results.append(section)
    shutil.rmtree(work)
    report = {
        "command": f"python bench/bench_cam.py --videos {args.videos} --frames {args.frames} --epochs {args.epochs} "
                   f"--cam-frames {args.cam_frames} --cam-batch-sizes {' '.join(map(str, args.cam_batch_sizes))} "
                   f"--threads {' '.join(map(str, args.threads))} --rounds {args.rounds}",
        "machine": {"cpu": platform.processor() or platform.machine(), "logical_cpus": os.cpu_count(),
                    "cpu_capability": torch.backends.cpu.get_cpu_capability()},
        "torch": torch.__version__,
        "device": str(device),
        "reduced_dtype": str(reduced).removeprefix("torch.") if reduced else None,
        "frame_size": list(FRAME_SIZE),
        "videos": args.videos,
        "frames_per_video": args.frames,
        "epochs": args.epochs,
        "rounds": args.rounds,
        "cam_heights": list(DEFAULT_CAM_HEIGHTS),
        "slic_segments": CamParams.slic_segments,
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "notes": "cam_stage_frames_per_second = 1 / (Grad-CAM++ at the default heights + SLIC + pseudo_label) per frame, "
                 "without decoding and store writing",
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
