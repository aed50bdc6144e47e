"""StyleGAN: Karras, Laine & Aila 2019, "A Style-Based Generator Architecture for Generative Adversarial
Networks" (CVPR; arXiv:1812.04948).

The synthesis network of the original StyleGAN (§2, Fig. 1b): a learned constant 4×4 input, then at
each resolution two 3×3 convolutions (the first upsamples), each followed by per-pixel noise with
learned strengths, bias and leaky ReLU, and **AdaIN** (Eq. 1): every feature map is normalised to zero
mean and unit variance over its pixels (instance normalisation) and then scaled and shifted by a
style ``(y_s, y_b)`` = an affine map of w (scales initialised to 1, biases to 0). A 1×1 convolution
gives the image at the last resolution. At the 4×4 block the constant itself gets noise and AdaIN
before the first convolution, as in the paper. num_ws = 2·log2(R) − 2, one w per AdaIN (ws[:, i]
drives the i-th AdaIN), the same count and layer order as ``stylegan2``.

Everything else is ``stylegan2``'s (mapping network, discriminator, losses, style mixing, truncation,
``G_ema``, augmentation), so that the two syntheses can be compared on the same data with only the
synthesis changed: the residual discriminator of StyleGAN2 instead of StyleGAN's ProGAN-style one,
the non-saturating loss with R1 (StyleGAN's FFHQ setting, §C), and no path-length regularisation by
default (``--pl-weight 0``; it was introduced with StyleGAN2). Upsampling uses the same
transposed-convolution + [1, 3, 3, 1] filter as ``stylegan2`` (StyleGAN upsampled, convolved, then
applied the same filter; §C).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import help_field
from ..errors import ConfigError
from ..nn.styled import EqualConv2d, EqualLinear, NoiseInput, NoiseMode, bias_act, conv2d_resample
from ..registry import register_model
from .base import Batch, StepContext
from .progan import ProDiscriminator, check_growth, fade_reals, growth_schedule, read_growth, write_growth
from .stylegan2 import StyleGAN2, StyleGAN2Config


@dataclasses.dataclass
class StyleGANConfig(StyleGAN2Config):
    pl_weight: float = help_field(0.0, "path-length regularisation weight (StyleGAN had none; StyleGAN2 uses 2)")
    progressive: bool = help_field(False, "progressive growing as the original StyleGAN (ProGAN's schedule, "
                                          "fade-in and discriminator; see progan)")
    start_resolution: int = help_field(4, "progressive: resolution training starts at")
    fade_kimg: float = help_field(30.0, "progressive: thousands of images over which a resolution fades in")
    stable_kimg: float = help_field(30.0, "progressive: thousands of images each resolution trains after it")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.progressive:
            check_growth(self.start_resolution, self.resolution, self.fade_kimg, self.stable_kimg)
            if self.conditional:
                raise ConfigError("--progressive uses ProGAN's discriminator, which has no label projection; drop "
                                  "--conditional or --progressive")
            if self.d_architecture != "resnet":
                raise ConfigError("--progressive uses ProGAN's discriminator, not StyleGAN2's blocks; drop "
                                  "--d-architecture or --progressive")


def adain(x: torch.Tensor, style: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Adaptive instance normalisation (StyleGAN Eq. 1): x [N, C, H, W] normalised per sample and
    channel over H×W, then ``y_s · x + y_b`` with ``style`` = [N, 2C] = (y_s, y_b)."""
    x = x - x.mean(dim=(2, 3), keepdim=True)
    x = x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + eps)
    ys, yb = style.chunk(2, dim=1)
    return x * ys[:, :, None, None] + yb[:, :, None, None]


class AdaINLayer(nn.Module):
    """Optional 3×3 convolution (upsampling with ``up``), then noise, bias, leaky ReLU and AdaIN with the
    style of w: x [N, C_in, r', r'] and w [N, w_dim] → [N, C_out, r, r]."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, resolution: int, conv: bool = True,
                 up: bool = False) -> None:
        super().__init__()
        if conv:
            self.weight = nn.Parameter(torch.randn(c_out, c_in, 3, 3))
            self.weight_gain = 1.0 / math.sqrt(c_in * 9)
        else:
            self.weight = None
        self.up = up
        self.noise = NoiseInput(resolution)
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.affine = EqualLinear(w_dim, 2 * c_out)
        with torch.no_grad():  # styles start as the identity: y_s = 1, y_b = 0
            self.affine.bias[:c_out] = 1.0 / self.affine.lr_mul

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: NoiseMode, mode: str = "",
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if self.weight is not None:
            x = conv2d_resample(x, self.weight * self.weight_gain, up=self.up)
        x = bias_act(self.noise(x, noise_mode, generator), self.bias, "lrelu")
        return adain(x, self.affine(w))


class AdaINSynthesis(nn.Module):
    """ws [N, num_ws, w_dim] → img [N, C, R, R] float32 (unbounded; ≈ [-1, 1] once trained)."""

    def __init__(self, cfg: StyleGAN2Config, channels: int) -> None:
        super().__init__()
        self.num_ws, self.resolution = cfg.num_ws, cfg.resolution
        c4 = cfg.width(4)
        self.const = nn.Parameter(torch.ones(c4, 4, 4))  # StyleGAN initialises the constant to 1
        self.layers = nn.ModuleList([AdaINLayer(c4, c4, cfg.w_dim, 4, conv=False),
                                     AdaINLayer(c4, c4, cfg.w_dim, 4)])
        res = 8
        while res <= cfg.resolution:
            c_in, c_out = cfg.width(res // 2), cfg.width(res)
            self.layers.append(AdaINLayer(c_in, c_out, cfg.w_dim, res, up=True))
            self.layers.append(AdaINLayer(c_out, c_out, cfg.w_dim, res))
            res *= 2
        self.progressive = bool(getattr(cfg, "progressive", False))
        if self.progressive:  # an RGB output per resolution, for the growth and its fade-in
            self.to_rgbs = nn.ModuleDict({str(4 * 2 ** k): EqualConv2d(cfg.width(4 * 2 ** k), channels, 1)
                                          for k in range(int(math.log2(cfg.resolution)) - 1)})
            # [resolution, α] of the growth, set by the model before every step (copied into G_ema)
            self.register_buffer("growth", torch.tensor([float(cfg.start_resolution), 1.0]))
        else:
            self.to_rgb = EqualConv2d(cfg.width(cfg.resolution), channels, 1)
        self.conv_mode = "scaled"  # unused (no modulated convolutions); kept for StyleGAN2.set_conv_mode

    def forward(self, ws: torch.Tensor, noise_mode: NoiseMode = "random",
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """ws → img [N, C, R, R]; progressive: at the current resolution of ``growth`` (r×r), the newest
        resolution's RGB blended with the upsampled previous one by α (ProGAN Fig. 2)."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"ws must be [N, {self.num_ws}, w_dim], got {list(ws.shape)}")
        x = self.const[None].expand(ws.shape[0], -1, -1, -1)  # [N, C4, 4, 4]
        if not self.progressive:
            for i, layer in enumerate(self.layers):
                x = layer(x, ws[:, i], noise_mode, generator=generator)
            return self.to_rgb(x)
        res, alpha = read_growth(self.growth)
        n_layers = 2 * int(math.log2(res)) - 2  # two AdaIN layers per resolution up to res
        prev = None
        for i, layer in enumerate(self.layers[:n_layers]):
            if i == n_layers - 2 and res > 4:
                prev = x  # the previous resolution's features, for the fade-in
            x = layer(x, ws[:, i], noise_mode, generator=generator)
        img = self.to_rgbs[str(res)](x)
        if alpha < 1.0 and prev is not None:
            img = torch.lerp(F.interpolate(self.to_rgbs[str(res // 2)](prev), scale_factor=2, mode="nearest"), img, alpha)
        return img


class _GrowingDiscriminator(nn.Module):
    """ProGAN's discriminator behind StyleGAN2's call signature ``D(img, c)``: α from the model's growth."""

    def __init__(self, cfg: StyleGANConfig, channels: int) -> None:
        super().__init__()
        self.net = ProDiscriminator(cfg, channels)
        self.alpha = 1.0

    def forward(self, img: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.net(img, self.alpha)


@register_model("stylegan")
class StyleGAN(StyleGAN2):
    """StyleGAN: AdaIN synthesis (Karras et al. 2019) with everything else shared with ``stylegan2``
    (see the module docstring for what that means for the comparison)."""

    Config = StyleGANConfig
    synthesis_cls = AdaINSynthesis
    presets = {}  # the cifar preset is stylegan2-ada-pytorch's, for the StyleGAN2 architecture

    def __init__(self, config: StyleGANConfig) -> None:
        super().__init__(config)
        if config.progressive:
            self.D = _GrowingDiscriminator(config, config.channels or 1)

    # ---- progressive growing (Karras et al. 2019 §2 trains this way, with ProGAN's schedule) ------
    @property
    def growth(self) -> Optional[tuple[int, float]]:
        """(current resolution, fade-in α) when progressive, else None."""
        if not self.config.progressive:
            return None
        return read_growth(self.G_ema.synthesis.growth)

    def before_step(self, ctx: StepContext) -> None:
        c = self.config
        if c.progressive:
            res, alpha = growth_schedule(ctx.kimg, c.start_resolution, c.resolution, c.fade_kimg, c.stable_kimg)
            for G in (self.G, self.G_ema):
                write_growth(G.synthesis.growth, res, alpha)
            self.D.alpha = alpha

    def training_step(self, phase: str, batch: Batch) -> dict[str, torch.Tensor]:
        if self.config.progressive:  # real images at the current resolution, faded like G's output
            batch = {**batch, "img": fade_reals(batch["img"], *read_growth(self.G.synthesis.growth))}
        return super().training_step(phase, batch)

    def _output(self, img: torch.Tensor) -> torch.Tensor:
        """Clamped to [-1, 1] and, while growing, upsampled (nearest) to the final resolution."""
        if img.shape[-1] != self.config.resolution:
            img = F.interpolate(img, size=self.config.resolution, mode="nearest")
        return img.clamp(-1, 1)
