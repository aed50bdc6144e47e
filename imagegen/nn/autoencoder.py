"""Convolutional encoder and decoder shared by the autoencoder models (vae, cvae, aae).

Any even resolution ≥ 8 works (not only powers of two: 28×28 MNIST is native): the encoder halves
the image ``n = num_down(R)`` times with 4×4 stride-2 convolutions down to a ``R/2ⁿ`` ≥ 4 map
(28 → 14 → 7, 32 → 16 → 8 → 4), then two fully connected layers; the decoder mirrors it with
transposed convolutions. A conditioning vector (e.g. a one-hot label, Sohn et al. 2015) can be
concatenated to the flattened features of the encoder and to the decoder's input.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import torch
from torch import nn

from ..config import help_field
from ..errors import ConfigError


def num_down(resolution: int) -> int:
    """Number of stride-2 stages: the largest n with R divisible by 2ⁿ and R / 2ⁿ ≥ 4.

    Raises:
        ConfigError: R < 8 or odd (no stage possible).
    """
    n = 0
    while resolution % 2 ** (n + 1) == 0 and resolution // 2 ** (n + 1) >= 4:
        n += 1
    if n == 0:
        raise ConfigError(f"resolution={resolution}: autoencoders need an even size ≥ 8 (e.g. 28 or 32)")
    return n


@dataclasses.dataclass
class AutoencoderConfig:
    """Options of the shared encoder/decoder pair, checked once for every autoencoder model.

    Subclasses add their own fields and may redeclare a default (e.g. ``z_dim``); positive-integer
    fields beyond the ones here go in ``_positive``.

    Raises:
        ConfigError: channels not 1 or 3, an unusable resolution, or a non-positive width.
    """

    resolution: int = help_field(32, "image size in pixels (even, ≥ 8; 28 keeps MNIST's original pixels)")
    channels: Optional[int] = help_field(None, "image channels (1 or 3); default: the dataset's")
    z_dim: int = help_field(32, "latent z dimension")
    width: int = help_field(32, "channels of the first encoder convolution (doubling per stage)")
    hidden: int = help_field(512, "width of the fully connected hidden layer of encoder and decoder")

    _positive = ("z_dim", "width", "hidden")

    def __post_init__(self) -> None:
        if self.channels is not None and self.channels not in (1, 3):
            raise ConfigError(f"channels={self.channels}: use 1 or 3")
        num_down(self.resolution)  # raises ConfigError for unusable sizes
        for name in self._positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: must be ≥ 1")


def _widths(width: int, n: int) -> list[int]:
    return [width * 2 ** min(i, 3) for i in range(n)]  # e.g. n = 3: [w, 2w, 4w], capped at 8w


class ConvEncoder(nn.Module):
    """img [N, C, R, R] float32 in [-1, 1] (+ cond [N, cond_dim]) → [N, out_dim] float32.

    (Conv 4×4 stride 2 → ReLU) × n → flatten → concat(cond) → Linear(hidden) → ReLU → Linear(out_dim).

    Args:
        resolution, channels: R and C of the input images.
        width: channels of the first convolution (doubling per stage, capped at 8×).
        hidden: width of the fully connected hidden layer.
        out_dim: output features (2·z_dim for a Gaussian posterior's mean and log-variance).
        cond_dim: width of the conditioning vector (0 = unconditional).
    """

    def __init__(self, resolution: int, channels: int, width: int, hidden: int, out_dim: int,
                 cond_dim: int = 0) -> None:
        super().__init__()
        n = num_down(resolution)
        chans = _widths(width, n)
        layers: list[nn.Module] = []
        c_in = channels
        for c_out in chans:
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.ReLU(True)]
            c_in = c_out
        self.conv = nn.Sequential(*layers)
        flat = chans[-1] * (resolution // 2 ** n) ** 2
        self.fc = nn.Sequential(nn.Linear(flat + cond_dim, hidden), nn.ReLU(True), nn.Linear(hidden, out_dim))
        self.cond_dim = cond_dim

    def forward(self, img: torch.Tensor, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.conv(img).flatten(1)  # [N, c·s·s]
        if self.cond_dim:
            assert cond is not None and cond.shape == (img.shape[0], self.cond_dim)
            h = torch.cat([h, cond], 1)
        return self.fc(h)


class ConvDecoder(nn.Module):
    """z [N, in_dim] (+ cond [N, cond_dim]) → [N, out_channels, R, R] float32, unbounded (the
    parameters of the likelihood, e.g. Bernoulli logits or logistic means and log-scales).

    concat(cond) → Linear(hidden) → ReLU → Linear(c·s·s) → ReLU → (ConvTranspose 4×4 stride 2 → ReLU)
    × (n − 1) → ConvTranspose 4×4 stride 2 to ``out_channels``.
    """

    def __init__(self, resolution: int, out_channels: int, width: int, hidden: int, in_dim: int,
                 cond_dim: int = 0) -> None:
        super().__init__()
        n = num_down(resolution)
        chans = _widths(width, n)[::-1]  # e.g. [4w, 2w, w]
        self.top = (chans[0], resolution // 2 ** n, resolution // 2 ** n)
        self.fc = nn.Sequential(nn.Linear(in_dim + cond_dim, hidden), nn.ReLU(True),
                                nn.Linear(hidden, chans[0] * self.top[1] * self.top[2]), nn.ReLU(True))
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(chans[-1], out_channels, 4, 2, 1)]
        self.deconv = nn.Sequential(*layers)
        self.cond_dim = cond_dim

    def forward(self, z: torch.Tensor, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.cond_dim:
            assert cond is not None and cond.shape == (z.shape[0], self.cond_dim)
            z = torch.cat([z, cond], 1)
        h = self.fc(z).view(-1, *self.top)  # [N, c, s, s]
        return self.deconv(h)  # [N, out_channels, R, R]
