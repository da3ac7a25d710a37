"""Reproduce the benchmark tables of docs/RESULTS.md over training seeds: every run is the `vscr`
commands it records.

Synthetic benchmark, per seed S: `vscr demo WORK/sS/demo --seed S` (its own dataset, stores and full
model), then every row scored on **every frame** of its videos (`vscr score --dense`, the demo
writes every frame's ground truth): the CAM pseudo-labels and the network on the training frames
(transductive), CAM and the network on the test split given the test tags, the network without
tags and after `vscr align`. Each Table 3 ablation retrains on the seed's stores with one option
changed and is scored on the test split with and without tags. davis-dev: edges and cam stores
(every 5th frame at 240 px) made once, the CAM row, then per seed a model trained on them and
predicted on the same frames at its default height, scored against the full-size masks. A run
whose score file exists is not repeated (delete it to redo). Rows are mean +- standard deviation
over the seeds that have them.

    python bench/results.py --seeds 0 1 2                      # everything, in the order of --groups
                                                                # (davis-heights: the first seed only)
    python bench/results.py --groups synth no-motion davis     # some groups
    python bench/results.py --groups multiscale davis-multiscale   # multi-scale training (SPML's 0.5-1.5)
    python bench/results.py --groups refine davis-refine       # vscr refine of the demo and davis-dev models, each --tag-votes
    python bench/results.py --groups medium                    # the demo's rows on `vscr demo --size medium` (twice the videos)
    python bench/results.py --groups long                      # the small demo's stores trained as long as medium (1500 iterations)
    python bench/results.py --groups crf crf-ablations medium-crf davis-crf   # the same models predicted with --crf (dense CRF)
    python bench/results.py --groups tag-votes davis-tag-votes   # the tagged rows with --tag-votes actor, with and without --crf
    python bench/results.py --groups crop-share-tag-votes      # the same on the crop-share models (the defaults of now)
    python bench/results.py --groups davis-none-labeled        # davis-dev with vscr cam --none-tags labeled ('-none' videos get CAMs)
    python bench/results.py --groups crop-share crop-share-crf davis-crop-share   # training crops redrawn while one class holds > 3/4 of their labels
    python bench/results.py --groups crop-share-ablations      # the Table 3 ablations with those crops and the CRF (the defaults of now)
    python bench/results.py --groups davis-more                # the davis-dev models and classifiers on davis-more (unseen videos)
    python bench/results.py --groups action-head action-head-ablations action-head-heldout   # the defaults of now, Table 3, and both on a held-out set
    python bench/results.py --groups tag-memory-heldout        # the full model with vscr train --tag-memory, on the held-out set
    python bench/results.py --groups scene-heldout             # the tag term where the scene predicts the class (vscr synth --scene-by-class)
    python bench/results.py --groups davis-action-no-tag       # davis-dev without the tag term (the defaults of now otherwise)
    python bench/results.py --markdown                         # print the tables of --out
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from vscr_cli.settings.demo import DEMO_CLASSES, SIZES, Size  # noqa: E402
from vscr_cli.store import open_store  # noqa: E402
DAVIS = REPO.parent / "shared" / "data" / "davis-dev"
#: Five more DAVIS sequences the davis-dev models never saw (the inductive rows, --groups davis-more).
DAVIS_MORE = REPO.parent / "shared" / "data" / "davis-more"
#: vscr predict's options that decode davis-dev among its videos' tags.
DAVIS_TAGS = ("--tags", DAVIS / "tags.csv")
METRICS = ("actor_action", "actor", "action")

#: Table 3 ablations: name -> the training options that differ from the full model.
ABLATIONS = {
    "no-motion": ["--motion", "none"],
    "no-edge": ["--no-edge"],
    "no-tag": ["--no-tag"],
    "no-unlabeled": ["--no-unlabeled"],
}
#: Multi-scale training: each crop's window rescaled by a random factor in SPML's range (0.5-1.5).
MULTISCALE = ["--scale-min", "0.5", "--scale-max", "1.5"]
#: The small demo's stores trained as long as the medium demo trains: what the medium demo's gain owes
#: to the iterations rather than to the videos.
MEDIUM_ITERATIONS = SIZES[Size.medium].iterations
LONG_SCHEDULE = ["--iterations", str(MEDIUM_ITERATIONS)]
#: Crops redrawn while one class holds more than 3/4 of their labelled pixels (mmsegmentation's cat_max_ratio;
#: the cpu preset's since this measurement, so davis-dev's other models pass 1, as they were trained).
CROP_SHARE = ["--crop-max-class-share", "0.75"]
#: Training variants besides the ablations: name -> training options (an option the demo's settings also
#: give takes the variant's value); their rows also give the training frames and the network at 2x (--scale 2).
VARIANTS = {"multiscale": MULTISCALE, "long": LONG_SCHEDULE, "crop-share": CROP_SHARE}
#: Each variant's name in the table.
VARIANT_TITLES = {"multiscale": "multi-scale training", "long": f"trained {MEDIUM_ITERATIONS} iterations", "crop-share": "crops redrawn at a class share > 0.75"}
#: Heights of the davis-dev sweep around the model's default (240 px, its training height), the network at
#: the labels' height (--scale 1); the sweep also runs the default height with the network at 2x (--scale 2).
DAVIS_HEIGHTS = (160, 320)
#: Prediction heights of the synthetic sweep (the demo trains on 120-px frames, its default).
SYNTH_HEIGHTS = (240,)
#: vscr refine's --tag-votes, each a davis-dev row of the seed's model refined that way.
REFINE_VOTES = ("class", "actor")
#: Larger demo sizes than the default (small), each a group of the demo's rows named "SIZE-ROW".
DEMO_SIZES = ("medium",)
#: vscr predict's dense CRF (on by default since the crop-share measurement; rows without it pass --no-crf):
#: groups that predict with it what other groups predict without.
CRF = "--crf"
NO_CRF = "--no-crf"
CRF_GROUPS = ("crf", "crf-ablations", *(f"{size}-crf" for size in DEMO_SIZES), "davis-crf", "crop-share-crf", "crop-share-ablations")
#: vscr predict --tag-votes actor: the rows decoded among the tags, with and without the CRF.
ACTOR_VOTES = ("--tag-votes", "actor")
#: vscr predict's default before --tag-votes actor became it: the rows measured with it say so.
CLASS_VOTES = ("--tag-votes", "class")
#: vscr train and vscr demo without the action head: the rows measured before it (its own rows: ACTION_HEAD_ROWS).
NO_ACTION_HEAD = "--no-action-head"
#: davis-dev's CAM stores: name -> vscr cam's options. "cam" leaves the '<actor>-none' videos unlabeled (the
#: paper's rule), "cam-none-labeled" gives them CAMs (vscr cam's default since the measurement of this group).
DAVIS_CAMS = {"cam": ("--none-tags", "unlabeled"), "cam-none-labeled": ("--none-tags", "labeled")}
#: davis-dev training variants -> the CAM store they train on (default "cam").
DAVIS_VARIANT_CAMS = {"none-labeled": "cam-none-labeled", "crop-share": "cam-none-labeled", "action-head": "cam-none-labeled", "action-no-tag": "cam-none-labeled"}
#: How the rows name them, after "davis-dev, --none-tags labeled" (all of them train on that CAM store).
DAVIS_VARIANT_TITLES = {
    "none-labeled": "",
    "crop-share": f", {VARIANT_TITLES['crop-share']}",
    "action-head": f", {VARIANT_TITLES['crop-share']}, action head",
    "action-no-tag": f", {VARIANT_TITLES['crop-share']}, action head, w/o tag",
}
#: davis-dev variants trained with the defaults of now and these options (the others: as they were trained then).
DAVIS_CURRENT_VARIANTS = {"action-head": [], "action-no-tag": ABLATIONS["no-tag"]}
#: Their groups: each trains a model per seed on its CAM store and decodes it as davis_rows says.
DAVIS_VARIANT_GROUPS = tuple(f"davis-{variant}" for variant in DAVIS_VARIANT_CAMS)
GROUPS = (
    "synth", "synth-heights", *DEMO_SIZES, *ABLATIONS, *VARIANTS, "refine", "davis", "davis-heights", "davis-multiscale", "davis-refine", *CRF_GROUPS,
    "tag-votes", "crop-share-tag-votes", "davis-tag-votes", *DAVIS_VARIANT_GROUPS, "davis-more", "action-head", "action-head-ablations", "action-head-heldout",
    "tag-memory-heldout", "scene-heldout",
)  # fmt: skip
#: A synthetic set of videos that no seed's demo holds (the demo's classes and frame sizes, its own
#: seed), 6x the demo's 8 test videos: the action-head models and their Table 3 ablations on it
#: (--groups action-head-heldout), where one video decided wrongly moves a score less.
HELDOUT_VIDEOS = 48
HELDOUT_SEED = 1000
#: vscr synth's option that gives each video its class's scene (--groups scene-heldout: the demo's data and the
#: held-out set drawn again with it; the scene then predicts the class, as in real footage).
SCENE_BY_CLASS = "--scene-by-class"
#: The models of the scene groups: name -> training options besides the demo's settings.
SCENE_MODELS = {"full": [], "no-tag": ABLATIONS["no-tag"]}

#: The demo's three VSCR rows (:func:`vscr_splits`) -> how a row title names them.
SPLIT_TITLES = {"train": "train", "test-tags": "test, tags given", "test": "test"}

#: The demo's rows (:func:`synthetic_rows`): row name -> what it is.
DEMO_ROWS = {
    "cam-train": "CAM (train)",
    "full-train": "VSCR (train)",
    "cam-test-tags": "CAM (test, tags given)",
    "full-test-tags": "VSCR (test, tags given)",
    "full-test": "VSCR (test)",
    "full-aligned": "VSCR + align (test)",
}

#: The VSCR rows of a demo predicted with the dense CRF (:func:`crf_rows`): row name -> what it is.
CRF_ROWS = {**{f"crf-{split}": f"VSCR ({title}), dense CRF" for split, title in SPLIT_TITLES.items()}, "crf-aligned": "VSCR + align (test), dense CRF"}

#: The demo's rows decoded among the tags with --tag-votes actor (:func:`tag_vote_rows`), without and with the CRF.
TAG_VOTE_ROWS = {f"{crf}actor-{split}": f"VSCR ({SPLIT_TITLES[split]}), {'dense CRF, ' if crf else ''}tag votes by actor" for crf in ("", "crf-") for split in ("train", "test-tags")}
#: The same rows of the crop-share models (:func:`tag_vote_rows` with ``variant="crop-share"``).
CROP_SHARE_TAG_VOTE_ROWS = {f"crop-share-{row}": f"{VARIANT_TITLES['crop-share']}: {title}" for row, title in TAG_VOTE_ROWS.items()}

#: The rows of :func:`action_head_rows` (the defaults of now: crops redrawn, action head, dense CRF, actor tag votes).
ACTION_HEAD_ROWS = {
    **{f"action-full-{split}": f"action head: VSCR ({title}), dense CRF" for split, title in SPLIT_TITLES.items()},
    "action-full-test-pooled": "action head: VSCR (test), pooled video decision, dense CRF",
    **{f"action-{name}-{split}": f"action head: w/o {name[3:]} ({title}), dense CRF" for name in ABLATIONS if name != "no-motion" for split, title in list(SPLIT_TITLES.items())[1:]},
}

#: The rows of :func:`heldout_rows`: the full action-head model and each Table 3 ablation on the held-out set.
HELDOUT_MODELS = {"full": "action head: VSCR", **{name: f"action head: w/o {name[3:]}" for name in ABLATIONS if name != "no-motion"}, "no-motion": f"w/o motion, {VARIANT_TITLES['crop-share']}"}
HELDOUT_ROWS = {"heldout-cam-test-tags": "held-out videos, CAM (test, tags given)", **{f"heldout-{name}-{split}": f"held-out videos, {title} ({SPLIT_TITLES[split]}), dense CRF" for name, title in HELDOUT_MODELS.items() for split in ("test-tags", "test")}}
#: The tag term reading the memory bank (vscr train --tag-memory) and the scene groups' rows, all on held-out videos.
HELDOUT_SPLITS = {split: SPLIT_TITLES[split] for split in ("test-tags", "test")}
TAG_MEMORY_ROWS = {f"heldout-tag-memory-{split}": f"held-out videos, action head: VSCR, tag term with memory ({title}), dense CRF" for split, title in HELDOUT_SPLITS.items()}
SCENE_ROWS = {f"scene-heldout-{name}-{split}": f"scene by class, held-out videos: {'VSCR' if name == 'full' else 'w/o tag'} ({title}), dense CRF" for name in SCENE_MODELS for split, title in HELDOUT_SPLITS.items()}

#: Row name -> what it is, in table order.
ROWS = {
    **DEMO_ROWS,
    **CRF_ROWS,
    **TAG_VOTE_ROWS,
    **CROP_SHARE_TAG_VOTE_ROWS,
    **ACTION_HEAD_ROWS,
    **HELDOUT_ROWS,
    **TAG_MEMORY_ROWS,
    **SCENE_ROWS,
    **{f"full-{split}-h{height}": f"VSCR ({title}), predicted at {height} px" for height in SYNTH_HEIGHTS for split, title in SPLIT_TITLES.items()},
    **{f"{name}-test-tags": f"w/o {name[3:]} (test, tags given)" for name in ABLATIONS},
    **{f"{name}-test": f"w/o {name[3:]} (test)" for name in ABLATIONS},
    **{f"{name}-crf-{split}": f"w/o {name[3:]} ({title}), dense CRF" for split, title in list(SPLIT_TITLES.items())[1:] for name in ABLATIONS},
    **{f"{name}-{split}{x2}": f"{variant} ({title}){', network at 2x' if x2 else ''}" for name, variant in VARIANT_TITLES.items() for x2 in ("", "-x2") for split, title in SPLIT_TITLES.items()},
    **{f"crop-share-crf-{split}": f"{VARIANT_TITLES['crop-share']} ({title}), dense CRF" for split, title in SPLIT_TITLES.items()},
    **{f"{name}-crop-share-crf-{split}": f"w/o {name[3:]}, {VARIANT_TITLES['crop-share']} ({title}), dense CRF" for split, title in list(SPLIT_TITLES.items())[1:] for name in ABLATIONS},
    **{f"refine-{votes}-{split}": f"vscr refine --tag-votes {votes} ({title})" for votes in REFINE_VOTES for split, title in SPLIT_TITLES.items()},
    **{f"{size}-{row}": f"{size} demo: {title}" for size in DEMO_SIZES for row, title in {**DEMO_ROWS, **CRF_ROWS}.items()},
    "davis-cam": "davis-dev: CAM pseudo-labels (tags given)",
    "davis-full-tags": "davis-dev: VSCR, same frames (tags given)",
    "davis-full": "davis-dev: VSCR, same frames (no tags)",
    "davis-crf-tags": "davis-dev: VSCR, same frames (tags given), dense CRF",
    "davis-crf": "davis-dev: VSCR, same frames (no tags), dense CRF",
    "davis-actor-tags": "davis-dev: VSCR, same frames (tags given), tag votes by actor",
    **{f"davis-full-h{height}": f"davis-dev: VSCR (no tags), labels and network at {height} px" for height in DAVIS_HEIGHTS},
    "davis-full-tags-scale2": "davis-dev: VSCR (tags given), network at 480 px (--scale 2)",
    "davis-full-scale2": "davis-dev: VSCR (no tags), network at 480 px (--scale 2)",
    "davis-multiscale-tags": "davis-dev: multi-scale training, same frames (tags given)",
    "davis-multiscale": "davis-dev: multi-scale training, same frames (no tags)",
    **{f"davis-multiscale-h{height}": f"davis-dev: multi-scale training (no tags), labels and network at {height} px" for height in DAVIS_HEIGHTS},
    **{f"davis-refine-{votes}{tagged}": f"davis-dev: vscr refine --tag-votes {votes}, same frames ({title})" for votes in REFINE_VOTES for tagged, title in (("-tags", "tags given"), ("", "no tags"))},
    "davis-cam-none-labeled": "davis-dev, --none-tags labeled: CAM pseudo-labels (tags given)",
    **{
        f"davis-{variant}{row}": f"davis-dev, --none-tags labeled{title}: VSCR, same frames ({what})"
        for variant, title in DAVIS_VARIANT_TITLES.items()
        for row, what in (("-tags", "tags given"), ("-actor-tags", "tags given, tag votes by actor"), ("", "no tags"), ("-crf-tags", "tags given, dense CRF"), ("-crf-actor-tags", "tags given, dense CRF, tag votes by actor"))
    },
    **{f"more-{cam}": f"davis-more (unseen videos){title}: CAM (tags given), davis-dev's classifier" for cam, title in (("cam", ""), ("cam-none-labeled", ", --none-tags labeled"))},
    **{
        f"more-{model}{row}": f"davis-more (unseen videos){title}: VSCR, davis-dev's model ({what})"
        for model, title in (("full", ""), *((variant, f", --none-tags labeled{title}") for variant, title in DAVIS_VARIANT_TITLES.items()))
        for row, what in (("-tags", "tags given"), ("-actor-tags", "tags given, tag votes by actor"), ("", "no tags"))
    },
}


def vscr(*args: object) -> list[str]:
    return [sys.executable, "-m", "vscr_cli", "-q", *map(str, args)]


def as_text(command: list[str]) -> str:
    """A ``vscr(...)`` command as a user types it in the repository root."""
    return shlex.join(["vscr", *command[4:]]).replace(f"{REPO}/", "").replace(f"{REPO.parent}/", "../")


class Runner:
    """Runs commands whose product is missing and keeps the text of every command of a row."""

    def __init__(self) -> None:
        self.commands: dict[str, list[str]] = {}

    def ensure(self, row: str, product: Path, command: list[str]) -> None:
        self.commands.setdefault(row, []).append(as_text(command))
        if product.exists():
            return
        print(f"$ {as_text(command)}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        subprocess.run(command, check=True, cwd=REPO)
        print(f"  ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)


def scores(path: Path) -> dict[str, float]:
    """Percentages of a ``vscr score --json`` file, and the number of frames scored."""
    data = json.loads(path.read_text())["scores"]
    row = {metric: 100 * data[metric]["miou"] for metric in METRICS}
    return row | {"fg_iou": 100 * data["fg_iou"], "class_acc": 100 * data["actor_action"]["class_acc"], "frames": data["frames"]}


def score(runner: Runner, row: str, store: Path, gt: Path, report: Path, *options: object) -> dict[str, float]:
    runner.ensure(row, report, vscr("score", store, "--gt", gt, *options, "--json", report))
    return scores(report)


def predicted_row(runner: Runner, row: str, sources: Path, model: Path, store: Path, report: Path, predict_options: tuple, score_options: tuple) -> dict[str, float]:
    """``vscr predict SOURCES`` by ``model`` into ``store``, scored against ``sources``; the dense CRF
    only where ``predict_options`` ask for it, and given tags class votes unless they ask for actor
    votes (both defaults changed: the commands say which)."""
    crf = () if CRF in predict_options else (NO_CRF,)
    votes = CLASS_VOTES if "--tags" in predict_options and ACTOR_VOTES[0] not in predict_options else ()
    runner.ensure(row, store, vscr("predict", sources, *predict_options, *crf, *votes, "-m", model, "-o", store))
    return score(runner, row, store, sources, report, *score_options)


def demo_folder(work: Path, size: str) -> tuple[str, Path]:
    """The prefix of a demo size's rows and products, and its folder: the small demo in WORK/demo,
    unprefixed; a larger ``size`` (:data:`DEMO_SIZES`) in WORK/demo-SIZE, named SIZE-...."""
    return (f"{size}-", work / f"demo-{size}") if size != "small" else ("", work / "demo")


def synthetic_rows(runner: Runner, work: Path, seed: int, size: str = "small") -> dict[str, dict]:
    """The demo's rows for one seed, every frame scored, in the ``size``'s folder (:func:`demo_folder`)."""
    larger = size != "small"
    prefix, demo = demo_folder(work, size)
    synth, tags = demo / "synth", demo / "synth" / "tags.csv"
    runner.ensure(f"{prefix}demo", demo / "demo.json", demo_command(demo, seed, size))
    cam_test = work / f"{prefix}cam-test.zarr"
    runner.ensure(f"{prefix}cam-test-tags", cam_test, vscr("cam", synth, "--split", "test", "--tags", tags, "--classifier", demo / "cam.classifier", "-o", cam_test))
    scored = {  # row -> (store, score options besides --dense)
        "cam-train": (demo / "cam.zarr", ("--predicted-only",)),
        "full-train": (demo / "pred-train.zarr", ("--predicted-only",)),
        "cam-test-tags": (cam_test, ()),
        "full-test": (demo / "pred.zarr", ()),
        "full-aligned": (demo / "aligned.zarr", ()),
    }
    rows = {prefix + row: score(runner, prefix + row, store, synth, work / f"{prefix}{row}.score.json", "--dense", *options) for row, (store, options) in scored.items()}
    row = f"{prefix}full-test-tags"
    rows[row] = predicted_row(runner, row, synth, demo / "model", work / f"{prefix}pred-tags.zarr", work / f"{row}.score.json", ("--split", "test", "--tags", tags), ("--dense",))
    return rows


def demo_command(demo: Path, seed: int, size: str = "small") -> list[str]:
    """The demo run whose stores (and model) the synthetic rows use: the defaults before the CRF, actor
    tag votes and the action head."""
    return vscr("demo", demo, "--seed", seed, *(("--size", size) if size != "small" else ()), NO_CRF, *CLASS_VOTES, NO_ACTION_HEAD, "--overwrite")


def training_frames(demo: Path) -> tuple:
    """The predict options of the demo's training frames as its cam store took them, tags given."""
    every = open_store(demo / "cam.zarr").record.params["selection"]["every"]
    return ("--split", "train", "--every", every, "--tags", demo / "synth" / "tags.csv")


def vscr_splits(demo: Path) -> list[tuple[str, tuple, tuple]]:
    """The demo's three VSCR rows as (name, predict options, score options besides --dense): the
    training frames given their tags, the test split given its tags, the test split without."""
    tags = demo / "synth" / "tags.csv"
    return [("train", training_frames(demo), ("--predicted-only",)), ("test-tags", ("--split", "test", "--tags", tags), ()), ("test", ("--split", "test"), ())]


def synthetic_height_rows(runner: Runner, work: Path) -> dict[str, dict]:
    """The demo's three VSCR rows again with the frames read at other heights, scored at the ground truth's size."""
    demo = work / "demo"
    rows = {}
    for height in SYNTH_HEIGHTS:
        for split, options, score_options in vscr_splits(demo):
            row = f"full-{split}-h{height}"
            rows[row] = predicted_row(runner, row, demo / "synth", demo / "model", work / f"pred-{split}-h{height}.zarr", work / f"{row}.score.json", (*options, "--height", height, "--scale", 1), ("--dense", "--resize", *score_options))
    return rows


def variant_rows(runner: Runner, work: Path, seed: int, name: str, crf: bool = False, crop_share: bool = False) -> dict[str, dict]:
    """A model trained on the seed's demo stores with the demo's settings and one ablation's or
    variant's options, scored on the test split with and without tags; a variant (not an ablation)
    also on the training frames, and all of it again with the network at 2x (``--scale 2``). With
    ``crf`` the rows (NAME-crf-SPLIT) are predicted with the dense CRF, the network at 1x only; with
    ``crop_share`` an ablation trains with :data:`CROP_SHARE` too (the defaults before the action head; NAME-crop-share-...)."""
    name_in_rows, model, training = variant_training(work, seed, name, crop_share)
    demo = work / "demo"
    synth = demo / "synth"
    runner.ensure(f"{name_in_rows}-{'crf-' if crf else ''}test", model / "config.json", training)
    predictions = vscr_splits(demo) if name in VARIANTS else vscr_splits(demo)[1:]
    rows = {}
    for scale in (1, 2) if name in VARIANTS and not crf else (1,):
        for split, predict_options, score_options in predictions:
            row = f"{name_in_rows}-{'crf-' if crf else ''}{split}" + ("" if scale == 1 else f"-x{scale}")
            extra = (CRF,) if crf else ()
            rows[row] = predicted_row(runner, row, synth, model, model / f"pred-{row}.zarr", work / f"{row}.score.json", (*predict_options, "--scale", scale, *extra), ("--dense", *score_options))
    return rows


def variant_training(work: Path, seed: int, name: str, crop_share: bool = False) -> tuple[str, Path, list[str]]:
    """An ablation's or variant's name in the rows, its model (without the action head) and the
    ``vscr train`` command that makes it on the seed's demo stores (:func:`variant_rows`)."""
    if crop_share:
        name_in_rows, options = f"{name}-crop-share", [*ABLATIONS[name], *CROP_SHARE]
    else:
        name_in_rows, options = name, ABLATIONS.get(name) or VARIANTS[name]
    model = work / name_in_rows
    return name_in_rows, model, demo_training(work / "demo", seed, [*options, NO_ACTION_HEAD], model)


def action_training(work: Path, seed: int, name: str) -> tuple[Path, list[str]]:
    """The action-head model ``name`` ("full" or a Table 3 ablation but w/o motion) and the ``vscr train``
    command that makes it on the seed's demo stores with the demo's settings and the defaults of now."""
    model = work / f"action-{name}"
    return model, demo_training(work / "demo", seed, ABLATIONS.get(name, []), model)


def demo_training(demo: Path, seed: int, options: Sequence[str], model: Path) -> list[str]:
    """``vscr train`` on the demo's stores into ``model`` with ``options`` and the demo's training options
    (preset, iterations, crop, crop share, seed) that ``options`` do not set."""
    demo_config = json.loads((demo / "model" / "config.json").read_text())["train"]
    demo_settings = {"--preset": "cpu", "--iterations": demo_config["iterations"], "--crop": demo_config["crop"], CROP_SHARE[0]: demo_config.get("crop_max_class_share", 1.0), "--seed": seed}
    settings = [part for option, value in demo_settings.items() if option not in options for part in (option, value)]
    return vscr("train", "--edges", demo / "edges.zarr", "--cam", demo / "cam.zarr", *settings, *options, "-o", model, "--overwrite")


def action_head_rows(runner: Runner, work: Path, seed: int, ablations: bool = False) -> dict[str, dict]:
    """The defaults of now (crops redrawn, the action head; predicted with the dense CRF, actor tag votes,
    the two-stream video decision), every frame scored: the full model trained on the seed's demo
    stores with the demo's settings, on the three splits and without tags by the pooled decision
    too; with ``ablations`` instead the Table 3 ablations with a motion branch, on the test split with
    and without tags (w/o motion has no action head: the crop-share-ablations rows are its model and rows)."""
    demo = work / "demo"
    runner.ensure("demo", demo / "demo.json", demo_command(demo, seed))
    rows = {}
    for name in [name for name in ABLATIONS if name != "no-motion"] if ablations else ["full"]:
        model, training = action_training(work, seed, name)
        runner.ensure(f"action-{name}-test", model / "config.json", training)
        splits = vscr_splits(demo)[1:] if ablations else [*vscr_splits(demo), ("test-pooled", ("--split", "test", "--video-decision", "pooled"), ())]
        for split, predict_options, score_options in splits:
            row, votes = f"action-{name}-{split}", ACTOR_VOTES if "--tags" in predict_options else ()
            rows[row] = predicted_row(runner, row, demo / "synth", model, work / f"pred-action-{name}-{split}.zarr", work / f"{row}.score.json", (*predict_options, *votes, CRF), ("--dense", *score_options))
    return rows


def heldout_set(runner: Runner, work: Path) -> Path:
    """WORK/heldout: :data:`HELDOUT_VIDEOS` synthetic videos of the demo's classes, frames and sizes,
    every frame's ground truth written, drawn with :data:`HELDOUT_SEED` (no seed's demo holds them)."""
    size, heldout = SIZES[Size.small], work / "heldout"
    runner.ensure("heldout", heldout / "tags.csv", vscr("synth", heldout, "--videos", HELDOUT_VIDEOS, "--frames", size.frames, "--annotated", size.annotated, "--height", size.height, "--width", size.width, "--classes", DEMO_CLASSES, "--seed", HELDOUT_SEED, "--dense"))
    return heldout


def heldout_rows(runner: Runner, work: Path, seed: int, heldout: Path) -> dict[str, dict]:
    """Stage I (the seed's demo classifier, given the tags), the seed's action-head model and its Table 3
    ablations (:data:`HELDOUT_MODELS`; w/o motion the crop-share-ablations model) on every video of the
    held-out set, the models with and without its tags, predicted with the defaults of now (dense CRF,
    actor votes, two-stream decision), every frame scored."""
    demo, cam = work / "demo", work / "cam-heldout.zarr"
    runner.ensure("demo", demo / "demo.json", demo_command(demo, seed))
    runner.ensure("heldout-cam-test-tags", cam, vscr("cam", heldout, "--split", "all", "--tags", heldout / "tags.csv", "--classifier", demo / "cam.classifier", "-o", cam))
    rows = {"heldout-cam-test-tags": score(runner, "heldout-cam-test-tags", cam, heldout, work / "heldout-cam-test-tags.score.json", "--dense")}
    for name in HELDOUT_MODELS:
        model, training = variant_training(work, seed, name, crop_share=True)[1:] if name == "no-motion" else action_training(work, seed, name)
        rows.update(heldout_predictions(runner, work, f"heldout-{name}", model, training, heldout))
    return rows


def heldout_predictions(runner: Runner, work: Path, name: str, model: Path, training: list[str], heldout: Path, row_prefix: str = "") -> dict[str, dict]:
    """Rows [ROW_PREFIX]NAME-test-tags and [ROW_PREFIX]NAME-test (products WORK/pred-NAME-SPLIT.zarr and
    WORK/NAME-SPLIT.score.json): ``model`` (made by ``training``) on every video of ``heldout`` with and
    without its tags, predicted with the defaults of now (dense CRF, actor votes, two-stream decision),
    every frame scored."""
    rows = {}
    for split, predict_options in (("test-tags", ("--tags", heldout / "tags.csv", *ACTOR_VOTES)), ("test", ())):
        product, row = f"{name}-{split}", f"{row_prefix}{name}-{split}"
        runner.ensure(row, model / "config.json", training)
        rows[row] = predicted_row(runner, row, heldout, model, work / f"pred-{product}.zarr", work / f"{product}.score.json", ("--split", "all", *predict_options, CRF), ("--dense",))
    return rows


def tag_memory_rows(runner: Runner, work: Path, seed: int, heldout: Path) -> dict[str, dict]:
    """The seed's action-head model trained with ``vscr train --tag-memory`` (the tag term reads the memory
    bank as SPML's co-occurrence term does) on the held-out set, as :func:`heldout_rows` scores the full model."""
    model = work / "action-tag-memory"
    training = demo_training(work / "demo", seed, ["--tag-memory"], model)
    return heldout_predictions(runner, work, "heldout-tag-memory", model, training, heldout)


def scene_set(runner: Runner, folder: Path, videos: int, seed: int) -> Path:
    """``vscr synth FOLDER --scene-by-class`` with the demo's classes and sizes (the small demo's when
    ``videos`` is its count), every frame's ground truth written."""
    size = SIZES[Size.small]
    runner.ensure("scene", folder / "tags.csv", vscr("synth", folder, "--videos", videos, "--frames", size.frames, "--annotated", size.annotated, "--height", size.height, "--width", size.width, "--classes", DEMO_CLASSES, "--seed", seed, "--dense", SCENE_BY_CLASS))
    return folder


def scene_rows(runner: Runner, work: Path, seed: int, heldout: Path) -> dict[str, dict]:
    """The demo's data of ``seed`` drawn again with each video's scene its class's (``vscr synth
    --scene-by-class``), its edges and CAM stores made as the demo makes them, the full action-head model
    and the model without the tag term trained on them with the demo's settings, both on the held-out
    set drawn the same way (:func:`heldout_predictions`)."""
    size, scene = SIZES[Size.small], work / "scene"
    synth = scene_set(runner, scene / "synth", size.videos, seed)
    frames = ("--split", "train", "--every", size.every)
    runner.ensure("scene", scene / "edges.zarr", vscr("edges", synth, *frames, "-o", scene / "edges.zarr"))
    classifier = ("--epochs", size.epochs, "--fit-frames", size.fit_frames, "--seed", seed, "--classifier", scene / "cam.classifier")
    runner.ensure("scene", scene / "cam.zarr", vscr("cam", synth, *frames, "--tags", synth / "tags.csv", *classifier, "-o", scene / "cam.zarr"))
    rows = {}
    for name, options in SCENE_MODELS.items():
        model = scene / name
        settings = ("--preset", "cpu", "--iterations", size.iterations, "--crop", size.crop, *CROP_SHARE, "--seed", seed)
        training = vscr("train", "--edges", scene / "edges.zarr", "--cam", scene / "cam.zarr", *settings, *options, "-o", model, "--overwrite")
        rows.update(heldout_predictions(runner, scene, f"heldout-{name}", model, training, heldout, row_prefix="scene-"))
    return rows


def crf_rows(runner: Runner, work: Path, size: str = "small") -> dict[str, dict]:
    """The demo's three VSCR rows and its aligned test row with the dense CRF (``vscr predict --crf``),
    every frame scored, in the ``size``'s folder (:func:`demo_folder`), its rows named [SIZE-]crf-...."""
    prefix, demo = demo_folder(work, size)
    rows = {}
    for split, predict_options, score_options in vscr_splits(demo):
        row = f"{prefix}crf-{split}"
        rows[row] = predicted_row(runner, row, demo / "synth", demo / "model", work / f"pred-{row}.zarr", work / f"{row}.score.json", (*predict_options, CRF), ("--dense", *score_options))
    row, aligned = f"{prefix}crf-aligned", work / f"{prefix}aligned-crf.zarr"
    runner.ensure(row, aligned, vscr("align", work / f"pred-{prefix}crf-test.zarr", "-o", aligned))
    rows[row] = score(runner, row, aligned, demo / "synth", work / f"{row}.score.json", "--dense")
    return rows


def refine_rows(runner: Runner, work: Path, seed: int) -> dict[str, dict]:
    """The seed's demo model refined by ``vscr refine`` with each of :data:`REFINE_VOTES`, its retrained
    head on the demo's three VSCR rows, every frame scored."""
    demo, rows = work / "demo", {}
    for votes in REFINE_VOTES:
        refined, name = work / f"refined-{votes}", f"refine-{votes}"
        runner.ensure(f"{name}-train", refined / "config.json", vscr("refine", "--edges", demo / "edges.zarr", "--cam", demo / "cam.zarr", "-m", demo / "model", "-o", refined, "--tag-votes", votes))
        for split, predict_options, score_options in vscr_splits(demo):
            row = f"{name}-{split}"
            rows[row] = predicted_row(runner, row, demo / "synth", refined, refined / f"pred-{split}.zarr", work / f"{row}.score.json", predict_options, ("--dense", *score_options))
    return rows


def tag_vote_rows(runner: Runner, work: Path, variant: str = "") -> dict[str, dict]:
    """The demo's two rows decoded among the tags (training frames, test split) with ``--tag-votes
    actor``, without and with the dense CRF, every frame scored; the demo's model, or the ``variant``'s
    (trained by :func:`variant_rows`; its rows named VARIANT-...)."""
    demo, rows = work / "demo", {}
    model, prefix = (work / variant, f"{variant}-") if variant else (demo / "model", "")
    for split, predict_options, score_options in vscr_splits(demo)[:2]:
        for crf in ((), (CRF,)):
            row = f"{prefix}{'crf-' if crf else ''}actor-{split}"
            rows[row] = predicted_row(runner, row, demo / "synth", model, work / f"pred-{row}.zarr", work / f"{row}.score.json", (*predict_options, *ACTOR_VOTES, *crf), ("--dense", *score_options))
    return rows


def davis_cam_row(runner: Runner, work: Path, cam: str = "cam") -> dict[str, float]:
    """Edges and one of :data:`DAVIS_CAMS` (CAM pseudo-labels) of davis-dev, every 5th frame at 240 px,
    scored at full size (row ``davis-CAM``)."""
    sample = ("--every", "5", "--height", "240")
    work.mkdir(parents=True, exist_ok=True)
    row = f"davis-{cam}"
    runner.ensure(row, work / "edges.zarr", vscr("edges", DAVIS, *sample, "-o", work / "edges.zarr"))
    runner.ensure(row, work / f"{cam}.zarr", vscr("cam", DAVIS, *DAVIS_TAGS, *sample, *DAVIS_CAMS[cam], "-o", work / f"{cam}.zarr"))
    return score(runner, row, work / f"{cam}.zarr", DAVIS, work / f"{cam}.score.json", "--predicted-only", "--resize")


def davis_rows(runner: Runner, work: Path, seed: int, variant: str = "", crf: bool = False) -> dict[str, dict]:
    """A model trained on davis-dev's stores with ``seed`` (and a variant's options), predicted on the
    same frames at its default height; "multiscale" also at the sweep's heights. A variant of
    :data:`DAVIS_VARIANT_CAMS` trains on its CAM store and, where that is not the paper's-rule "cam", is
    also decoded with actor tag votes, with the dense CRF, and with both. With ``crf`` the default model's rows (davis-crf...) are predicted with the dense CRF."""
    model, name = (work / f"{variant}-s{seed}", f"davis-{variant}") if variant else (work / f"s{seed}", "davis-crf" if crf else "davis-full")
    cam = DAVIS_VARIANT_CAMS.get(variant, "cam")
    options = VARIANTS.get(variant, [])
    if CROP_SHARE[0] not in options:  # the cpu preset's redraws came after these models: off, as they were trained
        options = [*options, CROP_SHARE[0], "1"]
    options = DAVIS_CURRENT_VARIANTS[variant] if variant in DAVIS_CURRENT_VARIANTS else [*options, NO_ACTION_HEAD]
    runner.ensure(name, model / "config.json", vscr("train", "--edges", work / "edges.zarr", "--cam", work / f"{cam}.zarr", "--preset", "cpu", "--seed", seed, *options, "-o", model, "--overwrite"))
    extra = (CRF,) if crf else ()
    predictions = [(f"{name}-tags", (*DAVIS_TAGS, *extra)), (name, extra)]
    if variant == "multiscale":
        predictions += [(f"{name}-h{height}", ("--height", height, "--scale", 1)) for height in DAVIS_HEIGHTS]
    if cam != "cam":
        predictions += [(f"{name}-actor-tags", (*DAVIS_TAGS, *ACTOR_VOTES)), (f"{name}-crf-tags", (*DAVIS_TAGS, CRF)), (f"{name}-crf-actor-tags", (*DAVIS_TAGS, *ACTOR_VOTES, CRF))]
    return davis_predictions(runner, model, predictions)


def davis_more_rows(runner: Runner, work: Path, seed: int) -> dict[str, dict]:
    """davis-more, five sequences no davis-dev model saw, every 5th frame scored at full size: Stage I
    given their tags with each davis-dev classifier (:data:`DAVIS_CAMS`), and the seed's davis-dev
    models (default and, where trained, each of :data:`DAVIS_VARIANT_CAMS`) given the tags, with actor tag votes, and without."""
    out = work / "more"
    out.mkdir(parents=True, exist_ok=True)
    tags, rows = ("--tags", DAVIS_MORE / "tags.csv"), {}
    for cam, options in DAVIS_CAMS.items():
        if not (work / f"{cam}.classifier").is_dir():
            print(f"davis-more: no {work / cam}.classifier (run --groups {cam.replace('cam', 'davis', 1)} first): its rows skipped", file=sys.stderr)
            continue
        row = f"more-{cam}"
        runner.ensure(row, out / f"{cam}.zarr", vscr("cam", DAVIS_MORE, *tags, "--every", "5", "--height", "240", *options, "--classifier", work / f"{cam}.classifier", "-o", out / f"{cam}.zarr"))
        rows[row] = score(runner, row, out / f"{cam}.zarr", DAVIS_MORE, out / f"{cam}.score.json", "--predicted-only", "--resize")
    for name, model in (("full", work / f"s{seed}"), *((variant, work / f"{variant}-s{seed}") for variant in DAVIS_VARIANT_CAMS)):
        if not (model / "config.json").is_file():
            print(f"davis-more: no model in {model} (run --groups davis{'' if name == 'full' else '-' + name} first): its rows skipped", file=sys.stderr)
            continue
        rows.update(davis_predictions(runner, model, [(f"more-{name}-tags", tags), (f"more-{name}-actor-tags", (*tags, *ACTOR_VOTES)), (f"more-{name}", ())], DAVIS_MORE))
    return rows


def davis_predictions(runner: Runner, model: Path, predictions: list[tuple[str, tuple]], sources: Path = DAVIS) -> dict[str, dict]:
    """Per (row, predict options): ``model`` on every 5th frame of ``sources`` (davis-dev or davis-more),
    scored at full size."""
    return {row: predicted_row(runner, row, sources, model, model / f"pred-{row}.zarr", model / f"{row}.score.json", ("--every", "5", *options), ("--predicted-only", "--resize")) for row, options in predictions}


def davis_height_rows(runner: Runner, work: Path, seed: int) -> dict[str, dict]:
    """The seed's davis-dev model predicted at other heights and input scales, scored at full size."""
    model = work / f"s{seed}"
    predictions = [(f"davis-full-h{height}", ("--height", height, "--scale", 1)) for height in DAVIS_HEIGHTS]
    predictions += [(f"davis-full{tagged}-scale2", ("--scale", 2, *extra)) for tagged, extra in (("-tags", DAVIS_TAGS), ("", ()))]
    return davis_predictions(runner, model, predictions)


def davis_refine_rows(runner: Runner, work: Path, seed: int) -> dict[str, dict]:
    """The seed's davis-dev model refined by ``vscr refine`` with each of :data:`REFINE_VOTES`, predicted
    by its retrained head on the same frames with and without tags, scored at full size."""
    model, rows = work / f"s{seed}", {}
    for votes in REFINE_VOTES:
        refined, name = model / f"refined-{votes}", f"davis-refine-{votes}"
        runner.ensure(name, refined / "config.json", vscr("refine", "--edges", work / "edges.zarr", "--cam", work / "cam.zarr", "-m", model, "-o", refined, "--tag-votes", votes))
        rows.update(davis_predictions(runner, refined, [(f"{name}-tags", DAVIS_TAGS), (name, ())]))
    return rows


def summary(runs: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """Per row: mean and standard deviation of every measure over the seeds that have the row."""
    result = {}
    for row in ROWS:
        per_seed = [rows[row] for rows in runs.values() if row in rows]
        if not per_seed:
            continue
        result[row] = {"seeds": len(per_seed)}
        for measure in per_seed[0]:
            values = [rows[measure] for rows in per_seed]
            result[row][measure] = {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    return result


def markdown(record: dict) -> str:
    """The RESULTS.md table: mean +- std per row over the seeds."""
    lines = ["| row | seeds | frames per seed | actor-action mIoU | actor mIoU | action mIoU | fg IoU | class acc. |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row, title in ROWS.items():
        if row not in record["mean_std"]:
            continue
        values = record["mean_std"][row]
        cells = [f"{values[m]['mean']:.1f} ± {values[m]['std']:.1f}" for m in (*METRICS, "fg_iou", "class_acc")]
        lines.append(f"| {title} | {values['seeds']} | {values['frames']['mean']:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--groups", nargs="+", choices=GROUPS, default=list(GROUPS), help="what to run, in this order")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "results")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "results.json")
    parser.add_argument("--markdown", action="store_true", help="only print the table of the rows in --out")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.out.read_text())), end="")
        return
    record = json.loads(args.out.read_text()) if args.out.is_file() else {}
    runs: dict[str, dict[str, dict]] = record.get("runs", {})
    runner = Runner()

    def save() -> None:
        commands = record.get("commands", {})
        for row, texts in runner.commands.items():  # every run's commands of a row, each once (seeds add theirs)
            commands[row] = list(dict.fromkeys([*commands.get(row, []), *texts]))
        record.update(runs=runs, commands=commands, mean_std=summary(runs))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")

    for group in args.groups:
        if group.startswith("davis") and not (DAVIS / "tags.csv").is_file():
            print(f"davis-dev not found at {DAVIS}: skipped", file=sys.stderr)
            continue
        if group in ("davis", "davis-multiscale", "davis-crf"):
            davis_cam = davis_cam_row(runner, args.work / "davis")
        if group in DAVIS_VARIANT_GROUPS:
            variant_cam = DAVIS_VARIANT_CAMS[group.removeprefix("davis-")]
            variant_cam_row = {f"davis-{variant_cam}": davis_cam_row(runner, args.work / "davis", variant_cam)}
        if group in ("action-head-heldout", "tag-memory-heldout"):
            heldout = heldout_set(runner, args.work)
        if group == "scene-heldout":
            scene_heldout = scene_set(runner, args.work / "heldout-scene", HELDOUT_VIDEOS, HELDOUT_SEED)
        if group == "davis-more" and not (DAVIS_MORE / "tags.csv").is_file():
            print(f"davis-more not found at {DAVIS_MORE}: skipped", file=sys.stderr)
            continue
        for seed in args.seeds[:1] if group == "davis-heights" else args.seeds:  # the sweep: the first seed's model
            work = args.work / f"s{seed}"
            rows = runs.setdefault(str(seed), {})
            if group == "synth":
                rows.update(synthetic_rows(runner, work, seed))
            elif group in DEMO_SIZES:
                rows.update(synthetic_rows(runner, work, seed, group))
            elif group == "synth-heights":
                rows.update(synthetic_height_rows(runner, work))
            elif group == "davis":
                rows.update({"davis-cam": davis_cam, **davis_rows(runner, args.work / "davis", seed)})
            elif group == "davis-crf":
                rows.update({"davis-cam": davis_cam, **davis_rows(runner, args.work / "davis", seed, crf=True)})
            elif group == "tag-votes":
                rows.update(tag_vote_rows(runner, work))
            elif group == "crop-share-tag-votes":
                rows.update(variant_rows(runner, work, seed, "crop-share", crf=True))
                rows.update(tag_vote_rows(runner, work, "crop-share"))
            elif group == "davis-tag-votes":
                rows.update(davis_predictions(runner, args.work / "davis" / f"s{seed}", [("davis-actor-tags", (*DAVIS_TAGS, *ACTOR_VOTES))]))
            elif group == "crf":
                rows.update(crf_rows(runner, work))
            elif group == "crop-share-crf":
                rows.update(variant_rows(runner, work, seed, "crop-share", crf=True))
            elif group.removesuffix("-crf") in DEMO_SIZES:
                rows.update(crf_rows(runner, work, group.removesuffix("-crf")))
            elif group == "crf-ablations":
                for name in ABLATIONS:
                    rows.update(variant_rows(runner, work, seed, name, crf=True))
            elif group == "crop-share-ablations":
                for name in ABLATIONS:
                    rows.update(variant_rows(runner, work, seed, name, crf=True, crop_share=True))
            elif group == "davis-heights":
                rows.update(davis_height_rows(runner, args.work / "davis", seed))
            elif group == "davis-multiscale":
                rows.update({"davis-cam": davis_cam, **davis_rows(runner, args.work / "davis", seed, "multiscale")})
            elif group == "refine":
                rows.update(refine_rows(runner, work, seed))
            elif group == "davis-refine":
                rows.update(davis_refine_rows(runner, args.work / "davis", seed))
            elif group in DAVIS_VARIANT_GROUPS:
                rows.update({**variant_cam_row, **davis_rows(runner, args.work / "davis", seed, group.removeprefix("davis-"))})
            elif group == "davis-more":
                rows.update(davis_more_rows(runner, args.work / "davis", seed))
            elif group in ("action-head", "action-head-ablations"):
                rows.update(action_head_rows(runner, work, seed, ablations=group.endswith("ablations")))
            elif group == "action-head-heldout":
                rows.update(heldout_rows(runner, work, seed, heldout))
            elif group == "tag-memory-heldout":
                rows.update(tag_memory_rows(runner, work, seed, heldout))
            elif group == "scene-heldout":
                rows.update(scene_rows(runner, work, seed, scene_heldout))
            else:
                rows.update(variant_rows(runner, work, seed, group))
            save()
    print(markdown(record), end="")


if __name__ == "__main__":
    main()
