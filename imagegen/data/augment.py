"""Batch data augmentation: random horizontal flip, padded random crop, small random rotation.

All augmentations work on a whole batch ``img: [B, C, H, W] float32 in [-1, 1]`` on any device,
without a Python loop over images, and draw their randomness from an explicit
:class:`torch.Generator`, so a trainer that checkpoints ``generator.get_state()`` resumes with the
exact same augmentations. Random numbers are drawn on the generator's device and moved to the
images' device, so a CPU generator works for CUDA batches. Off by default.

Typical use in a training step::

    cfg = AugmentConfig(flip=True, crop_pad=4)
    gen = torch.Generator().manual_seed(seed)
    img = augment(img, cfg, gen)  # [B, C, H, W] → [B, C, H, W]

Augmenting the real images only (the usual DCGAN/CIFAR practice) leaks into GAN samples
when strong; for GANs keep them mild (flip) or use an ADA-style scheme that augments both.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from ..errors import ConfigError


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations to apply (all off by default).

    Attributes:
        flip: mirror each image left-right with probability 0.5.
        crop_pad: reflect-pad each side by this many pixels, then crop back to [H, W] at a uniformly
            random offset (the CIFAR "pad 4, random crop" scheme); 0 = off.
        rotate_deg: rotate each image by an angle uniform in [-rotate_deg, +rotate_deg] degrees about
            its centre (bilinear, reflection at the borders); 0 = off.
    """

    flip: bool = False
    crop_pad: int = 0
    rotate_deg: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.crop_pad, int) or self.crop_pad < 0:
            raise ConfigError(f"crop_pad must be a non-negative number of pixels, not {self.crop_pad!r}")
        if not 0.0 <= float(self.rotate_deg) <= 180.0:
            raise ConfigError(f"rotate_deg must be between 0 and 180 degrees, not {self.rotate_deg!r}")

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is on."""
        return self.flip or self.crop_pad > 0 or self.rotate_deg > 0


def augment(img: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Apply the augmentations of ``cfg`` in the order flip → crop → rotate.

    Args:
        img: [B, C, H, W] float32 in [-1, 1], any device.
        cfg: which augmentations to apply.
        generator: source of randomness (advanced only by the enabled augmentations).

    Returns:
        [B, C, H, W] float32 in [-1, 1] on ``img``'s device; ``img`` itself when nothing is enabled.

    Raises:
        ValueError: ``img`` is not 4-D, or ``crop_pad`` is not smaller than H and W.
    """
    if cfg.flip:
        img = random_flip(img, generator)
    if cfg.crop_pad > 0:
        img = random_crop(img, cfg.crop_pad, generator)
    if cfg.rotate_deg > 0:
        img = random_rotate(img, cfg.rotate_deg, generator)
    return img


def random_flip(img: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``.

    Args:
        img: [B, C, H, W] float tensor.
        generator: source of randomness (draws B uniforms).
        p: flip probability.

    Returns:
        [B, C, H, W], same dtype and device.
    """
    _check_batch(img)
    flip = _rand(img.shape[0], generator, img.device) < p  # [B] bool
    return torch.where(flip[:, None, None, None], img.flip(3), img)


def random_crop(img: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Reflect-pad by ``pad`` pixels on each side and crop back to [H, W] at random offsets.

    Each image gets its own offset (dy, dx) uniform in {0, …, 2·pad}², i.e. a shift of up to ``pad``
    pixels in each direction with mirrored content filling the gap. Pixel values are copied, never
    interpolated.

    Args:
        img: [B, C, H, W] float tensor.
        pad: padding in pixels, 0 <= pad < min(H, W).
        generator: source of randomness (draws 2·B integers).

    Returns:
        [B, C, H, W], same dtype and device.

    Raises:
        ValueError: ``pad`` is negative or not smaller than H and W (reflection needs that).
    """
    _check_batch(img)
    B, C, H, W = img.shape
    if pad == 0:
        return img
    if not 0 < pad < min(H, W):
        raise ValueError(f"crop padding must be in [0, {min(H, W)}) for {H}x{W} images, not {pad}")
    padded = F.pad(img, (pad, pad, pad, pad), mode="reflect")  # [B, C, H+2p, W+2p]
    offsets = torch.randint(0, 2 * pad + 1, (2, B), generator=generator, device=generator.device)
    dy, dx = offsets.to(img.device)  # [B] each
    rows = dy[:, None] + torch.arange(H, device=img.device)  # [B, H]
    cols = dx[:, None] + torch.arange(W, device=img.device)  # [B, W]
    batch = torch.arange(B, device=img.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # [B, H, W, C]
    return out.permute(0, 3, 1, 2).contiguous()  # [B, C, H, W]


def random_rotate(img: torch.Tensor, max_deg: float, generator: torch.Generator) -> torch.Tensor:
    """Rotate each image about its centre by an angle uniform in [-max_deg, max_deg] degrees.

    Args:
        img: [B, C, H, W] float tensor.
        max_deg: largest rotation in degrees.
        generator: source of randomness (draws B uniforms).

    Returns:
        [B, C, H, W], same dtype and device (see :func:`rotate`).
    """
    _check_batch(img)
    if max_deg == 0:
        return img
    degrees = (_rand(img.shape[0], generator, img.device) * 2 - 1) * max_deg  # [B]
    return rotate(img, degrees)


def rotate(img: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each image about its centre, counter-clockwise as displayed, by its own angle.

    Bilinear resampling with ``affine_grid``/``grid_sample`` (``align_corners=False``, so a 90°
    turn of a square image is exact); points that come from outside the image are mirrored back in
    (``padding_mode="reflection"``), so there are no constant-colour corners and values stay within
    the input's range.

    Args:
        img: [B, C, H, W] float tensor.
        degrees: [B] angles in degrees (or a scalar for all images).

    Returns:
        [B, C, H, W], same dtype and device.
    """
    _check_batch(img)
    B, C, H, W = img.shape
    angle = torch.deg2rad(torch.as_tensor(degrees, dtype=torch.float32, device=img.device).expand(B))
    cos, sin = torch.cos(angle), torch.sin(angle)  # [B]
    zero = torch.zeros_like(angle)
    # affine_grid maps output → input in normalised coords x/(W/2), y/(H/2) (y down); scaling the
    # off-diagonal terms by H/W keeps it a true rotation for non-square images.
    theta = torch.stack([torch.stack([cos, -sin * H / W, zero], 1),
                         torch.stack([sin * W / H, cos, zero], 1)], 1).to(img.dtype)  # [B, 2, 3]
    grid = F.affine_grid(theta, [B, C, H, W], align_corners=False)  # [B, H, W, 2]
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _rand(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """n uniforms in [0, 1) drawn on the generator's device, returned on ``device`` (float32)."""
    return torch.rand(n, generator=generator, device=generator.device).to(device)


def _check_batch(img: torch.Tensor) -> None:
    if img.ndim != 4:
        raise ValueError(f"expected images [B, C, H, W], got shape {tuple(img.shape)}")
