"""Adversarial losses and regularisers shared by the GAN models.

All functions take discriminator logits (float32, any shape, typically [B] or [B, 1]) and return a
scalar float32 loss (mean over the batch).

* ``nonsaturating`` — Goodfellow et al. 2014, §3 (the "−log D(G(z))" generator loss), written with
  softplus for stability: L_D = softplus(−D(x)) + softplus(D(G(z))), L_G = softplus(−D(G(z))).
* ``hinge`` — Lim & Ye 2017; Miyato et al. 2018 (SN-GAN), Eq. 16–17:
  L_D = relu(1 − D(x)) + relu(1 + D(G(z))), L_G = −D(G(z)).
* ``lsgan`` — Mao et al. 2017, Eq. 9 with a=0, b=c=1: L_D = ½(D(x) − 1)² + ½D(G(z))², L_G = ½(D(G(z)) − 1)².
* ``wgan-gp`` — Gulrajani et al. 2017, Algorithm 1: L_D = D(G(z)) − D(x) + λ(‖∇D(x̂)‖₂ − 1)², L_G = −D(G(z)).
  The gradient penalty is :func:`gradient_penalty`; the caller adds it.
* :func:`r1_penalty` — Mescheder et al. 2018, Eq. 9: (γ/2)·E‖∇D(x)‖² on real data.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .errors import ConfigError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def d_nonsaturating(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_nonsaturating(fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake).mean()


def d_hinge(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def g_hinge(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def d_lsgan(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((real - 1).square().mean() + fake.square().mean())


def g_lsgan(fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (fake - 1).square().mean()


def d_wasserstein(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return fake.mean() - real.mean()


#: loss name → (discriminator loss(real_logits, fake_logits), generator loss(fake_logits))
GAN_LOSSES: dict[str, tuple[LossFn, Callable[[torch.Tensor], torch.Tensor]]] = {
    "nonsaturating": (d_nonsaturating, g_nonsaturating),
    "hinge": (d_hinge, g_hinge),
    "lsgan": (d_lsgan, g_lsgan),
    "wgan-gp": (d_wasserstein, g_hinge),  # L_G = −E[D(G(z))], same form as the hinge G loss
}


def get_gan_loss(name: str) -> tuple[LossFn, Callable[[torch.Tensor], torch.Tensor]]:
    """The (D loss, G loss) pair for ``name``.

    Raises:
        ConfigError: for an unknown loss name.
    """
    if name not in GAN_LOSSES:
        raise ConfigError(f"unknown GAN loss {name!r}; use one of {', '.join(GAN_LOSSES)}")
    return GAN_LOSSES[name]


def real_threshold(name: str) -> float:
    """The output above which a discriminator trained with loss ``name`` calls an image real: 0.5 for
    ``lsgan`` (the midpoint of its targets 1 and 0, Mao et al. 2017), 0 for the losses on logits or
    critic values. Used for D/acc_real and ADA's heuristic r_t = E[sign(D(x) − threshold)]."""
    return 0.5 if name == "lsgan" else 0.0


def gradient_penalty(D: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     *args: object) -> torch.Tensor:
    """WGAN-GP gradient penalty E[(‖∇_x̂ D(x̂)‖₂ − 1)²] (Gulrajani et al. 2017, Eq. 3).

    Args:
        D: the critic; called as ``D(x_hat, *args)``.
        real, fake: float32 [B, C, H, W] in [-1, 1]; ``fake`` should be detached.
        *args: extra critic inputs (e.g. labels).

    Returns:
        scalar float32 (without the weight λ).
    """
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out = D(x_hat, *args)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).square().mean()


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1 penalty E‖∇_x D(x)‖² on real data (Mescheder et al. 2018, Eq. 9, without γ/2).

    Args:
        real_logits: D's output for ``real``, computed with ``real.requires_grad_(True)``.
        real: float32 [B, C, H, W].

    Returns:
        scalar float32.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.square().flatten(1).sum(1).mean()
