"""``vscr cam``'s run: fit or reuse the classifier, then the cam store of every video."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path

from vscr_cli import console, weights
from vscr_cli.core.precision import dtype_name
from vscr_cli.errors import VscrError
from vscr_cli.datasets import load_tags
from vscr_cli.sources import discover
from vscr_cli.settings.run import Runtime
from vscr_cli.stages.runner import RunReport, VideoTask, write_per_video
from vscr_cli import schemas
from vscr_cli.settings.cam import (
    CamParams,
    ClassifierConfig,
)
from vscr_cli.store import folder_output
from vscr_cli.tags import require_tags
from vscr_cli.video import FrameSelection
from vscr_cli.stages.cam.classifier import CLASSIFIER_KIND, CLASSIFIER_WEIGHTS, cam_tag, classifier_folder, load_classifier, reusable_classifier, save_classifier, unfitted_actors, fit_on_videos
from vscr_cli.stages.cam.pseudo import CamExtractor, load_extractor, video_cam

STORE_SUFFIXES = (".zarr.zip", ".zarr")
SCHEMA = schemas.CAMS


def run(
    sources: Sequence[str],
    output: Path | None,
    tags: str,
    runtime: Runtime,
    params: CamParams = CamParams(),
    config: ClassifierConfig = ClassifierConfig(),
    classifier: Path | None = None,
    selection: FrameSelection = FrameSelection(),
    split: str = "all",
    batch_size: int = 1,
    weights_file: Path | None = None,
    requested: Collection[str] = (),
) -> RunReport:
    """``vscr cam``: fit (or reuse) the actor classifier, then the cam store of ``sources`` at
    ``output`` (None: zip bytes on stdout). ``params`` and ``config`` give the options; the
    classifier's digest and accuracy, the frame selection and the precision are filled in here.
    ``runtime.dtype``: the autocast of the fine-tuning and of the classifier's passes for the maps.

    The classifier folder (``classifier``, else the output's: :func:`classifier_folder`) is reused
    when it holds a classifier fitted with the settings ``requested`` (:func:`reusable_classifier`);
    otherwise the one fitted here is written to it as a ``classifier`` output (store.folder_output:
    a folder vscr did not make is never written, an existing one replaced whole, and only with
    ``options.overwrite``)."""
    device, dtype, options = runtime.device, runtime.dtype, runtime.options
    videos = discover(sources, a2d_split=split)
    video_tags = require_tags([v.video_id for v in videos], load_tags(tags), tags)
    folder = classifier_folder(output, classifier)
    if folder is not None and reusable_classifier(folder, config, requested, options.overwrite):
        model, config = load_classifier(folder, device)
        console.log.info("reusing the classifier in %s (held-out accuracy %s)", folder, config.accuracy)
        if unfitted := unfitted_actors(config, videos, video_tags, params.none_policy):
            console.log.warning(
                "the classifier in %s was not fine-tuned on %s: its maps of them come from an output it never trained; pass a new --classifier DIR to fit one on these videos",
                folder, ", ".join(unfitted),
            )
    else:
        config = replace(config)  # fitting fills in its accuracy
        with folder_output(folder, CLASSIFIER_KIND, options.overwrite) if folder is not None else contextlib.nullcontext() as staging:
            model = fit_on_videos(videos, video_tags, selection, config, params.none_policy, weights_file, device, dtype)
            if staging is not None:
                save_classifier(staging, model, config)
        if folder is not None:
            console.log.info("saved the classifier to %s", folder)
        else:
            console.log.warning("the classifier is not saved (pass --classifier DIR to keep it)")
    params = replace(
        params,
        classifier_sha256=weights.sha256_file(folder / CLASSIFIER_WEIGHTS) if folder else "",
        classifier_accuracy=config.accuracy,
        selection=selection.to_json(),
        precision=dtype_name(dtype),
    )
    labeled = sum(cam_tag(video_tags[v.video_id], params.none_policy) is not None for v in videos)
    console.log.info("%d labeled videos get CAMs, %d are unlabeled", labeled, len(videos) - labeled)
    inputs = {"sources": [str(s) for s in sources], "split": split, "tags": str(tags), "classifier": str(folder) if folder else None}
    task_options = {"video_tags": video_tags, "selection": selection, "params": params, "batch_size": batch_size}
    with contextlib.ExitStack() as cleanup:
        if folder is not None:  # workers (and this process) load the saved classifier once each
            compute = VideoTask(video_cam, "extractor", load_extractor, (folder, params.classifier_sha256, device, params.cam_heights, params.cam_pad, params.cam_flip, dtype), task_options)
        elif options.scheduler is not None:
            raise VscrError("--scheduler: the workers load the classifier from a folder: pass -o PATH or --classifier DIR")
        else:
            extractor = CamExtractor(model, config, device, params.cam_heights, params.cam_pad, params.cam_flip, dtype)
            cleanup.callback(extractor.close)  # the Grad-CAM hooks
            compute = lambda video, on_frames: video_cam(video, extractor=extractor, on_frames=on_frames, **task_options)  # noqa: E731
        return write_per_video(output, SCHEMA.kind, params.to_json(), inputs, videos, selection, compute, options)
