"""Degradations (imagegen.data.degradations) and the PSNR/SSIM protocol: seeded and reproducible, the
stated noise level, area and resampler, recorded in the run config; PSNR/SSIM equal to scikit-image's
on the same 8-bit images."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from imagegen.config import from_dict, to_dict
from imagegen.data.degradations import Degradation, item_seed, make_masks, quantize_8bit
from imagegen.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


def smooth_images(n: int = 4, c: int = 3, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    """Smooth synthetic images on the 8-bit grid: float32 [n, c, h, w] in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    y = torch.linspace(0, 1, h)[:, None]
    x = torch.linspace(0, 1, w)[None, :]
    out = []
    for _ in range(n):
        f = 1 + 3 * torch.rand(c, 1, 1, generator=g)
        phase = 6.28 * torch.rand(c, 1, 1, generator=g)
        img = 0.6 * torch.sin(f * 3.0 * x + phase) * torch.cos(f * 2.0 * y) + 0.3 * (x - y)
        out.append(img)
    return quantize_8bit(torch.stack(out))


# ---- reproducibility -----------------------------------------------------------------------------------
@pytest.mark.parametrize("deg", [Degradation.denoise(25), Degradation.denoise(0, 55),
                                 Degradation.inpaint("rectangles"), Degradation.inpaint("strokes")])
def test_degradations_are_reproducible_under_a_seed(deg):
    clean = smooth_images(4)
    a = deg.apply(clean, torch.Generator().manual_seed(3))
    b = deg.apply(clean, torch.Generator().manual_seed(3))
    c = deg.apply(clean, torch.Generator().manual_seed(4))
    assert torch.equal(a.image, b.image) and not torch.equal(a.image, c.image)
    if deg.task == "inpaint":
        assert torch.equal(a.mask, b.mask) and a.mask.dtype == torch.bool and a.mask.shape == (4, 1, 32, 32)
    # per-image seeds: an image's degradation does not depend on the batch it is in
    seeds = [item_seed(7, i) for i in range(4)]
    whole = deg.apply_seeded(clean, seeds)
    parts = [deg.apply_seeded(clean[i:i + 1], seeds[i:i + 1]) for i in range(4)]
    assert torch.equal(whole.image, torch.cat([p.image for p in parts]))
    assert not torch.equal(whole.image[0], whole.image[1] - clean[1] + clean[0])  # images get different draws


def test_global_rng_is_used_without_a_generator():
    deg, clean = Degradation.denoise(25), smooth_images(2)
    torch.manual_seed(0)
    a = deg.apply(clean).image
    torch.manual_seed(0)
    assert torch.equal(a, deg.apply(clean).image)


# ---- noise ---------------------------------------------------------------------------------------------------
def test_noise_sigma_on_the_0_255_scale():
    clean = torch.zeros(32, 3, 32, 32)  # mid-grey: σ = 50 is never clipped (127.5 ± 3.6σ inside [0, 255])
    g = torch.Generator().manual_seed(0)
    for sigma in (25.0, 50.0):
        raw = Degradation.denoise(sigma, quantize=False).apply(clean, g).image
        assert float(((raw - clean) * 127.5).std()) == pytest.approx(sigma, rel=0.01)
        q = Degradation.denoise(sigma).apply(clean, g).image
        levels = (q + 1) * 127.5
        assert torch.allclose(levels, levels.round(), atol=1e-3)  # on the 8-bit grid
        # rounding adds uniform noise of variance 1/12 (in 8-bit levels)
        assert float(levels.std()) == pytest.approx((sigma ** 2 + 1 / 12) ** 0.5, rel=0.01)
    clipped = Degradation.denoise(50).apply(torch.ones(1, 1, 64, 64), g).image
    assert clipped.max() <= 1 and clipped.min() < 1  # clipped at white


def test_blind_noise_draws_sigma_per_image_in_the_range():
    clean = torch.zeros(200, 1, 32, 32)
    noisy = Degradation.denoise(0, 55, quantize=False).apply(clean, torch.Generator().manual_seed(1)).image
    per_image = (noisy * 127.5).flatten(1).std(1)
    assert per_image.min() < 5 and per_image.max() > 50 and per_image.max() < 56.5
    assert float(per_image.mean()) == pytest.approx(27.5, abs=3)  # U[0, 55]


# ---- super-resolution ------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [2, 4])
def test_bicubic_downsampling_matches_pillow(scale):
    """The degradation is Pillow's BICUBIC resize up to Pillow's 8-bit fixed-point rounding (±1 level)."""
    arr = ((smooth_images(1, 3, 48, 64)[0].permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()
    arr = np.clip(arr.astype(int) + np.random.default_rng(0).integers(-20, 21, arr.shape), 0, 255).astype(np.uint8)
    pil = np.asarray(Image.fromarray(arr).resize((64 // scale, 48 // scale), Image.BICUBIC)).astype(int)
    clean = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 127.5 - 1
    low = Degradation.super_resolution(scale).apply(clean).image
    assert low.shape == (1, 3, 48 // scale, 64 // scale)
    ours = ((low[0].permute(1, 2, 0) + 1) * 127.5).round().int().numpy()
    assert np.abs(ours - pil).max() <= 1
    assert (ours != pil).mean() < 0.3
    with pytest.raises(ConfigError, match="multiples of"):
        Degradation.super_resolution(scale).apply(clean[:, :, :47])


# ---- masks -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("h,w,fraction", [(32, 32, 0.25), (24, 40, 0.25), (64, 64, 0.1)])
def test_centre_mask_has_the_stated_area_and_is_centred(h, w, fraction):
    m = make_masks(2, h, w, "centre", fraction)
    assert m.shape == (2, 1, h, w) and m.dtype == torch.bool
    assert float(m[0].float().mean()) == pytest.approx(fraction, abs=2 * (h + w) / (h * w))
    rows, cols = m[0, 0].any(1).nonzero().flatten(), m[0, 0].any(0).nonzero().flatten()
    assert abs(int(rows[0]) - (h - 1 - int(rows[-1]))) <= 1 and abs(int(cols[0]) - (w - 1 - int(cols[-1]))) <= 1
    if (h, w, fraction) == (32, 32, 0.25):
        assert m[0, 0, 8:24, 8:24].all() and int(m[0].sum()) == 256  # the paper's half-side hole


@pytest.mark.parametrize("kind", ["rectangles", "strokes"])
def test_random_masks_cover_at_least_the_fraction(kind):
    fraction = 0.25
    m = make_masks(16, 32, 32, kind, fraction, torch.Generator().manual_seed(0))
    cover = m.flatten(1).float().mean(1)
    assert (cover >= fraction).all()
    assert float(cover.mean()) < fraction + 0.15  # shapes are added only until the fraction is reached
    assert not torch.equal(m[0], m[1])


def test_inpainting_fills_missing_pixels_grey_and_keeps_the_rest():
    clean = smooth_images(2)
    d = Degradation.inpaint("centre").apply(clean)
    hole = d.mask.expand_as(clean)
    assert torch.equal(d.image[~hole], clean[~hole])
    assert torch.allclose(d.image[hole], torch.tensor(128 / 127.5 - 1), atol=1e-6)  # 0 on the 8-bit grid: 128


# ---- the recorded config ----------------------------------------------------------------------------------
def test_degradation_is_recorded_in_the_model_config_and_round_trips():
    from imagegen.models.dncnn import DnCNNConfig
    from imagegen.models.inpaint import ContextEncoderConfig
    from imagegen.models.srnet import SRResNetConfig

    for cfg, expected in ((DnCNNConfig(sigma=0, sigma_max=55), Degradation.denoise(0, 55)),
                          (SRResNetConfig(scale=2), Degradation.super_resolution(2)),
                          (ContextEncoderConfig(mask="strokes", mask_fraction=0.3),
                           Degradation.inpaint("strokes", 0.3))):
        assert cfg.degradation == expected
        saved = json.loads(json.dumps(to_dict(cfg)))  # as in config.json
        assert saved["degradation"]["task"] == expected.task
        assert Degradation.from_dict(saved["degradation"]) == expected
        loaded = from_dict(type(cfg), saved)
        assert loaded == cfg and isinstance(loaded.degradation, Degradation)
    # the degradation follows the options: replace() of an option re-derives it
    assert dataclasses.replace(DnCNNConfig(), sigma=50).degradation == Degradation.denoise(50)


@pytest.mark.parametrize("make,match", [
    (lambda: Degradation.denoise(-1), "--sigma"),
    (lambda: Degradation.denoise(30, 20), "--sigma-max"),
    (lambda: Degradation.super_resolution(1), "--scale"),
    (lambda: Degradation.inpaint("rectangles", 0.95), "--mask-fraction"),
    (lambda: Degradation.inpaint("circle"), "--mask"),
    (lambda: Degradation("denoise", sigma=25, scale=2), "--scale applies to another task"),
    (lambda: Degradation("blur"), "unknown restoration task"),
])
def test_bad_degradation_options_are_one_line_config_errors(make, match):
    with pytest.raises(ConfigError, match=match) as info:
        make()
    assert "\n" not in str(info.value)


def test_model_config_errors():
    from imagegen.models.inpaint import ContextEncoderConfig
    from imagegen.models.srnet import SRResNetConfig

    with pytest.raises(ConfigError, match="not a multiple of --scale 4"):
        SRResNetConfig(resolution=30, scale=4)
    with pytest.raises(ConfigError, match="num_down"):
        ContextEncoderConfig(resolution=36, num_down=3)
    with pytest.raises(ConfigError, match="--d-layers"):
        SRResNetConfig(resolution=8, scale=2, adv_weight=1e-3, d_layers=4)


# ---- PSNR / SSIM against scikit-image ---------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 3])
def test_psnr_ssim_agree_with_scikit_image(channels):
    """Like for like: both on the same 8-bit images mapped to [0, 1] (data range 1); SSIM with an 11×11
    Gaussian window of σ 1.5, K1 0.01, K2 0.03 and population (co)variances (scikit-image's
    ``gaussian_weights=True, use_sample_covariance=False``), averaged over channels. The one protocol
    difference: scikit-image (as Wang et al.'s reference code) averages the SSIM map over the interior,
    5 pixels from the border, while torchmetrics (``paired_scores``) averages the whole map, its border
    from reflection padding; so the interior of torchmetrics' map is compared with scikit-image, and
    ``paired_scores`` with the whole map. Tolerances: 1e-3 dB for PSNR, 1e-4 for SSIM (float32 against
    float64)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    from torchmetrics.functional.image import structural_similarity_index_measure

    from imagegen.metrics.paired import paired_scores

    clean = smooth_images(3, channels, 32, 32)
    for sigma in (10, 40):
        noisy = Degradation.denoise(sigma).apply(clean, torch.Generator().manual_seed(sigma)).image
        ours = paired_scores(noisy, clean)
        x, y = (noisy + 1) / 2, (clean + 1) / 2
        whole, ssim_map = structural_similarity_index_measure(x, y, data_range=1.0, reduction="none",
                                                              return_full_image=True)
        assert torch.allclose(ours["ssim"], whole.flatten(), atol=1e-6)
        interior = ssim_map[:, :, 5:-5, 5:-5].flatten(1).mean(1)
        for i in range(3):
            xi, yi = x[i].permute(1, 2, 0).double().numpy(), y[i].permute(1, 2, 0).double().numpy()
            assert float(ours["psnr"][i]) == pytest.approx(peak_signal_noise_ratio(yi, xi, data_range=1.0), abs=1e-3)
            ref = structural_similarity(yi, xi, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, channel_axis=-1)
            assert float(interior[i]) == pytest.approx(ref, abs=1e-4)
            assert abs(float(ours["ssim"][i]) - ref) < 0.05  # the border's share of a 32×32 image
