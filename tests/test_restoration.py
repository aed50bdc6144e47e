"""Restoration models (dncnn, srresnet, context-encoder), their evaluation and baselines, and the
``imagegen degrade`` command. The shared suite (tests/test_models.py) covers construction,
determinism, every phase, save/load and exact resume."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_cli
from test_degradations import smooth_images

from imagegen.data import ImageDataset
from imagegen.data.degradations import Degradation, Degraded, item_seed
from imagegen.errors import ConfigError
from imagegen.metrics.baselines import BASELINES, evaluate_baseline, make_baseline
from imagegen.metrics.paired import evaluate_paired, evaluate_restorer, paired_scores
from imagegen.models.dncnn import DnCNN, DnCNNConfig
from imagegen.models.inpaint import ContextEncoder, ContextEncoderConfig
from imagegen.models.srnet import SRResNet, SRResNetConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def smooth_dataset(n: int = 6, c: int = 3, size: int = 32) -> ImageDataset:
    imgs = ((smooth_images(n, c, size, size) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    return ImageDataset(imgs, name="smooth")


def _perturb(model: torch.nn.Module) -> None:
    """Move the weights off their initialisation (zero last layers) so outputs depend on them."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))


# ---- the models ------------------------------------------------------------------------------------------
def test_dncnn_is_residual_learning():
    """x̂ = y − R(y) (Zhang et al. 2017, §III-B): the network predicts the noise; untrained, R = 0."""
    model = DnCNN(DnCNNConfig(channels=3, depth=4, width=8)).eval()
    y = Degradation.denoise(25).apply(smooth_images(2)).image
    assert torch.equal(model.restore(y), y)  # the last layer starts at zero: the identity
    _perturb(model)
    with torch.no_grad():
        noise = model.G(y)
    assert noise.abs().max() > 0
    torch.testing.assert_close(model.restore(y), (y - noise).clamp(-1, 1))
    assert model.restoration_task == "denoise" and model.directions == ("AB",)
    assert torch.equal(model.translate(y, "AB"), model.restore(y))
    with pytest.raises(ConfigError, match="--direction BA"):
        model.translate(y, "BA")
    with pytest.raises(ConfigError, match="inpainting models only"):
        model.restore(y, torch.zeros(2, 1, 32, 32, dtype=torch.bool))
    with pytest.raises(ConfigError, match="greyscale|RGB"):
        model.restore(y[:, :1])


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_super_resolution_output_is_scale_times_the_input(scale):
    model = SRResNet(SRResNetConfig(channels=1, scale=scale, resolution=12 * scale, width=4, num_blocks=1))
    lr = torch.rand(2, 1, 5, 7) * 2 - 1  # any size, not only the training resolution / scale
    # untrained, the residual model is the antialiased bicubic upsampling
    bicubic = make_baseline("bicubic", model.degradation)
    torch.testing.assert_close(model.restore(lr), bicubic(Degraded(lr, None)))
    _perturb(model)
    out = model.restore(lr)
    assert out.shape == (2, 1, 5 * scale, 7 * scale) and out.min() >= -1 and out.max() <= 1
    plain = SRResNet(SRResNetConfig(channels=1, scale=scale, resolution=12 * scale, width=4, num_blocks=0,
                                    residual=False))
    assert plain.restore(lr).shape == (2, 1, 5 * scale, 7 * scale)


def test_context_encoder_keeps_known_pixels_and_defaults_to_the_centre_mask():
    model = ContextEncoder(ContextEncoderConfig(channels=3, resolution=16, width=4, num_down=2, num_blocks=1, d_layers=1,
                                                mask_fraction=0.25))
    _perturb(model)
    clean = smooth_images(2, 3, 16, 24)  # another size than the training one (multiples of 4)
    d = Degradation.inpaint("rectangles").apply(clean, torch.Generator().manual_seed(0))
    out = model.restore(d.image, d.mask)
    known = ~d.mask.expand_as(clean)
    assert torch.equal(out[known], d.image[known]) and not torch.equal(out[~known], d.image[~known])
    # the holes' content is never read
    assert torch.equal(model.restore(torch.where(d.mask, torch.ones_like(clean), d.image), d.mask), out)
    centre = Degradation.inpaint("centre", 0.25).apply(clean)
    assert torch.equal(model.restore(centre.image), model.restore(centre.image, centre.mask))
    assert torch.equal(model.translate(centre.image), model.restore(centre.image))
    assert model.size_multiple == 4
    with pytest.raises(ConfigError, match="multiples of 4"):
        model.restore(clean[:, :, :14])
    with pytest.raises(ConfigError, match="mask"):
        model.restore(d.image, d.mask[:, :, :8])


def test_predict_and_preview_show_degraded_restored_clean():
    model = SRResNet(SRResNetConfig(channels=3, scale=2, resolution=16, width=4, num_blocks=1))
    clean = smooth_images(3, 3, 16, 16)
    assert torch.equal(model.predict({"img": clean}), model.predict({"img": clean}))  # seeded by default
    lr = Degradation.super_resolution(2).apply(clean).image
    assert torch.equal(model.predict({"input": lr}), model.restore(lr))
    grid, nrow = model.preview({"img": clean}, torch.Generator().manual_seed(0), 2)
    assert nrow == 2 and grid.shape == (6, 3, 16, 16)
    assert torch.equal(grid[4:], clean[:2])


def test_restoration_models_train_to_beat_their_input():
    """A few dozen steps on smooth images: the denoiser beats the noisy input, the upsampler bicubic."""
    clean = smooth_images(16, 1, 16, 16, seed=1)
    ds = ImageDataset(((clean + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy(), name="smooth")
    for model, steps in ((DnCNN(DnCNNConfig(channels=1, resolution=16, depth=4, width=8, lr=3e-3)), 40),
                         (SRResNet(SRResNetConfig(channels=1, resolution=16, scale=2, width=8, num_blocks=1,
                                                  lr=1e-3)), 40)):
        torch.manual_seed(0)
        opt = model.configure_optimizers()["G"]
        floor = evaluate_baseline("input" if model.restoration_task == "denoise" else "bicubic", ds,
                                  model.degradation)["psnr"]
        for _ in range(steps):
            out = model.training_step("G", {"img": clean})
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
        assert evaluate_paired(model, ds)["psnr"] > floor + 1.0, model.model_name  # measured: +5.7 / +2.5 dB


# ---- evaluation and baselines -----------------------------------------------------------------------------
def test_evaluation_degrades_held_out_images_with_per_image_seeds():
    ds = smooth_dataset(5)
    deg = Degradation.denoise(25)
    seen = []
    res = evaluate_restorer(lambda d: seen.append(d.image) or d.image, ds, deg, batch_size=2, seed=3)
    inputs = torch.cat(seen)
    clean = ds.get_batch(torch.arange(5))[0]
    assert torch.equal(inputs, deg.apply_seeded(clean, [item_seed(3, i) for i in range(5)]).image)
    again = evaluate_restorer(lambda d: d.image, ds, deg, batch_size=5, seed=3)
    assert res["psnr"] == again["psnr"] and res["num_images"] == 5
    assert float(paired_scores(inputs, clean)["psnr"].mean()) == pytest.approx(res["psnr"])
    assert "sigma 25" in res["protocol"]["degradation"]["description"]


@pytest.mark.parametrize("task,deg", [("denoise", Degradation.denoise(25)), ("denoise", Degradation.denoise(10, 40)),
                                      ("super-resolution", Degradation.super_resolution(2)),
                                      ("inpaint", Degradation.inpaint("centre", 0.1))])
def test_baselines_improve_over_the_degraded_input(task, deg):
    ds = smooth_dataset(2, 3, 32)
    if deg.task == "denoise" and deg.blind:  # σ is estimated per image (scikit-image's estimate_sigma)
        try:
            import pywt  # noqa: F401
        except ImportError:
            with pytest.raises(ConfigError, match="pip install PyWavelets"):
                evaluate_baseline("nl-means", ds, deg)
            pytest.skip("estimating sigma needs PyWavelets")
    if task == "super-resolution":  # the floor: the input enlarged by pixel repetition
        floor = evaluate_restorer(lambda d: torch.nn.functional.interpolate(d.image, scale_factor=2), ds, deg)["psnr"]
    else:
        floor = evaluate_baseline("input", ds, deg)["psnr"]
    names = [n for n in BASELINES[task] if n not in ("input", "wavelet", "bm3d")]  # optional packages: below
    for name in names:
        res = evaluate_baseline(name, ds, deg)
        assert res["psnr"] > floor + 1.0, (name, res["psnr"], floor)
        assert res["protocol"]["baseline"]["name"] == name
    with pytest.raises(ConfigError, match="unknown"):
        make_baseline("bicubic" if task != "super-resolution" else "tv", deg)


@pytest.mark.parametrize("name,package", [("wavelet", "pywt"), ("bm3d", "bm3d")])
def test_optional_denoising_baselines(name, package, monkeypatch):
    ds, deg = smooth_dataset(1, 3, 32), Degradation.denoise(25)
    try:
        __import__(package)
    except ImportError:  # not installed: a one-line error naming the package
        with pytest.raises(ConfigError, match="pip install"):
            make_baseline(name, deg)
        pytest.skip(f"{package} is not installed")
    assert evaluate_baseline(name, ds, deg)["psnr"] > evaluate_baseline("input", ds, deg)["psnr"] + 3
    monkeypatch.setitem(__import__("sys").modules, package, None)  # as if it were not installed
    with pytest.raises(ConfigError, match="pip install"):
        make_baseline(name, deg)


# ---- the CLI -------------------------------------------------------------------------------------------------
def _write_images(folder, n: int = 2, size=(20, 24)):
    folder.mkdir(parents=True)
    arr = ((smooth_images(n, 3, *size) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    for i, a in enumerate(arr):
        Image.fromarray(a).save(folder / f"img{i}.png")
    return arr


def test_degrade_cli_writes_reproducible_files_and_refuses_to_overwrite(tmp_path, capsys):
    arr = _write_images(tmp_path / "in")
    code, out, err = run_cli(["degrade", "--task", "denoise", "--sigma", "30", "--seed", "5", "--input",
                              tmp_path / "in", "--out", tmp_path / "noisy"], capsys)
    assert code == 0, err
    assert "sigma 30" in out
    written = np.asarray(Image.open(tmp_path / "noisy" / "img1.png"))
    clean = torch.from_numpy(arr[1:2]).permute(0, 3, 1, 2).float() / 127.5 - 1
    expected = Degradation.denoise(30).apply_seeded(clean, [item_seed(5, 1)]).image  # image 1 of the folder
    assert np.array_equal(written, ((expected[0].permute(1, 2, 0) + 1) * 127.5).round().byte().numpy())
    code, _, err = run_cli(["degrade", "--task", "denoise", "--input", tmp_path / "in", "--out", tmp_path / "noisy"],
                           capsys)
    assert code == 2 and "--force" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["degrade", "--task", "denoise", "--force", "--input", tmp_path / "in", "--out",
                            tmp_path / "noisy"], capsys)
    assert code == 0, err

    # one file: super-resolution crops to a multiple of the scale; inpainting writes the mask beside it
    code, _, err = run_cli(["degrade", "--task", "super-resolution", "--scale", "8", "--input",
                            tmp_path / "in" / "img0.png", "--out", tmp_path / "small.png"], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "small.png").size == (3, 2) and "cropped" in err
    code, _, err = run_cli(["degrade", "--task", "inpaint", "--input", tmp_path / "in" / "img0.png", "--out",
                            tmp_path / "hole.png"], capsys)
    assert code == 0, err
    mask = np.asarray(Image.open(tmp_path / "hole_mask.png"))
    assert mask.shape == (20, 24) and set(np.unique(mask)) == {0, 255}
    assert (mask == 255).mean() == pytest.approx(0.25, abs=0.03)


@pytest.mark.parametrize("args,match", [
    (["--task", "denoise", "--input", "MISSING", "--out", "x.png"], "no such file"),
    (["--task", "denoise", "--scale", "2", "--input", "IN", "--out", "x.png"], "--scale does not apply"),
    (["--task", "denoise", "--sigma", "-3", "--input", "IN", "--out", "x.png"], "--sigma"),
    (["--task", "inpaint", "--input", "IN", "--out", "x.jpg"], "use one of .png"),
])
def test_degrade_cli_bad_input_is_a_one_line_error(tmp_path, capsys, args, match):
    _write_images(tmp_path / "in", n=1)
    args = [str(tmp_path / "in" / "img0.png") if a == "IN" else str(tmp_path / a) if a in ("MISSING", "x.png", "x.jpg")
            else a for a in args]
    code, _, err = run_cli(["degrade", *args], capsys)
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("model,options", [
    ("dncnn", ["--depth", "3", "--width", "8", "--sigma", "0", "--sigma-max", "55"]),
    ("srresnet", ["--scale", "2", "--width", "4", "--num-blocks", "1", "--adv-weight", "0.001", "--d-width", "4",
                  "--d-layers", "1"]),
    ("context-encoder", ["--width", "4", "--num-down", "2", "--num-blocks", "1", "--mask", "rectangles",
                         "--d-width", "4", "--d-layers", "1"]),
])
def test_train_and_evaluate_through_the_cli(model, options, tmp_path, capsys):
    run = tmp_path / "run"
    code, _, err = run_cli(["train", model, "--data", "digits", "--resolution", "8", *options, "--steps", "4",
                            "--batch-size", "8", "--no-progress", "--out", run, "--eval-every", "4",
                            "--eval-metrics", "psnr,ssim", "--eval-samples", "16", "--threads", "1"], capsys)
    assert code == 0, err
    meta = json.loads((run / "config.json").read_text())
    deg = Degradation.from_dict(meta["model_config"]["degradation"])
    assert deg.task == {"dncnn": "denoise", "srresnet": "super-resolution", "context-encoder": "inpaint"}[model]
    during = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 < during["ssim"] <= 1 and "digits (test)" in during["protocol"]["pairs"]
    code, out, err = run_cli(["evaluate", run, "--num-real", "20", "--json"], capsys)
    assert code == 0, err
    record = json.loads(out)
    assert np.isfinite(record["psnr"]) and 0 < record["ssim"] <= 1
    assert record["protocol"]["paired"]["pairs"] == "20 evenly spaced of digits:test"
    assert record["protocol"]["paired"]["degradation"]["task"] == deg.task
