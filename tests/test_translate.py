"""``imagegen translate`` and ``imagegen restore``: inputs (file, folder with sub-folders, zip), sizes kept
through padding, output names, grids, tiling, masks, and the one-line errors."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from _contract_models import PairedL1, TinyInpainter, TinyRestorer, TinyUpscaler, UnpairedPool
from conftest import run_cli

from imagegen import checkpoint as ckpt
from imagegen import registry
from imagegen.errors import ConfigError
from imagegen.sampling.image_files import open_inputs, plan_outputs
from imagegen.sampling.tiling import pad_to_multiple, tiled
from imagegen.sampling.translate import map_images

pytestmark = pytest.mark.usefixtures("one_thread")

MODELS = {"unpaired-pool": UnpairedPool, "paired-l1": PairedL1, "tiny-denoiser": TinyRestorer,
          "tiny-upscaler": TinyUpscaler, "tiny-inpainter": TinyInpainter}


@pytest.fixture
def runs(monkeypatch, tmp_path):
    """Register the test models and save one run of each (plus a dcgan, which does not translate)."""
    registry._ensure_loaded()
    for name, cls in MODELS.items():
        monkeypatch.setitem(registry._MODELS, name, cls)
        monkeypatch.setattr(cls, "model_name", name)
    from imagegen.models.dcgan import DCGAN, DCGANConfig

    torch.manual_seed(0)
    made = {"unpaired-pool": UnpairedPool(UnpairedPool.Config(channels=1)),
            "paired-l1": PairedL1(PairedL1.Config(channels=1)),
            "tiny-denoiser": TinyRestorer(TinyRestorer.Config(multiple=4)),
            "tiny-upscaler": TinyUpscaler(TinyUpscaler.Config(multiple=2, scale=2,
                                                              degradation={"task": "super-resolution", "scale": 2})),
            "tiny-inpainter": TinyInpainter(TinyInpainter.Config(
                multiple=1, degradation={"task": "inpaint", "mask": "centre", "mask_fraction": 0.25})),
            "dcgan": DCGAN(DCGANConfig(resolution=8, channels=1, z_dim=4, g_width=4, d_width=4))}
    out = {}
    for name, model in made.items():
        run = tmp_path / "runs" / name
        ckpt.save_checkpoint(run, "step-0000001", model, ckpt.checkpoint_meta(name, model.config), {})
        out[name] = run
    return out


def _gray(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def _inputs(folder, rgb: bool = False):
    """``a.png`` (13×9), ``sub/b.png`` (7×10) and ``sub/c.jpg`` (5×6; JPEG, so only its size is checked)."""
    (folder / "sub").mkdir(parents=True)
    a = _gray(9, 13, 1)
    Image.fromarray(np.stack([a] * 3, -1) if rgb else a).save(folder / "a.png")
    Image.fromarray(_gray(10, 7, 2)).save(folder / "sub" / "b.png")
    Image.fromarray(_gray(6, 5, 3)).save(folder / "sub" / "c.jpg")
    return folder


def _read(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def test_translate_keeps_sizes_and_names_of_a_folder(runs, tmp_path, capsys):
    src = _inputs(tmp_path / "in", rgb=True)
    out = tmp_path / "out"
    code, stdout, err = run_cli(["translate", runs["tiny-denoiser"], "--input", src, "--out", out,
                                 "--grid", tmp_path / "grid.png", "--no-progress"], capsys)
    assert code == 0, err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["a.png", "sub/b.png", "sub/c.png"]
    # the identity model through reflection padding to multiples of 4 and back: the same pixels, same sizes
    np.testing.assert_array_equal(_read(out / "a.png"), _read(src / "a.png")[..., 0])
    np.testing.assert_array_equal(_read(out / "sub" / "b.png"), _read(src / "sub" / "b.png"))
    assert _read(out / "sub" / "c.png").shape == (6, 5)
    assert "1 of 3 input image(s) are colour; converted to grayscale" in err
    assert "translated (tiny-denoiser AB) 3 images to" in stdout and "grid:" in stdout
    grid = _read(tmp_path / "grid.png")
    assert grid.shape[1] > 2.5 * grid.shape[0]  # one row of three input | output pairs


def test_translate_a_zip_and_single_files(runs, tmp_path, capsys):
    src = _inputs(tmp_path / "in")
    archive = tmp_path / "in.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in src.rglob("*.*"):
            zf.write(p, "photos/" + p.relative_to(src).as_posix())
    code, _, err = run_cli(["translate", runs["unpaired-pool"], "--input", archive, "--out", tmp_path / "z"], capsys)
    assert code == 0, err
    assert sorted(p.relative_to(tmp_path / "z").as_posix() for p in (tmp_path / "z").rglob("*.png")) == [
        "photos/a.png", "photos/sub/b.png", "photos/sub/c.png"]
    assert _read(tmp_path / "z" / "photos" / "sub" / "b.png").shape == (10, 7)
    code, _, err = run_cli(["translate", runs["paired-l1"], "--input", src / "a.png", "--out", tmp_path / "one.png"],
                           capsys)
    assert code == 0, err
    assert _read(tmp_path / "one.png").shape == (9, 13)
    code, _, err = run_cli(["translate", runs["paired-l1"], "--input", src / "sub" / "c.jpg", "--out",
                            tmp_path / "folder"], capsys)
    assert code == 0, err
    assert _read(tmp_path / "folder" / "c.png").shape == (6, 5)


def test_outputs_are_not_overwritten_without_force(runs, tmp_path, capsys):
    src = _inputs(tmp_path / "in")
    run = runs["tiny-denoiser"]
    out = tmp_path / "out"
    assert run_cli(["translate", run, "--input", src, "--out", out], capsys)[0] == 0
    code, _, err = run_cli(["translate", run, "--input", src, "--out", out], capsys)
    assert code == 2 and "exists and is not empty; pass --force" in err and err.count("\n") == 1
    assert run_cli(["translate", run, "--input", src, "--out", out, "--force"], capsys)[0] == 0
    (tmp_path / "x.png").write_bytes(b"mine")
    code, _, err = run_cli(["translate", run, "--input", src / "a.png", "--out", tmp_path / "x.png"], capsys)
    assert code == 2 and "already exists; pass --force" in err and (tmp_path / "x.png").read_bytes() == b"mine"
    code, _, err = run_cli(["translate", run, "--input", src / "a.png", "--out", src / "a.png", "--force"], capsys)
    assert code == 2 and "would overwrite the input" in err
    code, _, err = run_cli(["translate", run, "--input", src, "--out", tmp_path / "y.png"], capsys)
    assert code == 2 and "holds 3 images; give an output folder" in err
    Image.fromarray(_gray(9, 13)).save(src / "a.jpg")  # a.jpg and a.png would both become a.png
    code, _, err = run_cli(["translate", run, "--input", src, "--out", tmp_path / "new"], capsys)
    assert code == 2 and "would both be written to" in err
    (tmp_path / "g.png").write_bytes(b"mine")
    code, _, err = run_cli(["translate", run, "--input", src / "a.png", "--out", tmp_path / "n.png",
                            "--grid", tmp_path / "g.png"], capsys)
    assert code == 2 and "choose another --grid" in err


@pytest.mark.parametrize("case, message", [
    ("dcgan", "does not translate images"),
    ("direction", "--direction BA: unpaired-pool translates AB only"),
    ("missing", "does not exist"),
    ("empty", "holds no PNG, JPEG or WebP images"),
    ("corrupt", "cannot read image"),
    ("small", "is 3x5 pixels; tiny-denoiser needs images of at least 4x4"),
])
def test_translate_errors_are_one_line(runs, tmp_path, capsys, case, message):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_gray(8, 8)).save(src / "ok.png")
    run, args = runs["tiny-denoiser"], []
    if case == "dcgan":
        run = runs["dcgan"]
    elif case == "direction":
        run, args = runs["unpaired-pool"], ["--direction", "BA"]
    elif case == "missing":
        src = tmp_path / "absent"
    elif case == "empty":
        src = tmp_path / "empty"
        src.mkdir()
    elif case == "corrupt":
        (src / "bad.png").write_bytes(b"\x89PNG not really")
    elif case == "small":
        Image.fromarray(_gray(5, 3)).save(src / "tiny.png")
    code, _, err = run_cli(["translate", run, "--input", src, "--out", tmp_path / "out", *args], capsys)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()  # nothing was written


def test_network_size_errors_become_config_errors(tmp_path):
    Image.fromarray(_gray(4, 4)).save(tmp_path / "a.png")
    inputs = open_inputs(tmp_path / "a.png")
    pad = torch.nn.ReflectionPad2d(4)  # deeper than a 4×4 image allows
    plan = plan_outputs(inputs, tmp_path / "o", False)
    with pytest.raises(ConfigError, match=r"a.png \(4x4 pixels after padding\): too small for net"):
        map_images(lambda x, m: pad(x), inputs, plan, channels=1, multiple=1, model_name="net")

    def refuse(x, m):
        raise ConfigError("net needs sides of at least 8 pixels")

    with pytest.raises(ConfigError, match=r"a.png \(4x4 pixels after padding\): net needs sides of at least 8"):
        map_images(refuse, inputs, plan, channels=1, multiple=1, model_name="net")
    assert not (tmp_path / "o").exists()


def test_tiles_give_the_untiled_result_for_a_pixelwise_model():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 3, 1)

    def fn(x, mask):
        return torch.tanh(conv(x))

    img = torch.rand(1, 3, 52, 36) * 2 - 1
    with torch.no_grad():
        full = fn(img, None)
        for tile, overlap in ((16, 4), (20, 8), (12, 0)):
            torch.testing.assert_close(tiled(fn, img, None, tile, overlap, 4, 3), full)
        up = lambda x, m: torch.nn.functional.interpolate(fn(x, m), scale_factor=2)  # noqa: E731 - super-resolution
        torch.testing.assert_close(tiled(up, img, None, 16, 4, 4, 5), up(img, None))
    padded, (top, left) = pad_to_multiple(img[..., :51, :33], 4)
    assert padded.shape[-2:] == (52, 36) and (top, left) == (0, 1)
    torch.testing.assert_close(padded[..., top:top + 51, left:left + 33], img[..., :51, :33])


def test_cli_tiling_matches_untiled(runs, tmp_path, capsys):
    Image.fromarray(_gray(37, 45)).save(tmp_path / "big.png")
    run = runs["tiny-upscaler"]  # ×2, size multiple 2
    for tile in ("0", "16"):
        code, out, err = run_cli(["restore", run, "--input", tmp_path / "big.png", "--out", tmp_path / f"t{tile}.png",
                                  "--tile", tile], capsys)
        assert code == 0, err
    assert "1 tiled" in out and "×2 size" in out
    a, b = _read(tmp_path / "t0.png"), _read(tmp_path / "t16.png")
    assert a.shape == (74, 90)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[::2, ::2], _read(tmp_path / "big.png"))  # nearest ×2 of the input
    code, _, err = run_cli(["restore", run, "--input", tmp_path / "big.png", "--out", tmp_path / "t1.png",
                            "--tile", "1"], capsys)
    assert code == 2 and "--tile 1: give 0 (never tile) or at least 2 pixels" in err


def test_restore_checks_the_run_and_the_task(runs, tmp_path, capsys):
    Image.fromarray(_gray(8, 8)).save(tmp_path / "a.png")
    base = ["--input", tmp_path / "a.png", "--out", tmp_path / "o.png"]
    code, _, err = run_cli(["restore", runs["unpaired-pool"], *base], capsys)
    assert code == 2 and "unpaired-pool is not a restoration model" in err and err.count("\n") == 1
    code, _, err = run_cli(["restore", runs["tiny-upscaler"], *base, "--task", "denoise"], capsys)
    assert code == 2 and "--task denoise: this tiny-upscaler run was trained for super-resolution (scale 2)" in err
    code, _, err = run_cli(["restore", runs["tiny-denoiser"], *base, "--mask", tmp_path / "a.png"], capsys)
    assert code == 2 and "restores by denoise, not inpainting; drop --mask" in err
    code, out, err = run_cli(["restore", runs["tiny-denoiser"], *base, "--task", "denoise"], capsys)
    assert code == 0 and "restored (tiny-denoiser, denoise) 1 image to" in out
    np.testing.assert_array_equal(_read(tmp_path / "o.png"), _read(tmp_path / "a.png"))


def test_restore_uses_the_masks(runs, tmp_path, capsys):
    run = runs["tiny-inpainter"]
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for name in ("a", "sub/b"):
        Image.fromarray(np.zeros((6, 9), np.uint8)).save(src / f"{name}.png")
    mask = np.zeros((6, 9), np.uint8)
    mask[1:3, 2:5] = 255  # white = missing
    Image.fromarray(mask).save(src / "a_mask.png")  # beside its image, as imagegen degrade writes
    code, _, err = run_cli(["restore", run, "--input", src, "--out", tmp_path / "o1", "--task", "inpaint"], capsys)
    assert code == 0, err
    assert "masks: 1 NAME_mask.png file(s) beside the inputs, the model's default for 1 other(s)" in err
    assert sorted(p.name for p in (tmp_path / "o1").rglob("*.png")) == ["a.png", "b.png"]  # masks not restored
    np.testing.assert_array_equal(_read(tmp_path / "o1" / "a.png") == 255, mask == 255)
    centre = np.zeros((6, 9), bool)
    centre[1:4, 2:6] = True  # the model's default: the centre
    np.testing.assert_array_equal(_read(tmp_path / "o1" / "sub" / "b.png") == 255, centre)
    # masks from a folder named like the inputs
    masks = tmp_path / "masks"
    (masks / "sub").mkdir(parents=True)
    Image.fromarray(mask).save(masks / "a.png")
    Image.fromarray(255 - mask).save(masks / "sub" / "b_mask.png")
    (src / "a_mask.png").unlink()
    code, out, err = run_cli(["restore", run, "--input", src, "--mask", masks, "--out", tmp_path / "o2",
                              "--tile", "4"], capsys)
    assert code == 0, err
    assert "2 tiled" in out  # masks are cut into the same tiles
    np.testing.assert_array_equal(_read(tmp_path / "o2" / "a.png") == 255, mask == 255)
    np.testing.assert_array_equal(_read(tmp_path / "o2" / "sub" / "b.png") == 255, mask != 255)
    (masks / "sub" / "b_mask.png").unlink()
    code, _, err = run_cli(["restore", run, "--input", src, "--mask", masks, "--out", tmp_path / "o3"], capsys)
    assert code == 2 and "has no mask for" in err and "sub/b.png" in err
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "m.png")
    code, _, err = run_cli(["restore", run, "--input", src / "a.png", "--mask", tmp_path / "m.png", "--out",
                            tmp_path / "o4.png"], capsys)
    assert code == 2 and "is 5x5 but" in err and "give a mask of the image's size" in err
