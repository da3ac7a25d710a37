import hashlib

import numpy as np
import pytest

from vscr_cli import labels
from vscr_cli.datasets.a2d import A2DRelease
from vscr_cli.datasets.synth import BACKGROUNDS, SynthConfig, _place, _render, _trajectory, scene_texture, synthesize
from vscr_cli.errors import VscrError
from vscr_cli.sources import discover

TINY = SynthConfig(videos=5, frames=6, height=48, width=64, annotated=2, multi_fraction=0.2, empty_fraction=0.2, seed=11)


def _fingerprint(root):
    """Hashes of everything a reader sees: videoset, tags, annotations, decoded frames."""
    digest = {}
    release = A2DRelease(root)
    digest["videoset"] = (root / "Release" / "videoset.csv").read_text()
    digest["tags"] = (root / "tags.csv").read_text()
    for video in discover([root]):
        frames = np.stack([f for _, f in video.read(range(video.count_frames()))])
        digest[video.video_id] = hashlib.sha256(frames.tobytes()).hexdigest()
        for frame in release.annotated_frames(video.video_id):
            digest[(video.video_id, frame)] = release.annotation(video.video_id, frame).label_map.tobytes()
    return digest


def test_same_seed_same_dataset_other_seed_differs(tmp_path):
    synthesize(tmp_path / "a", TINY)
    synthesize(tmp_path / "b", TINY)
    other = SynthConfig(**{**TINY.__dict__, "seed": 12})
    synthesize(tmp_path / "c", other)
    assert _fingerprint(tmp_path / "a") == _fingerprint(tmp_path / "b")
    assert _fingerprint(tmp_path / "a") != _fingerprint(tmp_path / "c")


def test_mix_of_video_kinds_and_valid_ids(synth):
    kinds = [v.kind for v in synth.summary.videos]
    assert kinds.count("multi") == 2 and kinds.count("empty") == 1 and kinds.count("single") == 5
    for video in synth.summary.videos:
        assert set(video.tags) <= set(labels.VALID_IDS)
        assert len(video.tags) == {"single": 1, "empty": 0}.get(video.kind, len(video.tags))
    assert sum(v.split == "test" for v in synth.summary.videos) == 2


def test_actions_differ_only_in_motion():
    """The same actor, seeded alike, looks identical in its first frame whatever its action;
    over the clip the actions move differently (still: none; fast: running)."""
    config = SynthConfig(frames=16, height=96, width=128)
    displacement = {}
    first_frames = []
    for label in (17, 18, 12, 19):  # adult running / walking / crawling / none
        actor = _place(label, config, np.random.default_rng(5))
        texture, mask = _render(actor, 0, config.height, config.width)
        first_frames.append((actor.texture, actor.mask))
        displacement[labels.name_of(label)] = float(np.abs(np.diff(actor.centers, axis=0)).sum())
    for texture, mask in first_frames[1:]:
        np.testing.assert_array_equal(texture, first_frames[0][0])
        np.testing.assert_array_equal(mask, first_frames[0][1])
    assert displacement["adult-none"] == 0
    assert displacement["adult-running"] > displacement["adult-walking"] > displacement["adult-crawling"] > 0


@pytest.mark.parametrize("action", labels.ACTIONS)
def test_every_action_has_a_trajectory(action):
    dx, dy, spin = _trajectory(action, np.arange(10.0), 1.0, np.random.default_rng(0))
    assert dx.shape == dy.shape == spin.shape == (10,)
    moving = np.abs(np.diff(dx)).sum() + np.abs(np.diff(dy)).sum() + np.abs(np.diff(spin)).sum()
    assert (moving == 0) == (action == "none")


def test_bad_configuration_and_existing_output(tmp_path):
    with pytest.raises(VscrError, match="must be even"):
        SynthConfig(height=33)
    with pytest.raises(VscrError, match="--multi plus --empty"):
        SynthConfig(multi_fraction=0.7, empty_fraction=0.5)
    (tmp_path / "out").mkdir()
    with pytest.raises(VscrError, match="output exists"):
        synthesize(tmp_path / "out", TINY)


def test_scene_by_class_changes_only_the_backgrounds(tmp_path):
    """The same seed with the scene tied to the class: the same videos, actors and labels; only the
    frames of videos with an actor differ (their texture is their class's, not a random one)."""
    summary = synthesize(tmp_path / "random", TINY)
    synthesize(tmp_path / "scene", SynthConfig(**{**TINY.__dict__, "scene_by_class": True}))
    random_scene, class_scene = _fingerprint(tmp_path / "random"), _fingerprint(tmp_path / "scene")
    assert random_scene.keys() == class_scene.keys()
    for video in summary.videos:
        assert (random_scene[video.video_id] == class_scene[video.video_id]) == (video.kind == "empty"), video
    assert all(random_scene[key] == class_scene[key] for key in random_scene if key not in {v.video_id for v in summary.videos})
    assert len({scene_texture(label) for label in (15, 17, 75, 77)}) == 4
    assert {scene_texture(label) for label in labels.VALID_IDS} <= set(BACKGROUNDS)
