"""Evaluation pipeline: reference-statistics cache, evaluate_images, protocol, TrainingEvaluator."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from imagegen.data import build_dataset
from imagegen.errors import ImagegenError
from imagegen.metrics.cache import dataset_hash
from imagegen.metrics.evaluate import EvalOptions, evaluate_images, quantize
from imagegen.metrics.reference import reference_statistics
from imagegen.metrics.training_eval import TrainingEvaluator, class_histogram_entropy

from _metrics_fixtures import digits_splits, install_tiny_classifier, tiny_digits_classifier


@pytest.fixture
def digits():
    return digits_splits()


@pytest.fixture
def clf():
    return tiny_digits_classifier()[0]


# ---- reference cache ---------------------------------------------------------------------------
def test_reference_cache_hits_and_invalidates(tmp_path, digits, clf):
    _, test = digits
    a = reference_statistics(test, clf, split="test", cache=tmp_path, radii_k=(3,))
    b = reference_statistics(test, clf, split="test", cache=tmp_path, radii_k=(3, 5))
    assert a.protocol["cache"] == "miss" and b.protocol["cache"] == "hit"
    torch.testing.assert_close(a.features, b.features)
    np.testing.assert_array_equal(a.mu, b.mu)
    np.testing.assert_array_equal(a.sigma, b.sigma)
    assert a.mu.dtype == np.float64 and a.sigma.shape == (16, 16)
    torch.testing.assert_close(a.radii[3], b.radii[3])
    assert reference_statistics(test, clf, split="test", cache=tmp_path).radii.keys() == {3, 5}  # re-saved

    changed = copy.copy(test)
    changed.images = test.images.clone()
    changed.images[5, 0, 3, 3] ^= 0x40  # one pixel of the data changes -> recomputed
    assert reference_statistics(changed, clf, split="test", cache=tmp_path).protocol["cache"] == "miss"

    other = copy.deepcopy(clf)
    with torch.no_grad():
        other.head.weight[0, 0] += 1e-3  # the extractor's weights change -> recomputed
    assert other.weights_hash != clf.weights_hash
    assert reference_statistics(test, other, split="test", cache=tmp_path).protocol["cache"] == "miss"

    sub = reference_statistics(test, clf, split="test", cache=tmp_path, num_images=100, seed=1)
    assert sub.protocol["cache"] == "miss" and len(sub) == 100 and sub.protocol["subset_seed"] == 1
    assert reference_statistics(test, clf, split="test", cache=False).protocol["cache"] == "off"
    assert len(list((tmp_path / "reference").glob("*.npz"))) == 4


# ---- evaluate_images ----------------------------------------------------------------------------
def test_evaluating_the_reference_against_itself(tmp_path, digits, clf):
    _, test = digits
    res = evaluate_images(test.images, test, extractor=clf, metrics=["fid", "kid", "is", "pr", "dc"], split="test",
                          options=EvalOptions(kid_subsets=10), cache=tmp_path)
    m = res.metrics
    assert m["fid"] == pytest.approx(0.0, abs=1e-6)
    # identical (not independent) sets: the unbiased MMD^2 is slightly negative, -2/m (mean k(x,x) - mean k(x,y))
    assert m["kid"] < 0 and m["precision"] == 1.0 and m["recall"] == 1.0 and m["coverage"] == 1.0
    assert 1.0 < m["is"] <= 10.0
    p = res.protocol
    assert p["extractor"]["name"] == "classifier" and p["extractor"]["weights_sha256"] == clf.weights_hash
    assert p["reference"]["dataset"] == "digits" and p["reference"]["split"] == "test"
    assert p["reference"]["data_sha256"] == dataset_hash(test)
    assert p["num_real"] == p["num_fake"] == len(test) and p["resolution"] == [8, 8] and p["channels"] == 1
    assert "bilinear" in p["resize"] and p["seed"] == 0 and p["fake"]["quantized_to_uint8"]
    assert p["parameters"] == {"kid_subset_size": 297, "kid_subsets": 10, "is_splits": 10, "pr_k": 3, "dc_k": 5}


def test_results_do_not_depend_on_batch_size_and_float_input_is_quantised(digits, clf):
    train, test = digits
    fake = train.images[:400]
    kw = dict(extractor=clf, metrics=["fid", "kid", "is", "pr", "dc"], options=EvalOptions(kid_subsets=5),
              cache=False)
    a = evaluate_images(fake, test, batch_size=500, **kw).metrics
    b = evaluate_images(fake, test, batch_size=7, **kw).metrics
    as_float = fake.float() / 127.5 - 1 + 0.002  # within half a quantisation step of the uint8 images
    c = evaluate_images(as_float, test, batch_size=64, **kw).metrics
    for k in a:
        assert b[k] == pytest.approx(a[k], rel=1e-5, abs=1e-7), k
        assert c[k] == pytest.approx(a[k], rel=1e-5, abs=1e-7), k
    assert torch.equal(quantize(as_float), fake)


def test_class_conditional_accuracy(digits, clf):
    _, test = digits
    labels = test.labels.clone()
    right = evaluate_images(test.images, test, extractor=clf, metrics=["acc"], fake_labels=labels, cache=False)
    wrong = evaluate_images(test.images, test, extractor=clf, metrics=["acc"], fake_labels=(labels + 1) % 10,
                            cache=False)
    assert right.metrics["acc"] == pytest.approx(clf.test_accuracy)
    assert wrong.metrics["acc"] < 0.2
    with pytest.raises(ImagegenError, match="class-conditional"):
        evaluate_images(test.images, test, extractor=clf, metrics=["acc"], cache=False)


def test_evaluate_images_bad_input(digits, clf):
    _, test = digits
    big = build_dataset("digits", split="test", resolution=16)
    with pytest.raises(ImagegenError, match=r"generated images are 1x16x16 .* reference digits images are 1x8x8"):
        evaluate_images(big.images, test, extractor=clf, metrics=["fid"], cache=False)
    with pytest.raises(ImagegenError, match=r"3x8x8"):
        evaluate_images(test.images.expand(-1, 3, -1, -1), test, extractor=clf, metrics=["fid"], cache=False)
    with pytest.raises(ImagegenError, match="FID from 10 samples with 16-d features"):
        evaluate_images(test.images[:10], test, extractor=clf, metrics=["fid"], cache=False)
    res = evaluate_images(test.images[:10], test, extractor=clf, metrics=["fid"], cache=False, allow_few_samples=True)
    assert res.warnings and res.metrics["fid"] > 0
    with pytest.raises(ImagegenError, match="unknown metric"):
        evaluate_images(test.images, test, extractor=clf, metrics=["fid", "lpips"], cache=False)


# ---- training-time evaluation -------------------------------------------------------------------
class ReplayModel(nn.Module):
    """A stand-in generator that returns real images (optionally of one class only)."""

    num_classes = 0
    model_name = "replay"

    def __init__(self, dataset, only_class=None):
        super().__init__()
        keep = torch.arange(len(dataset)) if only_class is None else (dataset.labels == only_class).nonzero()[:, 0]
        self.bank = dataset.get_batch(keep)[0]
        self.anchor = nn.Parameter(torch.zeros(1))

    @property
    def device(self):
        return self.anchor.device

    def sample(self, n, generator=None, labels=None):
        return self.bank[torch.randint(0, len(self.bank), (n,), generator=generator)]


def test_training_evaluator(tmp_path, monkeypatch, digits, clf):
    train, _ = digits
    monkeypatch.delenv("IMAGEGEN_INCEPTION_WEIGHTS", raising=False)
    install_tiny_classifier(tmp_path)
    logs = []
    ev = TrainingEvaluator(train, tmp_path / "run", 300, ["fid", "kid"], "cpu", None, cache=tmp_path,
                           log=logs.append)
    assert ev.best_metric == "fid" and ev.extractor.weights_hash == clf.weights_hash
    assert ev.protocol["num_real"] == len(train) and ev.protocol["fake"]["during_training"]
    good, warnings = ev(ReplayModel(train), step=10)
    assert set(good) == {"fid", "kid", "kid_std", "class_entropy"} and not warnings
    assert good["class_entropy"] > 0.95
    again, _ = ev(ReplayModel(train), step=20)
    assert again == good  # fixed seed: the same model gives the same numbers
    collapsed, warnings = ev(ReplayModel(train, only_class=3), step=30)
    assert collapsed["fid"] > 5 * good["fid"] and collapsed["class_entropy"] < 0.3
    assert len(warnings) == 1 and "mode collapse" in warnings[0] and "classes 3" in warnings[0]
    with_acc = TrainingEvaluator(train, tmp_path / "run", 300, ["fid", "acc"], "cpu", None, cache=tmp_path,
                                 log=logs.append)
    values, warnings = with_acc(ReplayModel(train), step=10)  # unconditional: acc is skipped, said once
    assert "acc" not in values and len(warnings) == 1 and "acc skipped" in warnings[0]
    assert with_acc(ReplayModel(train), step=20)[1] == []


def test_class_histogram_entropy():
    logits = torch.eye(4).repeat(25, 1)
    assert class_histogram_entropy(logits, 4)[0] == pytest.approx(1.0)
    h, counts = class_histogram_entropy(torch.eye(4)[[0] * 99 + [1]], 4)
    assert counts.tolist() == [99, 1, 0, 0] and h < 0.1


def test_modes_metric_detects_collapse_and_low_confidence():
    from imagegen.metrics.evaluate import MetricInputs, EvalOptions, _modes
    from imagegen.metrics.extractors import Features

    def run(logits):
        fake = Features(features=torch.zeros(len(logits), 2), logits=logits)
        return _modes(MetricInputs(real=None, fake=fake, options=EvalOptions()))

    sharp = torch.eye(10).repeat(20, 1) * 20  # 200 confident samples, every class equally often
    r = run(sharp)
    assert r["confident"] == 1.0 and r["classes_covered"] == 10 and r["class_entropy"] == pytest.approx(1.0)
    collapsed = torch.eye(10)[[3] * 190 + list(range(10))] * 20  # one class dominates
    r = run(collapsed)
    assert r["classes_covered"] == 1 and r["class_entropy"] < 0.3
    assert run(torch.zeros(50, 10))["confident"] == 0.0  # uniform softmax: never confident
