"""pix2pix (Isola et al. 2017): U-Net skip shapes, the conditional PatchGAN, the loss (Eq. 4 with D halved),
inference as the paper (seeded dropout, per-image batch-norm statistics) or in eval mode, translation
sizes and directions, and CLI runs on side-by-side and A/ B/ folder pairs. Tiny widths and sizes only."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import run_cli
from imagegen.errors import ConfigError
from imagegen.models.pix2pix import Pix2Pix, Pix2PixConfig
from imagegen.nn.image2image import UnetGenerator, unet_widths
from imagegen.sampling import load_run

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(resolution=16, channels=3, g_width=4, d_width=4, d_layers=2, dropout_layers=2)


def tiny(**kw) -> Pix2Pix:
    torch.manual_seed(0)
    return Pix2Pix(Pix2PixConfig(**{**TINY, **kw}))


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ---- U-Net ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth, size", [(4, (16, 16)), (5, (32, 32)), (5, (32, 64)), (4, (48, 16))])
def test_unet_skip_connections_join_maps_of_the_same_size(depth, size):
    width, (H, W) = 3, size
    c = unet_widths(depth, width)
    assert c == [width * min(2 ** i, 8) for i in range(depth)]
    net = UnetGenerator(2, 1, depth, width, norm="batch", dropout_layers=2)
    downs, ups = [], []
    for m in net.downs:
        m.register_forward_hook(lambda mod, inp, out: downs.append(tuple(out.shape)))
    for m in net.ups:
        m.register_forward_pre_hook(lambda mod, inp: ups.append(tuple(inp[0].shape)))
    out = net(rand(2, 2, H, W))
    assert out.shape == (2, 1, H, W) and out.abs().max() <= 1
    assert downs == [(2, c[i], H >> (i + 1), W >> (i + 1)) for i in range(depth)]
    # decoder layer j reads the innermost map (j = 0), then its predecessor's output beside the encoder map
    # of the same size: twice the channels
    assert ups[0] == downs[-1]
    assert ups[1:] == [(2, 2 * c[depth - 1 - j], H >> (depth - j), W >> (depth - j)) for j in range(1, depth)]


def test_unet_widths_follow_the_paper_at_256():
    w = 2  # the paper's 64 is w = 64: C64-C128-C256-C512-C512-C512-C512-C512 and CD512×3-C512-C256-C128-C64
    net = UnetGenerator(3, 3, 8, w)
    assert [net.downs[0].out_channels] + [m[1].out_channels for m in list(net.downs)[1:]] == [
        w, 2 * w, 4 * w, 8 * w, 8 * w, 8 * w, 8 * w, 8 * w]
    assert [m[1].out_channels for m in net.ups] == [8 * w, 8 * w, 8 * w, 8 * w, 4 * w, 2 * w, w, 3]
    assert isinstance(net.downs[0], torch.nn.Conv2d)  # no norm on C64
    assert isinstance(net.downs[1][2], torch.nn.BatchNorm2d) and isinstance(net.downs[-1][2], torch.nn.Identity)
    with pytest.raises(ConfigError):
        UnetGenerator(3, 3, 4, 8, dropout_layers=4)


def test_dropout_acts_in_training_and_in_eval_only_with_a_generator():
    net = UnetGenerator(1, 1, 4, 4, norm="instance", dropout_layers=3)
    x = rand(2, 1, 16, 16)
    net.eval()
    assert torch.equal(net(x), net(x))  # no generator: no dropout
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    assert torch.equal(net(x, g(1)), net(x, g(1))) and not torch.equal(net(x, g(1)), net(x, g(2)))
    net.train()
    torch.manual_seed(3)
    a = net(x)
    torch.manual_seed(3)
    assert torch.equal(a, net(x)) and not torch.equal(a, net(x))  # torch's global RNG


# ---- the model ------------------------------------------------------------------------------------------
def test_the_discriminator_is_conditioned_on_the_input():
    model = tiny()
    assert model.D.net[0].in_channels == 6  # [A, B] concatenated
    a, b = rand(2, 3, 16, 16, seed=1), rand(2, 3, 16, 16, seed=2)
    with torch.no_grad():
        assert not torch.equal(model.D(torch.cat([a, b], 1)), model.D(torch.cat([-a, b], 1)))


def test_losses_are_eq4_with_the_discriminator_halved():
    model = tiny(jitter=False)
    a, b = rand(3, 3, 16, 16, seed=1), rand(3, 3, 16, 16, seed=2)
    torch.manual_seed(5)
    out = model.training_step("G", {"A": a, "B": b})
    torch.manual_seed(5)
    fake = model.G(a)  # the same dropout masks
    fake_logits = model.D(torch.cat([a, fake], 1))
    assert out["l1"].item() == pytest.approx((fake - b).abs().mean().item(), rel=1e-5)
    assert out["adv"].item() == pytest.approx(F.softplus(-fake_logits).mean().item(), rel=1e-5)  # −log σ(D)
    assert out["loss"].item() == pytest.approx(out["adv"].item() + 100 * out["l1"].item(), rel=1e-5)
    d = model.training_step("D", {"A": a, "B": b})
    real_logits = model.D(torch.cat([a, b], 1))
    fake_logits = model.D(torch.cat([a, fake.detach()], 1))
    bce = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
           + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    assert d["loss"].item() == pytest.approx(0.5 * bce.item(), rel=1e-4)
    assert 0 < d["d_real"].item() < 1 and 0 < d["d_fake"].item() < 1
    ls = tiny(jitter=False, loss="lsgan")
    assert ls.training_step("G", {"A": a, "B": b})["loss"] > 0


def test_paper_inference_is_seeded_dropout_with_per_image_statistics():
    model = tiny(dropout_layers=0).train()
    x = rand(4, 3, 16, 16)
    # batch norm with each image's own statistics: an image's output does not depend on its batch
    torch.testing.assert_close(model.translate(x)[:1], model.translate(x[:1]), rtol=0, atol=1e-5)
    noisy = tiny().train()
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    assert torch.equal(noisy.translate(x, generator=g(1)), noisy.translate(x, generator=g(1)))
    assert not torch.equal(noisy.translate(x, generator=g(1)), noisy.translate(x, generator=g(2)))
    assert torch.equal(noisy.predict({"A": x}), noisy.predict({"A": x}))  # no generator: seed 0
    assert noisy.training
    eval_mode = tiny(inference="eval")  # the same weights
    assert torch.equal(eval_mode.translate(x, generator=g(1)), eval_mode.translate(x, generator=g(2)))  # no dropout
    plain = tiny(dropout_layers=0, inference="eval")
    assert not torch.allclose(plain.translate(x), model.translate(x), atol=1e-3)  # running statistics instead


@pytest.mark.parametrize("size", [(16, 16), (16, 48), (32, 16)])
def test_translation_keeps_the_input_size(size):
    model = tiny()
    assert model.size_multiple == 16
    img = rand(2, 3, *size)
    out = model.translate(img)
    assert out.shape == img.shape and out.min() >= -1 and out.max() <= 1


def test_translate_rejects_the_other_direction_and_bad_sizes():
    model = tiny()
    with pytest.raises(ConfigError, match="translates AB only"):
        model.translate(rand(1, 3, 16, 16), "BA")
    with pytest.raises(ConfigError, match="multiples of 16"):
        model.translate(rand(1, 3, 24, 16))
    with pytest.raises(ConfigError):
        model.translate(rand(1, 1, 16, 16))


def test_preview_rows_are_input_output_target():
    model = tiny()
    a, b = rand(4, 3, 16, 16, seed=1), rand(4, 3, 16, 16, seed=2)
    grid, nrow = model.preview({"A": a, "B": b}, torch.Generator().manual_seed(0), 6)
    assert nrow == 3 and grid.shape == (6, 3, 16, 16)
    assert torch.equal(grid[0], a[0]) and torch.equal(grid[2], b[0]) and torch.equal(grid[5], b[1])
    assert torch.equal(grid[1::3], model.translate(a[:2], generator=torch.Generator().manual_seed(0)))


def test_config_defaults_and_errors():
    cfg = Pix2PixConfig()
    assert (cfg.lambda_l1, cfg.lr, cfg.beta1, cfg.loss, cfg.norm, cfg.depth) == (100.0, 2e-4, 0.5, "nonsaturating",
                                                                                "batch", 8)
    assert (cfg.d_layers, cfg.dropout_layers, cfg.inference) == (3, 3, "paper")
    for bad in (dict(resolution=24), dict(resolution=16, d_layers=3), dict(resolution=8, dropout_layers=3),
                dict(channels=4), dict(lambda_l1=-1.0), dict(decay_start=-0.1), dict(jitter_scale=0.5)):
        with pytest.raises(ConfigError):
            Pix2PixConfig(**bad)
    from imagegen.models.base import StepContext

    decay = tiny(decay_start=0.5).lr_schedules()
    assert [decay["D"](StepContext(s, 10, 0)) for s in (0, 5, 8, 10)] == pytest.approx([1.0, 1.0, 0.4, 0.0])


# ---- CLI --------------------------------------------------------------------------------------------------
def side_by_side(folder, n: int) -> None:
    """n 32×16 PNGs: a random A on the left, B = its negative on the right."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([a, 255 - a], 1)).save(folder / f"{i:02d}.png")


def pix2pix_args(data, out) -> list:
    return ["train", "pix2pix", "--data", data, "--resolution", "16", "--g-width", "4", "--d-width", "4",
            "--d-layers", "2", "--dropout-layers", "2", "--steps", "2", "--batch-size", "2", "--threads", "1",
            "--grid-size", "6", "--no-progress", "--out", out]


def test_cli_trains_on_side_by_side_pairs(tmp_path, capsys):
    side_by_side(tmp_path / "pairs", 6)
    run = tmp_path / "run"
    code, _, err = run_cli(pix2pix_args(tmp_path / "pairs", run), capsys)
    assert code == 0, err
    meta = json.loads((run / "config.json").read_text())
    assert meta["dataset"]["kind"] == "paired" and meta["dataset"]["num_images"] == 6
    assert meta["dataset"]["resolution"] == 16  # each 32×16 file split into two 16×16 halves
    model = load_run(run)
    assert isinstance(model, Pix2Pix) and model.translate(rand(1, 3, 32, 16)).shape == (1, 3, 32, 16)
    assert (run / "samples" / "step-0000002.png").is_file()


def test_a_constant_rate_trains_on_a_minutes_budget_alone(tmp_path, capsys):
    # the colourisation proof's command (docs/image_to_image.md): --decay-start 1.0 --minutes, no --steps
    side_by_side(tmp_path / "pairs", 6)

    def open_ended(out) -> list:
        args = pix2pix_args(tmp_path / "pairs", out)
        i = args.index("--steps")
        return args[:i] + args[i + 2:] + ["--minutes", "0.01"]

    code, _, err = run_cli(open_ended(tmp_path / "run") + ["--decay-start", "1.0"], capsys)
    assert code == 0, err
    assert (tmp_path / "run" / "checkpoints").is_dir()
    # the default decay to zero needs the run's length
    code, _, err = run_cli(open_ended(tmp_path / "decay"), capsys)
    assert code == 2 and "needs the run's length" in err


def test_cli_pairs_folders_by_name_and_refuses_unmatched_names(tmp_path, capsys):
    rng = np.random.default_rng(1)
    for side in ("A", "B"):
        (tmp_path / "pairs" / side).mkdir(parents=True)
        for i in range(4):
            img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(img).save(tmp_path / "pairs" / side / f"{i}.png")
    code, _, err = run_cli(pix2pix_args(tmp_path / "pairs", tmp_path / "run"), capsys)
    assert code == 0, err
    (tmp_path / "pairs" / "B" / "3.png").rename(tmp_path / "pairs" / "B" / "other.png")
    code, _, err = run_cli(pix2pix_args(tmp_path / "pairs", tmp_path / "run2"), capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no partner" in err, err


def test_cli_trains_with_ada_and_logs_p(tmp_path, capsys):
    side_by_side(tmp_path / "pairs", 6)
    run = tmp_path / "run"
    code, _, err = run_cli([*pix2pix_args(tmp_path / "pairs", run), "--augment", "ada", "--ada-kimg", "0.001",
                            "--ada-interval", "1", "--log-every", "1"], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in (run / "logs" / "scalars.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(0.0 <= r["D/ada_p"] <= 1.0 for r in rows)
    assert load_run(run).config.augment == "ada"
    code, _, err = run_cli(["train", "pix2pix", "--resume", run, "--steps", "3", "--no-progress"], capsys)
    assert code == 0, err
