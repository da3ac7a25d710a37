"""Benchmark k-means + the VSCR objective (forward + backward) against the loop reference.

    python bench/bench_losses.py                       # CPU, batch 10, 64-d, 56x56 and 112x112
    python bench/bench_losses.py --sizes 56 --reference-sizes 56 --repeats 3 --output /tmp/l.json

Inputs are synthetic but shaped like training: smooth random embedding fields (so k-means
finds coherent clusters), ~12 Voronoi edge regions per frame, a blob CAM label of one
class with an uncertain (-1) rim on 70% of the frames, one tag per frame, and a prototype
memory warmed with two earlier iterations. The vectorised code and the reference
(tests/core/reference.py) see identical inputs; the JSON records both timings, the peak
memory, the speed-up and how closely the two agree.

Reuse (e.g. the training benchmark, to put the objective's share of a step in context):
``from bench_losses import measure_objective, synthetic_batch`` from a script beside it;
``measure_objective`` times any inputs in the objective's conventions.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from vscr_cli.core.kmeans import cluster_embeddings
from vscr_cli.core.losses import PrototypeMemory, vscr_objective
from vscr_cli.core.params import ObjectiveConfig

REPOSITORY = Path(__file__).resolve().parents[1]


def _load_reference() -> Callable:
    """The loop reference of the objective, which lives with the tests (tests/core/reference.py)."""
    spec = importlib.util.spec_from_file_location("vscr_objective_reference", REPOSITORY / "tests" / "core" / "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference_objective


reference_objective = _load_reference()

NUM_TAGS = 43


def synthetic_batch(batch: int, dim: int, size: int, seed: int, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Training-like inputs for :func:`vscr_objective` (embeddings, edge_regions, cam_labels, tags, labeled)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn(batch, dim, max(2, size // 8), max(2, size // 8), generator=generator)
    smooth = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    embeddings = F.normalize(smooth + 0.3 * torch.randn(batch, dim, size, size, generator=generator), dim=1)
    centres = torch.rand(batch, 12, 2, generator=generator) * size
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    pixels = torch.stack([ys, xs], dim=-1)  # (H, W, 2)
    edges = ((pixels[None, :, :, None] - centres[:, None, None]) ** 2).sum(-1).argmin(-1)
    blob_centre = torch.rand(batch, 2, generator=generator) * size * 0.5 + size * 0.25
    blob_radius = (torch.rand(batch, generator=generator) * 0.2 + 0.15) * size
    distance = ((pixels[None] - blob_centre[:, None, None]) ** 2).sum(-1).sqrt() - blob_radius[:, None, None]
    classes = torch.randint(1, NUM_TAGS + 1, (batch,), generator=generator)
    cams = torch.where(distance < 0, classes[:, None, None], 0)
    cams = torch.where(distance.abs() < 0.04 * size, -1, cams)
    tags = torch.zeros(batch, NUM_TAGS)
    tags[torch.arange(batch), classes - 1] = 1
    labeled = torch.rand(batch, generator=generator) < 0.7
    inputs = {"embeddings": embeddings, "edge_regions": edges, "cam_labels": cams, "tags": tags, "labeled": labeled}
    return {key: value.to(device) for key, value in inputs.items()}


def warm_memory(batch: int, dim: int, size: int, device: str, config: ObjectiveConfig) -> PrototypeMemory:
    """A prototype memory filled by two earlier (synthetic) iterations, as in steady-state training."""
    memory = PrototypeMemory(capacity=2)
    for seed in (1, 2):
        with torch.no_grad():
            terms = vscr_objective(**synthetic_batch(batch, dim, size, seed, device), memory=memory, config=config)
        memory.update(terms.cam_prototypes, terms.cam_labels)
    return memory


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class PeakMemory:
    """Peak memory of a block, MiB above the level at its start (CPU: peak RSS via /proc; CUDA: allocator)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.mib: float | None = None

    @staticmethod
    def _status_kib(field: str) -> int:
        return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))

    def __enter__(self) -> PeakMemory:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
                self._start = self._status_kib("VmRSS") * 1024
            except OSError:
                self._start = None
        return self

    def __exit__(self, *exc) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.mib = (torch.cuda.max_memory_allocated() - self._start) / 2**20
        elif self._start is not None:
            self.mib = (self._status_kib("VmHWM") * 1024 - self._start) / 2**20


TERMS = ("total", "edge", "cam", "tag")
Step = Callable[[torch.Tensor], dict[str, torch.Tensor]]


def _time_step(step: Step, embeddings: torch.Tensor, device: str) -> dict:
    """One forward + backward: seconds, term values, k-means labels and the embedding gradient."""
    leaf = embeddings.detach().clone().requires_grad_()
    _synchronize(device)
    start, start_cpu = time.perf_counter(), time.process_time()
    outputs = step(leaf)
    _synchronize(device)
    middle = time.perf_counter()
    outputs["total"].backward()
    _synchronize(device)
    return {
        "forward_s": middle - start,
        "backward_s": time.perf_counter() - middle,
        "cpu_s": time.process_time() - start_cpu,
        "terms": {term: outputs[term].item() for term in TERMS},
        "clusters": outputs["clusters"].cpu(),
        "grad": leaf.grad,
    }


def _measure(step: Step, embeddings: torch.Tensor, repeats: int, device: str, warmup: bool = True) -> tuple[dict, dict]:
    """(summary, first timed run): seconds of `repeats` runs (after a warm-up), peak memory of the first.

    ``cpu_s`` is the process CPU time of each run: with one thread it is the compute time,
    unaffected by other processes competing for the cores (wall times are not).
    """
    if warmup:
        _time_step(step, embeddings, device)
    with PeakMemory(device) as peak:
        runs = [_time_step(step, embeddings, device)]
    runs += [_time_step(step, embeddings, device) for _ in range(repeats - 1)]
    totals = [run["forward_s"] + run["backward_s"] for run in runs]
    summary = {
        "forward_s": [round(run["forward_s"], 4) for run in runs],
        "backward_s": [round(run["backward_s"], 4) for run in runs],
        "total_s_min": round(min(totals), 4),
        "total_s_median": round(statistics.median(totals), 4),
        "cpu_s": [round(run["cpu_s"], 4) for run in runs],
        "cpu_s_median": round(statistics.median(run["cpu_s"] for run in runs), 4),
        "peak_mib": None if peak.mib is None else round(peak.mib, 1),
        "terms": runs[0]["terms"],
    }
    return summary, runs[0]


def _objective_step(inputs: dict[str, torch.Tensor], memory: PrototypeMemory | None, config: ObjectiveConfig) -> Step:
    others = {key: value for key, value in inputs.items() if key != "embeddings"}

    def step(embeddings: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = vscr_objective(embeddings, **others, memory=memory, config=config)
        return {**{term: getattr(terms, term) for term in TERMS}, "clusters": terms.segments.clusters}

    return step


def _reference_step(inputs: dict[str, torch.Tensor], memory: PrototypeMemory, config: ObjectiveConfig) -> Step:
    others = {key: value for key, value in inputs.items() if key != "embeddings"}
    return lambda embeddings: reference_objective(
        embeddings, **others, memory_prototypes=memory.prototypes, memory_labels=memory.labels, config=config
    )


def measure_objective(
    inputs: dict[str, torch.Tensor],
    memory: PrototypeMemory | None = None,
    config: ObjectiveConfig = ObjectiveConfig(),
    repeats: int = 5,
) -> dict:
    """Seconds (forward, backward; min and median total) and peak MiB of k-means + objective on `inputs`."""
    device = str(inputs["embeddings"].device)
    return _measure(_objective_step(inputs, memory, config), inputs["embeddings"], repeats, device)[0]


def _kmeans_seconds(embeddings: torch.Tensor, config: ObjectiveConfig, repeats: int, device: str) -> float:
    runs = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        cluster_embeddings(embeddings, grid=config.grid, iterations=config.iterations, use_location=config.use_location)
        _synchronize(device)
        runs.append(time.perf_counter() - start)
    return round(min(runs), 4)


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    models = (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    return next(models, platform.processor())


def run(
    sizes: list[int],
    reference_sizes: list[int],
    batch: int = 10,
    dim: int = 64,
    repeats: int = 5,
    reference_repeats: int = 1,
    device: str = "cpu",
    config: ObjectiveConfig = ObjectiveConfig(),
) -> dict:
    """All measurements as a JSON-ready dict."""
    results = {
        "benchmark": "k-means + VSCR objective, forward + backward",
        "command": " ".join(["python", *sys.argv]),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else device,
        "cpu": _cpu_model(),
        "threads": torch.get_num_threads(),
        "batch": batch,
        "dim": dim,
        "config": dict(vars(config)),
        "sizes": {},
    }
    for size in sizes:
        inputs = synthetic_batch(batch, dim, size, seed=0, device=device)
        memory = warm_memory(batch, dim, size, device, config)
        entry: dict = {"load_average_before": round(os.getloadavg()[0], 2), "memory_prototypes": len(memory)}
        entry["vectorised"], fast = _measure(
            _objective_step(inputs, memory, config), inputs["embeddings"], repeats, device
        )
        entry["kmeans_only_s_min"] = _kmeans_seconds(inputs["embeddings"], config, repeats, device)
        if size in reference_sizes:
            entry["reference"], slow = _measure(
                _reference_step(inputs, memory, config), inputs["embeddings"], reference_repeats, device, warmup=False
            )
            for statistic in ("total_s_min", "total_s_median", "cpu_s_median"):
                ratio = entry["reference"][statistic] / entry["vectorised"][statistic]
                entry[f"speedup_{statistic}"] = round(ratio, 1)
            entry["agreement"] = {
                "max_abs_diff": {term: abs(fast["terms"][term] - slow["terms"][term]) for term in TERMS},
                "grad_max_abs_diff": (fast["grad"] - slow["grad"]).abs().max().item(),
                "kmeans_label_agreement": (fast["clusters"] == slow["clusters"]).float().mean().item(),
            }
        entry["load_average_after"] = round(os.getloadavg()[0], 2)
        results["sizes"][f"{size}x{size}"] = entry
        print(f"{size}x{size}: {json.dumps(entry)}", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[56, 112], help="embedding height = width")
    parser.add_argument(
        "--reference-sizes", type=int, nargs="*", default=None,
        help="sizes that also run the reference (default: all of --sizes on CPU, none on CUDA)",
    )
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", type=Path, default=REPOSITORY / "bench" / "results" / "losses.json")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    reference_sizes = args.reference_sizes
    if reference_sizes is None:
        reference_sizes = [] if args.device.startswith("cuda") else args.sizes
    results = run(
        args.sizes, reference_sizes, args.batch, args.dim, args.repeats, args.reference_repeats, args.device
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(args.output)


if __name__ == "__main__":
    main()
