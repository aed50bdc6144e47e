"""PixelRNN: causality and receptive field by gradients, skewing, training, sampling, likelihood."""
from __future__ import annotations

import pytest
import torch

from imagegen.errors import ConfigError
from imagegen.models.pixelrnn import PixelRNN, PixelRNNConfig, skew, unskew

R = 6  # image size of the gradient tests


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors in Python loops (conftest.py)


def build(seed: int = 0, **kwargs) -> PixelRNN:
    torch.manual_seed(seed)
    return PixelRNN(PixelRNNConfig(**{"resolution": R, "channels": 1, "width": 4, "num_layers": 2,
                                      "head_hidden": 4, **kwargs}))


def dependence(model: PixelRNN, labels: torch.Tensor | None = None) -> torch.Tensor:
    """bool [R·R, R·R]: [p, q] is True where body features at pixel p (raster index) have a nonzero
    gradient with respect to any channel of input pixel q (float64)."""
    model = model.double()
    c, r = model.config.channels or 1, model.config.resolution
    x = torch.randn(2, c, r, r, dtype=torch.float64, generator=torch.Generator().manual_seed(1),
                    requires_grad=True)
    out = model.body(x, labels)  # [2, F, R, R]
    dep = torch.zeros(r * r, r * r, dtype=torch.bool)
    for p in range(r * r):
        i, j = divmod(p, r)
        (g,) = torch.autograd.grad(out[:, :, i, j].sum(), x, retain_graph=True)
        dep[p] = (g.abs().sum((0, 1)) > 0).flatten()
    return dep


EARLIER = torch.ones(R * R, R * R, dtype=torch.bool).tril(-1)  # [p, q]: q before p in raster order


@pytest.mark.parametrize("layer_type", ["row_lstm", "diagonal_bilstm"])
@pytest.mark.parametrize("variant", ["gray", "colour", "conditional"])
def test_body_is_causal(layer_type: str, variant: str) -> None:
    kwargs = {"colour": dict(channels=3, distribution="categorical"),
              "conditional": dict(conditional=True, num_classes=3)}.get(variant, {})
    model = build(layer_type=layer_type, **kwargs)
    labels = torch.tensor([0, 2]) if variant == "conditional" else None
    dep = dependence(model, labels)
    leaks = (dep & ~EARLIER).nonzero().tolist()
    assert not leaks, f"pixel p sees pixel q at or after it: {leaks[:5]}"
    assert dep[R * R - 1].any()  # the gradient test sees something at all


@pytest.mark.parametrize("num_layers", [1, 2])
def test_diagonal_bilstm_sees_every_earlier_pixel(num_layers: int) -> None:
    # §3.2: the Diagonal BiLSTM's receptive field is the whole context, from the first layer on
    dep = dependence(build(layer_type="diagonal_bilstm", num_layers=num_layers))
    missing = (EARLIER & ~dep).nonzero().tolist()
    assert not missing, f"blind spot: pixel p does not see earlier pixel q: {missing[:5]}"


def test_diagonal_bilstm_without_pixel_input_has_a_blind_spot() -> None:
    # why the first layer's right-to-left direction reads the image: without it, the last pixel of
    # the previous row is invisible at the start of a row (see the module docstring)
    model = build(layer_type="diagonal_bilstm")
    model.layers[0].pixel_to_state = None
    dep = dependence(model)
    assert not (dep & ~EARLIER).any()
    assert not dep[R, R - 1]  # (1, 0) does not see (0, R − 1)


def test_row_lstm_context_is_triangular() -> None:
    # §3.1: one Row LSTM layer misses pixels far right in the rows above (expected, not a bug)
    dep = dependence(build(layer_type="row_lstm", num_layers=1))
    assert not dep[R, R - 1]  # (1, 0) does not see (0, R − 1) …
    assert dep[R, 0] and dep[R + 2, R + 1]  # … but its neighbours above and to the left


def test_skew_round_trip() -> None:
    x = torch.randn(2, 3, 4, 5)
    s = skew(x)
    assert s.shape == (2, 3, 4, 8)
    for i in range(4):
        assert torch.equal(s[:, :, i, i:i + 5], x[:, :, i])
        assert not s[:, :, i, :i].any() and not s[:, :, i, i + 5:].any()
    assert torch.equal(unskew(s, 5), x)


@pytest.mark.parametrize("layer_type", ["row_lstm", "diagonal_bilstm"])
def test_training_reduces_the_loss(layer_type: str) -> None:
    model = build(layer_type=layer_type, resolution=8)
    i, j = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    board = ((i + j) % 2).float() * 2 - 1  # a checkerboard: each pixel follows from the previous one
    img = torch.stack([board, -board]).repeat(4, 1, 1)[:, None]  # [8, 1, 8, 8] in {-1, 1}: fixed targets
    opt = model.configure_optimizers()["train"]
    for group in opt.param_groups:
        group["lr"] = 1e-2
    losses = []
    for _ in range(8):
        loss = model.training_step("train", {"img": img})["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 4.0, losses  # nats per image


@pytest.mark.parametrize("layer_type", ["row_lstm", "diagonal_bilstm"])
def test_sample_and_log_prob(layer_type: str) -> None:
    model = build(layer_type=layer_type, resolution=5, conditional=True, num_classes=3)
    labels = torch.tensor([0, 1, 2])
    img = model.sample(3, torch.Generator().manual_seed(0), labels, method="naive")
    assert img.shape == (3, 1, 5, 5) and img.dtype == torch.float32
    assert bool(((img == -1) | (img == 1)).all())
    logp = model.log_prob(model.likelihood_targets(img), labels)
    assert logp.shape == (3,) and bool(torch.isfinite(logp).all()) and bool((logp <= 0).all())


def test_diagonal_bilstm_has_no_fast_sampler() -> None:
    model = build(layer_type="diagonal_bilstm")
    with pytest.raises(ConfigError):
        model.sample(1, method="fast")


@pytest.mark.parametrize("variant", ["bernoulli", "colour", "conditional"])
def test_row_lstm_fast_sampling_matches_naive(variant: str) -> None:
    kwargs = {"colour": dict(channels=3, distribution="logistic_mixture", num_mixtures=2),
              "conditional": dict(conditional=True, num_classes=3)}.get(variant, {})
    model = build(layer_type="row_lstm", resolution=5, **kwargs).double()
    labels = torch.tensor([2, 0]) if variant == "conditional" else None
    naive = model.sample(2, torch.Generator().manual_seed(3), labels, method="naive")
    fast = model.sample(2, torch.Generator().manual_seed(3), labels, method="fast")
    assert torch.equal(naive, fast)
    # completion: the cache must also take in the given pixels
    known = torch.zeros(5, 5, dtype=torch.bool)
    known[:2] = True
    known[2, :3] = True
    done = [model.complete(naive, known, labels, torch.Generator().manual_seed(4), method=m)
            for m in ("naive", "fast")]
    assert torch.equal(done[0], done[1])


@pytest.mark.parametrize("kwargs", [
    dict(layer_type="gru"), dict(width=0), dict(num_layers=0), dict(first_kernel_size=4),
    dict(first_kernel_size=1), dict(state_kernel_size=2)])
def test_config_errors(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        PixelRNNConfig(**kwargs)
