"""Projection of images into W / W+ (StyleGAN2 §5, Appendix D): library and CLI."""
from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_DCGAN, TINY_SG2, run_cli, tiny_stylegan2
from imagegen.data.base import uint8_to_float
from imagegen.errors import ConfigError, DataError, WeightsError
from imagegen.sampling import load_run
from imagegen.sampling.project import (classifier_distance, load_noise, lr_schedule, noise_inputs,
                                       noise_regularization, project, psnr, read_projection, resolve_features,
                                       vgg_distance)

pytestmark = pytest.mark.usefixtures("one_thread")



@pytest.fixture(autouse=True)
def no_pretrained(monkeypatch, tmp_path):
    """An empty cache and no VGG-19 weights: ``auto`` features fall back to pixels."""
    monkeypatch.setenv("IMAGEGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("IMAGEGEN_VGG19_WEIGHTS", raising=False)


@pytest.fixture(scope="module")
def model():
    return tiny_stylegan2()


@pytest.fixture(scope="module")
def target(model):
    """An image the model itself generates (constant noise): reachable in W."""
    z = model.sample_latents(1, torch.Generator().manual_seed(3))
    with single_thread():
        return model.synthesize(model.mapping(z), noise_mode="const")  # [1, 1, 8, 8]


@pytest.fixture(scope="module")
def result(model, target):
    with single_thread():
        return project(model, target, steps=100, space="w", features="pixels", seed=0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-step stylegan2 run and a 1-step dcgan run on the bundled digits."""
    from imagegen.cli import main

    root = tmp_path_factory.mktemp("runs")
    with single_thread():
        main(["train", "stylegan2", *TINY_SG2, "--steps", "2", "--out", str(root / "sg2")])
        main(["train", "dcgan", *TINY_DCGAN, "--steps", "1", "--threads", "1", "--out", str(root / "dcgan")])
    return root


@contextlib.contextmanager
def single_thread():
    """One intra-op thread for module fixtures too (they are set up before the ``one_thread`` fixture)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def write_png(path, arr):
    Image.fromarray(arr).save(path)
    return path


# ---- library ----------------------------------------------------------------------------------------------
def test_projection_fits_the_target_far_better_than_the_start(model, target, result):
    first, last = result.losses[0]["distance"], result.losses[-1]["distance"]
    assert len(result.losses) == 100 and last < 0.2 * first
    start = model.synthesize(result.w_avg[None], noise_mode="const")
    assert psnr(result.image, target) > psnr(start, target) + 8
    assert result.ws.shape == (1, model.num_ws, 8) and result.ws.dtype == torch.float32
    assert (result.ws == result.ws[:, :1]).all()  # space w: every layer's w is the same
    assert result.image.shape == (1, 1, 8, 8) and result.image.min() >= -1 and result.image.max() <= 1
    assert result.feature_network.startswith("pixels")


def test_saved_ws_and_noise_reproduce_the_projection_exactly(target, result):
    other = tiny_stylegan2()  # a second copy of the model: load_noise changes its buffers
    for m in noise_inputs(other).values():  # make the noise matter (an untrained model has strength 0)
        m.strength.data.fill_(0.5)
    res = project(other, target, steps=5, space="w+", features="pixels")
    assert not (res.ws == res.ws[:, :1]).all()  # w+: one w per layer
    assert not torch.equal(other.synthesize(res.ws, noise_mode="const"), res.image)  # its own noise differs
    load_noise(other, res.noise)
    assert torch.equal(other.synthesize(res.ws, noise_mode="const"), res.image)


def test_noise_maps_are_unit_variance_and_the_model_is_unchanged(model, result):
    assert list(result.noise) == list(noise_inputs(model))
    for name, n in result.noise.items():
        assert n.shape == noise_inputs(model)[name].noise_const.shape
        assert abs(float(n.mean())) < 1e-5 and abs(float(n.square().mean()) - 1) < 1e-5
        assert not torch.equal(n, noise_inputs(model)[name].noise_const)  # project works on a copy


def test_schedule_and_noise_regularizer():
    assert lr_schedule(0.0) == 0 and lr_schedule(0.5) == pytest.approx(0.1) and lr_schedule(0.999) < 0.001
    assert lr_schedule(0.025) == pytest.approx(0.05)  # half-way up the 5 % ramp
    smooth = torch.ones(1, 1, 16, 16)  # perfectly correlated: (mean n·n_shifted)² = 1 per direction and level
    assert float(noise_regularization([smooth])) == pytest.approx(4.0)  # 16×16 and 8×8, two directions each
    checker = (torch.arange(8)[:, None] + torch.arange(8)).remainder(2).float().mul(2).sub(1)[None, None]
    assert float(noise_regularization([checker])) == pytest.approx(2.0)  # anti-correlated: (−1)² twice


def test_library_errors(model, target):
    with pytest.raises(ConfigError, match="--steps 0"):
        project(model, target, steps=0, features="pixels")
    with pytest.raises(ConfigError, match="use w or w\\+"):
        project(model, target, steps=1, space="z", features="pixels")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="generates \\[1, 1, 8, 8\\]"):
        project(model, torch.zeros(1, 3, 8, 8), steps=1, features="pixels")
    with pytest.raises(ConfigError, match="named dataset"):
        resolve_features(model, "classifier")  # built in code: no training set known
    assert resolve_features(model, "auto").name == "pixels"
    with pytest.raises(WeightsError, match="--features vgg needs the ImageNet VGG-19 weights"):
        resolve_features(model, "vgg")


@pytest.mark.parametrize("kind", ["vgg", "classifier"])
def test_feature_distances_are_zero_at_the_target_and_decrease(model, target, kind):
    from imagegen.metrics.classifier import ClassifierConfig, DatasetClassifier
    from imagegen.nn.vgg import load_vgg19

    torch.manual_seed(0)
    dist = (vgg_distance(load_vgg19("random", widths=(4, 4, 8, 8, 8))) if kind == "vgg" else
            classifier_distance(DatasetClassifier(ClassifierConfig(1, 10, widths=(4, 8, 8, 16)), dataset="digits").eval()))
    feats = dist.features(target)
    assert float(dist.distance(feats, feats)) == 0
    res = project(model, target, steps=20, features=dist)
    assert res.feature_network.startswith(kind)
    assert res.losses[-1]["distance"] < 0.5 * res.losses[0]["distance"]


def test_auto_features_take_the_cached_classifier_of_the_runs_dataset(model, tmp_path):
    from imagegen.data import build_dataset
    from imagegen.metrics.cache import dataset_hash
    from imagegen.metrics.classifier import ClassifierConfig, DatasetClassifier, TrainRecipe, classifier_cache_dir

    model.checkpoint_meta = {"train_config": {"data": "digits", "data_root": None}}
    try:
        assert resolve_features(model, "auto").description.endswith("(no vgg19-dcbb9e9d.pth found; no digits "
                                                                    "classifier cached)")
        train = build_dataset("digits", split="train")
        config = ClassifierConfig(channels=train.channels, num_classes=train.num_classes)
        h = dataset_hash(train)
        DatasetClassifier(config, dataset="digits", data_sha256=h).save(
            classifier_cache_dir("digits", h, config, TrainRecipe()))  # under $IMAGEGEN_CACHE = tmp_path
        dist = resolve_features(model, "auto")
        assert dist.name == "classifier" and "digits dataset classifier" in dist.description
    finally:
        del model.checkpoint_meta


# ---- CLI ----------------------------------------------------------------------------------------------------
def test_cli_projects_an_image_end_to_end(runs, tmp_path, capsys):
    run = runs / "sg2"
    model = load_run(run)
    z = model.sample_latents(1, torch.Generator().manual_seed(5))
    arr = ((model.synthesize(model.mapping(z))[0, 0] + 1) * 127.5).round().byte().numpy()  # [8, 8] uint8
    png = write_png(tmp_path / "target.png", arr)
    out = tmp_path / "w.npz"
    code, stdout, err = run_cli(["project", run, "--image", png, "--out", out, "--steps", "60", "--space", "w+",
                                 "--no-progress"], capsys)
    assert code == 0, err
    assert "feature network: pixels" in err and f"wrote {out}" in stdout and "PSNR" in stdout
    with np.load(out) as d:
        assert d["w"].shape == (1, 4, 8) and d["w"].dtype == np.float32
        assert d["target"].shape == (8, 8, 1) and d["target"].dtype == np.uint8
        assert d["projection"].shape == (8, 8, 1) and d["projection"].dtype == np.uint8
        np.testing.assert_array_equal(d["target"][..., 0], arr)
        meta = json.loads(str(d["meta"]))
    assert meta["steps"] == 60 and meta["space"] == "w+" and meta["feature_network"].startswith("pixels")
    assert meta["psnr_db"] > 15 and set(meta["final_losses"]) >= {"loss", "distance", "pixel_mse", "noise_reg"}
    side = np.asarray(Image.open(tmp_path / "w.png"))
    assert side.shape == (12, 22)  # target | projection, 2-pixel padding
    # the saved w and noise reproduce the saved projection
    ws, noise, _ = read_projection(out)
    load_noise(model, noise)
    proj = model.synthesize(ws, noise_mode="const")
    with np.load(out) as d:
        np.testing.assert_array_equal(((proj[0, 0] + 1) * 127.5).round().byte().numpy(), d["projection"][..., 0])
        assert psnr(uint8_to_float(torch.from_numpy(d["projection"][..., 0])),
                    uint8_to_float(torch.from_numpy(arr))) == pytest.approx(meta["psnr_db"], abs=0.5)
    # --out exists: refused without --force, accepted with it
    code, _, err = run_cli(["project", run, "--image", png, "--out", out, "--steps", "1", "--no-progress"], capsys)
    assert code == 2 and "already exists; pass --force" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["project", run, "--image", png, "--out", out, "--steps", "1", "--no-progress",
                            "--force"], capsys)
    assert code == 0, err


def test_cli_resize_option(runs, tmp_path, capsys):
    png = write_png(tmp_path / "big.png", np.full((12, 10), 128, np.uint8))
    code, _, err = run_cli(["project", runs / "sg2", "--image", png, "--out", tmp_path / "a.npz", "--steps", "2",
                            "--no-progress"], capsys)
    assert code == 2 and "is 10x12 but the model generates 8x8 images; resize the image or pass --resize bicubic" \
        in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["project", runs / "sg2", "--image", png, "--out", tmp_path / "a.npz", "--steps", "2",
                            "--resize", "bicubic", "--no-progress"], capsys)
    assert code == 0, err
    with np.load(tmp_path / "a.npz") as d:
        assert d["target"].shape == (8, 8, 1)


@pytest.mark.parametrize("case, message", [
    ("dcgan", "project needs a style-based run (stylegan2, stylegan)"),
    ("rgb", "is RGB but the model generates grayscale images; convert it to grayscale"),
    ("missing", "does not exist"),
    ("corrupt", "cannot read image"),
    ("steps", "--steps 0: must be ≥ 1"),
    ("features", "--features vgg needs the ImageNet VGG-19 weights"),
    ("vgg-weights", "no such file"),
    ("vgg-checksum", "is not the standard vgg19-dcbb9e9d.pth"),
])
def test_cli_bad_input(runs, tmp_path, capsys, case, message):
    png = write_png(tmp_path / "ok.png", np.zeros((8, 8), np.uint8))
    run, args = runs / "sg2", []
    if case == "dcgan":
        run = runs / "dcgan"
    elif case == "rgb":
        png = write_png(tmp_path / "rgb.png", np.zeros((8, 8, 3), np.uint8))
    elif case == "missing":
        png = tmp_path / "nope.png"
    elif case == "corrupt":
        png = tmp_path / "bad.png"
        png.write_bytes(b"not a png")
    elif case == "steps":
        args = ["--steps", "0"]
    elif case == "features":
        args = ["--features", "vgg"]
    elif case == "vgg-weights":
        args = ["--vgg-weights", tmp_path / "vgg19.pth"]
    elif case == "vgg-checksum":  # a file in the cache slot that is not the model zoo's: refused, not used
        (tmp_path / "cache" / "weights").mkdir(parents=True)
        (tmp_path / "cache" / "weights" / "vgg19-dcbb9e9d.pth").write_bytes(b"other weights")
    code, _, err = run_cli(["project", run, "--image", png, "--out", tmp_path / "w.npz", "--no-progress", *args],
                           capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "w.npz").exists()
