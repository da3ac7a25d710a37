"""One short check of the CUDA paths on a GPU machine: k-means + objective, training steps, prediction.

    python bench/gpu_check.py --out results.json

1. Spherical k-means and the unified objective on CUDA against the CPU on the same random
   inputs (batch 10, 64-d, 56x56): k-means labels, each loss term and the embedding gradient;
   then CUDA forward + backward times at 56x56 and 112x112, fp32 and inside bf16 autocast.
2. Training steps of the VSCR network (EfficientNet-Lite0, flow motion branch, output stride 8,
   random init) at the paper's shape (batch 10, 224x224 crops) on CUDA, fp32 and bf16
   autocast: seconds per step (forward, k-means + loss, backward) and finite terms.
3. Prediction at A2D's frame size (320x426, batches of 8): frames per second, fp32 and bf16.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from vscr_cli import labels
from vscr_cli.core.losses import PrototypeMemory, vscr_objective
from vscr_cli.stages.train import build_model, make_config, training_losses


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
    config = make_config("paper", {"batch_size": 10, "crop": 224})
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
    memory, objective = PrototypeMemory(2), config.objective()
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
            loss, terms, classifier = training_losses(output, batch, memory, objective, config)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    report = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0)}
    check_objective(report)
    check_training(report)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
