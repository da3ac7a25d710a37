"""The benchmark groups of docs/RESULTS.md as data, run over training seeds by bench/experiment.py.

Each group is a :class:`~experiment.Group`: the ``vscr`` commands that make its stores and models and
the rows it scores (``vscr score``, every frame where the ground truth has them). Synthetic groups work
on each seed's ``vscr demo`` (its own dataset, stores and model); davis groups on davis-dev (every 5th
frame at 240 px, scored against the full-size masks) and davis-more. Products live in WORK under their
commands' hashes, so a step two groups share runs once; rows are mean +- standard deviation over the
seeds that have them.

    python bench/results.py --list                                   # the groups and what they measure
    python bench/results.py --seeds 0 1 2 --groups action-head action-head-ablations   # some groups
    python bench/results.py --markdown                               # the table of --out
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from experiment import OUT, REPO, SEED, Argument, Group, Ref, Row, Runner, Step, cell, record_runs  # bench/ is on sys.path
from machine import cpu_model

from vscr_cli.settings.demo import DEMO_CLASSES, SIZES, Size

DAVIS = REPO.parent / "shared" / "data" / "davis-dev"
#: Five more DAVIS sequences the davis-dev models never saw (the inductive rows).
DAVIS_MORE = REPO.parent / "shared" / "data" / "davis-more"
#: davis-dev's frames as every davis store holds them.
DAVIS_FRAMES = ("--every", 5, "--height", 240)

#: Table 3 ablations: name -> the training options that differ from the full model.
ABLATIONS = {"no-motion": ("--motion", "none"), "no-edge": ("--no-edge",), "no-tag": ("--no-tag",), "no-unlabeled": ("--no-unlabeled",)}
#: Crops redrawn while one class holds more than 3/4 of their labelled pixels (the cpu preset's since).
CROP_SHARE = ("--crop-max-class-share", "0.75")
#: Training variants: name -> (options, title).
VARIANTS = {
    "multiscale": (("--scale-min", "0.5", "--scale-max", "1.5"), "multi-scale training"),
    "long": (("--iterations", SIZES[Size.medium].iterations), f"trained {SIZES[Size.medium].iterations} iterations"),
    "crop-share": (CROP_SHARE, "crops redrawn at a class share > 0.75"),
}
NO_ACTION_HEAD = "--no-action-head"
CRF, NO_CRF = "--crf", "--no-crf"
CLASS_VOTES = ("--tag-votes", "class")
#: vscr refine's --tag-votes, each a row of the model refined that way.
REFINE_VOTES = ("class", "actor")
#: A synthetic set of videos no seed's demo holds (6x the demo's test videos, its own seed).
HELDOUT_VIDEOS, HELDOUT_SEED = 48, 1000
#: The demo's three VSCR rows -> how a title names them.
SPLIT_TITLES = {"train": "train", "test-tags": "test, tags given", "test": "test"}

#: A group's building block: its steps (name -> command) and rows (results.json key -> row).
Part = tuple[dict[str, Step], dict[str, Row]]

# -- the vocabulary the groups are written in ---------------------------------------------------------


def demo(size: Size = Size.small) -> Step:
    """The seed's ``vscr demo``: the defaults before the CRF, actor tag votes and the action head."""
    sized = ("--size", size.value) if size != Size.small else ()
    return Step(("demo", OUT, "--seed", SEED, *sized, NO_CRF, *CLASS_VOTES, NO_ACTION_HEAD, "--overwrite"), done="demo.json")


SYNTH, TAGS, DEMO_MODEL = Ref("demo", "synth"), Ref("demo", "synth/tags.csv"), Ref("demo", "model")


def splits(size: Size = Size.small) -> dict[str, tuple[tuple, tuple]]:
    """The demo's splits: name -> (predict options, score options besides --dense): the training frames
    given their tags, the test split given its tags, the test split without."""
    return {
        "train": (("--split", "train", "--every", SIZES[size].every, "--tags", TAGS), ("--predicted-only",)),
        "test-tags": (("--split", "test", "--tags", TAGS), ()),
        "test": (("--split", "test"), ()),
    }


def predict(model: Argument, sources: Argument, *options: Argument, votes: str = "class") -> Step:
    """``vscr predict``: without the CRF unless ``options`` ask, given tags decoded with tag ``votes``
    (both defaults changed since the first of these rows: the commands say which)."""
    crf = () if CRF in options else (NO_CRF,)
    tag_votes = ("--tag-votes", votes) if "--tags" in options else ()
    return Step(("predict", sources, *options, *crf, *tag_votes, "-m", model, "-o", OUT), suffix=".zarr")


def demo_training(*options: Argument) -> Step:
    """``vscr train`` on the demo's stores with the demo's settings that ``options`` do not set."""
    settings = {"--preset": "cpu", "--iterations": SIZES[Size.small].iterations, "--seed": SEED}
    kept = [part for option, value in settings.items() if option not in options for part in (option, value)]
    return Step(("train", "--edges", Ref("demo", "edges.zarr"), "--cam", Ref("demo", "cam.zarr"), *kept, *options, "-o", OUT, "--overwrite"), done="config.json")


def predicted(part: Part, key: str, title: str, model: Argument, sources: Argument, options: tuple, score: tuple, votes: str = "class") -> Part:
    """``part`` with row ``key``: ``model`` predicted on ``sources`` with ``options``, scored against
    them with ``score``."""
    steps, rows = part
    steps[f"pred:{key}"] = predict(model, sources, *options, votes=votes)
    rows[key] = Row(title, f"pred:{key}", sources, score)
    return part




def on_splits(key: str, title: str, model: Argument, names: Sequence[str] = tuple(SPLIT_TITLES), extra: tuple = (), size: Size = Size.small, suffix: str = "", votes: str = "class") -> Part:
    """Rows KEY-SPLIT[SUFFIX]: ``model`` on the demo's ``names`` splits with ``extra`` predict options,
    every frame scored; ``title`` has a ``{split}`` field."""
    part: Part = ({}, {})
    for split in names:
        options, score = splits(size)[split]
        predicted(part, f"{key}-{split}{suffix}", title.format(split=SPLIT_TITLES[split]), model, SYNTH, (*options, *extra), ("--dense", *score), votes)
    return part


def merged(*parts: Part) -> Part:
    steps: dict[str, Step] = {}
    rows: dict[str, Row] = {}
    for part_steps, part_rows in parts:
        steps.update(part_steps)
        rows.update(part_rows)
    return steps, rows


def group(name: str, description: str, *parts: Part, needs: tuple[Path, ...] = (), first_seed_only: bool = False) -> Group:
    steps, rows = merged(*parts)
    return Group(name, description, steps, rows, needs, first_seed_only)


# -- synthetic groups: each seed's demo --------------------------------------------------------------


def demo_rows(size: Size = Size.small) -> Part:
    """The demo's rows, every frame scored: its CAM (without and with the CRF) and network on the
    training frames (given their tags), CAM and the network on the test split given its tags, the
    network without and aligned."""
    prefix, title = ("", "") if size == Size.small else (f"{size.value}-", f"{size.value} demo: ")
    steps = {
        "demo": demo(size),
        "cam-test": Step(("cam", SYNTH, "--split", "test", "--tags", TAGS, "--classifier", Ref("demo", "cam.classifier"), "-o", OUT), suffix=".zarr"),
    }
    rows = {
        f"{prefix}cam-train": Row(f"{title}CAM (train)", Ref("demo", "cam.zarr"), SYNTH, ("--dense", "--predicted-only")),
        f"{prefix}full-train": Row(f"{title}VSCR (train)", Ref("demo", "pred-train.zarr"), SYNTH, ("--dense", "--predicted-only")),
        f"{prefix}cam-test-tags": Row(f"{title}CAM (test, tags given)", "cam-test", SYNTH, ("--dense",)),
        f"{prefix}cam-crf-train": Row(f"{title}CAM + CRF (train)", Ref("demo", "cam-crf.zarr"), SYNTH, ("--dense", "--predicted-only")),
        f"{prefix}cam-crf-test-tags": Row(f"{title}CAM + CRF (test, tags given)", Ref("demo", "cam-test-crf.zarr"), SYNTH, ("--dense",)),
        f"{prefix}full-test": Row(f"{title}VSCR (test)", Ref("demo", "pred.zarr"), SYNTH, ("--dense",)),
        f"{prefix}full-aligned": Row(f"{title}VSCR + align (test)", Ref("demo", "aligned.zarr"), SYNTH, ("--dense",)),
    }
    return predicted((steps, rows), f"{prefix}full-test-tags", f"{title}VSCR (test, tags given)", DEMO_MODEL, SYNTH, splits(size)["test-tags"][0], ("--dense",))


def crf_rows(size: Size = Size.small) -> Part:
    """The demo's three VSCR rows and its aligned test row predicted with the dense CRF."""
    prefix, title = ("", "") if size == Size.small else (f"{size.value}-", f"{size.value} demo: ")
    steps, rows = on_splits(f"{prefix}crf", title + "VSCR ({split}), dense CRF", DEMO_MODEL, extra=(CRF,), size=size)
    steps |= {"demo": demo(size), "aligned-crf": Step(("align", Ref(f"pred:{prefix}crf-test"), "-o", OUT), suffix=".zarr")}
    rows[f"{prefix}crf-aligned"] = Row(f"{title}VSCR + align (test), dense CRF", "aligned-crf", SYNTH, ("--dense",))
    return steps, rows


def height_rows() -> Part:
    """The demo's three VSCR rows with the frames read at 240 px, scored at the ground truth's size."""
    part: Part = ({"demo": demo()}, {})
    for split, (options, score) in splits().items():
        predicted(part, f"full-{split}-h240", f"VSCR ({SPLIT_TITLES[split]}), predicted at 240 px", DEMO_MODEL, SYNTH, (*options, "--height", 240, "--scale", 1), ("--dense", "--resize", *score))
    return part


def ablation_rows(name: str, with_crf: bool = False, crop_share: bool = False) -> Part:
    """A Table 3 ablation (no action head) trained on the demo's stores, on the test split with and
    without tags: rows NAME-SPLIT, NAME-crf-SPLIT (predicted with the CRF), NAME-crop-share-crf-SPLIT
    (trained with :data:`CROP_SHARE` too, the CRF)."""
    options, key, title = ABLATIONS[name], name, f"w/o {name[3:]}"
    if crop_share:
        options, key, title = (*options, *CROP_SHARE), f"{name}-crop-share", f"{title}, {VARIANTS['crop-share'][1]}"
    model = f"model:{key}"
    crf_key, crf_title, crf_option = ("-crf", ", dense CRF", (CRF,)) if with_crf else ("", "", ())
    steps, rows = on_splits(key + crf_key, f"{title} ({{split}}){crf_title}", Ref(model), ("test-tags", "test"), ("--scale", 1, *crf_option))
    return {"demo": demo(), model: demo_training(*options, NO_ACTION_HEAD), **steps}, rows


def variant_rows(name: str, with_crf: bool = False) -> Part:
    """A training variant (no action head) on the demo's stores, on its three splits: rows NAME-SPLIT
    and NAME-SPLIT-x2 (the network at 2x), or with ``with_crf`` NAME-crf-SPLIT (the CRF, 1x)."""
    options, title = VARIANTS[name]
    model = f"model:{name}"
    if with_crf:
        parts = [on_splits(f"{name}-crf", f"{title} ({{split}}), dense CRF", Ref(model), extra=("--scale", 1, CRF))]
    else:
        parts = [on_splits(name, f"{title} ({{split}})", Ref(model), extra=("--scale", 1)), on_splits(name, f"{title} ({{split}}), network at 2x", Ref(model), extra=("--scale", 2), suffix="-x2")]
    return merged(({"demo": demo(), model: demo_training(*options, NO_ACTION_HEAD)}, {}), *parts)


def refine_rows() -> Part:
    """The demo's model refined by ``vscr refine`` with each of :data:`REFINE_VOTES`, on its three splits."""
    parts = []
    for votes in REFINE_VOTES:
        refined = f"refined:{votes}"
        command = Step(("refine", "--edges", Ref("demo", "edges.zarr"), "--cam", Ref("demo", "cam.zarr"), "-m", DEMO_MODEL, "-o", OUT, "--tag-votes", votes), done="config.json")
        parts += [({refined: command}, {}), on_splits(f"refine-{votes}", f"vscr refine --tag-votes {votes} ({{split}})", Ref(refined))]
    return merged(({"demo": demo()}, {}), *parts)


def tag_vote_rows(variant: str = "") -> Part:
    """The demo's model (or a :data:`VARIANTS` one's, rows VARIANT-...) on the training frames and the
    test split given tags, decoded with actor tag votes, without and with the CRF."""
    model, prefix, title = (Ref(f"model:{variant}"), f"{variant}-", f"{VARIANTS[variant][1]}: ") if variant else (DEMO_MODEL, "", "")
    parts = [({"demo": demo()}, {})]
    for crf_option in ((), (CRF,)):
        crf_key, crf_title = ("crf-", "dense CRF, ") if crf_option else ("", "")
        parts.append(on_splits(f"{prefix}{crf_key}actor", f"{title}VSCR ({{split}}), {crf_title}tag votes by actor", model, ("train", "test-tags"), crf_option, votes="actor"))
    return merged(*parts)


def action_rows(name: str = "full") -> Part:
    """The defaults of now (crops redrawn, the action head; the CRF, actor tag votes, the two-stream
    video decision) on the demo's stores: the full model on the three splits and by the pooled
    decision, a Table 3 ablation (not w/o motion, which has no action head) on the test split."""
    model = f"model:action-{name}"
    steps = {"demo": demo(), model: demo_training(*ABLATIONS.get(name, ()))}
    if name != "full":
        return merged((steps, {}), on_splits(f"action-{name}", f"action head: w/o {name[3:]} ({{split}}), dense CRF", Ref(model), ("test-tags", "test"), (CRF,), votes="actor"))
    part = merged((steps, {}), on_splits("action-full", "action head: VSCR ({split}), dense CRF", Ref(model), extra=(CRF,), votes="actor"))
    return predicted(part, "action-full-test-pooled", "action head: VSCR (test), pooled video decision, dense CRF", Ref(model), SYNTH, ("--split", "test", "--video-decision", "pooled", CRF), ("--dense",))


#: The paper at CPU scale (docs/paper.md): Stage I's, training's and inference's options.
PAPER_CAM = ("--preset", "paper", "--arch", "tf_efficientnet_lite0")
PAPER_TRAIN = ("--preset", "paper-cpu")
PAPER_PREDICT = ("--preset", "paper")


def same_data_steps() -> dict[str, Step]:
    """The seed's demo data made without the rest of the demo (``vscr synth``, edges and Stage I as the
    demo makes them), Stage I by the defaults and by the paper's preset (the classifier reused), each
    without and with the CRF, on the training frames and the test videos given their tags."""
    size = SIZES[Size.small]
    frames = ("--split", "train", "--every", size.every)
    data, tags = Ref("data"), Ref("data", "tags.csv")
    return {
        "data": synthetic_set(SEED, size.videos),
        "edges": Step(("edges", data, *frames, "-o", OUT), suffix=".zarr"),
        **stage_one_reusing_classifier("cam"),  # cam-crf, cam-test, cam-crf-test; "cam" itself fits the classifier:
        "cam": Step(("cam", data, *frames, "--tags", tags, "--epochs", size.epochs, "--fit-frames", size.fit_frames, "--seed", SEED, "-o", OUT), suffix=".zarr"),
        **stage_one_reusing_classifier("cam-paper", PAPER_CAM),
    }


def stage_one_reusing_classifier(name: str, options: tuple = ()) -> dict[str, Step]:
    """Steps NAME, NAME-crf, NAME-test, NAME-crf-test: ``vscr cam`` with ``options`` and the "cam" step's
    fitted classifier on the training frames and on the test videos given their tags, each without and
    with the CRF (the like-with-like controls of the CRF rows)."""
    size = SIZES[Size.small]
    frames = ("--split", "train", "--every", size.every)
    data, tags, classifier = Ref("data"), Ref("data", "tags.csv"), ("--classifier", Ref("cam", beside=".classifier"))
    return {
        f"{name}{crf}{test}": Step(("cam", data, *(("--split", "test") if test else frames), "--tags", tags, *options, *(("--crf",) if crf else ()), *classifier, "-o", OUT), suffix=".zarr")
        for crf in ("", "-crf")
        for test in ("", "-test")
    }


def same_data_rows(key: str, title: str, model: str, names: Sequence[str], extra: tuple = (), votes: str = "class") -> Part:
    """Rows KEY-NAME: ``model`` on the same data's ``names`` (``train``: the training frames given
    their tags; ``test-tags``, ``test``: the test videos with and without them)."""
    size = SIZES[Size.small]
    data, tags = Ref("data"), Ref("data", "tags.csv")
    on_data = {
        "train": (("--split", "train", "--every", size.every, "--tags", tags), ("--dense", "--predicted-only")),
        "test-tags": (("--split", "test", "--tags", tags), ("--dense",)),
        "test": (("--split", "test"), ("--dense",)),
    }
    part: Part = ({}, {})
    for name in names:
        options, score = on_data[name]
        predicted(part, f"{key}-{name}", f"{title} ({SPLIT_TITLES[name]})", Ref(model), data, (*options, *extra), score, votes)
    return part


def same_data_cam_rows(key: str, title: str, cam: str) -> Part:
    """Rows KEY-cam-train, KEY-cam-crf-train, KEY-cam-test-tags, KEY-cam-crf-test-tags: the Stage I
    stores CAM, CAM-crf, CAM-test and CAM-crf-test of :func:`same_data_steps` scored as they are."""
    data = Ref("data")
    train, test = ("--dense", "--predicted-only"), ("--dense",)
    return {}, {
        f"{key}-cam-train": Row(f"{title}: CAM (train), no CRF", cam, data, train),
        f"{key}-cam-crf-train": Row(f"{title}: CAM + CRF (train)", f"{cam}-crf", data, train),
        f"{key}-cam-test-tags": Row(f"{title}: CAM (test, tags given), no CRF", f"{cam}-test", data, test),
        f"{key}-cam-crf-test-tags": Row(f"{title}: CAM + CRF (test, tags given)", f"{cam}-crf-test", data, test),
    }


def defaults_rows() -> Part:
    """The defaults' model on the same data beside Stage I through the same CRF: every row like with
    like, on one machine (the ``paper-cpu`` group's control rows, without the paper's model)."""
    title = "the defaults on the same data"
    return merged(
        (same_data_steps(), {}),
        ({"model:defaults": defaults_training(SIZES[Size.small].iterations)}, {}),
        same_data_cam_rows("paper-defaults", title, "cam"),
        same_data_rows("paper-defaults-crf", f"{title}: VSCR + CRF", "model:defaults", ("train", "test-tags", "test"), (CRF,), votes="actor"),
        same_data_rows("paper-defaults-no-crf", f"{title}: VSCR, no CRF", "model:defaults", ("train", "test-tags"), votes="actor"),
    )


def defaults_training(iterations: int, cam: str = "cam") -> Step:
    """``vscr train`` with the ``cpu`` preset for ``iterations`` on the seed's demo data and the Stage I
    step ``cam``."""
    return Step(("train", "--edges", Ref("edges"), "--cam", Ref(cam), "--preset", "cpu", "--iterations", iterations, "--seed", SEED, "-o", OUT, "--overwrite"), done="config.json")


def beside_defaults(key: str, title: str, model: str, options: tuple = ()) -> Part:
    """:func:`defaults_rows` and rows KEY-crf-* and KEY-no-crf-*: ``model`` predicted with ``options``,
    with and without the CRF, on the training frames and the test videos given their tags; ``title``
    has a ``{network}`` field ("VSCR + CRF", "VSCR, no CRF")."""
    return merged(
        defaults_rows(),
        same_data_rows(f"{key}-crf", title.format(network="VSCR + CRF"), model, ("train", "test-tags"), (CRF, *options), votes="actor"),
        same_data_rows(f"{key}-no-crf", title.format(network="VSCR, no CRF"), model, ("train", "test-tags"), options, votes="actor"),
    )


def flip_rows() -> Part:
    """The defaults' model predicted with ``--flip`` (decision 0035) beside it (:func:`beside_defaults`)."""
    return beside_defaults("paper-defaults-flip", "the defaults on the same data: {network}, --flip", "model:defaults", ("--flip",))


def long_rows(iterations: int = 1200) -> Part:
    """The defaults trained for ``iterations`` instead of the demo's (decision 0037: about 6 iterations
    per training frame; the demo's set has 192) beside them (:func:`beside_defaults`)."""
    model = f"model:defaults-{iterations}"
    return merged(
        ({model: defaults_training(iterations)}, {}),
        beside_defaults(f"paper-defaults-{iterations}", f"the defaults on the same data, --iterations {iterations}: {{network}}", model),
    )


#: vscr cam's per-frame mix of the class map and the motion (decision 0022).
MOTION_AUTO = ("--motion-evidence", "auto")


def motion_auto_rows() -> Part:
    """Stage I with ``--motion-evidence auto`` (the seed's classifier reused) and the defaults trained on
    it, each without and with the CRF, beside the defaults (:func:`beside_defaults` on the new model),
    and the model with the CRF on the test videos without tags. Measured while 0.4 was the default
    (decision 0038); since then the options are the defaults' and the rows the defaults of now."""
    training = defaults_training(SIZES[Size.small].iterations, "cam-auto")
    return merged(
        ({**stage_one_reusing_classifier("cam-auto", MOTION_AUTO), "model:defaults-motion-auto": training}, {}),
        same_data_cam_rows("paper-defaults-motion-auto", "Stage I --motion-evidence auto", "cam-auto"),
        beside_defaults("paper-defaults-motion-auto", "the defaults trained on Stage I --motion-evidence auto: {network}", "model:defaults-motion-auto"),
        same_data_rows("paper-defaults-motion-auto-crf", "the defaults trained on Stage I --motion-evidence auto: VSCR + CRF", "model:defaults-motion-auto", ("test",), (CRF,), votes="actor"),
    )


def paper_rows(ablation: str = "") -> Part:
    """The paper's method at CPU scale on the seed's demo data (:func:`same_data_steps`; Stage I,
    training and inference by their paper presets): its pseudo-labels, the network without the CRF
    (the paper's inference) and with it; beside them :func:`defaults_rows`, so every row compares
    like with like on one machine. With ``ablation``: that Table 3 ablation under the paper's
    settings, on the test split."""
    options = ABLATIONS.get(ablation, ())
    key, title = (f"paper-cpu-{ablation}", f"paper at CPU scale, w/o {ablation[3:]}") if ablation else ("paper-cpu", "paper at CPU scale")
    model = f"model:{key}"
    steps = {**same_data_steps(), model: Step(("train", "--edges", Ref("edges"), "--cam", Ref("cam-paper"), *PAPER_TRAIN, "--seed", SEED, *options, "-o", OUT, "--overwrite"), done="config.json")}
    parts = [(steps, {}), same_data_rows(f"{key}", f"{title}: VSCR, no CRF", model, ("test-tags", "test") if ablation else ("train", "test-tags", "test"), PAPER_PREDICT)]
    if not ablation:
        parts += [
            same_data_cam_rows(key, title, "cam-paper"),
            same_data_rows(f"{key}-crf", f"{title}: VSCR + CRF", model, ("train", "test-tags"), (*PAPER_PREDICT, CRF)),
            defaults_rows(),
        ]
    return merged(*parts)


def synthetic_set(seed: Argument, videos: int, *options: str) -> Step:
    """``vscr synth`` with the small demo's classes and frame sizes, every frame's ground truth written."""
    size = SIZES[Size.small]
    shape = ("--frames", size.frames, "--annotated", size.annotated, "--height", size.height, "--width", size.width)
    return Step(("synth", OUT, "--videos", videos, *shape, "--classes", DEMO_CLASSES, "--seed", seed, "--dense", *options), done="tags.csv")


def heldout_predictions(key: str, title: str, model: Argument, heldout: str = "heldout") -> Part:
    """Rows KEY-test-tags and KEY-test: ``model`` on every video of the ``heldout`` step's set with and
    without its tags (the CRF, actor tag votes, the two-stream decision), every frame scored."""
    part: Part = ({}, {})
    for split, options in (("test-tags", ("--tags", Ref(heldout, "tags.csv"))), ("test", ())):
        predicted(part, f"{key}-{split}", f"{title} ({SPLIT_TITLES[split]}), dense CRF", model, Ref(heldout), ("--split", "all", *options, CRF), ("--dense",), votes="actor")
    return part


#: The held-out set's models: name -> the step that trains it (a part that has it) and the row title.
HELDOUT_MODELS = {
    "full": ("model:action-full", action_rows("full"), "action head: VSCR"),
    **{name: (f"model:action-{name}", action_rows(name), f"action head: w/o {name[3:]}") for name in ABLATIONS if name != "no-motion"},
    "no-motion": ("model:no-motion-crop-share", ablation_rows("no-motion", True, True), f"w/o motion, {VARIANTS['crop-share'][1]}"),
}


def heldout_rows() -> Part:
    """Stage I (the seed's demo classifier, given the tags) and the action-head models with their Table 3
    ablations (w/o motion: the crop-share-ablations model) on the held-out set."""
    steps = {
        "demo": demo(),
        "heldout": synthetic_set(HELDOUT_SEED, HELDOUT_VIDEOS),
        "cam-heldout": Step(("cam", Ref("heldout"), "--split", "all", "--tags", Ref("heldout", "tags.csv"), "--classifier", Ref("demo", "cam.classifier"), "-o", OUT), suffix=".zarr"),
    }
    rows = {"heldout-cam-test-tags": Row("held-out videos, CAM (test, tags given)", "cam-heldout", Ref("heldout"), ("--dense",))}
    parts = [(steps, rows)]
    for name, (model, training, title) in HELDOUT_MODELS.items():
        parts += [({model: training[0][model]}, {}), heldout_predictions(f"heldout-{name}", f"held-out videos, {title}", Ref(model))]
    return merged(*parts)


def tag_memory_rows() -> Part:
    """The action-head model with ``vscr train --tag-memory`` (the tag term reads the memory bank) on the held-out set."""
    steps = {"demo": demo(), "heldout": synthetic_set(HELDOUT_SEED, HELDOUT_VIDEOS), "model:tag-memory": demo_training("--tag-memory")}
    return merged((steps, {}), heldout_predictions("heldout-tag-memory", "held-out videos, action head: VSCR, tag term with memory", Ref("model:tag-memory")))


def scene_rows() -> Part:
    """The demo's data drawn again with each video's scene its class's (``vscr synth --scene-by-class``),
    its stores made as the demo makes them, the full model and the one without the tag term trained on
    them, on the held-out set drawn the same way."""
    size = SIZES[Size.small]
    frames = ("--split", "train", "--every", size.every)
    steps = {
        "heldout-scene": synthetic_set(HELDOUT_SEED, HELDOUT_VIDEOS, "--scene-by-class"),
        "scene": synthetic_set(SEED, size.videos, "--scene-by-class"),
        "scene-edges": Step(("edges", Ref("scene"), *frames, "-o", OUT), suffix=".zarr"),
        "scene-cam": Step(("cam", Ref("scene"), *frames, "--tags", Ref("scene", "tags.csv"), "--epochs", size.epochs, "--fit-frames", size.fit_frames, "--seed", SEED, "-o", OUT), suffix=".zarr"),
    }
    parts = [(steps, {})]
    for name, options in (("full", ()), ("no-tag", ABLATIONS["no-tag"])):
        model = f"model:scene-{name}"
        training = ("train", "--edges", Ref("scene-edges"), "--cam", Ref("scene-cam"), "--preset", "cpu", "--iterations", size.iterations, *CROP_SHARE, "--seed", SEED, *options, "-o", OUT, "--overwrite")
        title = f"scene by class, held-out videos: {'VSCR' if name == 'full' else 'w/o tag'}"
        parts += [({model: Step(training, done="config.json")}, {}), heldout_predictions(f"scene-heldout-{name}", title, Ref(model), "heldout-scene")]
    return merged(*parts)


# -- davis groups: davis-dev (and davis-more), every 5th frame at 240 px ------------------------------

DAVIS_TAGS = ("--tags", DAVIS / "tags.csv")
#: davis-dev's CAM stores: name -> (vscr cam's options, title). "cam" leaves the '<actor>-none' videos
#: unlabeled (the paper's rule), "cam-none-labeled" gives them CAMs (vscr cam's default since).
DAVIS_CAMS = {"cam": (("--none-tags", "unlabeled"), ""), "cam-none-labeled": (("--none-tags", "labeled"), ", --none-tags labeled")}
NO_CROP_SHARE = (CROP_SHARE[0], "1")
#: davis-dev models: name -> (CAM store, training options, title after "davis-dev"). "full": trained
#: before the redraws and the action head (off, as then); the others as the rows name them.
DAVIS_MODELS = {
    "full": ("cam", (*NO_CROP_SHARE, NO_ACTION_HEAD), ""),
    "multiscale": ("cam", (*VARIANTS["multiscale"][0], *NO_CROP_SHARE, NO_ACTION_HEAD), ": multi-scale training"),
    "none-labeled": ("cam-none-labeled", (*NO_CROP_SHARE, NO_ACTION_HEAD), ", --none-tags labeled"),
    "crop-share": ("cam-none-labeled", (*CROP_SHARE, NO_ACTION_HEAD), f", --none-tags labeled, {VARIANTS['crop-share'][1]}"),
    "action-head": ("cam-none-labeled", (), f", --none-tags labeled, {VARIANTS['crop-share'][1]}, action head"),
    "action-no-tag": ("cam-none-labeled", ABLATIONS["no-tag"], f", --none-tags labeled, {VARIANTS['crop-share'][1]}, action head, w/o tag"),
}
#: The variants decoded with actor tag votes and the CRF too (those on the none-labeled CAMs).
NONE_LABELED_MODELS = tuple(name for name, (cam, _, _) in DAVIS_MODELS.items() if cam == "cam-none-labeled")


def davis_stores(cam: str = "cam") -> Part:
    """davis-dev's edges and one of :data:`DAVIS_CAMS`, and the CAM row (DAVIS-CAM)."""
    options, title = DAVIS_CAMS[cam]
    steps = {"edges": Step(("edges", DAVIS, *DAVIS_FRAMES, "-o", OUT), suffix=".zarr"), cam: Step(("cam", DAVIS, *DAVIS_TAGS, *DAVIS_FRAMES, *options, "-o", OUT), suffix=".zarr")}
    return steps, {f"davis-{cam}": Row(f"davis-dev{title}: CAM pseudo-labels (tags given)", cam, DAVIS, ("--predicted-only", "--resize"))}


def davis_model(name: str) -> Part:
    """The davis-dev model ``name`` (:data:`DAVIS_MODELS`) trained with the seed on its stores."""
    cam, options, _ = DAVIS_MODELS[name]
    training = ("train", "--edges", Ref("edges"), "--cam", Ref(cam), "--preset", "cpu", "--seed", SEED, *options, "-o", OUT, "--overwrite")
    steps, _rows = davis_stores(cam)
    return {**steps, f"model:davis-{name}": Step(training, done="config.json")}, {}


def davis_predictions(model: str, rows: Sequence[tuple[str, str, tuple]], sources: Path = DAVIS, votes: str = "class") -> Part:
    """Per (row, title, predict options): the ``model`` step on every 5th frame of ``sources`` at its
    default height, scored at full size."""
    part: Part = ({}, {})
    for key, title, options in rows:
        predicted(part, key, title, Ref(model), sources, ("--every", 5, *options), ("--predicted-only", "--resize"), votes)
    return part


def davis_rows(name: str, crf: bool = False) -> Part:
    """A davis-dev model on the same frames given the tags and without (``crf``: the default model with
    the CRF, rows davis-crf...); a none-labeled variant also with actor votes, the CRF, and both."""
    _, _, title = DAVIS_MODELS[name]
    key = "davis-crf" if crf else ("davis-full" if name == "full" else f"davis-{name}")
    title = f"davis-dev{title}: VSCR, same frames"
    extra = (CRF,) if crf else ()
    parts = [davis_model(name), davis_predictions(f"model:davis-{name}", [(f"{key}-tags", f"{title} (tags given{', dense CRF' if crf else ''})", (*DAVIS_TAGS, *extra)), (key, f"{title} (no tags{', dense CRF' if crf else ''})", extra)])]
    if name in NONE_LABELED_MODELS:
        model = f"model:davis-{name}"
        parts += [
            davis_predictions(model, [(f"{key}-actor-tags", f"{title} (tags given, tag votes by actor)", DAVIS_TAGS), (f"{key}-crf-actor-tags", f"{title} (tags given, dense CRF, tag votes by actor)", (*DAVIS_TAGS, CRF))], votes="actor"),
            davis_predictions(model, [(f"{key}-crf-tags", f"{title} (tags given, dense CRF)", (*DAVIS_TAGS, CRF))]),
        ]
    return merged(*parts)


def davis_height_rows(name: str = "full") -> Part:
    """A davis-dev model at other heights (labels and network) and with the network at 2x."""
    _, _, title = DAVIS_MODELS[name]
    key, title = ("davis-full" if name == "full" else f"davis-{name}"), f"davis-dev{title}"
    heights = [(f"{key}-h{height}", f"{title}: VSCR (no tags), labels and network at {height} px", ("--height", height, "--scale", 1)) for height in (160, 320)]
    scaled = [(f"{key}-tags-scale2", f"{title}: VSCR (tags given), network at 480 px (--scale 2)", ("--scale", 2, *DAVIS_TAGS)), (f"{key}-scale2", f"{title}: VSCR (no tags), network at 480 px (--scale 2)", ("--scale", 2))]
    return merged(davis_model(name), davis_predictions(f"model:davis-{name}", heights + (scaled if name == "full" else [])))


def davis_refine_rows() -> Part:
    """The default davis-dev model refined by ``vscr refine`` with each of :data:`REFINE_VOTES`."""
    parts = [davis_model("full")]
    for votes in REFINE_VOTES:
        refined = f"refined:davis-{votes}"
        command = ("refine", "--edges", Ref("edges"), "--cam", Ref("cam"), "-m", Ref("model:davis-full"), "-o", OUT, "--tag-votes", votes)
        title = f"davis-dev: vscr refine --tag-votes {votes}, same frames"
        parts += [({refined: Step(command, done="config.json")}, {}), davis_predictions(refined, [(f"davis-refine-{votes}-tags", f"{title} (tags given)", DAVIS_TAGS), (f"davis-refine-{votes}", f"{title} (no tags)", ())])]
    return merged(*parts)


def davis_more_rows() -> Part:
    """davis-more, five sequences no davis-dev model saw: Stage I given their tags with each davis-dev
    classifier, and each davis-dev model of the full and none-labeled kinds given the tags, with actor
    tag votes, and without."""
    more_tags = ("--tags", DAVIS_MORE / "tags.csv")
    parts = []
    for cam, (options, title) in DAVIS_CAMS.items():
        classifier = ("--classifier", Ref(cam, beside=".classifier"))
        steps = {**davis_stores(cam)[0], f"more-{cam}": Step(("cam", DAVIS_MORE, *more_tags, *DAVIS_FRAMES, *options, *classifier, "-o", OUT), suffix=".zarr")}
        parts.append((steps, {f"more-{cam}": Row(f"davis-more (unseen videos){title}: CAM (tags given), davis-dev's classifier", f"more-{cam}", DAVIS_MORE, ("--predicted-only", "--resize"))}))
    for name in ("full", *NONE_LABELED_MODELS):
        title = f"davis-more (unseen videos){DAVIS_MODELS[name][2] if name != 'full' else ''}: VSCR, davis-dev's model"
        model = f"model:davis-{name}"
        parts += [
            davis_model(name),
            davis_predictions(model, [(f"more-{name}-tags", f"{title} (tags given)", more_tags), (f"more-{name}", f"{title} (no tags)", ())], DAVIS_MORE),
            davis_predictions(model, [(f"more-{name}-actor-tags", f"{title} (tags given, tag votes by actor)", more_tags)], DAVIS_MORE, votes="actor"),
        ]
    return merged(*parts)


DAVIS_NEEDS = (DAVIS,)
#: Every group, in the order --groups runs them by default.
GROUPS: dict[str, Group] = {
    g.name: g
    for g in (
        group("synth", "the demo's rows: Stage I and the network on the training frames and the test split", demo_rows()),
        group("synth-heights", "the demo's model with the frames read at 240 px", height_rows()),
        group("medium", "the demo's rows on `vscr demo --size medium` (twice the videos)", demo_rows(Size.medium)),
        *(group(name, f"Table 3: w/o {name[3:]} (no action head, no CRF)", ablation_rows(name)) for name in ABLATIONS),
        *(group(name, f"{VARIANTS[name][1]} (no action head, no CRF; the network at 1x and 2x)", variant_rows(name)) for name in VARIANTS),
        group("refine", "vscr refine of the demo's model, each --tag-votes", refine_rows()),
        group("davis", "davis-dev: the CAM row and a model trained on the same frames", davis_rows("full"), davis_stores(), needs=DAVIS_NEEDS),
        group("davis-heights", "davis-dev: the first seed's model at other heights and input scales", davis_height_rows(), needs=DAVIS_NEEDS, first_seed_only=True),
        group("davis-multiscale", "davis-dev: multi-scale training (SPML's 0.5-1.5)", davis_rows("multiscale"), davis_height_rows("multiscale"), davis_stores(), needs=DAVIS_NEEDS),
        group("davis-refine", "davis-dev: vscr refine of the seed's model, each --tag-votes", davis_refine_rows(), needs=DAVIS_NEEDS),
        group("crf", "the demo's model predicted with the dense CRF", crf_rows()),
        group("crf-ablations", "Table 3 ablations predicted with the dense CRF", *(ablation_rows(name, with_crf=True) for name in ABLATIONS)),
        group("medium-crf", "the medium demo's model predicted with the dense CRF", crf_rows(Size.medium)),
        group("davis-crf", "davis-dev: the model predicted with the dense CRF", davis_rows("full", crf=True), davis_stores(), needs=DAVIS_NEEDS),
        group("crop-share-crf", "crops redrawn at a class share > 0.75, predicted with the CRF", variant_rows("crop-share", with_crf=True)),
        group("crop-share-ablations", "Table 3 ablations with crops redrawn, predicted with the CRF", *(ablation_rows(name, True, True) for name in ABLATIONS)),
        group("tag-votes", "the demo's tagged rows decoded with --tag-votes actor, with and without the CRF", tag_vote_rows()),
        group("crop-share-tag-votes", "the same on the crop-share models", variant_rows("crop-share", with_crf=True), tag_vote_rows("crop-share")),
        group("davis-tag-votes", "davis-dev: the model decoded with --tag-votes actor", davis_model("full"), davis_predictions("model:davis-full", [("davis-actor-tags", "davis-dev: VSCR, same frames (tags given), tag votes by actor", DAVIS_TAGS)], votes="actor"), needs=DAVIS_NEEDS),
        *(group(f"davis-{name}", f"davis-dev with vscr cam --none-tags labeled{DAVIS_MODELS[name][2].removeprefix(', --none-tags labeled')}", davis_stores("cam-none-labeled"), davis_rows(name), needs=DAVIS_NEEDS) for name in NONE_LABELED_MODELS),
        group("davis-more", "davis-more (unseen videos): Stage I with davis-dev's classifiers, davis-dev's models", davis_more_rows(), needs=(DAVIS, DAVIS_MORE)),
        group("action-head", "the defaults of now (crops redrawn, action head, CRF, actor votes, two-stream decision)", action_rows()),
        group("action-head-ablations", "Table 3 under the defaults of now (but w/o motion: no action head)", *(action_rows(name) for name in ABLATIONS if name != "no-motion")),
        group("action-head-heldout", "the defaults of now and their ablations on 48 held-out videos", heldout_rows()),
        group("tag-memory-heldout", "the full model with vscr train --tag-memory, on the held-out videos", tag_memory_rows()),
        group("paper-cpu", "the paper at CPU scale (its presets) beside the defaults, with and without the CRF", paper_rows()),
        group("defaults-crf", "the defaults beside Stage I through the same CRF (paper-cpu's control rows alone)", defaults_rows()),
        group("defaults-flip", "defaults-crf's model predicted with --flip beside it, with and without the CRF (decision 0035)", flip_rows()),
        group("defaults-1200", "defaults-crf's training at 1200 iterations beside it, with and without the CRF (decision 0037)", long_rows()),
        group("defaults-motion-auto", "Stage I with --motion-evidence auto and the defaults trained on it beside defaults-crf (decision 0022)", motion_auto_rows()),
        group("paper-cpu-ablations", "Table 3 under the paper at CPU scale (test split, no CRF)", *(paper_rows(name) for name in ABLATIONS)),
        group("scene-heldout", "the tag term where the scene predicts the class (vscr synth --scene-by-class)", scene_rows()),
    )
}
#: Every row's title, in table order.
TITLES = {key: row.title for g in GROUPS.values() for key, row in g.rows.items()}


def markdown(record: dict) -> str:
    """The table of ``record``'s rows: mean +- std over the seeds."""
    lines = ["| row | seeds | frames per seed | actor-action mIoU | actor mIoU | action mIoU | fg IoU | class acc. |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for key, title in TITLES.items():
        values = record.get("mean_std", {}).get(key)
        if values:
            cells = [cell(values[m]["mean"], values[m]["std"], values["seeds"]) for m in ("actor_action", "actor", "action", "fg_iou", "class_acc")]
            lines.append(f"| {title} | {values['seeds']} | {values['frames']['mean']:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--groups", nargs="+", choices=list(GROUPS), default=list(GROUPS), help="what to run, in this order")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "experiments", help="where the products go (named by their commands' hashes)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "results.json")
    parser.add_argument("--markdown", action="store_true", help="only print the table of the rows in --out")
    parser.add_argument("--list", action="store_true", help="only print the groups and what each measures")
    args = parser.parse_args()
    if args.list:
        print("\n".join(f"{name:24} {g.description} ({len(g.rows)} rows)" for name, g in GROUPS.items()))
        return
    record = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if args.markdown:
        print(markdown(record), end="")
        return
    runner = Runner(args.work)
    for name in args.groups:
        missing = [str(folder) for folder in GROUPS[name].needs if not folder.is_dir()]
        if missing:
            print(f"{name}: skipped ({', '.join(missing)} not found)", file=sys.stderr)
            continue
        for seed in args.seeds[:1] if GROUPS[name].first_seed_only else args.seeds:  # saved after each seed
            record_runs(record, runner.run(GROUPS[name], [seed]), runner.commands, TITLES)
            record.setdefault("machines", {})[name] = cpu_model()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(markdown(record), end="")


if __name__ == "__main__":
    main()
