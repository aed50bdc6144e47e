"""The self-trained VGG-19-layout encoder (imagegen.style.encoder_training, ``imagegen train-encoder``):
batch-norm folding is exact, the file loads through the ImageNet file's loader with its own widths (for
Gatys and AdaIN), training learns, and bad input is a one-line error with exit code 2."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_cli
from imagegen.data import ImageDataset
from imagegen.errors import ConfigError, DataError
from imagegen.models.adain import AdaINConfig
from imagegen.nn.vgg import load_vgg19, vgg19_file_widths
from imagegen.style.encoder_training import VGG19BNClassifier, save_vgg_encoder, train_vgg_encoder

TINY = (4, 8, 8, 8, 8)
pytestmark = pytest.mark.usefixtures("one_thread")


def _two_classes(n: int = 64, seed: int = 0) -> ImageDataset:
    """Dark noisy images (class 0) and bright ones (class 1), 32×32 RGB: separable at a glance."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    base = np.where(labels[:, None, None, None] == 1, 190, 60)
    imgs = np.clip(base + rng.normal(0, 25, (n, 32, 32, 3)), 0, 255).astype(np.uint8)
    return ImageDataset(imgs, labels, name="two-classes")


def test_batchnorm_folding_is_exact():
    torch.manual_seed(0)
    model = VGG19BNClassifier(TINY, 3)
    for bn in model.norms:  # non-trivial inference statistics
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 2)
        bn.bias.data.uniform_(-1, 1)
    model.eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        enc = model.export()
        pooled = enc(x, "pool5")["pool5"].mean(dim=(2, 3))
        assert torch.allclose(model.head(pooled), model(x)[1], atol=1e-4)
    assert not any(p.requires_grad for p in enc.parameters())


def test_training_learns_and_the_file_loads_with_its_widths(tmp_path):
    data = _two_classes()
    encoder, info = train_vgg_encoder(data, data, widths=TINY, epochs=8, batch_size=16, lr=3e-3)
    assert info["widths"] == list(TINY) and info["steps"] == 32
    assert info["test_accuracy"] >= 0.9  # a trivially separable problem
    path = save_vgg_encoder(encoder, tmp_path / "enc.pth", info)
    assert vgg19_file_widths(path) == TINY
    assert json.loads((tmp_path / "enc.pth.json").read_text())["widths"] == list(TINY)
    loaded = load_vgg19(path)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loaded.widths == TINY and "file" in loaded.source
    assert torch.equal(loaded(x, "relu4_1")["relu4_1"], encoder(x, "relu4_1")["relu4_1"])
    with pytest.raises(ConfigError, match="has widths"):
        load_vgg19(path, widths=(8, 8, 8, 8, 8))
    with pytest.raises(ConfigError, match="exists"):
        save_vgg_encoder(encoder, path)
    # AdaIN reads the widths from the file (its decoder mirrors them)
    assert AdaINConfig(resolution=16, encoder=str(path)).encoder_widths == TINY
    with pytest.raises(ConfigError, match="has widths"):
        AdaINConfig(resolution=16, encoder=str(path), encoder_widths=(8, 8, 8, 8, 8))


def test_unlabelled_or_grey_data_is_refused():
    imgs = np.zeros((4, 32, 32, 3), np.uint8)
    with pytest.raises(DataError, match="no class labels"):
        train_vgg_encoder(ImageDataset(imgs, None, name="u"), widths=TINY, epochs=1)
    with pytest.raises(DataError, match="RGB"):
        train_vgg_encoder(ImageDataset(imgs[..., :1], np.arange(4) % 2, name="g"), widths=TINY, epochs=1)


def _class_folders(root):
    """Two classes (dark, bright) of 6 noisy 32x32 RGB PNGs each under ``root``."""
    rng = np.random.default_rng(0)
    for c, level in (("dark", 50), ("bright", 200)):
        (root / c).mkdir(parents=True)
        for i in range(6):
            img = np.clip(level + rng.normal(0, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / c / f"{i}.png")
    return root


def test_cli_writes_the_file_and_never_overwrites(tmp_path, capsys):
    _class_folders(tmp_path / "data")
    out = tmp_path / "enc.pth"
    args = ["train-encoder", "--data", tmp_path / "data", "--widths", "4,8,8,8,8", "--epochs", "1",
            "--batch-size", "4", "--threads", "1", "--device", "cpu", "--out", out]
    code, stdout, err = run_cli(args, capsys)
    assert code == 0, err
    assert vgg19_file_widths(out) == TINY and "--encoder" in stdout
    before = out.read_bytes()
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "exists" in err and out.read_bytes() == before
    code, _, err = run_cli(args[:-2] + ["--widths", "4,8", "--out", tmp_path / "x.pth"], capsys)
    assert code == 2 and "give 5 positive widths" in err
    # --normalize-filters: every filter's mean ReLU activation over the (here: all 12) training images is 1
    norm = tmp_path / "norm.pth"
    code, _, err = run_cli(args[:-1] + [norm, "--normalize-filters"], capsys)
    assert code == 0, err
    record = json.loads((tmp_path / "norm.pth.json").read_text())["normalized_filters"]
    assert record["images"] == 12 and set(record["channel_means_before"]) >= {"relu1_1", "relu5_4"}
    from imagegen.data import build_dataset

    images = build_dataset(str(tmp_path / "data"), split="train", resolution=32, channels=3).get_batch(
        torch.arange(12))[0]
    means = load_vgg19(norm)(images, "relu3_1")["relu3_1"].mean(dim=(0, 2, 3))
    assert torch.allclose(means[means > 0], torch.ones(int((means > 0).sum())), rtol=1e-3)


def test_auto_uses_the_self_trained_encoder_of_the_cache_and_adain_pins_its_hash(tmp_path, monkeypatch, capsys):
    from imagegen.nn.vgg import resolve_auto, self_trained_path
    from imagegen.weights import VGG19

    monkeypatch.delenv(VGG19.env_var, raising=False)
    monkeypatch.setenv("IMAGEGEN_CACHE", str(tmp_path / "cache"))
    assert resolve_auto() == "random" and "random" in load_vgg19("auto").source
    data = _two_classes(16)
    encoder, info = train_vgg_encoder(data, widths=TINY, epochs=1, batch_size=8)
    path = save_vgg_encoder(encoder, self_trained_path(), info)
    assert resolve_auto() == str(path) and load_vgg19("auto").widths == TINY
    config = AdaINConfig(resolution=16)  # auto, standard widths → the cached file, its widths and hash
    assert config.encoder == str(path) and config.encoder_widths == TINY and len(config.encoder_sha256) == 64
    assert AdaINConfig(resolution=16, encoder_widths=(4, 4, 4, 4, 4)).encoder == "random"
    recorded = dict(encoder=config.encoder, encoder_sha256=config.encoder_sha256)
    other, _ = train_vgg_encoder(data, widths=TINY, epochs=1, batch_size=8, seed=1)
    save_vgg_encoder(other, path, force=True)  # the file changes under a trained run
    with pytest.raises(ConfigError, match="has changed since"):
        AdaINConfig(resolution=16, **recorded)


def test_encoder_specs_of_scripts():
    from imagegen.nn.vgg import parse_encoder_spec

    assert parse_encoder_spec("random:4,8,8,8,8") == ("random", TINY)
    assert parse_encoder_spec("random") == ("random", None) and parse_encoder_spec("a.pth") == ("a.pth", None)
    for bad in ("random:4,8", "random:4,8,x,8,8", "random:0,8,8,8,8"):
        with pytest.raises(ConfigError, match="give 5 positive widths"):
            parse_encoder_spec(bad)


def test_normalize_filters_gives_unit_mean_activations_and_keeps_what_each_layer_computes():
    from imagegen.nn.vgg import LAYERS, VGG19Encoder, normalize_filters_, random_init_

    torch.manual_seed(0)
    enc = random_init_(VGG19Encoder(widths=TINY, padding="reflect"), seed=3).freeze()
    conv3 = [m for m in enc.features if isinstance(m, torch.nn.Conv2d)][2]
    conv3.bias.data[1] = -1e4  # a filter that never fires: left alone
    batches = [torch.rand(4, 3, 32, 32) * 2 - 1 for _ in range(2)]
    relus = [n for n in LAYERS if n.startswith("relu")]
    before = {n: torch.cat([enc(b, relus)[n] for b in batches]) for n in relus}
    record = normalize_filters_(enc, batches)
    after = {n: torch.cat([enc(b, relus)[n] for b in batches]) for n in relus}
    assert record["images"] == 8 and record["layers"]["relu2_1"]["dead"] == 1
    for n in relus:
        means = after[n].mean(dim=(0, 2, 3))
        alive = before[n].mean(dim=(0, 2, 3)) > 0
        assert torch.allclose(means[alive], torch.ones(int(alive.sum())), rtol=1e-4)
        assert torch.all(means[~alive] == 0)
        # each layer is the old one divided per channel by its old mean (the next layer compensates)
        m = torch.where(alive, before[n].mean(dim=(0, 2, 3)), torch.ones_like(alive, dtype=torch.float32))
        expected = before[n] / m.view(1, -1, 1, 1)
        assert (after[n] - expected).abs().max() <= 1e-4 * expected.abs().max()  # float32, scales 1e-4..10
    with pytest.raises(ConfigError, match="at least one image"):
        normalize_filters_(enc, [])


def test_normalize_encoder_script(tmp_path, capsys):
    from _scripts import load_script
    from imagegen.data import build_dataset
    from imagegen.nn.vgg import VGG19Encoder, random_init_
    from imagegen.style.encoder_training import save_vgg_encoder
    from imagegen.weights import weights_sha256

    script = load_script("scripts/normalize_encoder.py")
    data = _class_folders(tmp_path / "data")
    src = save_vgg_encoder(random_init_(VGG19Encoder(widths=TINY), seed=1), tmp_path / "enc.pth")
    out = tmp_path / "norm.pth"
    args = ["--encoder", str(src), "--data", str(data), "--images", "8", "--out", str(out)]
    assert script.main(args) == 0, capsys.readouterr().err
    info = json.loads((tmp_path / "norm.pth.json").read_text())
    assert info["source_sha256"] == weights_sha256(src) and info["normalized_filters"]["images"] == 8
    images = build_dataset(str(data), split="train", resolution=32, channels=3).get_batch(torch.arange(12))[0]
    before = load_vgg19(src)(images, "relu1_1")["relu1_1"].mean(dim=(0, 2, 3))
    after = load_vgg19(out)(images, "relu1_1")["relu1_1"].mean(dim=(0, 2, 3))
    assert before.std() / before.mean() > 0.1 and after.std() / after.mean() < before.std() / before.mean()
    assert "relu4_1 channel means before" in capsys.readouterr().out
    before_bytes = out.read_bytes()
    assert script.main(args) == 2 and "exists" in capsys.readouterr().err and out.read_bytes() == before_bytes
    assert script.main(["--encoder", str(tmp_path / "missing.pth"), "--data", str(data), "--out",
                        str(tmp_path / "x.pth")]) == 2
    assert "missing.pth" in capsys.readouterr().err
