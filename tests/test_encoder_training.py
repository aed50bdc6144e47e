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


def test_cli_writes_the_file_and_never_overwrites(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for c, level in (("dark", 50), ("bright", 200)):
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(6):
            img = np.clip(level + rng.normal(0, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(tmp_path / "data" / c / f"{i}.png")
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
