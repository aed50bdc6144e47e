"""Feature extractors: the FID Inception (architecture, weight loading) and the dataset classifier."""
from __future__ import annotations

import json
import pickle

import pytest
import torch

from imagegen.data import build_dataset
from imagegen.errors import ImagegenError
from imagegen.metrics.cache import dataset_hash
from imagegen.metrics.classifier import DatasetClassifier, TrainRecipe, classifier_cache_dir, classifier_for_dataset
from imagegen.metrics.extractors import build_extractor, compute_features, list_extractors
from imagegen.metrics.inception import (FIDInceptionV3, InceptionE, _tf_avg_pool, build_inception,
                                        download_inception_weights, find_inception_weights, load_fid_inception)

from _metrics_fixtures import TINY, digits_splits, tiny_digits_classifier


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    """A randomly initialised FID Inception saved like pytorch-fid's file (a plain state dict)."""
    torch.manual_seed(0)
    model = FIDInceptionV3()
    for m in model.modules():  # non-trivial batch-norm statistics, so loading them is tested
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("w") / "random_inception.pth"
    torch.save({k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}, path)
    return path, model.eval()


# ---- Inception ---------------------------------------------------------------------------------
def test_inception_has_pytorch_fid_key_names_and_shapes():
    sd = FIDInceptionV3().state_dict()
    expected = {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3), "Conv2d_4a_3x3.bn.running_var": (192,),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1), "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
        "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3), "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
        "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3), "Mixed_7b.branch3x3dbl_1.conv.weight": (448, 1280, 1, 1),
        "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1), "fc.weight": (1008, 2048), "fc.bias": (1008,)}
    for k, shape in expected.items():
        assert tuple(sd[k].shape) == shape, k
    assert not any(k.startswith("AuxLogits") for k in sd)
    assert sum(p.numel() for p in FIDInceptionV3().parameters()) == 23_850_960  # 21.8 M conv + 2048x1008 fc


def test_inception_pooling_variants():
    x = torch.ones(1, 2, 5, 5)
    assert torch.equal(_tf_avg_pool(x), x)  # TF average pooling ignores the zero padding
    a, m = InceptionE(8, pool="avg"), InceptionE(8, pool="max")
    m.load_state_dict(a.state_dict())
    x = torch.randn(1, 8, 4, 4)
    assert not torch.allclose(a(x), m(x))  # Mixed_7c (max pool) differs from Mixed_7b (avg pool)


def test_inception_weights_load_and_features_do_not_depend_on_batch_size(inception_file):
    path, reference = inception_file
    model = load_fid_inception(path)
    assert model.weights_sha256 and not model.protocol()["standard_weights"]
    img = torch.rand(2, 1, 28, 28) * 2 - 1
    with torch.inference_mode():
        f_ref, l_ref = reference(img.expand(-1, 3, -1, -1))  # grayscale = RGB with equal channels
    feats = compute_features(model, img, batch_size=2)
    one_by_one = compute_features(model, img, batch_size=1)
    assert feats.features.shape == (2, 2048) and feats.logits.shape == (2, 1008)
    torch.testing.assert_close(feats.features, f_ref)
    torch.testing.assert_close(feats.logits, l_ref)
    torch.testing.assert_close(one_by_one.features, feats.features, rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_inception_bad_weight_files(tmp_path, inception_file):
    path, _ = inception_file
    text = tmp_path / "notes.pth"
    text.write_text("not weights")
    with pytest.raises(ImagegenError, match="cannot read Inception weights"):
        load_fid_inception(text)
    sd = torch.load(path, weights_only=True)
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in sd.items() if not k.startswith("Mixed_7c")}, partial)
    with pytest.raises(ImagegenError, match="missing keys"):
        load_fid_inception(partial)
    wrong = tmp_path / "wrong.pth"
    torch.save({**sd, "fc.weight": torch.zeros(1000, 2048)}, wrong)
    with pytest.raises(ImagegenError, match="wrong tensor shapes"):
        load_fid_inception(wrong)
    code = tmp_path / "code.pth"
    with open(code, "wb") as f:  # a pickle that would run code: refused by weights_only=True
        pickle.dump(print, f)
    with pytest.raises(ImagegenError, match="cannot read"):
        load_fid_inception(code)


def test_inception_weight_discovery(tmp_path, monkeypatch, inception_file):
    path, _ = inception_file
    monkeypatch.delenv("IMAGEGEN_INCEPTION_WEIGHTS", raising=False)
    assert find_inception_weights(None, tmp_path) is None
    with pytest.raises(ImagegenError, match="no Inception weights"):
        build_inception(cache=tmp_path)
    monkeypatch.setenv("IMAGEGEN_INCEPTION_WEIGHTS", str(path))
    assert find_inception_weights(None, tmp_path) == path
    monkeypatch.setenv("IMAGEGEN_INCEPTION_WEIGHTS", str(tmp_path / "missing.pth"))
    with pytest.raises(ImagegenError, match="no such file"):
        find_inception_weights(None, tmp_path)
    assert "inception" in list_extractors() and "classifier" in list_extractors()


def test_inception_download_failure_is_a_clear_error(tmp_path):
    with pytest.raises(ImagegenError, match="cannot download Inception weights"):
        download_inception_weights(tmp_path, url="http://127.0.0.1:9/pt_inception.pth", timeout_seconds=5)
    assert not list((tmp_path / "weights").iterdir())  # no partial file left behind


# ---- dataset classifier -------------------------------------------------------------------------
@pytest.fixture
def digits():
    return digits_splits()


@pytest.fixture
def tiny_classifier():
    return tiny_digits_classifier()


def test_tiny_classifier_learns_digits(tiny_classifier):
    model, acc = tiny_classifier
    assert acc > 0.8
    assert model.test_accuracy == acc
    p = model.protocol()
    assert p["name"] == "classifier" and p["dataset"] == "digits" and p["feature_dim"] == 16
    assert "bilinear to 32x32" in p["resize"] and len(p["weights_sha256"]) == 64


def test_classifier_save_load_round_trip(tmp_path, tiny_classifier, digits):
    model, _ = tiny_classifier
    model.save(tmp_path / "clf")
    assert sorted(p.name for p in (tmp_path / "clf").iterdir()) == ["config.json", "model.safetensors"]
    meta = json.loads((tmp_path / "clf" / "config.json").read_text())
    assert meta["data_sha256"] == dataset_hash(digits[0])
    loaded = DatasetClassifier.load(tmp_path / "clf")
    assert loaded.weights_hash == model.weights_hash
    img, _ = digits[1].get_batch(torch.arange(20))
    a, b = compute_features(model, img, batch_size=20), compute_features(loaded, img, batch_size=7)
    torch.testing.assert_close(a.features, b.features)
    torch.testing.assert_close(a.logits, b.logits)
    (tmp_path / "clf" / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(ImagegenError, match="cannot load the dataset classifier"):
        DatasetClassifier.load(tmp_path / "clf")


def test_classifier_channel_conversion(tiny_classifier, digits):
    model, _ = tiny_classifier
    img, _ = digits[1].get_batch(torch.arange(4))
    f1 = compute_features(model, img).features
    f3 = compute_features(model, img.expand(-1, 3, -1, -1)).features  # luma of equal channels = the channel
    torch.testing.assert_close(f1, f3, rtol=1e-4, atol=1e-5)


def test_classifier_cache_is_keyed_by_content(tmp_path, digits, monkeypatch):
    train, test = digits
    calls = []
    import imagegen.metrics.classifier as clf

    real_train = clf.train_classifier

    def counting(*a, **k):
        calls.append(1)
        return real_train(*a, **k)

    monkeypatch.setattr(clf, "train_classifier", counting)
    quick = TrainRecipe(epochs=1, min_steps=5, batch_size=32)
    m1 = classifier_for_dataset(train, test, cache=tmp_path, config=TINY, recipe=quick)
    m2 = classifier_for_dataset(train, test, cache=tmp_path, config=TINY, recipe=quick)
    assert len(calls) == 1 and m1.weights_hash == m2.weights_hash
    changed = build_dataset("digits", split="train")
    changed.images[0, 0, 0, 0] ^= 1  # one pixel differs: a different content hash, a new classifier
    d1 = classifier_cache_dir(train.name, dataset_hash(train), TINY, quick, tmp_path)
    d2 = classifier_cache_dir(changed.name, dataset_hash(changed), TINY, quick, tmp_path)
    assert d1 != d2 and d1.is_dir() and not d2.exists()
    with pytest.raises(ImagegenError, match="train-classifier"):
        classifier_for_dataset(changed, cache=tmp_path, config=TINY, recipe=quick, train_if_missing=False)


def test_classifier_needs_labels(tmp_path, digits):
    from imagegen.data import ImageDataset

    unlabelled = ImageDataset(digits[0].images.permute(0, 2, 3, 1).numpy(), None, name="nolabels")
    with pytest.raises(ImagegenError, match="no class labels"):
        classifier_for_dataset(unlabelled, cache=tmp_path)
    with pytest.raises(ImagegenError, match="unknown feature extractor"):
        build_extractor("vgg")
