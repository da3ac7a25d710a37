"""The prototype readout (core/readout.py), vscr refine and predict --readout knn."""

import json

import numpy as np
import torch
import torch.nn.functional as F

from vscr_cli import labels
from vscr_cli.checkpoints import PROTOTYPES, load_bank
from vscr_cli.core.readout import PrototypeBank, class_votes, knn_votes, label_prototypes
from vscr_cli.stages.predict import tag_votes
from vscr_cli.store import open_store


def two_regions(batch: int = 2, noise: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 8, 10, 12) unit embeddings: left half near one direction, right half near another; (B, 10, 12) labels 0 | 5."""
    generator = torch.Generator().manual_seed(0)
    embedding = torch.randn(batch, 8, 10, 12, generator=generator) * noise
    embedding[:, 0, :, :6] += 1
    embedding[:, 1, :, 6:] += 1
    regions = torch.zeros(batch, 10, 12, dtype=torch.long)
    regions[:, :, 6:] = 5
    return F.normalize(embedding, dim=1), regions


def test_bank_prototypes_carry_their_segments_labels_and_votes_read_them_back():
    embedding, regions = two_regions()
    bank = label_prototypes(embedding, regions)
    assert set(bank.labels.tolist()) == {0, 5}
    assert torch.allclose(bank.prototypes.norm(dim=1), torch.ones(len(bank)))
    left = bank.prototypes[bank.labels == 0]
    assert (left[:, 0] > 0.9).all()  # label 0 prototypes sit in the left half's direction
    votes = knn_votes(embedding, bank, labels.NUM_CLASSES, neighbours=3)
    assert votes.shape == (2, labels.NUM_CLASSES, 10, 12)
    torch.testing.assert_close(votes.sum(1), torch.ones(2, 10, 12))
    assert (votes.argmax(1) == regions).all()


def test_unlabelled_pixels_make_no_prototype_and_allowed_classes_alone_vote():
    embedding, regions = two_regions()
    regions[:, :, 6:] = -1  # the right half has no label
    bank = label_prototypes(embedding, regions)
    assert bank.labels.tolist() == [0] * len(bank)
    full = label_prototypes(*two_regions())
    allowed = torch.zeros(labels.NUM_CLASSES, dtype=torch.bool)
    allowed[5] = True
    votes = knn_votes(embedding, full, labels.NUM_CLASSES, neighbours=3, votes_for=class_votes(allowed))
    assert (votes.argmax(1) == 5).all() and votes[:, 0].sum() == 0
    allowed[:] = False
    allowed[7] = True  # a class no prototype has: background
    assert (knn_votes(embedding, full, labels.NUM_CLASSES, votes_for=class_votes(allowed)).argmax(1) == 0).all()


def test_actor_votes_let_another_action_of_the_tagged_actor_label_a_video():
    adult_jumping, adult_none, dog_running = (int(labels.CLASS_INDEX[i]) for i in (15, 19, 77))
    embedding, regions = two_regions()
    bank = label_prototypes(embedding, torch.where(regions == 5, adult_jumping, 0))  # adults seen jumping only
    spml = tag_votes([19], "class")  # a video tagged adult-none: no prototype carries its class
    assert (knn_votes(embedding, bank, labels.NUM_CLASSES, neighbours=3, votes_for=spml).argmax(1) == 0).all()
    by_actor = tag_votes([19], "actor")
    assert by_actor[adult_jumping] == adult_none and by_actor[0] == 0 and by_actor[dog_running] == -1
    votes = knn_votes(embedding, bank, labels.NUM_CLASSES, neighbours=3, votes_for=by_actor).argmax(1)
    assert (votes == torch.where(regions == 5, adult_none, 0)).all()
    two_adults = tag_votes([15, 19, 77], "actor")  # which adult tag another adult class stands for is unknown
    assert two_adults[int(labels.CLASS_INDEX[11])] == -1 and two_adults[adult_jumping] == adult_jumping
    assert two_adults[int(labels.CLASS_INDEX[75])] == dog_running


def test_refine_writes_a_model_with_a_bank_that_predict_reads(cli, trained, synth, tmp_path):
    out = tmp_path / "refined"
    result = cli("-q", "refine", "--edges", trained.edges, "--cam", trained.cam, "-m", trained.model, "-o", out, "--epochs", "2")
    assert result.code == 0, result.stderr
    assert json.loads((out / "config.json").read_text())["refine"]["params"]["tag_votes"] == "actor"  # the default
    bank = load_bank(out)
    assert isinstance(bank, PrototypeBank) and len(bank) > 0
    assert set(bank.labels.tolist()) <= set(range(labels.NUM_CLASSES)) and 0 in bank.labels.tolist()
    assert not (trained.model / PROTOTYPES).exists()  # the trained model is left as it was
    for readout in ("knn", "softmax"):
        pred = tmp_path / f"pred-{readout}.zarr"
        result = cli("-q", "predict", synth.root, "-m", out, "--annotated-only", "--split", "test", "--readout", readout, "-o", pred)
        assert result.code == 0, result.stderr
        with open_store(pred, "pred") as store:
            label = store.read(store.videos[0], "label")
            assert set(np.unique(label).tolist()) <= set(labels.CLASS_IDS) and store.record.params["readout"] == readout
    result = cli("-q", "predict", synth.root, "-m", trained.model, "--annotated-only", "--readout", "knn", "-o", tmp_path / "none.zarr")
    assert result.code == 1 and "no prototype bank" in result.stderr and len(result.stderr.strip().splitlines()) == 1
