"""Classic training augmentations added to flip/crop/rotate (tests/test_data.py): Gaussian smoothing and
colour jitter (imagegen.data.augment), their trainer options, and exact resume of their randomness."""
from __future__ import annotations

import pytest
import torch

from imagegen.config import from_dict
from imagegen.data.augment import (AugmentConfig, augment, color_jitter, gaussian_blur, random_blur,
                                   random_color_jitter, random_crops)
from imagegen.errors import ConfigError
from imagegen.training import TrainConfig


def _batch(b=6, c=3, h=16, w=16, seed=0):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _high_freq_energy(img: torch.Tensor) -> float:
    """Sum of squared neighbour differences (the energy of the highest spatial frequencies)."""
    return float((img.diff(dim=-2) ** 2).sum() + (img.diff(dim=-1) ** 2).sum())


def test_off_by_default_leaves_images_unchanged():
    cfg = AugmentConfig()
    assert cfg.blur_sigma == 0 and cfg.color_jitter == (0.0, 0.0, 0.0) and not cfg.enabled
    assert TrainConfig().augment_config() is None
    img, g = _batch(), torch.Generator().manual_seed(0)
    state = g.get_state()
    assert augment(img, cfg, g) is img and torch.equal(g.get_state(), state)
    assert random_blur(img, 0.0, g) is img and random_color_jitter(img, generator=g) is img
    assert torch.equal(g.get_state(), state)  # nothing drawn
    assert AugmentConfig(blur_sigma=1.0).enabled and AugmentConfig(color_jitter=(0, 0.2, 0)).enabled
    assert not AugmentConfig(blur_sigma=1.0, blur_p=0.0).enabled


def test_blur_sigma_zero_is_identity_and_positive_sigma_smooths():
    img = _batch()
    assert gaussian_blur(img, 0.0) is img
    blurred = gaussian_blur(img, 1.5)
    assert blurred.shape == img.shape and blurred.dtype == img.dtype
    assert _high_freq_energy(blurred) < 0.2 * _high_freq_energy(img)
    assert blurred.min() >= img.min() - 1e-6 and blurred.max() <= img.max() + 1e-6  # a convex average
    torch.testing.assert_close(blurred.mean(dim=(2, 3)), img.mean(dim=(2, 3)), atol=0.05, rtol=0)
    const = torch.full((2, 1, 9, 9), 0.3)
    torch.testing.assert_close(gaussian_blur(const, 2.0), const)
    # one sigma per image: 0 leaves that image bit-for-bit unchanged, a larger sigma smooths more
    per = gaussian_blur(img[:3], torch.tensor([0.0, 0.7, 2.0]))
    assert torch.equal(per[0], img[0])
    energies = [_high_freq_energy(x) for x in per]
    assert energies[0] > energies[1] > energies[2]
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        gaussian_blur(img, -1.0)


def test_random_blur_draws_sigma_in_range_and_honours_p():
    img = _batch(b=32)
    out = random_blur(img, 2.0, torch.Generator().manual_seed(0), p=1.0)
    assert out.shape == img.shape and _high_freq_energy(out) < _high_freq_energy(img)
    none = random_blur(img, 2.0, torch.Generator().manual_seed(0), p=0.0)
    assert torch.equal(none, img)
    half = random_blur(img, 2.0, torch.Generator().manual_seed(1), p=0.5)
    unchanged = sum(torch.equal(a, b) for a, b in zip(half, img))
    assert 4 < unchanged < 28


def test_color_jitter_keeps_range_shape_and_its_definitions():
    img = _batch(b=16)
    for strengths in [(0.4, 0.4, 0.4), (1.0, 1.0, 3.0)]:
        out = random_color_jitter(img, *strengths, generator=torch.Generator().manual_seed(0))
        assert out.shape == img.shape and out.dtype == img.dtype
        assert out.min() >= -1 and out.max() <= 1 and not torch.equal(out, img)
    one = torch.ones(16)
    torch.testing.assert_close(color_jitter(img, one, one, one), img, atol=1e-6, rtol=0)  # factors 1: identity
    grey = color_jitter(img, one, one, torch.zeros(16))  # saturation 0: three equal channels
    torch.testing.assert_close(grey[:, 0], grey[:, 1], atol=1e-6, rtol=0)
    flat = color_jitter(img, one, torch.zeros(16), one)  # contrast 0: the image's mean grey everywhere
    assert float(flat.std(dim=(2, 3)).max()) < 1e-5
    dark = color_jitter(img, 0.5 * one, one, one)  # brightness halves intensities in [0, 1]
    torch.testing.assert_close((dark + 1) / 2, (img + 1) / 4, atol=1e-6, rtol=0)
    mono = _batch(b=4, c=1)
    torch.testing.assert_close(color_jitter(mono, 1.0, 1.0, 0.0), mono)  # 1 channel: no saturation change
    pair = torch.cat([img, img], dim=1)  # two RGB images of a pair get the same factors, each its own statistics
    out = random_color_jitter(pair, 0.3, 0.3, 0.3, generator=torch.Generator().manual_seed(2), groups=[3, 3])
    assert torch.equal(out[:, :3], out[:, 3:])
    with pytest.raises(ValueError, match="1 or 3 channels"):
        color_jitter(pair, 1.0, 1.0, 1.0)


def test_all_augmentations_are_deterministic_and_resume_exactly():
    img = _batch()
    cfg = AugmentConfig(flip=True, crop_pad=2, rotate_deg=10.0, blur_sigma=1.5, blur_p=0.5,
                        color_jitter=(0.3, 0.3, 0.3))
    out1 = augment(img, cfg, torch.Generator().manual_seed(1))
    assert torch.equal(out1, augment(img, cfg, torch.Generator().manual_seed(1)))
    assert not torch.equal(out1, augment(img, cfg, torch.Generator().manual_seed(2)))
    assert out1.shape == img.shape and out1.min() >= -1 and out1.max() <= 1
    g = torch.Generator().manual_seed(5)
    augment(img, cfg, g)  # a step before the checkpoint
    state = g.get_state()
    a = augment(img, cfg, g)
    g.set_state(state)  # resume from the saved generator state
    assert torch.equal(a, augment(img, cfg, g))


def test_config_validation_and_cli_forms():
    cfg = from_dict(TrainConfig, {"blur_sigma": "1.5", "color_jitter": "0.4,0.2,0.1"})
    aug = cfg.augment_config()
    assert aug.blur_sigma == 1.5 and aug.color_jitter == (0.4, 0.2, 0.1) and aug.blur_p == 1.0
    assert from_dict(TrainConfig, {"color_jitter": "0.4"}).color_jitter == (0.4, 0.4, 0.4)
    for bad in ({"color_jitter": "0.1,0.2"}, {"color_jitter": "-0.1"}, {"blur_sigma": "-1"},
                {"blur_sigma": "1", "blur_p": "1.5"}):
        with pytest.raises(ConfigError):
            from_dict(TrainConfig, bad)


def test_training_with_blur_and_jitter_resumes_exactly(tmp_path):
    """A run with --blur-sigma and --color-jitter stopped mid-way and resumed ends with the weights of an
    uninterrupted run (the augmentations draw from the checkpointed augmentation generator)."""
    from imagegen.models.dcgan import DCGANConfig
    from imagegen.sampling import load_run
    from imagegen.training import Trainer
    from imagegen.training.interrupt import TrainingInterrupted

    small = DCGANConfig(resolution=8, z_dim=4, g_width=4, d_width=4)

    def cfg():
        return TrainConfig(data="digits", steps=6, batch_size=16, progress=False, sample_every=100, ckpt_every=100,
                           ckpt_minutes=0, log_every=1, threads=1, blur_sigma=1.0, blur_p=0.5,
                           color_jitter=(0.3, 0.3, 0.3), flip=True)

    Trainer("dcgan", small, cfg(), tmp_path / "ref", echo=lambda s: None).fit()
    with pytest.raises(TrainingInterrupted):
        Trainer("dcgan", small, cfg(), tmp_path / "run", echo=lambda s: None, should_stop=lambda step: step == 3).fit()
    Trainer("dcgan", None, cfg(), tmp_path / "run", resume=True, echo=lambda s: None).fit()
    a, b = load_run(tmp_path / "ref").state_dict(), load_run(tmp_path / "run").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    saved = load_run(tmp_path / "run").checkpoint_meta["train_config"]
    assert saved["blur_sigma"] == 1.0 and saved["color_jitter"] == [0.3, 0.3, 0.3]


def test_random_crops_cut_windows_at_independent_uniform_offsets():
    img = torch.arange(2 * 3 * 6 * 7, dtype=torch.float32).reshape(2, 3, 6, 7).repeat(200, 1, 1, 1)
    out = random_crops(img, (4, 3), torch.Generator().manual_seed(0))
    assert out.shape == (400, 3, 4, 3)
    offsets = set()
    for i in range(len(img)):  # each output is a window of its own image, at some offset
        y0, x0 = divmod(int(out[i, 0, 0, 0] - img[i, 0, 0, 0]), 7)
        assert torch.equal(out[i], img[i, :, y0:y0 + 4, x0:x0 + 3])
        offsets.add((y0, x0))
    assert offsets == {(y, x) for y in range(3) for x in range(5)}  # every position reachable
    again = random_crops(img, (4, 3), torch.Generator().manual_seed(0))
    assert torch.equal(out, again) and torch.equal(random_crops(img, (6, 7), torch.Generator()), img)
    with pytest.raises(ValueError, match="does not fit"):
        random_crops(img, (7, 3), torch.Generator())
