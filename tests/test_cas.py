"""Classification Accuracy Score (imagegen.metrics.cas) and ``imagegen evaluate --metrics cas``."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from conftest import TINY_DCGAN, run_cli

from _metrics_fixtures import QUICK, TINY, digits_splits, install_tiny_classifier, tiny_digits_classifier
from imagegen.errors import ConfigError, DataError, ImagegenError
from imagegen.metrics import cas
from imagegen.metrics.classifier import TrainRecipe
from imagegen.metrics.cas import balanced_labels, classification_accuracy_score
from imagegen.sampling import load_run


#: a recipe for CLI tests, where only the plumbing is checked (not the accuracy)
FAST = TrainRecipe(epochs=1, min_steps=8, batch_size=32, lr=1e-2)


@pytest.fixture
def fast_cas(monkeypatch):
    """CAS classifiers of the tiny architecture and a few steps (a second, not a minute)."""
    monkeypatch.setattr(cas, "CAS_RECIPE", FAST)
    monkeypatch.setattr(cas, "CAS_WIDTHS", TINY.widths)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private cache with the tiny digits classifier (for the feature metrics); no Inception weights."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMAGEGEN_CACHE", str(root))
        mp.delenv("IMAGEGEN_INCEPTION_WEIGHTS", raising=False)
        install_tiny_classifier(root)
        yield root


def test_cas_of_real_training_data_is_the_classifiers_own_test_accuracy():
    """Under the protocol (architecture and recipe of the dataset classifier), CAS of the real training set
    is close to the test accuracy of the dataset classifier trained on it (another seed of the same recipe)."""
    train, test = digits_splits()
    _, own = tiny_digits_classifier()
    acc, proto = classification_accuracy_score(train.images, train.labels, test, config=TINY,
                                               recipe=dataclasses.replace(QUICK, seed=1), name="digits:train")
    assert own > 0.8 and abs(acc - own) < 0.05
    assert proto["paper"].startswith("Ravuri & Vinyals 2019") and proto["classifier"]["widths"] == TINY.widths
    assert proto["recipe"]["epochs"] == QUICK.epochs and proto["recipe"]["seed"] == 1
    assert proto["recipe"]["steps"] == QUICK.min_steps  # 1 epoch of 1500 / 64 is fewer than min_steps
    assert proto["num_train"] == 1500 and proto["test"] == {"dataset": test.name, "num_images": 297}
    assert proto["samples_per_class"] == torch.bincount(train.labels).tolist()  # digits is not balanced


def test_balanced_labels_and_bad_input():
    assert balanced_labels(3, 2).tolist() == [0, 1, 2, 0, 1, 2]
    train, test = digits_splits()
    img = train.images[:40]
    with pytest.raises(DataError, match="classes outside 0..9"):
        classification_accuracy_score(img, torch.full((40,), 12), test, config=TINY, recipe=QUICK)
    with pytest.raises(ImagegenError, match=r"no training images of class\(es\) \[9\]"):
        classification_accuracy_score(img, torch.arange(40) % 9, test, config=TINY, recipe=QUICK)
    with pytest.raises(ImagegenError, match="one label per image"):
        classification_accuracy_score(img, torch.arange(39) % 10, test, config=TINY, recipe=QUICK)
    unlabelled = type(test)(test.images.permute(0, 2, 3, 1).numpy(), None, name="nolabels")
    with pytest.raises(DataError, match="labelled test set"):
        classification_accuracy_score(img, torch.arange(40) % 10, unlabelled, config=TINY, recipe=QUICK)


def test_cas_on_an_unconditional_run_is_a_one_line_error(tmp_path, cache, capsys):
    run = tmp_path / "dcgan"
    code, _, err = run_cli(["train", "dcgan", *TINY_DCGAN, "--steps", "1", "--out", run], capsys)
    assert code == 0, err
    code, _, err = run_cli(["evaluate", run, "--metrics", "cas"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "metric cas needs a class-conditional model; dcgan is unconditional" in err
    with pytest.raises(ConfigError, match="class-conditional"):
        cas.generate_labelled(load_run(run), 2)


def test_evaluate_cas_of_a_conditional_run_and_of_labelled_files(tmp_path, cache, fast_cas, capsys):
    run = tmp_path / "cgan"
    code, _, err = run_cli(["train", "cgan", "--data", "digits", "--resolution", "8", "--g-width", "8", "--d-width",
                            "8", "--z-dim", "8", "--steps", "2", "--batch-size", "8", "--out", run, "--no-progress"],
                           capsys)
    assert code == 0, err
    code, out, err = run_cli(["evaluate", run, "--metrics", "cas", "--cas-per-class", "12", "--json"], capsys)
    assert code == 0, err
    obj = json.loads(out)
    assert 0 <= obj["cas"] <= 1 and obj["step"] == 2
    p = obj["protocol"]["cas"]
    assert p["samples_per_class"] == 12 and p["num_train"] == 120 and p["samples"]["seed"] == 0
    assert p["test"]["dataset"] == "digits" and p["test"]["num_images"] == 297
    assert p["classifier"]["widths"] == list(TINY.widths) and p["recipe"]["min_steps"] == FAST.min_steps
    assert p["real_data_accuracy"] is None  # no classifier of this recipe cached
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["cas"] == obj["cas"] and row["source"] == "evaluate"
    # with sample metrics: one record, the CAS protocol beside the others; --num-samples / K per class
    code, out, err = run_cli(["evaluate", run, "--metrics", "fid,cas", "--num-samples", "100", "--allow-few-samples",
                              "--json"], capsys)
    assert code == 0, err
    obj = json.loads(out)
    assert {"fid", "cas"} <= set(obj) and obj["protocol"]["cas"]["samples_per_class"] == 10

    # --fake: labelled images from a file
    train, _ = digits_splits()
    npz = tmp_path / "train.npz"
    np.savez(npz, images=train.images[:200].permute(0, 2, 3, 1).numpy(), labels=train.labels[:200].numpy())
    code, out, err = run_cli(["evaluate", "--fake", npz, "--real", "digits:test", "--metrics", "cas", "--json"],
                             capsys)
    assert code == 0, err
    obj = json.loads(out)
    assert 0 <= obj["cas"] <= 1 and obj["protocol"]["cas"]["samples"] == {"file": str(npz)}
    code, out, err = run_cli(["evaluate", "--fake", npz, "--real", "digits:test", "--metrics", "cas",
                              "--num-samples", "150", "--json"], capsys)
    assert code == 0, err  # a random subset: the record says which
    assert json.loads(out)["protocol"]["cas"]["samples"]["subset"] == "150 of 200 images, drawn with seed 0"
    np.savez(npz, images=train.images[:200].permute(0, 2, 3, 1).numpy())
    code, _, err = run_cli(["evaluate", "--fake", npz, "--real", "digits:test", "--metrics", "cas"], capsys)
    assert code == 2 and "metric cas needs the class labels" in err
