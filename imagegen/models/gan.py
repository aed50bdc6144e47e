"""Plumbing shared by the GAN models: the optimisation config, the G/D training schedule (D ×
``n_critic``, then G; Goodfellow et al. 2014, Algorithm 1), Adam for each network (Radford et al. 2015,
§4 defaults), the optional EMA generator ``G_ema`` used for sampling (Karras et al. 2018, §A.1) and
the discriminator statistics every GAN logs."""
from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, Literal, Optional

import torch
from torch import nn

from ..config import help_field
from ..errors import ConfigError
from ..nn import adam, update_ema
from ..nn.ema import has_batchnorm, track_norm_stats
from .base import GenerativeModel, Phase, StepContext


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
class DAugmentConfig:
    """Options of discriminator augmentation shared by the GAN configs (inherited): every image D sees,
    real and fake, in every phase, goes through the same differentiable augmentation."""

    augment: Literal["none", "diffaugment", "ada"] = help_field(
        "none", "augmentation of every image D sees: DiffAugment (Zhao et al. 2020) or adaptive "
                "discriminator augmentation (Karras et al. 2020b), for small datasets")
    diffaugment_policy: str = help_field("color,translation,cutout", "DiffAugment policies")
    ada_target: float = help_field(0.6, "ADA target of r_t = E[sign(D(real))]")
    ada_kimg: float = help_field(500.0, "ADA speed: thousands of images for p to go from 0 to 1")
    ada_interval: int = help_field(4, "ADA: adjust p every N steps")
    ada_groups: str = help_field("blit,geom,color", "ADA augmentation groups (blit, geom, color)")
    ada_p: Optional[float] = help_field(None, "ADA with a fixed probability p in [0, 1] instead of steering it "
                                              "(the official --aug fixed --p; D/acc_real still shows the "
                                              "overfitting heuristic)")
    ada_resample: Literal["filtered", "bilinear"] = help_field(
        "filtered", "ADA geometric resampling: filtered (2x sym6, Karras et al. 2020b App. B) or bilinear (one "
                    "unfiltered sample, this toolkit's way before 2026-12-02), for comparisons")

    def check_augment(self) -> None:
        """Raise ConfigError for an unknown policy or group list, a fixed ``ada_p`` outside [0, 1], or
        ADA options without ``augment == "ada"`` (called by ``__post_init__``)."""
        if self.augment == "diffaugment":
            from ..nn.diffaugment import check_policy

            check_policy(self.diffaugment_policy)
        elif self.augment == "ada":
            from ..nn.ada import check_groups

            check_groups(self.ada_group_names)
        elif self.augment != "none":
            raise ConfigError(f"augment={self.augment!r}: use none, diffaugment or ada")
        if self.ada_p is not None and not 0.0 <= self.ada_p <= 1.0:
            raise ConfigError(f"ada_p={self.ada_p}: a fixed augmentation probability in [0, 1] (or unset, "
                              "for adaptive p)")
        if self.ada_resample not in ("filtered", "bilinear"):
            raise ConfigError(f"ada_resample={self.ada_resample!r}: use filtered or bilinear")
        if self.augment != "ada" and (self.ada_p is not None or self.ada_resample != "filtered"):
            raise ConfigError(f"ada_p / ada_resample set with augment={self.augment!r}: they only apply to "
                              "augment=ada (--augment ada)")

    @property
    def ada_group_names(self) -> tuple[str, ...]:
        return tuple(g.strip() for g in self.ada_groups.split(",") if g.strip())


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


class GANModel(GenerativeModel):
    """A generator ``G`` and discriminator ``D`` trained in alternating phases.

    Subclasses build ``self.G`` and ``self.D``, call :meth:`init_ema`, and implement
    ``training_step`` and ``generate``; ``config`` must inherit :class:`GANOptimConfig` and have ``z_dim``.
    """

    G: nn.Module
    D: nn.Module
    G_ema: Optional[nn.Module]
    ada: Any = None

    # ---- discriminator augmentation (DAugmentConfig) ---------------------------------------------
    def init_augment(self) -> None:
        """Create the ADA controller when ``augment == "ada"`` (call from ``__init__``)."""
        c = self.config
        self.ada = None
        self._augment_generator: Optional[torch.Generator] = None
        if getattr(c, "augment", "none") == "ada":
            from ..nn.ada import AdaController

            fixed = getattr(c, "ada_p", None)
            self.ada = AdaController(c.ada_target, c.ada_interval, c.ada_kimg, p=fixed or 0.0,
                                     fixed=fixed is not None)

    @property
    def augment_generator(self) -> torch.Generator:
        """The CPU generator of D's augmentations, apart from torch's global RNG, so that a run with
        augmentation draws the same latents, noise and mixing choices as the same seed without it (a
        paired comparison: the runs differ by what D sees, not by the random stream). Seeded on first
        use from ``torch.initial_seed()`` (the run's seed + rank, set by the trainer; no number is drawn
        from the global stream), saved by :meth:`training_state` and restored on resume."""
        if self._augment_generator is None:
            seed = (torch.initial_seed() * 6007 + 13) % (1 << 63)  # initial_seed() can be any 64-bit value
            self._augment_generator = torch.Generator().manual_seed(seed)
        return self._augment_generator

    def augment_d(self, img: torch.Tensor) -> torch.Tensor:
        """What D sees of ``img`` [N, C, H, W] in [-1, 1]: DiffAugment (Zhao et al. 2020, §3), ADA at
        the current ``p`` (Karras et al. 2020b, §2–3), or ``img`` itself. Differentiable; apply it to
        real and fake images in every phase, before every call of D. Random draws come from
        :attr:`augment_generator`, never from the global RNG."""
        c = self.config
        mode = getattr(c, "augment", "none")
        if mode == "diffaugment":
            from ..nn.diffaugment import diff_augment

            return diff_augment(img, c.diffaugment_policy, generator=self.augment_generator)
        if mode == "ada" and self.ada is not None and self.ada.p > 0:
            from ..nn.ada import ada_augment

            return ada_augment(img, self.ada.p, self.augment_generator, groups=c.ada_group_names,
                               antialias=getattr(c, "ada_resample", "filtered") == "filtered")
        return img

    def observe_real_logits(self, real_logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """Feed D's logits on (augmented) reals to ADA's overfitting heuristic; returns the scalars to
        log (``ada_p``) or nothing."""
        if self.ada is None:
            return {}
        self.ada.accumulate(real_logits.detach())
        return {"ada_p": torch.tensor(self.ada.p)}

    def update_augment(self, ctx: StepContext) -> None:
        """After a step: let ADA adjust ``p`` (every ``ada_interval`` steps, over all processes)."""
        if self.ada is not None:
            self.ada.update(int(round(ctx.images_per_step)))

    def training_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"ada": self.ada.state_dict()} if self.ada is not None else {}
        if getattr(self.config, "augment", "none") != "none":
            state["augment_rng"] = self.augment_generator.get_state()  # uint8 tensor
        return state

    def load_training_state(self, state: dict[str, Any]) -> None:
        if self.ada is not None and "ada" in state:
            self.ada.load_state_dict(state["ada"])
        if "augment_rng" in state and getattr(self.config, "augment", "none") != "none":
            # checkpoints from before the separate generator have none: it starts from the seed
            self.augment_generator.set_state(state["augment_rng"])

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
