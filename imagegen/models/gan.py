"""Plumbing shared by the GAN models: the optimisation config, the G/D training schedule (D ×
``n_critic``, then G; Goodfellow et al. 2014, Algorithm 1), Adam for each network (Radford et al. 2015,
§4 defaults), the optional EMA generator ``G_ema`` used for sampling (Karras et al. 2018, §A.1) and
the discriminator statistics every GAN logs."""
from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, Optional

import torch
from torch import nn

from ..config import help_field
from ..errors import ConfigError
from ..nn import adam, update_ema
from ..nn.ema import has_batchnorm, track_norm_stats
from .base import GenerativeModel, Phase, StepContext
from .d_augment import DAugment, DAugmentConfig


def check_image_size(model: str, resolution: int, channels: Optional[int]) -> None:
    """Raise ConfigError unless ``resolution`` is a power of two ≥ 8 and ``channels`` is 1, 3 or None."""
    if resolution < 8 or resolution & (resolution - 1):
        raise ConfigError(f"resolution={resolution}: {model} needs a power of two ≥ 8 (e.g. 32 or 64)")
    if channels is not None and channels not in (1, 3):
        raise ConfigError(f"channels={channels}: use 1 or 3")


def num_upsamplings(resolution: int) -> int:
    """Stride-2 layers between a 4×4 map and ``resolution`` (e.g. 3 for 32×32)."""
    return int(math.log2(resolution)) - 2


@dataclasses.dataclass
class GANOptimConfig(DAugmentConfig):
    """Optimisation options shared by the GAN configs (model configs inherit these fields)."""

    n_critic: int = help_field(1, "discriminator updates per generator update")
    lr_g: float = help_field(2e-4, "generator Adam learning rate")
    lr_d: float = help_field(2e-4, "discriminator Adam learning rate")
    beta1: float = help_field(0.5, "Adam β1")
    beta2: float = help_field(0.999, "Adam β2")
    ema_decay: float = help_field(0.0, "EMA decay of generator weights used for sampling (0 = off, e.g. 0.999; "
                                       "warm-up min(decay, (1+step)/(10+step))); "
                                       "a batch-norm G_ema tracks its own running statistics (one extra "
                                       "no-grad generator pass per step)")

    def __post_init__(self) -> None:
        self.check_augment()
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay={self.ema_decay}: use a value in [0, 1)")
        if self.n_critic < 1:
            raise ConfigError(f"n_critic={self.n_critic}: must be ≥ 1")


class GANModel(DAugment, GenerativeModel):
    """A generator ``G`` and discriminator ``D`` trained in alternating phases.

    Subclasses build ``self.G`` and ``self.D``, call :meth:`init_ema`, and implement
    ``training_step`` and ``generate``; ``config`` must inherit :class:`GANOptimConfig` and have ``z_dim``.
    """

    G: nn.Module
    D: nn.Module
    G_ema: Optional[nn.Module]

    #: latents per step for the forward pass that keeps a batch-norm ``G_ema``'s running statistics
    ema_norm_batch = 64

    def init_ema(self) -> None:
        """Create ``G_ema`` as a frozen copy of ``G`` when ``ema_decay`` > 0 (else None)."""
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if self.config.ema_decay > 0 else None
        self.ema_has_batchnorm = self.G_ema is not None and has_batchnorm(self.G_ema)

    def generator_inputs(self, n: int) -> tuple[torch.Tensor, ...]:
        """Random inputs of ``G`` for ``n`` images from the global RNG (``(z,)``; conditional models
        add labels), used to track a batch-norm ``G_ema``'s statistics."""
        return (self.sample_latents(n),)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"G": adam(self.G.parameters(), c.lr_g, (c.beta1, c.beta2)),
                "D": adam(self.D.parameters(), c.lr_d, (c.beta1, c.beta2))}

    def phases(self) -> list[Phase]:
        return [Phase("D")] * self.config.n_critic + [Phase("G", needs_batch=False)]

    def after_step(self, ctx: StepContext) -> None:
        if self.G_ema is not None:
            # warm-up as TensorFlow's ExponentialMovingAverage(num_updates): early on the average spans
            # about step/9 steps, so G_ema does not keep a large share of the initial weights
            decay = min(self.config.ema_decay, (1 + ctx.step) / (10 + ctx.step))
            update_ema(self.G_ema, self.G, decay, copy_norm_stats=not self.ema_has_batchnorm)
            if self.ema_has_batchnorm:  # statistics of G's activations do not fit G_ema's averaged weights
                track_norm_stats(self.G_ema, *self.generator_inputs(self.ema_norm_batch))
        self.update_augment(ctx)

    def sample_latents(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """z [n, z_dim] float32 ~ N(0, I) on the model's device."""
        return torch.randn(n, self.config.z_dim, generator=generator, device=self.device)

    @torch.no_grad()
    def run_generator(self, *inputs: Any) -> torch.Tensor:
        """``G_ema`` (or ``G``) applied to ``inputs`` in eval mode without grad, restoring its mode."""
        G = self.G_ema if self.G_ema is not None else self.G
        was_training = G.training
        G.eval()
        try:
            return G(*inputs)
        finally:
            G.train(was_training)


def discriminator_stats(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Detached training-health scalars from D's logits: mean D(x) and D(G(z)) as probabilities
    (σ(logit)) and D's accuracy on real and on fake samples at logit 0."""
    real_logits, fake_logits = real_logits.detach(), fake_logits.detach()
    return {"d_real": torch.sigmoid(real_logits).mean(), "d_fake": torch.sigmoid(fake_logits).mean(),
            "acc_real": (real_logits > 0).float().mean(), "acc_fake": (fake_logits < 0).float().mean()}
