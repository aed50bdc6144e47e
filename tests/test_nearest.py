"""The nearest-neighbour memorisation check: imagegen.metrics.nearest, the `nn` metric and
scripts/nearest_neighbours.py."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from _metrics_fixtures import digits_splits, tiny_digits_classifier
from _scripts import load_script
from PIL import Image

from imagegen.errors import ImagegenError
from imagegen.metrics.evaluate import EvalOptions, evaluate_images
from imagegen.metrics.nearest import copy_statistics, nearest_neighbours

nn_script = load_script("scripts/nearest_neighbours.py")


def test_nearest_neighbours_match_brute_force_across_chunks():
    g = torch.Generator().manual_seed(0)
    refs, queries = torch.randn(50, 7, generator=g), torch.randn(23, 7, generator=g) * 2 + 1
    full = torch.cdist(queries.double(), refs.double())
    d, idx = nearest_neighbours(queries, refs, k=3, chunk=5)
    want_d, want_i = full.topk(3, dim=1, largest=False)
    assert torch.equal(idx, want_i) and torch.allclose(d.double(), want_d, atol=1e-4)
    # leave-one-out (copy_statistics' e, prdc.knn_radii with k = 1): each point's own entry is skipped,
    # an exact duplicate elsewhere is not
    dup = torch.cat([refs, refs[:1]])
    self_full = torch.cdist(dup.double(), dup.double()).fill_diagonal_(float("inf"))
    e = self_full.min(dim=1).values
    assert e[0] == 0 and e[50] == 0
    stats = copy_statistics(dup, queries)
    assert stats["nn_median_real"] == pytest.approx(float(e.median()), abs=1e-4)
    assert stats["nn_median_fake"] == pytest.approx(float(full.min(dim=1).values.median()), abs=1e-4)
    from imagegen.metrics.prdc import knn_radii

    r = knn_radii((dup.double() - dup.double().mean(0)).float(), 1).double().sqrt()
    assert torch.allclose(r, e, atol=1e-3) and r[0] < 1e-3 and r[50] < 1e-3
    # the duplicates make the 1 % quantile of e zero; an exact copy still counts (d <= threshold)
    assert copy_statistics(dup, dup[:1])["nn_copies"] == 1.0


def test_nearest_neighbours_refuse_bad_shapes():
    with pytest.raises(ImagegenError, match="equal D"):
        nearest_neighbours(torch.zeros(3, 4), torch.zeros(5, 3))
    with pytest.raises(ImagegenError, match="reference images"):
        nearest_neighbours(torch.zeros(3, 4), torch.zeros(2, 4), k=3)
    with pytest.raises(ImagegenError, match="need more than 1 samples"):  # leave-one-out of one image
        copy_statistics(torch.zeros(1, 4), torch.zeros(1, 4))


def test_copy_statistics_separate_copies_independent_samples_and_off_data_samples():
    g = torch.Generator().manual_seed(1)
    train = torch.randn(2000, 8, generator=g)
    copies = copy_statistics(train, train[torch.randint(0, 2000, (500,), generator=g)] + 1e-4)
    assert copies["nn_ratio"] < 0.01 and copies["nn_copies"] == 1.0
    new = torch.randn(2000, 8, generator=g)
    fresh = copy_statistics(train, new)  # the same distribution, new draws
    assert 0.9 < fresh["nn_ratio"] < 1.1 and fresh["nn_copies"] < 0.03
    assert copy_statistics(train, new, fake_dists=nearest_neighbours(new, train, k=3)[0][:, 0]) == fresh
    off = copy_statistics(train, torch.randn(500, 8, generator=g) + 4)
    assert off["nn_ratio"] > 1.5 and off["nn_copies"] == 0.0
    with pytest.raises(ImagegenError, match="copy_quantile"):
        copy_statistics(train, train, copy_quantile=1.0)


def test_nn_metric_in_the_evaluation_pipeline(tmp_path):
    train, test = digits_splits()
    clf, _ = tiny_digits_classifier()
    opts = EvalOptions()
    memorised = evaluate_images(train.images[:300], train, extractor=clf, metrics=["nn"], options=opts, cache=False)
    held_out = evaluate_images(test.images[:300], train, extractor=clf, metrics=["nn"], options=opts, cache=False)
    assert memorised.metrics["nn_copies"] == 1.0 and memorised.metrics["nn_ratio"] == pytest.approx(0.0, abs=1e-3)
    assert held_out.metrics["nn_copies"] < 0.2 and held_out.metrics["nn_ratio"] > 0.5
    assert memorised.protocol["parameters"] == {"nn_copy_quantile": 0.01}
    # the leave-one-out distances are the reference statistics' cached 1-NN radii
    cached = evaluate_images(train.images[:300], train, extractor=clf, metrics=["nn"], options=opts, cache=tmp_path)
    again = evaluate_images(train.images[:300], train, extractor=clf, metrics=["nn"], options=opts, cache=tmp_path)
    assert cached.metrics == memorised.metrics == again.metrics
    from imagegen.metrics.reference import reference_statistics

    assert 1 in reference_statistics(train, clf, cache=tmp_path, radii_k=(1,)).radii


def _zip_of_images(path, images):
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        for i, img in enumerate(images):
            from io import BytesIO

            buf = BytesIO()
            Image.fromarray(img).save(buf, format="PNG")
            z.writestr(f"train/{i:04d}.png", buf.getvalue())


def test_script_draws_the_closest_samples_and_reports_copies(tmp_path):
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    _zip_of_images(tmp_path / "train.zip", real)
    fake = rng.integers(0, 256, (30, 8, 8, 3), dtype=np.uint8)
    fake[7] = real[12]  # one exact copy
    np.savez(tmp_path / "fake.npz", images=fake)
    out, js = tmp_path / "nn.png", tmp_path / "nn.json"
    rc = nn_script.main(["--fake", str(tmp_path / "fake.npz"), "--real", str(tmp_path / "train.zip"),
                         "--closest", "2", "--random", "3", "--k", "2", "--cell", "16", "--out", str(out),
                         "--json", str(js)])
    assert rc == 0
    rec = json.loads(js.read_text())
    assert rec["num_fake"] == 30 and rec["num_real"] == 40 and rec["space"] == "pixel"
    assert len(rec["rows"]) == 5 and len({r["sample"] for r in rec["rows"]}) == 5
    first = rec["rows"][0]
    assert first["sample"] == 7 and first["neighbours"][0] == 12 and first["relative_distance"][0] == 0.0
    assert rec["nn_copies"] == pytest.approx(1 / 30)
    assert Image.open(out).size == (4 + 3 * 20, 5 * (16 + 14 + 4) + 4)


def test_script_refuses_samples_of_another_size(tmp_path, capsys):
    rng = np.random.default_rng(0)
    _zip_of_images(tmp_path / "train.zip", rng.integers(0, 256, (10, 8, 8, 3), dtype=np.uint8))
    np.savez(tmp_path / "fake.npz", images=rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8))
    rc = nn_script.main(["--fake", str(tmp_path / "fake.npz"), "--real", str(tmp_path / "train.zip"),
                         "--out", str(tmp_path / "x.png")])
    assert rc == 2 and "--resolution 16" in capsys.readouterr().err


def test_script_passes_the_classifier_data_root_to_the_classifier(tmp_path, monkeypatch, capsys):
    """--classifier-data names another dataset than --real: its files come from --classifier-data-root,
    never from --data-root (the reference's directory)."""
    import imagegen.metrics.classifier as classifier
    from imagegen.errors import ImagegenError

    rng = np.random.default_rng(0)
    _zip_of_images(tmp_path / "train.zip", rng.integers(0, 256, (10, 8, 8, 3), dtype=np.uint8))
    np.savez(tmp_path / "fake.npz", images=rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8))
    seen = []

    def record(name, *, data_root=None, **kw):
        seen.append((name, data_root))
        raise ImagegenError("stopped here")

    monkeypatch.setattr(classifier, "load_or_train_classifier", record)
    common = ["--fake", str(tmp_path / "fake.npz"), "--real", str(tmp_path / "train.zip"), "--space", "classifier",
              "--data-root", "/reference", "--out", str(tmp_path / "x.png")]
    assert nn_script.main(common + ["--classifier-data", "cifar10-jpg", "--classifier-data-root", "/cifar"]) == 2
    assert nn_script.main(common + ["--classifier-data", "cifar10-jpg"]) == 2
    assert nn_script.main(common) == 2  # the reference's own classifier reads the reference's directory
    assert seen == [("cifar10-jpg", "/cifar"), ("cifar10-jpg", None), (str(tmp_path / "train.zip"), "/reference")]
    assert capsys.readouterr().err.count("error: stopped here") == 3


# ---- scripts/extractor_spread.py ------------------------------------------------------------------
def test_extractor_spread_scores_one_set_under_classifiers_of_several_seeds(tmp_path, monkeypatch):
    """Seeds 0 and 1 give two different classifiers (weights hashes); the reference scored against itself
    gives FID ≈ 0 under both, so the rows differ only where they should."""
    import imagegen.metrics.classifier as classifier
    from _metrics_fixtures import QUICK, TINY

    spread = load_script("scripts/extractor_spread.py")
    real_train = classifier.load_or_train_classifier

    def quick(dataset, *, recipe, **kw):  # the tiny architecture and a short recipe, with the asked seed
        return real_train(dataset, recipe=dataclasses.replace(QUICK, seed=recipe.seed), config=TINY, **kw)

    monkeypatch.setattr(classifier, "load_or_train_classifier", quick)
    _, test = digits_splits()
    np.savez(tmp_path / "fake.npz", images=test.images.permute(0, 2, 3, 1).numpy())
    out = tmp_path / "spread.json"
    rc = spread.main(["--fake", str(tmp_path / "fake.npz"), "--real", "digits", "--split", "test",
                      "--classifier-data", "digits", "--seeds", "0,1", "--metrics", "fid,pr",
                      "--cache-dir", str(tmp_path / "cache"), "--json", str(out)])
    assert rc == 0
    rec = json.loads(out.read_text())
    assert [r["classifier_seed"] for r in rec["rows"]] == [0, 1]
    assert rec["rows"][0]["weights_sha256"] != rec["rows"][1]["weights_sha256"]
    assert all(r["fid"] == pytest.approx(0.0, abs=1e-6) and r["precision"] == 1.0 for r in rec["rows"])
    assert rec["range"]["fid"][1] == pytest.approx(0.0, abs=1e-6) and rec["num_fake"] == len(test)


def test_extractor_spread_refuses_an_empty_seed_list(tmp_path, capsys):
    spread = load_script("scripts/extractor_spread.py")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "fake.npz", images=rng.integers(0, 256, (5, 8, 8, 1), dtype=np.uint8))
    rc = spread.main(["--fake", str(tmp_path / "fake.npz"), "--real", "digits", "--classifier-data", "digits",
                      "--seeds", ","])
    assert rc == 2 and "--seeds" in capsys.readouterr().err


# ---- scripts/colour_stats.py ----------------------------------------------------------------------
def test_colour_stats_of_known_images_and_a_tinted_copy(tmp_path):
    colour = load_script("scripts/colour_stats.py")
    real = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    real[:2, ..., 1] = 200                      # two pure green images: saturation 1, green-dominant
    real[2:] = 100                              # two grey ones: saturation 0, no dominant channel
    _zip_of_images(tmp_path / "train.zip", real)
    fake = real.copy()
    fake[..., 2] = np.maximum(fake[..., 2], 150)  # tinted blue
    np.savez(tmp_path / "fake.npz", images=fake)
    out = tmp_path / "c.json"
    assert colour.main(["--fake", str(tmp_path / "fake.npz"), "--real", str(tmp_path / "train.zip"),
                        "--json", str(out)]) == 0
    rec = json.loads(out.read_text())
    ref, smp = rec["reference"], rec["samples"]
    assert ref["mean_rgb"] == pytest.approx([50 / 255, 150 / 255, 50 / 255], abs=1e-4)
    assert ref["saturation"] == pytest.approx(0.5, abs=1e-4) and ref["green_dominant"] == pytest.approx(0.5, abs=1e-4)
    assert smp["mean_rgb"][2] > ref["mean_rgb"][2] and smp["green_dominant"] == pytest.approx(0.5)
    assert smp["saturation"] == pytest.approx((2 * 1.0 + 2 * (150 - 100) / 150) / 4, abs=1e-4)


def test_colour_stats_refuses_grey_samples(tmp_path, capsys):
    colour = load_script("scripts/colour_stats.py")
    np.savez(tmp_path / "fake.npz", images=np.zeros((3, 8, 8, 1), dtype=np.uint8))
    assert colour.main(["--fake", str(tmp_path / "fake.npz"), "--real", "digits"]) == 2
    assert "need RGB images" in capsys.readouterr().err
