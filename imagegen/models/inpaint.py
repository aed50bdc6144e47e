"""Context Encoder inpainting: Pathak, Krähenbühl, Donahue, Darrell & Efros 2016, "Context Encoders:
Feature Learning by Inpainting" (CVPR; arXiv:1604.07379), as a fully convolutional network.

What follows the paper:

* the task (§3): fill the missing region of an image from its context, with a **centre** region or
  **random** masks (§3.3; ``--mask centre`` (default), ``rectangles`` for the "random block" masks,
  ``strokes`` for free-form masks, see :mod:`imagegen.data.degradations`);
* the loss (§3.2): a masked L2 reconstruction loss, Eq. (1), L_rec = ‖M̂ ⊙ (x − F((1 − M̂) ⊙ x))‖²
  (averaged here over the missing pixels), plus the adversarial loss of Eq. (2), joined as Eq. (3):
  L = λ_rec L_rec + λ_adv L_adv with λ_rec = 0.999, λ_adv = 0.001 (``--rec-weight``,
  ``--adv-weight``); the generator uses the non-saturating form of the adversarial loss.

What differs, and why: the paper's encoder (AlexNet-like) → channel-wise fully connected layer →
decoder predicts only the centre region and is tied to one input size. Here the generator is an
encoder–decoder of convolutions only (``num_down`` stride-2 convolutions, ``num_blocks`` dilated
residual blocks at the bottleneck to widen the receptive field as Iizuka et al. 2017, §3.1, do instead
of a fully connected layer, then nearest-neighbour upsampling + convolution to avoid checkerboard
artefacts), whose input is the masked image (missing pixels set to 0) **with the mask as an extra
channel**; it predicts every pixel and the output keeps the known pixels: x̂ = M ⊙ G + (1 − M) ⊙ x.
So one network handles any mask shape and any image size that 2^num_down divides (a user's whole
photo, not only the training crop). The discriminator (a :class:`~imagegen.nn.image2image.
PatchDiscriminator`) sees the whole composited image, context included (the paper's D sees only the
filled region); it scores every patch, so for large holes it judges the fill against its context.
Adam(2e-4, β1 0.5) for both networks follows the DCGAN defaults (Radford et al. 2015, §4) that the
paper's adversarial training builds on.
"""
from __future__ import annotations

import dataclasses
from typing import Literal, Optional

import torch
from torch import nn

from ..config import help_field
from ..data.degradations import Degradation, Degraded
from ..errors import ConfigError
from ..registry import register_model
from .restoration import AdversarialRestorationConfig, RestorationModel, degradation_field


@dataclasses.dataclass
class ContextEncoderConfig(AdversarialRestorationConfig):
    lr: float = help_field(2e-4, "Adam learning rate of the generator")
    beta1: float = help_field(0.5, "Adam beta1 (DCGAN's 0.5)")
    adv_weight: float = help_field(0.001, "lambda_adv: weight of the adversarial loss (Pathak et al. Eq. 3: 0.001; "
                                          "0 = L2 only, no discriminator)")
    rec_weight: float = help_field(0.999, "lambda_rec: weight of the masked L2 reconstruction loss (Eq. 3: 0.999)")
    mask: Literal["centre", "rectangles", "strokes"] = help_field(
        "centre", "training masks: a centred rectangle, random rectangles, or random brush strokes")
    mask_fraction: float = help_field(0.25, "missing fraction of the image area (centre: exact, 0.25 = a hole of "
                                            "half the side; random masks: at least this)")
    width: int = help_field(64, "channels of the first convolution (doubled per stride-2 layer, at most 8x)")
    num_down: int = help_field(3, "stride-2 convolutions of the encoder (input sizes must be multiples of "
                                  "2**num_down)")
    num_blocks: int = help_field(2, "dilated residual blocks at the bottleneck (dilations 2, 4, 8, 16, ...)")
    degradation: Optional[Degradation] = degradation_field()

    def make_degradation(self) -> Degradation:
        return Degradation.inpaint(self.mask, self.mask_fraction, self.quantize)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.width < 1 or self.num_down < 1 or self.num_blocks < 0:
            raise ConfigError(f"--width {self.width} / --num-down {self.num_down} / --num-blocks {self.num_blocks}: "
                              "need width ≥ 1, num-down ≥ 1, num-blocks ≥ 0")
        if self.resolution % 2 ** self.num_down:
            raise ConfigError(f"--resolution {self.resolution} is not a multiple of 2**num_down = "
                              f"{2 ** self.num_down}; change one of them")
        if not self.rec_weight > 0:
            raise ConfigError(f"--rec-weight {self.rec_weight}: must be > 0")


class DilatedResidualBlock(nn.Module):
    """x → x + BN(conv_d(ReLU(BN(conv_d(x))))), 3×3 convolutions of dilation d (size kept)."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class InpaintingGenerator(nn.Module):
    """(masked image [N, C, H, W] with missing pixels 0, mask [N, 1, H, W] float 0/1) → image
    [N, C, H, W] in (-1, 1) (tanh) for every pixel; H, W multiples of 2^num_down."""

    def __init__(self, channels: int, width: int = 64, num_down: int = 3, num_blocks: int = 2) -> None:
        super().__init__()
        chans = [width * 2 ** min(i, 3) for i in range(num_down + 1)]  # e.g. [64, 128, 256, 512]
        enc: list[nn.Module] = [nn.Conv2d(channels + 1, chans[0], 5, padding=2), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(chans[:-1], chans[1:]):  # halves the size each layer
            enc += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
        self.encoder = nn.Sequential(*enc)
        self.bottleneck = nn.Sequential(*[DilatedResidualBlock(chans[-1], 2 ** (1 + k % 4)) for k in range(num_blocks)])
        dec: list[nn.Module] = []
        for c_in, c_out in zip(chans[:0:-1], chans[-2::-1]):  # doubles the size each layer
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                    nn.BatchNorm2d(c_out), nn.ReLU(True)]
        dec += [nn.Conv2d(chans[0], channels, 3, padding=1), nn.Tanh()]
        self.decoder = nn.Sequential(*dec)

    def forward(self, masked: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.encoder(torch.cat([masked, mask], 1))  # [N, C+1, H, W] → [N, c_L, H/2^L, W/2^L]
        return self.decoder(self.bottleneck(h))


@register_model("context-encoder")
class ContextEncoder(RestorationModel):
    """Context Encoder inpainting (Pathak et al. 2016): masked L2 + adversarial loss, fully convolutional
    with the mask as an input channel."""

    Config = ContextEncoderConfig
    restoration_task = "inpaint"

    def __init__(self, config: ContextEncoderConfig) -> None:
        super().__init__(config)
        self.G = InpaintingGenerator(config.channels or 1, config.width, config.num_down, config.num_blocks)
        self.build_discriminator()

    @property
    def size_multiple(self) -> int:
        return 2 ** self.config.num_down

    def network(self, degraded: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        """x̂ = M ⊙ G((1 − M) ⊙ y, M) + (1 − M) ⊙ y: degraded [N, C, H, W], mask bool [N, 1, H, W]."""
        assert mask is not None, "inpainting needs a mask"
        known = torch.where(mask, torch.zeros_like(degraded), degraded)  # whatever the holes held
        filled = self.G(known, mask.to(degraded.dtype))
        return torch.where(mask, filled, known)

    def reconstruction_loss(self, out: torch.Tensor, clean: torch.Tensor, degraded: Degraded) -> torch.Tensor:
        """Masked L2 (Eq. 1), the mean squared error over the missing pixels (and channels)."""
        m = degraded.mask.to(out.dtype).expand_as(out)
        return ((out - clean).square() * m).sum() / m.sum().clamp_min(1.0)
