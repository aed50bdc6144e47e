"""DCGAN: Radford, Metz & Chintala 2015, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks" (arXiv:1511.06434).

Architecture guidelines of the paper (§3): strided convolutions in D and fractionally strided
(transposed) convolutions in G, no pooling, batch norm in G (all layers but the output) and in D
(all layers but the input), ReLU in G with tanh output, LeakyReLU(0.2) in D. Initialisation and
optimiser follow §4: Adam(lr 2e-4, β1 = 0.5); the paper's initialisation, weights ~ N(0, 0.02), is
``--init dcgan``. The default, ``--init pytorch``, keeps PyTorch's layer defaults (Kaiming-uniform
weights with a = √5, unit batch-norm scales): in this toolkit's MNIST ablation
(``benchmarks/bench_dcgan_quality.py``, docs/dcgan_ablation.md) the N(0, 0.02) initialisation, changed
alone in an otherwise plain DCGAN, raised the classifier-FID of 1-epoch samples from 13.4 to 17.7 and
cut recall from 0.71 to 0.45 (one seed), the whole gap to the plain reference.

Samples come from ``G_ema``, an exponential moving average of the generator's weights (Yazıcı et al.
2019, "The Unusual Effectiveness of Averaging in GAN Training"; Karras et al. 2018 §A.1), decay 0.999
with a warm-up, by default; ``--ema-decay 0`` samples from ``G`` as the paper does. With it the default
beats a plain pytorch/examples-style DCGAN over 3 seeds of 5 MNIST epochs (classifier-FID 3.10 vs 3.43,
72.6 % vs 72.2 % confident samples, one classifier; docs/dcgan_ablation.md, step 4b).

``--d-norm spectral`` replaces D's batch norm by spectral normalisation of every layer (Miyato et
al. 2018, §2.1), as in the cgan's discriminator; ``--d-norm none`` drops normalisation (the choice
for WGAN-GP, whose penalty is per sample: Gulrajani et al. 2017, §4).

Widths follow the reference implementations (pytorch/examples ``dcgan``, Soumith's
``dcgan.torch``): at 32×32 with ``g_width=64`` the generator has 256→128→64 channels, at 64×64
512→256→128→64; the discriminator mirrors it.
"""
from __future__ import annotations

import dataclasses
from typing import Literal, Optional

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..config import help_field
from ..errors import ConfigError
from ..losses import get_gan_loss, gradient_penalty
from ..nn import dcgan_init
from ..registry import register_model
from .base import Batch
from .gan import GANModel, GANOptimConfig, check_image_size, discriminator_stats, num_upsamplings


@dataclasses.dataclass
class DCGANConfig(GANOptimConfig):
    resolution: int = help_field(32, "image size in pixels (a power of two ≥ 8, e.g. 32 or 64)")
    channels: Optional[int] = help_field(None, "image channels (1 or 3); default: the dataset's")
    z_dim: int = help_field(100, "latent z dimension")
    g_width: int = help_field(64, "generator width: channels of its last hidden layer (ngf)")
    d_width: int = help_field(64, "discriminator width: channels of its first layer (ndf)")
    loss: Literal["nonsaturating", "hinge", "lsgan", "wgan-gp"] = help_field(
        "nonsaturating", "adversarial loss (see imagegen.losses)")
    gp_weight: float = help_field(10.0, "gradient-penalty weight λ for wgan-gp")
    init: Literal["pytorch", "dcgan"] = help_field(
        "pytorch", "weight initialisation: pytorch = PyTorch's layer defaults (better samples on MNIST, "
                   "docs/dcgan_ablation.md), dcgan = N(0, 0.02) as the paper (§4)")
    ema_decay: float = help_field(
        0.999, "EMA decay of the generator weights used for sampling (0 = off, as the paper; warm-up "
               "min(decay, (1+step)/(10+step)); G_ema keeps its own batch-norm statistics, one extra no-grad "
               "generator pass per step); 0.999: best on MNIST over 3 seeds, docs/dcgan_ablation.md")
    d_norm: Literal["auto", "batch", "spectral", "none"] = help_field(
        "auto", "normalisation in D: batch norm (paper), spectral norm (Miyato et al. 2018) or none; "
                "auto = none for wgan-gp, else batch")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_image_size("DCGAN", self.resolution, self.channels)
        if self.loss == "wgan-gp" and self.d_norm == "batch":
            raise ConfigError("d_norm=batch is invalid with wgan-gp (the gradient penalty is per "
                              "sample, Gulrajani et al. §4); use --d-norm none or auto")


class DCGANGenerator(nn.Module):
    """z [N, z_dim] float32 ~ N(0, I) → img [N, C, R, R] float32 in [-1, 1] (tanh)."""

    def __init__(self, z_dim: int, resolution: int, channels: int, width: int) -> None:
        super().__init__()
        n = num_upsamplings(resolution)
        chans = [width * 2 ** (n - 1 - i) for i in range(n)]  # e.g. 32×32: [256, 128, 64]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, chans[0], 4, 1, 0, bias=False),  # [N, c0, 4, 4]
            nn.BatchNorm2d(chans[0]), nn.ReLU(True)]
        for c_in, c_out in zip(chans[:-1], chans[1:]):  # doubles the resolution each layer
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(chans[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.z_dim = z_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])  # [N, z_dim, 1, 1] → [N, C, R, R]


class DCGANDiscriminator(nn.Module):
    """img [N, C, R, R] float32 in [-1, 1] → logits [N] float32 (unbounded).

    Args:
        norm: ``batch`` (batch norm after every convolution but the first and the last, the paper),
            ``spectral`` (spectral normalisation of every convolution, no batch norm) or ``none``.
    """

    def __init__(self, resolution: int, channels: int, width: int,
                 norm: Literal["batch", "spectral", "none"] = "batch") -> None:
        super().__init__()
        batch_norm = norm == "batch"
        wrap = spectral_norm if norm == "spectral" else (lambda m: m)
        n = num_upsamplings(resolution)
        chans = [width * 2 ** i for i in range(n)]  # e.g. 32×32: [64, 128, 256]
        layers: list[nn.Module] = [wrap(nn.Conv2d(channels, chans[0], 4, 2, 1, bias=False)), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(chans[:-1], chans[1:]):  # halves the resolution each layer
            layers += [wrap(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not batch_norm))]
            layers += [nn.BatchNorm2d(c_out)] if batch_norm else []
            layers += [nn.LeakyReLU(0.2, True)]
        layers += [wrap(nn.Conv2d(chans[-1], 1, 4, 1, 0, bias=False))]  # [N, 1, 1, 1]
        self.net = nn.Sequential(*layers)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.net(img).flatten()  # [N]


@register_model("dcgan")
class DCGAN(GANModel):
    """Unconditional DCGAN with a choice of adversarial loss (non-saturating, hinge, LSGAN, WGAN-GP)
    and an optional EMA generator ``G_ema`` used for sampling.

    Logged per step: ``D/loss``, ``D/d_real`` (mean D(x) as a probability σ(logit)), ``D/d_fake``
    (mean D(G(z))), ``D/acc_real`` and ``D/acc_fake`` (fraction classified correctly at logit 0),
    ``G/loss``; the trainer adds gradient norms.
    """

    Config = DCGANConfig

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__(config)
        c = config.channels or 1
        self.G = DCGANGenerator(config.z_dim, config.resolution, c, config.g_width)
        d_norm = config.d_norm if config.d_norm != "auto" else ("none" if config.loss == "wgan-gp" else "batch")
        self.D = DCGANDiscriminator(config.resolution, c, config.d_width, norm=d_norm)
        if config.init == "dcgan":
            self.G.apply(dcgan_init)
            if d_norm != "spectral":  # a spectrally normalised D keeps PyTorch's init, as the cgan's
                self.D.apply(dcgan_init)
        self.init_ema()
        self.init_augment()
        self.d_loss_fn, self.g_loss_fn = get_gan_loss(config.loss)

    def training_step(self, phase: str, batch: Batch) -> dict[str, torch.Tensor]:
        img, label = batch["img"], batch["label"]
        n = img.shape[0]
        z = torch.randn(n, self.config.z_dim, device=img.device)
        if phase == "D":
            with torch.no_grad():
                fake = self.G(z)
            img, fake = self.augment_d(img), self.augment_d(fake)
            real_logits, fake_logits = self.D(img), self.D(fake)
            loss = self.d_loss_fn(real_logits, fake_logits)
            out = self.observe_real_logits(real_logits)
            if self.config.loss == "wgan-gp":
                gp = gradient_penalty(self.D, img, fake)
                loss = loss + self.config.gp_weight * gp
                out["gp"] = gp.detach()
            return {"loss": loss, **out, **discriminator_stats(real_logits, fake_logits)}
        if phase == "G":
            fake_logits = self.D(self.augment_d(self.G(z)))
            return {"loss": self.g_loss_fn(fake_logits)}
        raise ValueError(f"unknown phase {phase!r}")

    def generate(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """z [N, z_dim] → img float32 [N, C, R, R] in [-1, 1], eval mode, EMA weights if kept
        (``labels`` is ignored: DCGAN is unconditional)."""
        return self.run_generator(z.to(self.device, torch.float32))

    def sample(self, n: int, generator: Optional[torch.Generator] = None,
               labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.generate(self.sample_latents(n, generator))

