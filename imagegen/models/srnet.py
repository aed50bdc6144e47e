"""SRResNet (and SRGAN-MSE with ``--adv-weight``): Ledig et al. 2017, "Photo-Realistic Single Image
Super-Resolution Using a Generative Adversarial Network" (CVPR; arXiv:1609.04802), with the sub-pixel
convolution of Shi et al. 2016, "Real-Time Single Image and Video Super-Resolution Using an Efficient
Sub-Pixel Convolutional Neural Network" (CVPR; arXiv:1609.05158).

Generator (Ledig et al. §2.2, Fig. 4): a 9×9 convolution and PReLU; B residual blocks (3×3 conv, batch
norm, PReLU, 3×3 conv, batch norm, identity skip; B = 16 and 64 filters in the paper); a 3×3
convolution and batch norm with a skip from before the blocks; upsampling blocks of a 3×3 convolution
to 4× the channels, a ×2 **sub-pixel convolution** (pixel shuffle, Shi et al. §2.2, Eq. 4: the
periodic shuffling PS that rearranges [C·r², H, W] into [C, rH, rW]) and PReLU, one block per factor
2 (a single ×3 block for scale 3, ×r for other factors); a final 9×9 convolution to C channels. The
network works on the low-resolution image throughout, as Shi et al. propose, and is fully
convolutional: any input size, output r× larger.

Losses: SRResNet minimises the pixel-wise MSE (§2.2.1, Eq. 4 of Ledig et al.), Adam(1e-4, β1 0.9)
(§3.2). ``--adv-weight w`` adds w × the adversarial loss of a :class:`~imagegen.nn.image2image.
PatchDiscriminator` (§2.2.2, Eq. 3 uses 10⁻³ with a VGG content loss; with the MSE content loss kept
here this is the paper's "SRGAN-MSE" variant, Table 4). Ledig's D ends in dense layers on 96×96 crops;
the patch discriminator here takes any size.

Deviation, on by default (``--residual``): the network predicts the difference to the bicubic
upsampling of its input, x̂ = bicubic(y) + G(y), with G's last convolution initialised to zero, so an
untrained model is bicubic interpolation (global residual learning, Kim et al. 2016, "Accurate Image
Super-Resolution Using Very Deep Convolutional Networks" (VDSR), §3.1). On CIFAR-10 ×2 with width 32
and 4 blocks (Adam 1e-4 ... 1e-3, batch 32), 300 steps reached 23.0–25.9 dB without it, below bicubic's
26.8 dB, and 28.3–28.5 dB with it (200 held-out images). ``--no-residual`` is the paper's SRResNet.

Inputs are produced by the bicubic downsampling of :class:`~imagegen.data.degradations.Degradation`
(×2 … ×8; ``--resolution`` must be a multiple of ``--scale``).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import help_field
from ..data.degradations import Degradation
from ..errors import ConfigError
from ..registry import register_model
from .restoration import AdversarialRestorationConfig, RestorationModel, degradation_field


@dataclasses.dataclass
class SRResNetConfig(AdversarialRestorationConfig):
    resolution: int = help_field(32, "training image size (high resolution) in pixels; a multiple of --scale")
    lr: float = help_field(1e-4, "Adam learning rate of the generator (1e-4 in Ledig et al. §3.2)")
    scale: int = help_field(4, "upscaling factor (2-8; the inputs are the clean images bicubic-downsampled by it)")
    width: int = help_field(64, "filters of the convolutions (64 in the paper)")
    num_blocks: int = help_field(16, "residual blocks B (16 in the paper)")
    residual: bool = help_field(True, "predict the difference to the bicubic upsampling of the input, starting from "
                                      "it (residual learning as in VDSR and DnCNN; much faster to train on a CPU "
                                      "budget); --no-residual: the paper's SRResNet, which predicts the image")
    degradation: Optional[Degradation] = degradation_field()

    def make_degradation(self) -> Degradation:
        return Degradation.super_resolution(self.scale, self.quantize)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.width < 1 or self.num_blocks < 0:
            raise ConfigError(f"--width {self.width} / --num-blocks {self.num_blocks}: need width ≥ 1, blocks ≥ 0")


class ResidualBlock(nn.Module):
    """x [N, W, H, W'] → x + BN(conv(PReLU(BN(conv(x))))) (Ledig et al. Fig. 4)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                  nn.PReLU(width), nn.Conv2d(width, width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def bicubic_upsample(img: torch.Tensor, scale: int) -> torch.Tensor:
    """[N, C, h, w] → [N, C, h·scale, w·scale]: the antialiased bicubic of the degradation (a = −0.5)."""
    return F.interpolate(img, scale_factor=scale, mode="bicubic", align_corners=False, antialias=True)


def upsampling_factors(scale: int) -> list[int]:
    """Sub-pixel stages for ``scale``: ×2 per factor 2 (4 → [2, 2], 8 → [2, 2, 2]), else one ×scale."""
    return [2] * int(math.log2(scale)) if scale & (scale - 1) == 0 else [scale]


class SRResNetGenerator(nn.Module):
    """low-resolution [N, C, h, w] float32 in [-1, 1] → [N, C, h·scale, w·scale] (unbounded; clamped by
    :meth:`~imagegen.models.restoration.RestorationModel.restore`)."""

    def __init__(self, channels: int, scale: int, width: int = 64, num_blocks: int = 16) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, padding=4), nn.PReLU(width))
        self.body = nn.Sequential(*[ResidualBlock(width) for _ in range(num_blocks)],
                                  nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width))
        up: list[nn.Module] = []
        for r in upsampling_factors(scale):
            up += [nn.Conv2d(width, width * r * r, 3, padding=1), nn.PixelShuffle(r), nn.PReLU(width)]
        self.upsample = nn.Sequential(*up)
        self.tail = nn.Conv2d(width, channels, 9, padding=4)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        h = self.head(lr)                  # [N, W, h, w]
        h = h + self.body(h)               # long skip over the residual blocks
        return self.tail(self.upsample(h))  # [N, W, rh, rw] → [N, C, rh, rw]


@register_model("srresnet")
class SRResNet(RestorationModel):
    """SRResNet super-resolution (Ledig et al. 2017) with sub-pixel upsampling (Shi et al. 2016); with
    --adv-weight > 0, SRGAN-MSE (an adversarial term from a patch discriminator)."""

    Config = SRResNetConfig
    restoration_task = "super-resolution"

    def __init__(self, config: SRResNetConfig) -> None:
        super().__init__(config)
        self.G = SRResNetGenerator(config.channels or 1, config.scale, config.width, config.num_blocks)
        self.build_discriminator()

        if config.residual:  # the untrained network is the bicubic upsampling
            nn.init.zeros_(self.G.tail.weight)
            nn.init.zeros_(self.G.tail.bias)

    def network(self, degraded: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """low-resolution [N, C, h, w] → [N, C, h·scale, w·scale], unclamped (with ``residual``:
        bicubic(y) + G(y))."""
        out = self.G(degraded)
        if self.config.residual:
            out = out + bicubic_upsample(degraded, self.config.scale)
        return out
