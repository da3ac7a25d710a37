"""One short check of the CUDA paths on a GPU machine: k-means + objective, training steps, prediction.

    python bench/gpu_check.py --out bench/results/gpu_check_<gpu>.json            # everything, on CUDA
    python bench/gpu_check.py --out paper_cpu.json --device cpu --sections paper --paper-iterations 2 --paper-batch-size 2 --predict-batch 1

1. objective: spherical k-means and the unified objective on CUDA against the CPU on the same
   random inputs (batch 10, 64-d, 56x56): k-means labels, each loss term and the embedding
   gradient; then CUDA forward + backward times at 56x56 and 112x112, fp32 and bf16 autocast.
2. lite0: training steps of the offline network (EfficientNet-Lite0, flow motion branch, output
   stride 8, random init) at the paper's shape (batch 10, 224x224 crops), fp32 and bf16
   autocast, and its prediction at A2D's frame size (320x426, batches of 8).
3. paper: the paper preset's network (ResNet-101 at output stride 8 + ASPP, frozen I3D-R50; the
   cached ImageNet/Kinetics weights when torch.hub's cache has them, else random init) for
   ``--paper-iterations`` training steps at batch 10 (``--paper-batch-size``), 224x224 crops, clips of 5 frames: median
   seconds per phase, the objective's share of a step, peak memory (CUDA allocator, or the
   process's peak RSS on the CPU), the bytes autograd saves for backward; then prediction of
   320x426 frames with their clips (batches of ``--predict-batch``, 8): frames per second. Runs on any device.
4. flops: forward FLOPs of the paper network and of the EfficientNet-Lite0 + flow one, per
   module, at the training shape (batch 10, 224x224) and per 320x426 frame, counted by
   torch's FlopCounterMode on the meta device (no memory, no compute; any device).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from vscr_cli import labels, weights
from vscr_cli.core.losses import PrototypeMemory, vscr_objective
from vscr_cli.core.models.motion import MOTION_ENCODERS
from vscr_cli.model_folders import build_model
from vscr_cli.settings.train import resolve
from vscr_cli.stages.train import training_losses

SECTIONS = ("objective", "lite0", "paper", "flops")


def cuda_time(function, repeats: int = 5) -> float:
    """Median seconds of ``function()`` on the GPU after one warm-up."""
    function()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        function()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    return sorted(times)[len(times) // 2]


def objective_inputs(batch: int, size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    embeddings = F.normalize(torch.randn(batch, 64, size, size, generator=generator), dim=1)
    blocks = torch.arange(size) // max(1, size // 4)
    edge = (blocks[:, None] * 4 + blocks[None, :]).expand(batch, size, size).clone()
    cam = torch.where(torch.rand(batch, size, size, generator=generator) < 0.3, torch.randint(1, 44, (batch, 1, 1), generator=generator), 0)
    tags = torch.zeros(batch, 43)
    tags[torch.arange(batch), torch.randint(0, 43, (batch,), generator=generator)] = 1
    labeled = torch.arange(batch) % 3 != 0
    return {"embeddings": embeddings, "edge": edge, "cam": cam, "tags": tags, "labeled": labeled}


def check_objective(report: dict) -> None:
    generator = torch.Generator().manual_seed(0)
    inputs = objective_inputs(10, 56, generator)
    results = {}
    for device in ("cpu", "cuda"):
        embeddings = inputs["embeddings"].detach().clone().to(device).requires_grad_(True)
        terms = vscr_objective(embeddings, inputs["edge"].to(device), inputs["cam"].to(device), inputs["tags"].to(device), inputs["labeled"].to(device))
        terms.total.backward()
        results[device] = (terms, embeddings.grad.cpu())
    cpu, gpu = results["cpu"], results["cuda"]
    report["objective_cpu_vs_cuda"] = {
        "kmeans_labels_equal": bool(torch.equal(cpu[0].segments.clusters.cpu(), gpu[0].segments.clusters.cpu())),
        **{f"{name}_abs_diff": abs(float(getattr(cpu[0], name)) - float(getattr(gpu[0], name))) for name in ("total", "edge", "cam", "tag")},
        "gradient_max_abs_diff": float((cpu[1] - gpu[1]).abs().max()),
    }
    timings = {}
    for size in (56, 112):
        batch = {k: v.cuda() for k, v in objective_inputs(10, size, generator).items()}
        for precision, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
            def step() -> None:
                embeddings = batch["embeddings"].clone().requires_grad_(True)
                with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
                    terms = vscr_objective(embeddings * 1.0, batch["edge"], batch["cam"], batch["tags"], batch["labeled"], memory=PrototypeMemory(2))
                terms.total.backward()

            timings[f"{size}x{size}_{precision}"] = cuda_time(step)
    report["objective_forward_backward_seconds"] = timings


def check_training(report: dict) -> None:
    config = resolve("paper", flags={"backbone": "tf_efficientnet_lite0", "motion": "flow", "batch_size": 10, "crop": 224})
    model = build_model(config).cuda().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=0.9)
    generator = torch.Generator().manual_seed(1)
    size = 224
    batch = {
        "image": torch.randn(10, 3, size, size, generator=generator),
        "motion": torch.randn(10, 2 * (config.clip_length - 1), size, size, generator=generator) * 0.3,
        "edge": objective_inputs(10, size, generator)["edge"],
        "cam": torch.where(torch.rand(10, size, size, generator=generator) < 0.3, torch.randint(1, 44, (10, 1, 1), generator=generator), 0),
        "ignore": torch.zeros(10, size, size, dtype=torch.bool),
        "tags": objective_inputs(10, 8, generator)["tags"],
        "labeled": torch.arange(10) % 3 != 0,
    }
    batch = {k: v.cuda() for k, v in batch.items()}
    memory, objective = PrototypeMemory(2), config.objective
    out = {}
    for precision, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        phases = {"forward": [], "kmeans_and_loss": [], "backward": []}
        finite = True
        for repeat in range(6):
            torch.cuda.synchronize()
            marks = [time.perf_counter()]
            with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
                output = model(batch["image"], batch["motion"])
            torch.cuda.synchronize()
            marks.append(time.perf_counter())
            loss, terms, classifier, _ = training_losses(output, batch, memory, objective, config)
            torch.cuda.synchronize()
            marks.append(time.perf_counter())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            memory.update(terms.cam_prototypes, terms.cam_labels)
            torch.cuda.synchronize()
            marks.append(time.perf_counter())
            finite &= all(torch.isfinite(t).item() for t in (loss, terms.edge, terms.cam, terms.tag, classifier))
            if repeat:
                for name, start, end in zip(phases, marks, marks[1:]):
                    phases[name].append(end - start)
        medians = {name: sorted(v)[len(v) // 2] for name, v in phases.items()}
        out[precision] = {**medians, "step": sum(medians.values()), "finite": finite, "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20}
    report["training_step_paper_shape"] = out

    model.eval()
    frames = torch.randn(8, 3, 320, 426, device="cuda")
    motion = torch.randn(8, 2 * (config.clip_length - 1), 320, 426, device="cuda") * 0.3
    predict = {}
    for precision, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        def run() -> None:
            with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
                probabilities = model.predict(frames, motion)
            assert probabilities.shape == (8, labels.NUM_CLASSES, 320, 426)

        predict[precision] = {"frames_per_second": 8 / cuda_time(run)}
    report["predict_320x426"] = predict


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mib(device: torch.device) -> float:
    """Peak CUDA allocator memory, or the process's peak resident memory on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def saved_for_backward(total: list[int]):
    """Counts the bytes of the distinct storages autograd saves for backward inside the block."""
    seen: set[int] = set()

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total[0] += storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield


def paper_batch(config, device: torch.device, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A random batch of the paper preset's shapes: frames, Kinetics clips, edge/CAM maps, tags."""
    size, batch = config.crop, config.batch_size
    return {k: v.to(device) for k, v in {
        "image": torch.randn(batch, 3, size, size, generator=generator),
        "motion": torch.randn(batch, 3, config.clip_length, size, size, generator=generator),
        "edge": objective_inputs(batch, size, generator)["edge"],
        "cam": torch.where(torch.rand(batch, size, size, generator=generator) < 0.3, torch.randint(1, 44, (batch, 1, 1), generator=generator), 0),
        "ignore": torch.zeros(batch, size, size, dtype=torch.bool),
        "tags": objective_inputs(batch, 8, generator)["tags"],
        "labeled": torch.arange(batch) % 3 != 0,
    }.items()}


def cached_or_random(name: str) -> tuple[dict[str, torch.Tensor] | None, str]:
    """The cached ecosystem weights of `name` (never downloading), else None for random init."""
    try:
        return weights.load_state_dict(name, fetch=False), "cached"
    except weights.WeightsUnavailableError:
        return None, "random"


def check_paper_preset(report: dict, device: torch.device, iterations: int, batch_size: int, predict_batch: int) -> None:
    config = resolve("paper", flags={"batch_size": batch_size})
    backbone_state, backbone_source = cached_or_random(config.architecture.weights)
    motion_state, motion_source = cached_or_random(MOTION_ENCODERS[config.motion].weights)
    model = build_model(config, backbone_state, motion_state).to(device).train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=config.learning_rate, momentum=config.momentum, weight_decay=config.weight_decay)
    batch = paper_batch(config, device, torch.Generator().manual_seed(2))
    memory, objective = PrototypeMemory(config.memory_iterations), config.objective
    phases: dict[str, list[float]] = {"forward": [], "kmeans_and_loss": [], "backward_and_update": []}
    saved = [0]
    finite = True
    for step in range(iterations):
        counting = saved_for_backward(saved) if step == 0 else contextlib.nullcontext()
        synchronize(device)
        marks = [time.perf_counter()]
        with counting:
            output = model(batch["image"], batch["motion"])
            synchronize(device)
            marks.append(time.perf_counter())
            loss, terms, classifier, _ = training_losses(output, batch, memory, objective, config)
        synchronize(device)
        marks.append(time.perf_counter())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        memory.update(terms.cam_prototypes, terms.cam_labels)
        synchronize(device)
        marks.append(time.perf_counter())
        finite &= bool(torch.isfinite(torch.stack([loss, terms.edge, terms.cam, terms.tag, classifier])).all())
        if step or iterations == 1:
            for name, start, end in zip(phases, marks, marks[1:]):
                phases[name].append(end - start)
    medians = {name: sorted(v)[len(v) // 2] for name, v in phases.items()}
    step_seconds = sum(medians.values())
    report["paper_preset"] = {
        "device": str(device),
        "network": f"{config.backbone} output stride {config.output_stride} + ASPP, {config.motion} ({'spatial' if config.motion_spatial else 'vector'})",
        "weights": {"backbone": backbone_source, "motion": motion_source},
        "batch": config.batch_size,
        "crop": config.crop,
        "clip_length": config.clip_length,
        "iterations": iterations,
        "parameters_trainable_m": sum(p.numel() for p in trainable) / 1e6,
        "parameters_total_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "seconds": {**medians, "step": step_seconds},
        "objective_share": medians["kmeans_and_loss"] / step_seconds,
        "finite": finite,
        "saved_for_backward_mib": saved[0] / 2**20,
        "peak_training_memory_mib": peak_memory_mib(device),
    }
    del optimizer, output, loss, terms, classifier
    model.eval()
    frames = torch.randn(predict_batch, 3, 320, 426, device=device)
    clips = torch.randn(predict_batch, 3, config.clip_length, 320, 426, device=device)

    def run() -> None:
        probabilities = model.predict(frames, clips)
        assert probabilities.shape == (predict_batch, labels.NUM_CLASSES, 320, 426)

    seconds = cuda_time(run) if device.type == "cuda" else wall_time(run)
    report["paper_preset"]["predict_320x426"] = {"batch": predict_batch, "frames_per_second": predict_batch / seconds, "peak_memory_mib": peak_memory_mib(device)}


def count_flops(report: dict) -> None:
    out = {}
    for name, overrides in (("paper", {}), ("lite0_flow", {"backbone": "tf_efficientnet_lite0", "motion": "flow"})):
        config = resolve("paper", flags=overrides)
        with torch.device("meta"):
            model = build_model(config).eval()  # eval: one 320x426 frame is a batch of 1
            for shape, batch in (((config.crop, config.crop), config.batch_size), ((320, 426), 1)):
                clip = (3, config.clip_length) if config.motion == "i3d" else (2 * (config.clip_length - 1),)
                with FlopCounterMode(display=False) as counter:
                    model(torch.empty(batch, 3, *shape), torch.empty(batch, *clip, *shape))
                modules = {key.removeprefix("VSCRNet."): sum(v.values()) / 1e9 for key, v in counter.get_flop_counts().items() if key.startswith("VSCRNet.") and key.count(".") == 1}
                out.setdefault(name, {})[f"forward_gflops_batch{batch}_{shape[0]}x{shape[1]}"] = {"total": counter.get_total_flops() / 1e9, **modules}
    report["flops"] = out


def wall_time(function: Callable[[], None], repeats: int = 1) -> float:
    """Median wall seconds of ``function()`` (CPU; no warm-up: the training steps ran before)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (only the paper section runs there)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {', '.join(SECTIONS)}")
    parser.add_argument("--paper-iterations", type=int, default=300, help="training steps of the paper section")
    parser.add_argument("--paper-batch-size", type=int, default=10, help="frames per step of the paper section (the paper's: 10)")
    parser.add_argument("--predict-batch", type=int, default=8, help="frames per prediction pass of the paper section")
    args = parser.parse_args()
    device = torch.device(args.device)
    sections = set(args.sections.split(","))
    if device.type != "cuda" and sections - {"paper", "flops"}:
        parser.error("on the CPU only --sections paper,flops run")
    report = {"torch": torch.__version__, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "torch_threads": torch.get_num_threads()}
    if "objective" in sections:
        check_objective(report)
    if "lite0" in sections:
        check_training(report)
    if "paper" in sections:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        check_paper_preset(report, device, args.paper_iterations, args.paper_batch_size, args.predict_batch)
    if "flops" in sections:
        count_flops(report)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
