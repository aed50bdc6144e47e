"""Discriminator-side augmentation: DiffAugment (imagegen.nn.diffaugment) and ADA (imagegen.nn.ada)."""
from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from imagegen.errors import CheckpointError, ConfigError
from imagegen.nn.ada import (GROUPS, SYM6, AdaController, _rotate_inv, _scale_inv, _translate_inv, ada_augment,
                             affine_warp, color_transform)
from imagegen.nn.diffaugment import POLICIES, check_policy, diff_augment

# tiny tensors: a second intra-op thread only adds synchronisation (see conftest.one_thread)
pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 4, c: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    """[n, c, size, size] float32 in [-1, 1]."""
    return torch.rand(n, c, size, size, generator=gen(seed)) * 2 - 1


# ------------------------------------------------------------------------------------------------
# DiffAugment


def test_diff_augment_shape_dtype_and_gradient():
    x = images().requires_grad_(True)
    out = diff_augment(x, generator=gen(1))
    assert out.shape == x.shape and out.dtype == torch.float32
    w = torch.randn(out.shape, generator=gen(2))
    (out * w).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_diff_augment_seeded_is_reproducible():
    x = images()
    a = diff_augment(x, generator=gen(7))
    b = diff_augment(x, generator=gen(7))
    c = diff_augment(x, generator=gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_check_policy():
    assert check_policy("color,translation,cutout") == POLICIES
    assert check_policy(" translation , cutout") == ("translation", "cutout")
    assert check_policy("") == ()
    x = images()
    assert diff_augment(x, "", gen(0)) is x
    for bad in ("colour", "color,rotate", "translation,", 3):
        with pytest.raises(ConfigError) as err:
            check_policy(bad)
        message = str(err.value)
        assert "\n" not in message and all(name in message for name in POLICIES)
    with pytest.raises(ConfigError):
        diff_augment(x, "flip", gen(0))


def test_color_on_flat_image_is_brightness_only():
    # saturation and contrast scale deviations from means: a flat image has none, so only b ~ U(-0.5, 0.5)
    x = torch.full((8, 3, 4, 4), 0.25)
    out = diff_augment(x, "color", gen(3))
    b = out - x
    assert torch.allclose(b, b[:, :1, :1, :1].expand_as(b), atol=1e-6)
    assert (b.abs() <= 0.5 + 1e-6).all() and b.abs().max() > 0


def test_translation_is_zero_filled_shift():
    x = torch.rand(8, 3, 16, 16, generator=gen(0)) + 0.5  # no zeros, so the fill is recognisable
    out = diff_augment(x, "translation", gen(4))
    shifts = []
    for n in range(len(x)):
        found = None
        for ty, tx in itertools.product(range(-2, 3), repeat=2):  # int(16 / 8 + 0.5) = 2
            expected = torch.zeros_like(x[n])
            rows, cols = slice(max(0, -ty), min(16, 16 - ty)), slice(max(0, -tx), min(16, 16 - tx))
            src_rows = slice(rows.start + ty, rows.stop + ty)
            src_cols = slice(cols.start + tx, cols.stop + tx)
            expected[:, rows, cols] = x[n][:, src_rows, src_cols]
            if torch.equal(out[n], expected):
                found = (ty, tx)
                break
        assert found is not None, f"image {n} is not a zero-filled integer shift of the input"
        shifts.append(found)
    assert any(s != (0, 0) for s in shifts)


def test_cutout_zeroes_exactly_a_square():
    H = W = 16
    x = torch.rand(64, 3, H, W, generator=gen(0)) + 0.5  # no zeros
    out = diff_augment(x, "cutout", gen(5))
    zero = out == 0  # [N, C, H, W]
    assert torch.equal(zero, zero[:, :1].expand_as(zero))  # all channels together
    assert torch.equal(out[~zero], x[~zero])  # everything else untouched
    full_squares = 0
    for mask in zero[:, 0]:
        rows = mask.any(dim=1).nonzero().flatten()
        cols = mask.any(dim=0).nonzero().flatten()
        assert len(rows) and len(cols)
        # a solid rectangle of contiguous rows × columns ...
        assert torch.equal(mask, mask.any(dim=1)[:, None] & mask.any(dim=0)[None, :])
        assert rows[-1] - rows[0] + 1 == len(rows) and cols[-1] - cols[0] + 1 == len(cols)
        # ... that is the 8×8 square, cut only where it overhangs the border
        assert len(rows) == 8 or rows[0] == 0 or rows[-1] == H - 1
        assert len(cols) == 8 or cols[0] == 0 or cols[-1] == W - 1
        assert len(rows) <= 8 and len(cols) <= 8
        full_squares += int(len(rows) == 8 and len(cols) == 8)
    assert full_squares > 0


def test_cutout_gradient_is_zero_inside_the_square():
    x = (torch.rand(4, 3, 16, 16, generator=gen(0)) + 0.5).requires_grad_(True)
    out = diff_augment(x, "cutout", gen(6))
    out.sum().backward()
    assert torch.equal(x.grad, (out != 0).float())


# ------------------------------------------------------------------------------------------------
# ADA augmentation


def test_ada_p0_is_identity():
    x = images()
    for groups in [("blit", "geom"), GROUPS]:
        out = ada_augment(x, 0.0, gen(0), groups=groups)
        assert out is x and torch.equal(out, x)


def _shift(img: torch.Tensor, ty: int, tx: int, repeat_edge: bool = False) -> torch.Tensor:
    """out[.., i, j] = img[.., i - ty, j - tx], out-of-range indices mirrored about the edge pixels
    (``F.pad``'s "reflect", the official AugmentPipe's padding) or, with ``repeat_edge``, about the
    outer border (``grid_sample``'s "reflection": the edge pixel repeated)."""
    H, W = img.shape[-2:]
    e = 1 if repeat_edge else 0

    def mirror(idx: torch.Tensor, n: int) -> torch.Tensor:
        idx = torch.where(idx < 0, -idx - e, idx)
        return torch.where(idx >= n, 2 * (n - 1) + e - idx, idx)

    rows = mirror(torch.arange(H) - ty, H)
    cols = mirror(torch.arange(W) - tx, W)
    return img[..., rows[:, None], cols[None, :]]


def test_ada_blit_is_a_flip_rotation_and_integer_shift():
    x = images(n=8, seed=1)
    out = ada_augment(x, 1.0, gen(2), groups=("blit",))
    candidates = []  # 8 dihedral transforms × 25 shifts of every image: [200, N, C, H, W]
    for flip, k in itertools.product((False, True), range(4)):
        base = torch.rot90(x.flip(-1) if flip else x, k, dims=(-2, -1))
        for ty, tx in itertools.product(range(-2, 3), repeat=2):  # round(0.125 · 16) = 2
            candidates.append(_shift(base, ty, tx))
    err = (torch.stack(candidates) - out).abs().flatten(2).amax(dim=2).amin(dim=0)  # [N]
    assert (err == 0).all(), f"not a flip/rot90/integer shift of the input (errors {err.tolist()})"
    assert not torch.allclose(out, x, atol=1e-5)


def test_ada_blit_moves_a_single_bright_pixel():
    x = torch.full((64, 1, 16, 16), -1.0)
    x[:, :, 7, 8] = 1.0  # far enough from the border that a shift of ≤ 2 keeps it inside
    out = ada_augment(x, 1.0, gen(3), groups=("blit",))
    bright = out > 0  # [N, 1, H, W]
    assert (bright.flatten(1).sum(dim=1) == 1).all()
    assert torch.allclose(out[bright], torch.ones(64), atol=1e-5)
    assert torch.allclose(out[~bright], torch.full(((~bright).sum().item(),), -1.0), atol=1e-5)
    positions = {tuple(bright[n, 0].nonzero()[0].tolist()) for n in range(64)}
    assert len(positions) > 1


def test_ada_apply_probability_per_transform():
    # blit at p: untouched with P = (1 - p/2)(1 - 3p/4)(1 - 15p/16) at 16×16 (the flip and the 90°
    # turn are coin tosses that can pick the identity; the shift rounds to 0 in both axes w.p. 1/16)
    p, n = 0.5, 2000
    x = torch.rand(n, 1, 16, 16, generator=gen(0))
    out = ada_augment(x, p, gen(4), groups=("blit",))
    unchanged = sum(torch.equal(a, b) for a, b in zip(out, x)) / n
    expected = (1 - p / 2) * (1 - 3 * p / 4) * (1 - 15 * p / 16)
    assert unchanged == pytest.approx(expected, abs=0.035)
    # geom at p: scaling, anisotropy, fractional shift each w.p. p, rotation (pre or post) w.p. p
    out = ada_augment(x, p, gen(4), groups=("geom",))
    unchanged = sum(torch.equal(a, b) for a, b in zip(out, x)) / n
    assert unchanged == pytest.approx((1 - p) ** 4, abs=0.02)


def test_ada_geom_stays_near_range_and_changes_images():
    x = images(n=8)
    out = ada_augment(x, 1.0, gen(5), groups=("geom",))
    assert out.shape == x.shape and torch.isfinite(out).all()
    # the sym6 filter has negative taps: white noise (the worst case) rings a little beyond [-1, 1]
    assert out.abs().max() < 1.6 and (out.abs() > 1).float().mean() < 0.05
    assert not torch.allclose(out, x, atol=1e-3)
    # unfiltered: bilinear weights and reflection padding, a convex combination of input pixels
    plain = affine_warp(x, _scale_inv(torch.full((8,), 0.8), torch.full((8,), 0.8)), antialias=False)
    assert plain.min() >= x.min() - 1e-5 and plain.max() <= x.max() + 1e-5


def test_sym6_is_an_orthonormal_wavelet_lowpass():
    h = torch.tensor(SYM6, dtype=torch.float64)
    k = torch.arange(len(SYM6), dtype=torch.float64)
    assert h.sum().item() == pytest.approx(math.sqrt(2), abs=1e-12)
    for m in range(1, 6):  # orthogonal to its own even shifts (m = 0: unit norm)
        assert (h[2 * m:] * h[:-2 * m]).sum().item() == pytest.approx(0.0, abs=1e-12)
    assert (h * h).sum().item() == pytest.approx(1.0, abs=1e-12)
    sign = (-1.0) ** k  # 6 vanishing moments: the high-pass (-1)^k h[11 - k] kills polynomials of degree < 6
    for m in range(6):
        assert (sign * k ** m * h).sum().item() == pytest.approx(0.0, abs=1e-7 * 11 ** m)


def _wave(size: int, fx: float, fy: float, shift_x: float = 0.0) -> torch.Tensor:
    """[1, 1, size, size] cos(2π(fx (x - shift_x) + fy y)) at pixel centres, origin at the centre."""
    c = torch.arange(size, dtype=torch.float32) + 0.5 - size / 2
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    return torch.cos(2 * math.pi * (fx * (xx - shift_x) + fy * yy))[None, None]


def test_affine_warp_filtered_fractional_shift_is_exact_on_smooth_images():
    x = _wave(32, 0.05, 0.03)
    G = _translate_inv(torch.tensor([0.5]), torch.tensor([0.0]))  # half a pixel to the right
    want = _wave(32, 0.05, 0.03, shift_x=0.5)
    inner = (..., slice(6, -6), slice(6, -6))  # away from the mirrored border
    assert (affine_warp(x, G)[inner] - want[inner]).abs().max() < 1e-4
    # the unfiltered bilinear sample averages two neighbours and blurs
    assert (affine_warp(x, G, antialias=False)[inner] - want[inner]).abs().max() > 5e-3


def test_affine_warp_filtered_shrinking_does_not_alias():
    x = _wave(32, 0.45, 0.0)  # near the Nyquist frequency 0.5: above it once shrunk by 2
    G = _scale_inv(torch.tensor([0.5]), torch.tensor([0.5]))
    inner = (..., slice(6, -6), slice(6, -6))
    assert affine_warp(x, G)[inner].abs().max() < 0.05  # filtered out
    assert affine_warp(x, G, antialias=False)[inner].abs().max() > 0.1  # folded back as a slow beat


def test_ada_gradients_flow_and_seed_reproducible():
    x = images().requires_grad_(True)
    out = ada_augment(x, 0.8, gen(6), groups=GROUPS)
    assert out.shape == x.shape
    (out * torch.randn(out.shape, generator=gen(7))).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with torch.no_grad():
        assert torch.equal(ada_augment(x, 0.8, gen(6), groups=GROUPS), out)
        assert not torch.equal(ada_augment(x, 0.8, gen(9), groups=GROUPS), out)


def test_ada_random_stream_does_not_depend_on_p():
    x = images()
    states = []
    for p in (0.1, 0.9):
        g = gen(0)
        ada_augment(x, p, g, groups=GROUPS)
        states.append(g.get_state())
    assert torch.equal(*states)


def test_ada_color_group_on_grey_and_bad_inputs():
    grey = torch.rand(4, 1, 8, 8, generator=gen(0)) * 2 - 1
    assert ada_augment(grey, 1.0, gen(1), groups=("color",)).shape == grey.shape
    with pytest.raises(ValueError):
        ada_augment(torch.zeros(2, 2, 8, 8), 0.5, gen(0), groups=("color",))
    with pytest.raises(ConfigError):
        ada_augment(images(), 1.5, gen(0))
    with pytest.raises(ConfigError):
        ada_augment(images(), 0.5, gen(0), groups=("blit", "noise"))


def test_affine_warp_quarter_turn_and_shift():
    x = images(n=2)
    zero, one = torch.zeros(2), torch.ones(2)
    turned = affine_warp(x, _rotate_inv(zero, one))  # θ = 90°, clockwise as displayed (y down)
    assert torch.allclose(turned, torch.rot90(x, -1, dims=(2, 3)), atol=1e-5)
    two = torch.full((2,), 2.0)
    shifted = affine_warp(x, _translate_inv(two, -one))  # two pixels right, one up, mirrored edges
    assert torch.equal(shifted, _shift(x, -1, 2))
    # columns -2, -1 come from columns 2, 1: the edge column 0 is not repeated
    assert torch.equal(shifted[..., :-1, 0], x[..., 1:, 2]) and torch.equal(shifted[..., :-1, 1], x[..., 1:, 1])
    old = affine_warp(x, _translate_inv(two, -one), antialias=False)  # grid_sample's reflection
    assert torch.allclose(old, _shift(x, -1, 2, repeat_edge=True), atol=1e-5)
    eye = torch.eye(3).repeat(2, 1, 1)
    assert torch.equal(affine_warp(x, eye), x)


def test_color_transform_luma_flip_negates_grey():
    v = torch.tensor([1.0, 1.0, 1.0, 0.0]) / math.sqrt(3)
    flip = (torch.eye(4) - 2 * torch.outer(v, v)).repeat(2, 1, 1)
    grey = torch.full((2, 3, 4, 4), 0.3)
    assert torch.allclose(color_transform(grey, flip), -grey, atol=1e-6)
    x = images(n=2)
    assert torch.equal(color_transform(x, torch.eye(4).repeat(2, 1, 1)), x)


# ------------------------------------------------------------------------------------------------
# ADA controller


def run_interval(ada: AdaController, logits: torch.Tensor, batch: int) -> list:
    results = []
    for _ in range(ada.interval):
        ada.accumulate(logits)
        results.append(ada.update(batch))
    return results


def test_controller_p_rises_when_d_overfits():
    ada = AdaController()  # target 0.6, interval 4, speed 500 kimg
    assert ada.p == 0.0
    step = 8 * 4 / (500 * 1000)
    results = run_interval(ada, torch.full((8, 1), 3.0), batch=8)  # r_t = 1 > 0.6
    assert results == [None, None, None, 1.0]
    assert ada.p == pytest.approx(step, rel=1e-12, abs=0) and ada.rt == 1.0
    run_interval(ada, torch.full((8, 1), 3.0), batch=8)
    assert ada.p == pytest.approx(2 * step, rel=1e-12, abs=0)
    ada = AdaController(p=1.0 - 1e-6)
    run_interval(ada, torch.ones(8), batch=8)
    assert ada.p == 1.0  # clamped


def test_controller_p_falls_and_clamps_at_zero():
    ada = AdaController(target=0.6, interval=2, speed_kimg=100, p=0.5)
    logits = torch.tensor([1.0, 1.0, 1.0, -1.0])  # r_t = 0.5 < 0.6
    assert run_interval(ada, logits, batch=4) == [None, 0.5]
    assert ada.p == pytest.approx(0.5 - 4 * 2 / (100 * 1000), rel=1e-12, abs=0)
    ada = AdaController(p=1e-5)
    run_interval(ada, -torch.ones(16), batch=16)
    assert ada.p == 0.0
    ada = AdaController(target=0.6, p=0.3)  # r_t exactly on target: p stays
    run_interval(ada, torch.tensor([1.0] * 8 + [-1.0] * 2), batch=10)
    assert ada.rt == pytest.approx(0.6) and ada.p == 0.3


def test_controller_validation():
    for kwargs in ({"target": 1.5}, {"interval": 0}, {"interval": 2.0}, {"speed_kimg": 0}, {"p": -0.1}):
        with pytest.raises(ConfigError):
            AdaController(**kwargs)


def test_controller_state_dict_round_trip():
    a = AdaController()
    run_interval(a, torch.randn(8, generator=gen(0)) + 3, batch=8)
    assert a.p > 0
    for seed in (1, 2):  # half an interval accumulated, mostly but not all positive
        a.accumulate(torch.randn(8, generator=gen(seed)) + 1)
        a.update(8)
    state = a.state_dict()
    assert json.loads(json.dumps(state)) == state  # plain Python numbers
    assert state["steps"] == 2 and state["images"] == 16 and state["count"] == 16.0
    b = AdaController()
    b.load_state_dict(state)
    assert b.state_dict() == state and b.p == a.p
    for ada in (a, b):
        for seed in (3, 4):
            ada.accumulate(torch.randn(8, generator=gen(seed)) + 2)
            ada.update(8)
    assert a.state_dict() == b.state_dict() and a.p == b.p and a.p > state["p"]
    with pytest.raises(CheckpointError):
        b.load_state_dict({"p": 0.1})


def test_controller_all_reduce_sums_over_processes(monkeypatch):
    calls = []
    others = [[0.0, 0.0], [-8.0, 8.0]]  # what the other process contributes at each update

    def fake_all_reduce(tensor, op=None):
        # another process first saw nothing, then 8 reals all scored negative: its sums are added
        calls.append(tensor.tolist())
        tensor += torch.tensor(others[len(calls) - 1], dtype=tensor.dtype)

    monkeypatch.setattr(torch.distributed, "all_reduce", fake_all_reduce)
    monkeypatch.setattr(torch.distributed, "get_backend", lambda *a: "gloo")
    monkeypatch.setattr(torch.distributed, "is_available", lambda: True)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    ada = AdaController(interval=1, p=0.5)
    assert ada.update(16) is None and calls == [[0.0, 0.0]]  # collective even with nothing local
    ada.accumulate(torch.ones(8))
    assert ada.update(16) == 0.0  # (8 - 8) / 16, below the target: p falls for every process
    assert calls[-1] == [8.0, 8.0]
    assert ada.p == pytest.approx(0.5 - 16 / 500_000, rel=1e-12, abs=0)
    ada.accumulate(torch.ones(8))
    assert ada.update(16, all_reduce=False) == 1.0 and len(calls) == 2


def test_upsampling_matrix_slices_agree_with_direct_computation():
    from imagegen.nn.ada import _dense_resampling_matrix, _resampling_matrix
    cpu = torch.device("cpu")
    for n in (2, 3, 16, 17, 64, 100, 190):
        sliced = _resampling_matrix("up", n, torch.float32, cpu)
        assert sliced.shape == (n, 2 * n)
        assert torch.allclose(sliced, _dense_resampling_matrix("up", n, torch.float32, cpu), atol=1e-7)


@pytest.mark.parametrize("augment", ["ada", "diffaugment"])
def test_gan_augmentation_draws_apart_from_the_global_rng_and_resumes(augment):
    from imagegen.models.stylegan2 import StyleGAN2, StyleGAN2Config

    torch.manual_seed(0)
    model = StyleGAN2(StyleGAN2Config(resolution=8, channels=3, z_dim=8, w_dim=8, mapping_layers=2,
                                      channel_base=32, channel_max=8, augment=augment))
    if model.ada is not None:
        model.ada.p = 0.5
    x = images(n=4, size=8)
    before = torch.get_rng_state()
    out = model.augment_d(x)
    # a run with augmentation keeps the latents, noise and mixing draws of the same seed without it
    assert torch.equal(torch.get_rng_state(), before)
    assert not torch.equal(out, x)
    state = model.training_state()
    nxt = model.augment_d(x)
    assert not torch.equal(nxt, out)  # the generator moved on
    model.load_training_state(state)
    assert torch.equal(model.augment_d(x), nxt)  # and resumes where it was


def test_controller_fixed_holds_p_and_still_measures_rt():
    ada = AdaController(target=0.6, interval=2, speed_kimg=0.1, p=0.3, fixed=True)
    rts = run_interval(ada, torch.ones(8), batch=8)  # D overfits: an adaptive p would rise
    assert rts[-1] == pytest.approx(1.0) and ada.p == 0.3
    state = ada.state_dict()
    assert state["p"] == 0.3


def test_gan_ada_fixed_p_and_resampling_options():
    from imagegen.models.stylegan2 import StyleGAN2, StyleGAN2Config

    kw = dict(resolution=8, channels=3, z_dim=8, w_dim=8, mapping_layers=2, channel_base=32, channel_max=8)
    model = StyleGAN2(StyleGAN2Config(**kw, augment="ada", ada_p=0.4, ada_resample="bilinear"))
    assert model.ada.p == 0.4 and model.ada.fixed
    x = images(n=4, size=8)
    state = model.augment_generator.get_state()
    out = model.augment_d(x)
    expected = ada_augment(x, 0.4, torch.Generator().set_state(state), groups=GROUPS, antialias=False)
    assert torch.equal(out, expected)
    for bad in (dict(augment="ada", ada_p=1.5), dict(augment="none", ada_p=0.2),
                dict(augment="diffaugment", ada_resample="bilinear"), dict(augment="ada", ada_resample="nearest")):
        with pytest.raises(ConfigError):
            StyleGAN2Config(**kw, **bad)


def _tiny_gan(name: str):
    from imagegen.models.cgan import CGAN, CGANConfig
    from imagegen.models.dcgan import DCGAN, DCGANConfig
    from imagegen.models.stylegan2 import StyleGAN2, StyleGAN2Config

    torch.manual_seed(0)
    if name == "dcgan":
        return DCGAN(DCGANConfig(resolution=16, channels=3, z_dim=16, g_width=8, d_width=8, augment="diffaugment"))
    if name == "cgan":
        return CGAN(CGANConfig(resolution=16, channels=3, num_classes=10, z_dim=16, g_width=8, d_width=8,
                               augment="diffaugment"))
    return StyleGAN2(StyleGAN2Config(resolution=16, channels=3, z_dim=8, w_dim=8, mapping_layers=2, channel_base=64,
                                     channel_max=8, mbstd_group=2, augment="diffaugment"))


@pytest.mark.parametrize("name", ["dcgan", "cgan", "stylegan2"])
def test_every_image_d_sees_in_training_is_augmented(name):
    """DiffAugment (Zhao et al. 2020, §3, Fig. 4): the same transform T, differentiable, is applied to the
    real and to the fake images in D's update (and R1's) and to the fakes in G's update, so D never sees
    an unaugmented image and G's gradient passes through T."""
    model = _tiny_gan(name).train()
    batch = {"img": images(n=4, size=16, seed=3), "label": torch.arange(4)}
    augmented: dict[int, tuple] = {}  # id of each augment_d output -> (its input, the output: kept alive)
    plain = model.augment_d

    def recording(img):
        out = plain(img)
        assert out.shape == img.shape and not torch.equal(out, img)  # T changed the images
        augmented[id(out)] = (img, out)
        return out

    model.augment_d = recording
    seen: list[tuple] = []  # per D call: (whether its input came out of augment_d, that augment_d's input)
    model.D.register_forward_pre_hook(lambda module, args: seen.append(next(
        ((True, src) for src, out in augmented.values() if args[0] is out), (False, None))))
    for phase in [p.name for p in model.phases() if p.name != "Greg"]:  # path length does not call D
        augmented.clear()
        seen.clear()
        out = model.training_step(phase, batch)
        assert seen and all(ok for ok, _ in seen), phase  # every D input came out of augment_d
        inputs = [src for _, src in seen]
        if phase == "D":  # the reals and the fakes
            assert any(x is batch["img"] for x in inputs) and any(x is not batch["img"] for x in inputs)
        if phase == "G":  # G's loss reaches G through T
            out["loss"].backward()
            assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.G.parameters()
                       if p.requires_grad)
            assert any(float(p.grad.abs().sum()) > 0 for p in model.G.parameters() if p.grad is not None)


# ------------------------------------------------------------------------------------------------
# Translation GANs (CycleGAN's two discriminators, pix2pix's discriminator of pairs) and the restoration
# models' adversarial term

RESTORERS = ("srresnet", "context-encoder")


def _tiny_translator(name: str, **kw):
    from imagegen.models.cyclegan import CycleGAN, CycleGANConfig
    from imagegen.models.inpaint import ContextEncoder, ContextEncoderConfig
    from imagegen.models.pix2pix import Pix2Pix, Pix2PixConfig
    from imagegen.models.srnet import SRResNet, SRResNetConfig

    torch.manual_seed(0)
    if name == "cyclegan":
        return CycleGAN(CycleGANConfig(resolution=16, channels=3, g_width=4, g_blocks=1, d_width=4, d_layers=2,
                                       **kw))
    if name == "srresnet":
        return SRResNet(SRResNetConfig(resolution=16, channels=3, scale=2, width=4, num_blocks=1, adv_weight=1e-3,
                                       d_width=4, d_layers=2, **kw))
    if name == "context-encoder":
        return ContextEncoder(ContextEncoderConfig(resolution=16, channels=3, width=4, num_down=2, num_blocks=1,
                                                   d_width=4, d_layers=2, **kw))
    return Pix2Pix(Pix2PixConfig(resolution=16, channels=3, g_width=4, d_width=4, d_layers=2, dropout_layers=2,
                                 **kw))


def _translator_batch() -> dict[str, torch.Tensor]:
    a, b = images(n=2, size=16, seed=3), images(n=2, size=16, seed=4)
    return {"A": a, "B": b, "img": a}  # translators read A and B, restorers the clean img


@pytest.mark.parametrize("augment", ["ada", "diffaugment"])
def test_pair_augmentation_gives_both_images_of_a_pair_one_transform(augment):
    model = _tiny_translator("pix2pix", augment=augment)
    if model.ada is not None:
        model.ada.p = 0.8
    a, b = images(n=6, size=16, seed=1), images(n=6, size=16, seed=2)
    out_a, out_same = model.augment_d_pair(a, a.clone())
    assert torch.equal(out_a, out_same) and not torch.equal(out_a, a)  # one transform, and it did something
    state = model.augment_generator.get_state()
    out_a, out_b = model.augment_d_pair(a, b)
    after = model.augment_generator.get_state()
    for img, out in ((a, out_a), (b, out_b)):  # each is augment_d from the same generator state
        model.augment_generator.set_state(state)
        assert torch.equal(model.augment_d(img), out)
    assert torch.equal(model.augment_generator.get_state(), after)  # it ends where the second call left it
    x = model.augment_d_pair(a, b)[0]
    assert not torch.equal(x, out_a)  # the next pair gets a new transform
    with pytest.raises(ValueError, match="shape"):
        model.augment_d_pair(a, b[:, :1])
    plain = _tiny_translator("pix2pix")
    assert all(o is i for o, i in zip(plain.augment_d_pair(a, b), (a, b)))  # no augmentation: the inputs


@pytest.mark.parametrize("name", ["cyclegan", "pix2pix", *RESTORERS])
def test_every_image_the_translators_discriminators_see_is_augmented(name):
    """CycleGAN: D_A and D_B see only augment_d outputs (reals, pooled fakes, G's fakes); pix2pix: D sees
    only the concatenation of an augment_d_pair output, in both phases; the restorers' D only augment_d
    outputs (clean images and restorations)."""
    model = _tiny_translator(name, augment="diffaugment").train()
    batch = _translator_batch()
    made: list[torch.Tensor] = []  # what D may see: augment_d outputs, or concatenated augmented pairs
    if name != "pix2pix":
        plain = model.augment_d

        def recording(img):
            out = plain(img)
            assert not torch.equal(out, img)
            made.append(out)
            return out

        model.augment_d = recording
        discriminators = [model.D_A, model.D_B] if name == "cyclegan" else [model.D]
    else:
        plain_pair = model.augment_d_pair

        def recording_pair(a, b):
            out = plain_pair(a, b)
            assert not torch.equal(out[0], a) and not torch.equal(out[1], b)
            made.append(torch.cat(out, 1))
            return out

        model.augment_d_pair = recording_pair
        discriminators = [model.D]
    seen: list[bool] = []
    for D in discriminators:
        D.register_forward_pre_hook(lambda module, args: seen.append(
            any(args[0] is m or (args[0].shape == m.shape and torch.equal(args[0], m)) for m in made)))
    for phase in ("G", "D"):
        made.clear()
        seen.clear()
        model.training_step(phase, batch)
        calls = {"G": 2, "D": 4}[phase] if name == "cyclegan" else {"G": 1, "D": 2}[phase]
        assert len(seen) == calls, phase
        assert all(seen), phase


class _Constant(torch.nn.Module):
    """A 'discriminator' whose every patch output is ``value`` (LSGAN outputs, not logits)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x):
        return torch.full((len(x), 1, 3, 3), self.value) + 0 * x.mean()


@pytest.mark.parametrize("name", ["cyclegan", "pix2pix", *RESTORERS])
@pytest.mark.parametrize("value, rt", [(0.7, 1.0), (0.3, -1.0)])
def test_ada_heuristic_of_least_squares_discriminators_decides_at_one_half(name, value, rt):
    """r_t = E[sign(D(x) − 0.5)] for LSGAN outputs (targets 1 and 0): 0.7 on every real patch says 'real'
    everywhere (r_t = 1), 0.3 says 'fake' (r_t = −1), though both are positive."""
    extra = {"cyclegan": {}, "pix2pix": {"loss": "lsgan"}}.get(name, {"gan_loss": "lsgan"})
    model = _tiny_translator(name, augment="ada", ada_interval=1, **extra)
    for attr in ("D_A", "D_B") if name == "cyclegan" else ("D",):
        setattr(model, attr, _Constant(value))
    batch = _translator_batch()
    model.training_step("G", batch)
    out = model.training_step("D", batch)
    assert float(out["ada_p"]) == 0.0 and float(out["acc_real"]) == (1 + rt) / 2  # logged: r_t = 2·acc_real − 1
    assert model.ada.update(2) == pytest.approx(rt)


@pytest.mark.parametrize("name", ["pix2pix", "srresnet"])
def test_ada_heuristic_of_logits_uses_their_sign(name):
    model = _tiny_translator(name, augment="ada", ada_interval=1)  # nonsaturating loss: logits
    model.D = _Constant(0.3)
    batch = _translator_batch()
    model.training_step("G", batch)
    assert float(model.training_step("D", batch)["acc_real"]) == 1.0
    assert model.ada.update(2) == pytest.approx(1.0)


def test_restorers_refuse_augmentation_without_a_discriminator():
    from imagegen.models.srnet import SRResNetConfig

    with pytest.raises(ConfigError, match="--adv-weight"):
        SRResNetConfig(resolution=16, scale=2, adv_weight=0.0, augment="diffaugment")
    assert SRResNetConfig(resolution=16, scale=2, adv_weight=1e-3, d_layers=2, augment="ada").augment == "ada"
