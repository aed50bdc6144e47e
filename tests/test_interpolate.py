"""Interpolation (slerp, tweening, GIF/PNG) and reconstruction: library and CLI."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from imagegen.cli import main
from imagegen.errors import ConfigError
from imagegen.models.cgan import CGANConfig
from imagegen.models.dcgan import DCGANConfig
from imagegen.models.vae import CVAEConfig, VAEConfig
from imagegen.sampling import load_run
from imagegen.sampling.interpolate import (interpolation_path, latents_for_seeds, lerp, load_images, reconstruct,
                                           save_gif, slerp, slerp_pairs, tween)
from imagegen.training import TrainConfig, Trainer


# ---- slerp ---------------------------------------------------------------------------------------------
def test_slerp_endpoints_and_constant_norm():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(3, 64, generator=g), torch.randn(3, 64, generator=g)
    z1 = z1 / z1.norm(dim=1, keepdim=True) * z0.norm(dim=1, keepdim=True)  # equal norms per row
    t = torch.linspace(0, 1, 11)
    path = slerp(z0, z1, t)  # [11, 3, 64]
    assert path.shape == (11, 3, 64)
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[-1], z1)
    torch.testing.assert_close(path.norm(dim=-1), z0.norm(dim=1).expand(11, 3), rtol=1e-5, atol=1e-5)
    # the straight line dips towards the origin in between, which slerp avoids (White 2016, §2.1)
    assert (lerp(z0, z1, t)[5].norm(dim=1) < 0.9 * z0.norm(dim=1)).all()


def test_slerp_follows_the_great_circle():
    e0, e1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    t = torch.tensor([0.0, 1 / 3, 0.5, 1.0])
    out = slerp(e0, e1, t)
    ang = torch.atan2(out[:, 1], out[:, 0])
    torch.testing.assert_close(ang, t * math.pi / 2)
    torch.testing.assert_close(out[2], torch.tensor([1.0, 1.0]) / math.sqrt(2))


def test_slerp_of_parallel_vectors_falls_back_to_lerp():
    z = torch.tensor([1.0, 2.0, 3.0])
    out = slerp(z, 2 * z, torch.linspace(0, 1, 5))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, lerp(z, 2 * z, torch.linspace(0, 1, 5)))
    with pytest.raises(ConfigError):
        slerp(torch.zeros(3), torch.zeros(4), torch.tensor([0.5]))


def test_slerp_pairs_is_each_rows_own_point_of_slerp():
    """Row i of slerp_pairs(z0, z1, t) is slerp(z0[i], z1[i]) at t[i] (the diagonal of the full grid)."""
    g = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(5, 16, generator=g), torch.randn(5, 16, generator=g)
    z1[3] = 2 * z0[3]  # a parallel pair: the lerp fallback, per row
    t = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    grid = slerp(z0, z1, t)  # [5 t, 5 rows, 16]
    torch.testing.assert_close(slerp_pairs(z0, z1, t), grid[torch.arange(5), torch.arange(5)])
    with pytest.raises(ConfigError):
        slerp_pairs(z0, z1[:, :8], t)


def test_interpolation_path_frames():
    keys = torch.randn(3, 8)
    path = interpolation_path(keys, steps=5)
    assert path.shape == (2 * 4 + 1, 8)
    torch.testing.assert_close(path[0], keys[0])
    torch.testing.assert_close(path[4], keys[1])
    torch.testing.assert_close(path[-1], keys[2])
    for bad in (dict(keys=keys[:1], steps=5), dict(keys=keys, steps=1)):
        with pytest.raises(ConfigError):
            interpolation_path(**bad)


# ---- tiny trained runs ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    cfgs = {"dcgan": DCGANConfig(resolution=8, z_dim=8, g_width=8, d_width=8),
            "cgan": CGANConfig(resolution=8, z_dim=8, g_width=8, d_width=8),
            "vae": VAEConfig(resolution=8, z_dim=4, width=8, hidden=16, likelihood="logistic"),
            "cvae": CVAEConfig(resolution=8, z_dim=4, width=8, hidden=16)}
    train = TrainConfig(data="digits", steps=2, batch_size=8, progress=False, grid_size=4, channels_last=False)
    for name, cfg in cfgs.items():
        Trainer(name, cfg, train, root / name, echo=lambda s: None).fit()
    return root


def test_tween_starts_and_ends_at_the_seeds_samples(runs):
    for name, cls in (("dcgan", None), ("cgan", 4)):
        model = load_run(runs / name)
        frames = tween(model, latents_for_seeds(model, [5, 9]), steps=6, labels=cls)
        assert frames.shape == (6, 1, 8, 8) and frames.min() >= -1 and frames.max() <= 1
        lab = None if cls is None else torch.tensor([cls])
        torch.testing.assert_close(frames[0], model.sample(1, torch.Generator().manual_seed(5), labels=lab)[0])
        torch.testing.assert_close(frames[-1], model.sample(1, torch.Generator().manual_seed(9), labels=lab)[0])
    with pytest.raises(ConfigError, match="--class"):
        tween(load_run(runs / "cgan"), torch.randn(2, 8), steps=3)


def test_cli_interpolate_gif_and_strip(runs, tmp_path):
    gif = tmp_path / "tween.gif"
    main(["interpolate", str(runs / "dcgan"), "--seeds", "1,2", "--steps", "6", "--out", str(gif), "--scale", "3"])
    with Image.open(gif) as im:
        assert im.n_frames == 6 + 4 and im.size == (24, 24)  # boomerang: forwards 6, back 4
    png = tmp_path / "strip.png"
    main(["interpolate", str(runs / "cgan"), "--seeds", "1,2,3", "--steps", "4", "--class", "3",
          "--out", str(png), "--scale", "1"])
    assert np.asarray(Image.open(png)).shape == (8 + 4, 7 * 10 + 2)  # 7 frames of 8 px + 2 px padding


def test_cli_interpolate_class_grid(runs, tmp_path):
    gif, png = tmp_path / "classes.gif", tmp_path / "classes.png"
    main(["interpolate", str(runs / "cgan"), "--seeds", "1,2", "--steps", "3", "--class-grid", "--out", str(gif),
          "--scale", "1", "--no-boomerang"])
    with Image.open(gif) as im:
        assert im.n_frames == 3 and im.size == (10 * 10 + 2, 8 + 4)  # each frame: the 10 classes in a row
    main(["interpolate", str(runs / "cgan"), "--seeds", "1,2", "--steps", "3", "--class-grid", "--out", str(png),
          "--scale", "1"])
    strip = np.asarray(Image.open(png))
    assert strip.shape == (10 * 10 + 2, 3 * 10 + 2)  # one row per class, one column per frame
    model = load_run(runs / "cgan")
    z = latents_for_seeds(model, [1])
    first_of_class_4 = np.rint((model.generate(z, torch.tensor([4]))[0, 0].numpy() + 1) * 127.5)
    assert np.abs(strip[42:50, 2:10].astype(float) - first_of_class_4).max() <= 1
    with pytest.raises(SystemExit):
        main(["interpolate", str(runs / "dcgan"), "--class-grid", "--out", str(tmp_path / "x.gif")])


def test_cli_interpolate_between_real_images(runs, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(np.full((16, 16), 30, np.uint8)).save(a)
    Image.fromarray(np.tile(np.linspace(0, 255, 16).astype(np.uint8), (16, 1))).save(b)
    out = tmp_path / "between.png"
    main(["interpolate", str(runs / "vae"), "--images", str(a), str(b), "--steps", "5", "--out", str(out),
          "--scale", "1", "--method", "lerp"])
    strip = np.asarray(Image.open(out))
    model = load_run(runs / "vae")
    rec = reconstruct(model, load_images([a, b], 8, 1))  # endpoints: the reconstructions
    first = np.rint((rec[0, 0].numpy() + 1) * 127.5)
    assert np.abs(strip[2:10, 2:10].astype(float) - first).max() <= 1
    with pytest.raises(SystemExit) as e:
        main(["interpolate", str(runs / "dcgan"), "--images", str(a), str(b), "--out", str(tmp_path / "x.gif")])
    assert e.value.code == 2


def test_cli_reconstruct(runs, tmp_path):
    out = tmp_path / "recon.png"
    main(["reconstruct", str(runs / "vae"), "--data", "digits", "--num", "6", "--pairs-per-row", "3",
          "--out", str(out)])
    assert np.asarray(Image.open(out)).shape == (2 * 10 + 2, 6 * 10 + 2)  # 2 rows of 3 pairs
    out2 = tmp_path / "as7.png"
    main(["reconstruct", str(runs / "cvae"), "--data", "digits", "--num", "4", "--class", "7", "--out", str(out2)])
    assert out2.is_file()
    with pytest.raises(SystemExit) as e:
        main(["reconstruct", str(runs / "cgan"), "--data", "digits", "--out", str(tmp_path / "y.png")])
    assert e.value.code == 2


def test_save_gif_writes_every_frame(tmp_path):
    frames = torch.linspace(-1, 1, 5).view(5, 1, 1, 1).expand(5, 3, 4, 4)
    save_gif(frames, tmp_path / "a.gif", boomerang=False)
    with Image.open(tmp_path / "a.gif") as im:
        assert im.n_frames == 5
