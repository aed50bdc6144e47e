"""Progressive growing (issue 9): the growth schedule, fade-in blending in G, D and the real images, and
samples at the final resolution from a loaded run. The shared model suite (tests/test_models.py) checks
exact resume in the middle of the growth."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import run_cli
from imagegen.models.base import StepContext
from imagegen.models.progan import ProGAN, ProGANConfig, growth_schedule, pixel_norm

pytestmark = pytest.mark.usefixtures("one_thread")


def test_growth_schedule():
    s = lambda kimg: growth_schedule(kimg, 4, 32, fade_kimg=10, stable_kimg=20)  # noqa: E731
    assert s(0) == (4, 1.0) and s(19.9) == (4, 1.0)
    assert s(20) == (8, 0.0) and s(25) == (8, 0.5) and s(30) == (8, 1.0) and s(49) == (8, 1.0)
    assert s(50) == (16, 0.0) and s(85) == (32, 0.5) and s(1000) == (32, 1.0)
    assert growth_schedule(0, 32, 32, 10, 20) == (32, 1.0)


def test_pixel_norm_unit_mean_square():
    x = torch.randn(2, 16, 3, 3) * 5
    assert torch.allclose(pixel_norm(x).square().mean(1), torch.ones(2, 3, 3), atol=1e-4)


def tiny() -> ProGAN:
    torch.manual_seed(0)
    return ProGAN(ProGANConfig(resolution=16, channels=1, z_dim=8, channel_base=64, channel_max=8, mbstd_group=2,
                               fade_kimg=1, stable_kimg=1))


def test_fade_in_blends_the_previous_resolution():
    m = tiny()
    z = torch.randn(3, 8)
    with torch.no_grad():
        prev = m.G(z, 4)
        at0, at1, half = m.G(z, 8, 0.0), m.G(z, 8, 1.0), m.G(z, 8, 0.5)
        torch.testing.assert_close(at0, F.interpolate(prev, scale_factor=2, mode="nearest"))
        torch.testing.assert_close(half, 0.5 * (at0 + at1))
        img = torch.randn(3, 1, 8, 8)
        torch.testing.assert_close(m.D(img, 0.0), m.D(F.avg_pool2d(img, 2), 1.0))
    m.before_step(StepContext(step=0, total_steps=10, images_seen=1500))  # 1.5 kimg: 8×8, α = 0.5
    assert (m.res, m.alpha) == (8, 0.5)
    real = torch.randn(2, 1, 16, 16)
    x8 = F.avg_pool2d(real, 2)
    torch.testing.assert_close(m.real_at_current(real),
                               0.5 * x8 + 0.5 * F.interpolate(F.avg_pool2d(x8, 2), scale_factor=2, mode="nearest"))
    assert m.sample(2, torch.Generator().manual_seed(0)).shape == (2, 1, 16, 16)


def test_cli_run_grows_and_samples_where_it_stopped(tmp_path, capsys):
    run = tmp_path / "pg"
    code, _, err = run_cli(["train", "progan", "--data", "digits", "--resolution", "16", "--z-dim", "8",
                            "--channel-base", "64", "--channel-max", "8", "--mbstd-group", "2", "--fade-kimg", "0.016",
                            "--stable-kimg", "0.016", "--batch-size", "8", "--steps", "4", "--no-progress",
                            "--out", run], capsys)
    assert code == 0, err
    import imagegen

    m = imagegen.load_run(run)
    assert (m.res, m.alpha) == (8, 0.5)  # 24 images seen before step 4: 8×8 half faded in
    assert imagegen.generate(m, 2).shape == (2, 1, 16, 16)


def test_ema_rampup_keeps_g_ema_close_to_g_in_a_short_run():
    """With the ramp-up (default) G_ema's half-life is at most 0.05 × images seen: after 10 steps of 64
    images the decay is 0.5 ** (64 / 32) = 0.25, not 0.999 (which leaves G_ema at its initial weights)."""
    from imagegen.nn.ema import half_life_images, ramped_ema_decay

    assert half_life_images(0.999, 64) == pytest.approx(44339, abs=1)
    assert ramped_ema_decay(64, 640, half_life_images(0.999, 64), 0.05) == pytest.approx(0.25)
    assert ramped_ema_decay(64, 10**7, half_life_images(0.999, 64), 0.05) == pytest.approx(0.999)
    assert ramped_ema_decay(64, 640, half_life_images(0.999, 64), None) == pytest.approx(0.999)
    m = tiny()
    for p in m.G.parameters():
        p.data.add_(1.0)  # "training" moved G away from G_ema
    m.after_step(StepContext(step=10, total_steps=100, images_seen=640))
    for p, q in zip(m.G.parameters(), m.G_ema.parameters()):
        assert torch.allclose(q, p - 0.25, atol=1e-5)  # G_ema = 0.25·(p − 1) + 0.75·p


def test_runs_saved_before_the_rampup_resume_without_it():
    """A checkpoint's config without ``ema_rampup`` (written before it existed) loads with the ramp-up off,
    as it was trained; new configs get 0.05."""
    from imagegen.config import from_saved, to_dict

    saved = to_dict(ProGANConfig(resolution=16, channels=1))
    del saved["ema_rampup"]
    assert from_saved(ProGANConfig, saved).ema_rampup is None
    assert ProGANConfig(resolution=16, channels=1).ema_rampup == 0.05
    with pytest.raises(Exception, match="ema_rampup"):
        ProGANConfig(resolution=16, channels=1, ema_rampup=0.0)
