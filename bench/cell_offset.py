"""Where a store's foreground sits against the ground truth: the pooled foreground IoU of its label maps
shifted sideways by each of ``--shifts`` pixels (at the ground truth's size), and the best shift.

A well-placed map peaks at 0; decision record 0043 found the network's maps on 320-px davis frames
6 px (at 480p) to the right of the masks, from how the stride-8 cells of a frame whose width is no
multiple of 8 are upsampled. Reads pred stores (``label``) and cam stores (``pseudo``; unlabelled 255
counts as background) of DAVIS-style folders, every frame the store holds (``cows`` and ``goat``,
which hold no A2D actor, left out).

    python bench/cell_offset.py --gt build/davis/all build/davis/defaults/s0/pred-all--no-crf.zarr build/davis/cam-all.zarr
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from machine import machine_info
from vscr_cli.store import open_store

SHIFTS = tuple(range(-12, 13, 2))
NO_ACTOR = ("cows", "goat")


def shifted_ious(store: Path, gt: Path, shifts: tuple[int, ...]) -> list[float]:
    """Pooled foreground IoU of ``store``'s maps against the masks under ``gt``, per horizontal shift."""
    kind = "pred" if "pred" in store.name else "cam"
    inter, union = np.zeros(len(shifts)), np.zeros(len(shifts))
    with open_store(store, kind) as opened:
        for video in opened.record.videos:
            if video in NO_ACTOR:
                continue
            maps = opened.read(video, "label" if kind == "pred" else "pseudo")
            for position, number in enumerate(opened.frame_index(video)):
                truth = cv2.imread(str(gt / video / "masks" / f"{int(number):05d}.png"), cv2.IMREAD_GRAYSCALE) > 0
                found = ((maps[position] != 0) & (maps[position] != 255)).astype(np.uint8)
                found = cv2.resize(found, truth.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
                for k, shift in enumerate(shifts):
                    moved = np.roll(found, shift, axis=1)
                    inter[k] += (moved & truth).sum()
                    union[k] += (moved | truth).sum()
    return (100 * inter / np.maximum(union, 1)).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stores", type=Path, nargs="+")
    parser.add_argument("--gt", type=Path, required=True, help="the DAVIS-style folder the stores were made from")
    parser.add_argument("--shifts", type=int, nargs="+", default=list(SHIFTS), help="pixels to the right (negative: left)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cell_offset.json")
    args = parser.parse_args()
    rows = {}
    for store in args.stores:
        ious = shifted_ious(store, args.gt, tuple(args.shifts))
        best = args.shifts[int(np.argmax(ious))]
        rows[str(store)] = {"fg_iou_by_shift": dict(zip(map(str, args.shifts), [round(v, 2) for v in ious])), "best_shift": best}
        print(f"{store}: best shift {best:+d} px ({max(ious):.1f} against {ious[args.shifts.index(0)]:.1f} unshifted)" if 0 in args.shifts else f"{store}: best shift {best:+d} px")
    args.out.write_text(json.dumps({"gt": str(args.gt), "stores": rows, "machine": machine_info()}, indent=1) + "\n")


if __name__ == "__main__":
    main()
