"""Autoregressive models (pixelcnn; pixelrnn in test_pixelrnn.py): causality, no blind spot, exact
likelihoods, fast = naive sampling, completion, and the CLI's sample/complete commands."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from imagegen.errors import ConfigError, DataError
from imagegen.models.pixelcnn import PixelCNN, PixelCNNConfig
from imagegen.nn.pixel_heads import LEVELS, LogisticMixtureHead, from_levels
from imagegen.sampling.completion import known_mask

from conftest import run_cli

R = 8
pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors in Python loops (conftest.py)


def pixelcnn(distribution="bernoulli", channels=1, conditional=False, num_layers=3, seed=0, **kw) -> PixelCNN:
    torch.manual_seed(seed)
    cfg = PixelCNNConfig(resolution=R, channels=channels, distribution=distribution, width=8,
                         num_layers=num_layers, head_hidden=4, num_mixtures=3, conditional=conditional,
                         num_classes=3 if conditional else None, **kw)
    return PixelCNN(cfg).double()


def dependencies(model, channels: int, labels=None) -> torch.Tensor:
    """dep[i, j] = bool [R, R]: which input pixels the body's features at (i, j) depend on (by gradients)."""
    x = torch.randn(1, channels, R, R, dtype=torch.float64, requires_grad=True)
    h = model.body(x, labels)
    dep = torch.zeros(R, R, R, R, dtype=torch.bool)
    for i in range(R):
        for j in range(R):
            (g,) = torch.autograd.grad(h[0, :, i, j].sum(), x, retain_graph=True)
            dep[i, j] = g[0].abs().sum(0) > 0
    return dep


ORDER = torch.arange(R * R).view(R, R)


@pytest.mark.parametrize("channels,conditional", [(1, False), (3, True)])
def test_pixelcnn_body_is_causal_and_has_no_blind_spot(channels, conditional):
    """Features at (i, j) never see pixel (i, j) or later ones, and do see every earlier pixel of the
    causal 5×5 neighbourhood, including (i − 1, j + 2), which a stack of masked 3×3 convolutions
    never sees (the blind spot of van den Oord et al. 2016b, §2.2, Figure 1)."""
    model = pixelcnn(channels=channels, conditional=conditional, num_layers=3, first_kernel_size=3)
    dep = dependencies(model, channels, torch.tensor([1]) if conditional else None)
    rows, cols = torch.arange(R).view(R, 1), torch.arange(R).view(1, R)
    for i in range(R):
        for j in range(R):
            earlier = ORDER < i * R + j
            assert not dep[i, j][~earlier].any(), f"features at ({i}, {j}) see the current or a later pixel"
            near = earlier & (rows >= i - 2) & ((cols - j).abs() <= 2)
            assert dep[i, j][near].all(), f"blind spot at ({i}, {j})"


@pytest.mark.parametrize("distribution,channels", [("bernoulli", 1), ("categorical", 3)])
def test_within_a_pixel_channels_depend_only_on_earlier_channels(distribution, channels):
    """Changing sub-pixel (c, 3, 3) changes no logits of earlier pixels nor of channels ≤ c at (3, 3),
    and changes those of the later channels at (3, 3) (R → G → B)."""
    model = pixelcnn(distribution, channels)
    head = model.head

    def logits(x):
        return head.logits(model.body(head.to_input(x), None), head.to_input(x))[0]  # [C, out, H, W]

    x = model.likelihood_targets(torch.rand(1, channels, R, R, dtype=torch.float64) * 2 - 1)
    base = logits(x)
    for c in range(channels):
        y = x.clone()
        y[0, c, 3, 3] = 1 - y[0, c, 3, 3] if distribution == "bernoulli" else -y[0, c, 3, 3]
        changed = (logits(y) - base).abs().amax(1)  # [C, H, W]
        assert torch.all(changed[:, :3] == 0) and torch.all(changed[:, 3, :3] == 0), "an earlier pixel changed"
        assert torch.all(changed[:c + 1, 3, 3] == 0), "a channel sees itself or a later channel"
        assert torch.all(changed[c + 1:, 3, 3] > 0), "a later channel ignores an earlier one"


def test_uniform_model_scores_8_bits_per_dim():
    model = pixelcnn("categorical", 3)
    with torch.no_grad():
        model.head.out.weight.zero_()
        model.head.out.bias.zero_()
    x = model.likelihood_targets(torch.rand(4, 3, R, R, dtype=torch.float64) * 2 - 1)
    lp = model.log_prob(x)
    assert torch.allclose(-lp / (3 * R * R * math.log(2)), torch.full((4,), 8.0, dtype=torch.float64))


def test_logistic_mixture_sums_to_one_over_the_256_values():
    """Grey: the 256 probabilities sum to one. Colour: for a fixed red value r, summing the joint
    over all 256² (green, blue) values gives the red marginal Σ_k π_k P_k(r), computed independently
    from the head's parameters; with the grey check, the joint sums to one."""
    from imagegen.nn.likelihoods import discretized_logistic_log_prob

    torch.manual_seed(0)
    values = from_levels(torch.arange(LEVELS)).double()
    head = LogisticMixtureHead(5, 1, 3, 6).double()
    h = torch.randn(1, 5, 1, 1, dtype=torch.float64) * 3
    total = torch.logsumexp(head.log_prob(h.expand(LEVELS, -1, -1, -1), values.view(LEVELS, 1, 1, 1)), 0)
    assert abs(float(total.detach())) < 1e-7  # float64 rounding: ~1e-9
    head = LogisticMixtureHead(5, 3, 3, 6).double()
    with torch.no_grad():
        logit_pi, mean, log_scale, _ = head.params(h)
        log_pi = torch.log_softmax(logit_pi, 1).view(-1)
        gb = torch.cartesian_prod(values, values)  # [65536, 2]
        for r in (values[40], values[255]):
            x = torch.cat([r.expand(len(gb), 1), gb], 1).view(-1, 3, 1, 1)
            joint = torch.logsumexp(head.log_prob(h.expand(len(x), -1, -1, -1), x), 0)
            marginal = torch.logsumexp(log_pi + discretized_logistic_log_prob(
                r, mean[0, 0, :, 0, 0], log_scale[0, 0, :, 0, 0]), 0)
            assert abs(float(joint - marginal)) < 1e-7


@pytest.mark.parametrize("distribution,channels,conditional", [
    ("bernoulli", 1, False), ("categorical", 3, True), ("logistic_mixture", 3, False)])
def test_fast_and_naive_sampling_agree_exactly(distribution, channels, conditional):
    model = pixelcnn(distribution, channels, conditional)
    labels = torch.tensor([0, 2, 1]) if conditional else None
    a = model.sample(3, torch.Generator().manual_seed(7), labels, method="naive")
    b = model.sample(3, torch.Generator().manual_seed(7), labels, method="fast")
    assert torch.equal(a, b)
    assert a.shape == (3, channels, R, R) and a.min() >= -1 and a.max() <= 1
    if distribution == "bernoulli":
        assert set(a.unique().tolist()) <= {-1.0, 1.0}
    else:  # on the 8-bit grid
        assert torch.allclose(a, from_levels(((a + 1) * 127.5).round().long()).double())


def test_float32_fast_sampling_matches_naive():
    model = pixelcnn("categorical", 1).float()
    a = model.sample(4, torch.Generator().manual_seed(1), method="naive")
    b = model.sample(4, torch.Generator().manual_seed(1), method="fast")
    assert torch.equal(a, b)


def test_completion_keeps_the_given_pixels_and_samples_from_the_conditional():
    model = pixelcnn("categorical", 1)
    img = torch.rand(2, 1, R, R, dtype=torch.float64) * 2 - 1
    known = known_mask("top-half", R)
    out = model.complete(img.repeat_interleave(3, 0), known, generator=torch.Generator().manual_seed(0))
    q = model.likelihood_targets(img).repeat_interleave(3, 0)
    assert torch.equal(out[:, :, :R // 2], q[:, :, :R // 2])
    assert not torch.equal(out[0, :, R // 2:], out[1, :, R // 2:])  # different completions
    fast = model.complete(img, known, generator=torch.Generator().manual_seed(4), method="fast")
    naive = model.complete(img, known, generator=torch.Generator().manual_seed(4), method="naive")
    assert torch.equal(fast, naive)
    # a Bernoulli model thresholds the given pixels
    bern = pixelcnn("bernoulli", 1)
    out = bern.complete(img, known_mask("first:10", R), generator=torch.Generator().manual_seed(0))
    assert torch.equal(out.flatten(1)[:, :10], torch.where(img > 0, 1.0, -1.0).double().flatten(1)[:, :10])


def test_temperature_sharpens_and_bad_values_are_refused():
    model = pixelcnn("categorical", 1)
    cold = model.sample(16, torch.Generator().manual_seed(0), temperature=0.05)
    warm = model.sample(16, torch.Generator().manual_seed(0))
    assert cold.std(0).mean() < warm.std(0).mean()
    for t in (0.0, -1.0, float("inf")):
        with pytest.raises(ConfigError):
            model.sample(1, temperature=t)


def test_bad_input_errors():
    model = pixelcnn("bernoulli", 1)
    with pytest.raises(DataError, match="binar"):
        model.log_prob(torch.rand(2, 1, R, R, dtype=torch.float64))  # 8-bit data, not binarised
    with pytest.raises(ConfigError, match=f"{R}"):
        model.log_prob(torch.zeros(2, 1, R + 1, R + 1, dtype=torch.float64))
    with pytest.raises(ConfigError):
        model.complete(torch.zeros(1, 1, R, R), torch.ones(R, R, dtype=torch.bool))
    for spec in ("top:8", "first:64", "top:0", "left-half", "top:x"):
        with pytest.raises(ConfigError):
            known_mask(spec, R)
    with pytest.raises(ConfigError):
        PixelCNNConfig(kernel_size=4)
    with pytest.raises(ConfigError):
        PixelCNNConfig(distribution="gaussian")  # type: ignore[arg-type]


def test_evaluate_nll_is_exact_and_the_same_for_any_k(tmp_path):
    from imagegen.data import build_dataset
    from imagegen.metrics.nll import evaluate_nll

    model = pixelcnn("bernoulli", 1).float()
    data = build_dataset("digits", split="test", resolution=R)
    a = evaluate_nll(model, data, k=1, num_images=20)
    b = evaluate_nll(model, data, k=50, num_images=20)
    assert a["nll"] == b["nll"] and a["nll"] > 0
    assert abs(a["nll_bpd"] - a["nll"] / (R * R * math.log(2))) < 1e-12


def test_training_nll_scores_evenly_spaced_images_of_a_class_ordered_split():
    """A split stored in class order (black images, then white ones) is represented by both halves in the
    training-time NLL, and the protocol says that the likelihood is exact."""
    from imagegen.data import ImageDataset
    from imagegen.metrics.nll import NLLEvaluator, evaluate_nll

    model = pixelcnn("bernoulli", 1).float()
    imgs = np.zeros((40, R, R, 1), np.uint8)
    imgs[20:] = 255
    data = ImageDataset(imgs, np.repeat([0, 1], 20), name="ordered")
    first = evaluate_nll(model, data, num_images=10)
    black, white = (evaluate_nll(model, ImageDataset(imgs[s], name="x"))["nll"] for s in (slice(0, 20), slice(20, 40)))
    assert first["nll"] == pytest.approx(black)
    ev = NLLEvaluator(data, 10, k=5)
    res, _ = ev(model, 0)
    assert res["nll"] == pytest.approx((black + white) / 2)
    assert ev.protocol["k"] == "exact" and ev.protocol["images"].startswith("10 evenly spaced of ordered")


# ---- CLI ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from imagegen.cli import main

    out = tmp_path_factory.mktemp("ar") / "run"
    try:
        main(["train", "pixelcnn", "--data", "digits", "--resolution", "8", "--width", "8", "--num-layers", "2",
              "--head-hidden", "4", "--steps", "3", "--batch-size", "8", "--sample-every", "3",
              "--out", str(out)])
    except SystemExit as e:
        assert e.code in (0, None)
    return out


def test_cli_sample_and_complete(tiny_run, tmp_path, capsys):
    code, out, err = run_cli(["sample", str(tiny_run), "--num", "4", "--out", str(tmp_path / "s.npz"),
                              "--temperature", "0.9", "--method", "naive"], capsys)
    assert code == 0, err
    imgs = np.load(tmp_path / "s.npz")["images"]
    assert imgs.shape == (4, R, R, 1) and set(np.unique(imgs)) <= {0, 255}
    digit = tmp_path / "d.png"
    Image.fromarray((np.arange(R * R).reshape(R, R) * 4).astype(np.uint8)).save(digit)
    code, out, err = run_cli(["complete", str(tiny_run), "--input", str(digit), "--keep", "top:3", "--num", "3",
                              "--out", str(tmp_path / "c.png")], capsys)
    assert code == 0, err
    grid = np.asarray(Image.open(tmp_path / "c.png"))
    assert grid.shape[1] == 5 * R + 6 * 2  # occluded input, 3 completions, original; padding 2
    # one-line errors, exit 2
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((R + 2, R + 2), np.uint8)).save(big)
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (R, R, 3), dtype=np.uint8)).save(rgb)
    for args in (["--input", str(big)], ["--input", str(rgb)], ["--input", str(digit), "--keep", "top:8"],
                 ["--input", str(digit), "--temperature", "0"], ["--input", str(tmp_path / "missing.png")]):
        code, out, err = run_cli(["complete", str(tiny_run), *args, "--out", str(tmp_path / "e.png")], capsys)
        assert code == 2 and err.strip().count("\n") == 0 and err.startswith("Error:"), (args, err)


def test_cli_refuses_autoregressive_options_for_other_models(tmp_path, capsys):
    from conftest import TINY_DCGAN

    run = tmp_path / "gan"
    code, _, err = run_cli(["train", "dcgan", *TINY_DCGAN, "--steps", "1", "--out", str(run)], capsys)
    assert code == 0, err
    code, _, err = run_cli(["sample", str(run), "--temperature", "0.5", "--out", str(tmp_path / "x.png")], capsys)
    assert code == 2 and "autoregressive" in err


def test_lr_decay_is_per_step_so_minutes_alone_may_train(tmp_path, capsys):
    """--lr-decay is a factor per 1,000 steps (it reads no run length), so --minutes without --steps trains."""
    import json

    run = tmp_path / "run"
    code, _, err = run_cli(["train", "pixelcnn", "--data", "digits", "--resolution", "8", "--width", "8",
                            "--num-layers", "2", "--head-hidden", "4", "--minutes", "0.02", "--lr-decay", "0.5",
                            "--batch-size", "8", "--log-every", "1", "--no-progress", "--out", run], capsys)
    assert code == 0, err
    rows = [json.loads(x) for x in (run / "logs" / "scalars.jsonl").read_text().splitlines()]
    lr0 = json.loads((run / "config.json").read_text())["model_config"]["lr"]
    assert rows and all(r["lr/train"] == pytest.approx(lr0 * 0.5 ** ((r["step"] - 1) / 1000)) for r in rows)
