"""Reduced-precision inference and training: decide when autocast pays and enter it.

Every heavy stage keeps an exact fp32 path; bf16/fp16 autocast is used only where the device
runs it natively (CUDA; x86 CPUs with avx512_bf16 or AMX; other CPUs whose oneDNN reports
bf16 support), checked once per device with a tiny probe.

torch is imported by the functions that use it, so the choices (:data:`PRECISIONS`) cost nothing
to import (the command line lists them without loading torch).
"""

from __future__ import annotations

import contextlib
import functools
import platform
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[Precision, ...] = ("auto", "fp32", "bf16", "fp16")


def _cpu_runs_bf16_natively() -> bool:
    """True when oneDNN has bf16 kernels backed by hardware instructions (not emulation)."""
    import torch

    if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        return False
    if platform.machine().lower() in ("x86_64", "amd64", "i686", "x86"):
        # oneDNN also reports bf16 on plain AVX-512, where it is emulated and slower than fp32.
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return True


def _autocast_probe(device: torch.device, dtype: torch.dtype) -> bool:
    """Run a tiny convolution under autocast; True when it computes in `dtype` and agrees with fp32."""
    import torch

    generator = torch.Generator().manual_seed(0)
    images = torch.rand(1, 3, 8, 8, generator=generator).to(device)
    weight = torch.rand(4, 3, 3, 3, generator=generator).to(device)
    try:
        exact = torch.nn.functional.conv2d(images, weight, padding=1)
        with torch.autocast(device.type, dtype=dtype):
            reduced = torch.nn.functional.conv2d(images, weight, padding=1)
    except RuntimeError:
        return False
    return reduced.dtype == dtype and torch.allclose(reduced.float(), exact, rtol=0.05, atol=0.05)


@functools.cache
def _autocast_dtype_cached(device: torch.device) -> torch.dtype | None:
    import torch

    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    elif device.type == "cpu" and _cpu_runs_bf16_natively():
        dtype = torch.bfloat16
    else:
        return None
    return dtype if _autocast_probe(device, dtype) else None


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The reduced-precision dtype worth autocasting to on `device`, or None to stay in fp32.

    CUDA: bf16 where the GPU has it natively, else fp16. CPU: bf16 on hardware with native bf16
    (avx512_bf16 / AMX on x86), else None. The answer is probed once per device and cached.
    """
    import torch

    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return _autocast_dtype_cached(device)


def resolve_precision(precision: Precision, device: torch.device | str) -> torch.dtype | None:
    """Map a user's precision choice to an autocast dtype (None = exact fp32).

    "auto" picks `autocast_dtype(device)`; "bf16"/"fp16" are honoured when the device can run
    them at all (else ValueError, with the reason); "fp32" is the exact path.
    """
    import torch

    if precision == "fp32":
        return None
    if precision == "auto":
        return autocast_dtype(device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if dtype is None:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    device = torch.device(device)
    if not _autocast_probe(device, dtype):
        raise ValueError(f"{precision} autocast does not run on {device}; use --precision fp32 or auto")
    return dtype


def dtype_name(dtype: torch.dtype | None) -> str:
    """How a store's params record an autocast dtype: ``bfloat16``, ``float16``, or ``fp32`` for none."""
    return str(dtype).removeprefix("torch.") if dtype else "fp32"


def autocast(device: torch.device | str, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """`torch.autocast` to `dtype` on `device`'s type, or a no-op context when `dtype` is None."""
    import torch

    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)
