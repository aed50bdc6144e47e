"""Progressive growing of GANs: Karras, Aila, Laine & Lehtinen 2018, "Progressive Growing of GANs for
Improved Quality, Stability, and Variation" (ICLR; arXiv:1710.10196).

Training starts at 4×4 and doubles the resolution of G and D together (§2, Fig. 1). Each new
resolution is **faded in** (Fig. 2): for ``fade_kimg`` thousand images the new layers' output is
blended with the upsampled (G) / downsampled (D) output of the previous resolution, with α rising
linearly from 0 to 1, and the real images are blended the same way (Appendix A.1); then the
resolution trains for ``stable_kimg`` thousand images before the next is added. The schedule is a
function of the images seen, so a resumed run continues mid-fade exactly.

Networks (Table 2, at CPU widths): G — normalised z → 4×4 (a 4×4 transposed convolution, the
paper's dense layer) → 3×3 conv; per resolution nearest-neighbour ×2 upsampling and two 3×3 convs;
pixel-wise feature normalisation after every conv (§4.2), leaky ReLU 0.2, a linear 1×1 ``toRGB`` per
resolution. D — a 1×1 ``fromRGB`` per resolution, per resolution two 3×3 convs and 2×2 average
pooling, then minibatch standard deviation (§3), a 3×3 conv, a 4×4 conv and a linear output.
Equalised learning rate throughout (§4.1). Loss: WGAN-GP (Gulrajani et al. 2017) with λ = 10, γ = 1
(the penalty on ‖∇D‖ − 1 around the interpolates) and the drift term ε_drift·E[D(x)²], ε_drift = 0.001
(Appendix A.1); Adam(0.001, β = (0, 0.99)); ``G_ema`` with decay 0.999 (A.1), its half-life limited to
0.05 × the images seen (``ema_rampup``, the ramp-up of stylegan2-ada-pytorch; without it a run of
minutes samples a ``G_ema`` that is still mostly its initial weights: 0.999 per step of 64 is a
half-life of 44 k images).

Samples are always ``resolution``×``resolution``: during growing the current resolution is upsampled
(nearest) to it, so grids written during training show the growth.

Widths: ``min(channel_base / res, channel_max)`` at resolution ``res`` (defaults 2048 and 128 as
``stylegan2``: 128 channels up to 16×16, 64 at 32×32).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import help_field
from ..errors import ConfigError
from ..losses import gradient_penalty
from ..nn import adam, ramped_ema_decay, update_ema
from ..nn.ema import half_life_images
from ..nn.styled import EqualConv2d, EqualLinear, minibatch_stddev, normalize_2nd_moment
from ..registry import register_model
from .base import Batch, Phase, StepContext
from .d_augment import DAugmentConfig
from .gan import GANModel, check_image_size


@dataclasses.dataclass
class ProGANConfig(DAugmentConfig):
    resolution: int = help_field(32, "final image size in pixels (a power of two ≥ 8)")
    channels: Optional[int] = help_field(None, "image channels (1 or 3); default: the dataset's")
    z_dim: int = help_field(256, "latent z dimension")
    channel_base: int = help_field(2048, "feature maps at resolution r: min(channel_base / r, channel_max)")
    channel_max: int = help_field(128, "maximum feature maps per layer")
    start_resolution: int = help_field(4, "resolution training starts at (a power of two ≥ 4)")
    fade_kimg: float = help_field(30.0, "thousands of images over which a new resolution fades in (α 0 → 1)")
    stable_kimg: float = help_field(30.0, "thousands of images each resolution trains after its fade-in")
    lr: float = help_field(0.001, "Adam learning rate of G and D")
    beta1: float = help_field(0.0, "Adam β1")
    beta2: float = help_field(0.99, "Adam β2")
    gp_weight: float = help_field(10.0, "gradient-penalty weight λ (WGAN-GP)")
    drift: float = help_field(0.001, "drift penalty ε_drift · E[D(x)²] (Appendix A.1)")
    mbstd_group: int = help_field(4, "minibatch-stddev group size in D")
    ema_decay: float = help_field(0.999, "EMA decay of G_ema (0 = off)")
    ema_rampup: Optional[float] = help_field(0.05, "EMA ramp-up: G_ema's half-life at most this × images seen, "
                                                   "so that short runs do not sample a lagging G_ema (None = off)")

    #: saved configs from before ``ema_rampup`` existed resume as they were trained: without the ramp-up
    SAVED_DEFAULTS = {"ema_rampup": None}

    def __post_init__(self) -> None:
        check_image_size("ProGAN", self.resolution, self.channels)
        self.check_augment()
        check_growth(self.start_resolution, self.resolution, self.fade_kimg, self.stable_kimg)
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay={self.ema_decay}: use a value in [0, 1)")
        if self.ema_rampup is not None and self.ema_rampup <= 0:
            raise ConfigError(f"ema_rampup={self.ema_rampup}: use a value > 0, or None for no ramp-up")

    def width(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)


def check_growth(start: int, final: int, fade_kimg: float, stable_kimg: float) -> None:
    """Raise ConfigError (one line) unless ``start`` is a power of two in [4, ``final``] and the fade and
    stable lengths (thousands of images) are ≥ 0."""
    if start < 4 or start & (start - 1) or start > final:
        raise ConfigError(f"start_resolution={start}: a power of two between 4 and the resolution {final}")
    if fade_kimg < 0 or stable_kimg < 0:
        raise ConfigError("fade_kimg and stable_kimg must be ≥ 0")


def read_growth(growth: torch.Tensor) -> tuple[int, float]:
    """``(resolution, α)`` from a growth buffer ``[resolution, α]`` (float32 [2])."""
    return int(growth[0].item()), float(growth[1].item())


def write_growth(growth: torch.Tensor, res: int, alpha: float) -> None:
    """Store ``(resolution, α)`` in a growth buffer ``[resolution, α]`` in place (saved with the weights, so
    a loaded run samples at the stage where training stopped)."""
    growth.copy_(torch.tensor([float(res), alpha]))


def growth_schedule(kimg: float, start: int, final: int, fade_kimg: float, stable_kimg: float) -> tuple[int, float]:
    """``(resolution, α)`` after ``kimg`` thousand images: the start resolution trains for
    ``stable_kimg``; each next one fades in over ``fade_kimg`` (α 0 → 1), then trains ``stable_kimg``
    at α = 1; the final resolution stays once reached."""
    res, t = start, kimg - stable_kimg
    while res < final and t >= 0:
        res *= 2
        if t < fade_kimg:
            return res, t / fade_kimg if fade_kimg > 0 else 1.0
        t -= fade_kimg + stable_kimg
    return res, 1.0


def fade_reals(img: torch.Tensor, res: int, alpha: float) -> torch.Tensor:
    """Real images [N, C, R, R] → [N, C, res, res] (average pooling), blended during a fade-in with their
    own 2× lower-resolution version upsampled (nearest) by ``alpha``, as G's output is (Appendix A.1)."""
    x = F.adaptive_avg_pool2d(img, res) if img.shape[-1] != res else img
    if alpha < 1.0 and res > 4:
        x = torch.lerp(F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest"), x, alpha)
    return x


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pixel-wise feature vector normalisation (§4.2): x [N, C, H, W] / sqrt(mean over C of x² + ε)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


class ProGenerator(nn.Module):
    """z [N, z_dim] → img at the current resolution (``forward(z, res, alpha)``)."""

    def __init__(self, cfg: ProGANConfig, channels: int) -> None:
        super().__init__()
        c4 = cfg.width(4)
        self.input = EqualLinear(cfg.z_dim, c4 * 16, activation="lrelu")  # the 4×4 "dense" of Table 2
        self.c4 = c4
        self.conv4 = EqualConv2d(c4, c4, 3, activation="lrelu")
        self.blocks = nn.ModuleDict()
        self.to_rgb = nn.ModuleDict({"4": EqualConv2d(c4, channels, 1)})
        res = 8
        while res <= cfg.resolution:
            c_in, c_out = cfg.width(res // 2), cfg.width(res)
            self.blocks[str(res)] = nn.ModuleList([EqualConv2d(c_in, c_out, 3, activation="lrelu"),
                                                   EqualConv2d(c_out, c_out, 3, activation="lrelu")])
            self.to_rgb[str(res)] = EqualConv2d(c_out, channels, 1)
            res *= 2

    def forward(self, z: torch.Tensor, res: int, alpha: float = 1.0) -> torch.Tensor:
        x = pixel_norm(self.input(normalize_2nd_moment(z)).view(-1, self.c4, 4, 4))
        x = pixel_norm(self.conv4(x))
        prev = None
        r = 4
        while r < res:
            r *= 2
            prev = x
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            for conv in self.blocks[str(r)]:
                x = pixel_norm(conv(x))
        img = self.to_rgb[str(res)](x)
        if alpha < 1.0 and prev is not None:  # fade-in (Fig. 2b): blend with the upsampled previous output
            img = torch.lerp(F.interpolate(self.to_rgb[str(res // 2)](prev), scale_factor=2, mode="nearest"), img, alpha)
        return img


class ProDiscriminator(nn.Module):
    """img [N, C, r, r] at the current resolution r → logits [N] (``forward(img, alpha)``)."""

    def __init__(self, cfg: ProGANConfig, channels: int) -> None:
        super().__init__()
        self.from_rgb = nn.ModuleDict()
        self.blocks = nn.ModuleDict()
        res = cfg.resolution
        while res >= 4:
            self.from_rgb[str(res)] = EqualConv2d(channels, cfg.width(res), 1, activation="lrelu")
            if res > 4:
                self.blocks[str(res)] = nn.Sequential(EqualConv2d(cfg.width(res), cfg.width(res), 3, activation="lrelu"),
                                                      EqualConv2d(cfg.width(res), cfg.width(res // 2), 3, activation="lrelu"),
                                                      nn.AvgPool2d(2))
            res //= 2
        c4 = cfg.width(4)
        self.mbstd_group = cfg.mbstd_group
        self.conv = EqualConv2d(c4 + 1, c4, 3, activation="lrelu")
        self.conv4 = EqualLinear(c4 * 16, c4, activation="lrelu")  # the 4×4 convolution without padding
        self.out = EqualLinear(c4, 1)

    def forward(self, img: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        res = img.shape[-1]
        x = self.from_rgb[str(res)](img)
        if res > 4:
            x = self.blocks[str(res)](x)
            if alpha < 1.0:  # fade-in (Fig. 2b): blend with the previous resolution's fromRGB of the downsampled image
                x = torch.lerp(self.from_rgb[str(res // 2)](F.avg_pool2d(img, 2)), x, alpha)
            r = res // 2
            while r > 4:
                x = self.blocks[str(r)](x)
                r //= 2
        x = self.conv(minibatch_stddev(x, self.mbstd_group))
        return self.out(self.conv4(x.flatten(1)))[:, 0]


@register_model("progan")
class ProGAN(GANModel):
    """Progressive growing with fade-in, pixel norm, minibatch stddev, equalised LR and WGAN-GP + drift.

    Logged: ``D/loss``, ``D/gp``, ``D/wdist`` (E[D(x)] − E[D(G(z))]), ``G/loss``, ``D/resolution`` and
    ``D/alpha`` (the growth schedule at this step).
    """

    Config = ProGANConfig

    def __init__(self, config: ProGANConfig) -> None:
        super().__init__(config)
        c = config.channels or 1
        self.G = ProGenerator(config, c)
        self.D = ProDiscriminator(config, c)
        self.init_ema()
        self.init_augment()
        # the stage of growth [resolution, α], a buffer so that a loaded run samples where training stopped
        self.register_buffer("growth", torch.tensor([float(config.start_resolution), 1.0]))

    @property
    def res(self) -> int:
        """Current resolution of G's output and D's input."""
        return read_growth(self.growth)[0]

    @property
    def alpha(self) -> float:
        """Current fade-in weight of the newest resolution (1 = fully faded in)."""
        return read_growth(self.growth)[1]

    def schedule(self, kimg: float) -> tuple[int, float]:
        """(current resolution, fade-in α) after ``kimg`` thousand images (:func:`growth_schedule`)."""
        c = self.config
        return growth_schedule(kimg, c.start_resolution, c.resolution, c.fade_kimg, c.stable_kimg)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"G": adam(self.G.parameters(), c.lr, (c.beta1, c.beta2), eps=1e-8),
                "D": adam(self.D.parameters(), c.lr, (c.beta1, c.beta2), eps=1e-8)}

    def phases(self) -> list[Phase]:
        return [Phase("D"), Phase("G", needs_batch=False)]

    def before_step(self, ctx: StepContext) -> None:
        write_growth(self.growth, *self.schedule(ctx.kimg))

    def after_step(self, ctx: StepContext) -> None:
        c = self.config
        if self.G_ema is not None:
            batch = ctx.images_per_step
            decay = c.ema_decay if c.ema_rampup is None else ramped_ema_decay(
                batch, ctx.images_seen, half_life_images(c.ema_decay, batch), c.ema_rampup)
            update_ema(self.G_ema, self.G, decay)
        self.update_augment(ctx)

    def real_at_current(self, img: torch.Tensor) -> torch.Tensor:
        """Real images [N, C, R, R] → the current resolution, faded like G's output (:func:`fade_reals`)."""
        return fade_reals(img, self.res, self.alpha)

    def training_step(self, phase: str, batch: Batch) -> dict[str, torch.Tensor]:
        img = batch["img"]
        n, c, res, alpha = img.shape[0], self.config, self.res, self.alpha
        z = torch.randn(n, c.z_dim, device=img.device)
        if phase == "D":
            real = self.augment_d(self.real_at_current(img))
            with torch.no_grad():
                fake = self.G(z, res, alpha)
            fake = self.augment_d(fake)
            real_logits = self.D(real, alpha)
            fake_logits = self.D(fake, alpha)
            gp = gradient_penalty(lambda x: self.D(x, alpha), real, fake)
            wdist = real_logits.mean() - fake_logits.mean()
            loss = -wdist + c.gp_weight * gp + c.drift * real_logits.square().mean()
            return {"loss": loss, "gp": gp.detach(), "wdist": wdist.detach(),
                    "resolution": torch.tensor(float(res)), "alpha": torch.tensor(float(alpha)),
                    **self.observe_real_logits(real_logits)}
        if phase == "G":
            fake = self.augment_d(self.G(z, res, alpha))
            return {"loss": -self.D(fake, alpha).mean()}
        raise ValueError(f"unknown phase {phase!r}")

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """z [N, z_dim] → img float32 [N, C, R, R] in [-1, 1] (clamped) at the current stage of growth,
        upsampled (nearest) to the final resolution; ``labels`` is ignored (unconditional)."""
        img = self.run_generator(z.to(self.device, torch.float32), self.res, self.alpha).clamp(-1, 1)
        if img.shape[-1] != self.config.resolution:
            img = F.interpolate(img, size=self.config.resolution, mode="nearest")
        return img

    def sample(self, n: int, generator: Optional[torch.Generator] = None,
               labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.generate(self.sample_latents(n, generator))

