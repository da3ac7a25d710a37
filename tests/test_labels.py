import numpy as np
import pytest

from vscr_cli import labels


def test_label_space_matches_a2d():
    assert len(labels.VALID_IDS) == 43
    assert labels.NUM_CLASSES == 44 and labels.CLASS_IDS[0] == 0
    assert labels.name_of(77) == "dog-running"
    assert labels.name_of(11) == "adult-climbing"
    assert labels.name_of(59) == "car-none"
    assert labels.id_of("Dog-Running") == 77
    assert labels.id_of("39") == 39
    for label_id in labels.VALID_IDS:
        assert labels.id_of(labels.name_of(label_id)) == label_id


@pytest.mark.parametrize("bad", ["dog-swimming", "fish-running", "ball-climbing", "14", "dog"])
def test_unknown_names_are_rejected(bad):
    with pytest.raises(ValueError):
        labels.id_of(bad)


def test_tags_roundtrip_and_multi_hot():
    tags = labels.parse_tags("dog-walking; adult-none;dog-walking")
    assert tags == (19, 78)
    assert labels.format_tags(tags) == "adult-none;dog-walking"
    assert labels.parse_tags("") == ()
    vector = labels.multi_hot(tags)
    assert vector.shape == (43,) and vector.sum() == 2 and vector[labels.VALID_IDS.index(78)] == 1
    actions = labels.action_multi_hot(labels.parse_tags("dog-jumping;adult-jumping;dog-walking"))
    assert actions.shape == (9,) and actions.tolist() == [0, 0, 0, 0, 1, 0, 0, 1, 0]  # jumping (5th), walking (8th), each once


def test_sanitize_and_projections():
    raw = np.array([[0, 11, 14], [79, 255, 100]])
    clean, changed = labels.sanitize(raw)
    assert clean.tolist() == [[0, 11, 255], [79, 255, 255]]
    assert changed == 2  # 14 and 100; 255 was already ignore
    assert labels.CLASS_INDEX[79] == 43 and labels.CLASS_INDEX[14] == 255
    assert labels.ACTOR_INDEX[79] == 7 and labels.ACTION_INDEX[79] == 9 and labels.ACTOR_INDEX[0] == 0


def test_palette_gives_each_class_its_own_colour():
    colours = {tuple(labels.PALETTE[i]) for i in labels.CLASS_IDS}
    assert len(colours) == 44
    assert labels.colorize(np.array([[0, 255]], np.uint8)).tolist() == [[[0, 0, 0], [255, 255, 255]]]
