"""Discriminator-side augmentation for every GAN of the toolkit and the restoration models' adversarial
term: the options (:class:`DAugmentConfig`, inherited by the model configs) and the model methods
(:class:`DAugment`, a mixin of :class:`~imagegen.models.base.GenerativeModel` subclasses): DiffAugment
(Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training", §3) and adaptive
discriminator augmentation (Karras et al. 2020b, "Training Generative Adversarial Networks with Limited
Data", §2–3). Every image a discriminator sees, real and fake, in every phase, goes through the same
differentiable augmentation; paired discriminators (pix2pix's D of ``[A, B]``) get one transform per
pair (:meth:`DAugment.augment_d_pair`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Literal, Optional

import torch

from ..config import help_field
from ..errors import ConfigError
from .base import StepContext


@dataclasses.dataclass
class DAugmentConfig:
    """Options of discriminator augmentation shared by the GAN configs (inherited): every image D sees,
    real and fake, in every phase, goes through the same differentiable augmentation."""

    augment: Literal["none", "diffaugment", "ada"] = help_field(
        "none", "augmentation of every image D sees: DiffAugment (Zhao et al. 2020) or adaptive "
                "discriminator augmentation (Karras et al. 2020b), for small datasets")
    diffaugment_policy: str = help_field("color,translation,cutout", "DiffAugment policies")
    ada_target: float = help_field(0.6, "ADA target of r_t = E[sign(D(real))] (least-squares discriminators: "
                                        "E[sign(D(real) - 0.5)])")
    ada_kimg: float = help_field(500.0, "ADA speed: thousands of images for p to go from 0 to 1")
    ada_interval: int = help_field(4, "ADA: adjust p every N steps")
    ada_groups: str = help_field("blit,geom,color", "ADA augmentation groups (blit, geom, color)")
    ada_p: Optional[float] = help_field(None, "ADA with a fixed probability p in [0, 1] instead of steering it "
                                              "(the official --aug fixed --p; D/acc_real = (1 + r_t) / 2 still "
                                              "shows the overfitting heuristic)")
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


class DAugment:
    """Discriminator augmentation for a model whose ``config`` inherits :class:`DAugmentConfig`. Call
    :meth:`init_augment` from ``__init__``, pass every image D sees through :meth:`augment_d` (or a pair
    through :meth:`augment_d_pair`), D's outputs on reals to :meth:`observe_real_logits`, call
    :meth:`update_augment` from ``after_step`` and merge :meth:`augment_state` into the training state
    (the defaults below do both for a model that has nothing else to do there)."""

    config: Any
    ada: Any = None

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
        from the global stream), saved by :meth:`augment_state` and restored on resume."""
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

    def augment_d_pair(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`augment_d` of a conditional discriminator's pair, ``a`` and ``b`` [N, C, H, W] in
        [-1, 1] of the same shape (pix2pix: the input and its real or generated target): item i of both
        gets the same transform (the same flips, shifts, warps, colour changes and cutout), drawn once,
        so that the pair stays aligned. Applying one invertible-in-distribution transform T to the pair
        (a, b) keeps ADA's and DiffAugment's argument (D matches T(a, b) of reals and fakes, hence the
        pairs themselves) — this toolkit's extension of both papers, which augment single images.

        Both calls of :meth:`augment_d` draw the same random numbers: the draws depend on the shape
        only (DiffAugment and ADA draw a fixed count per call), and the generator is rewound between
        them; it ends where the second call left it."""
        if a.shape != b.shape:
            raise ValueError(f"augment_d_pair: a {tuple(a.shape)} and b {tuple(b.shape)} differ in shape")
        if getattr(self.config, "augment", "none") == "none":
            return a, b
        state = self.augment_generator.get_state()
        out_a = self.augment_d(a)
        self.augment_generator.set_state(state)
        return out_a, self.augment_d(b)

    @staticmethod
    def real_accuracy(real_outputs: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
        """Share of D's outputs on reals (any shape: PatchGAN patches count one each) above ``threshold``:
        scalar float32, (1 + r_t) / 2 of ADA's heuristic, detached."""
        return (real_outputs.detach() > threshold).float().mean()

    def observe_real_logits(self, real_logits: torch.Tensor, threshold: float = 0.0) -> dict[str, torch.Tensor]:
        """Feed D's outputs on (augmented) reals to ADA's overfitting heuristic r_t = E[sign(D(x) −
        threshold)] (Karras et al. 2020b, §3: ``threshold`` 0 for logits; a least-squares D with targets
        1 and 0 decides at 0.5); returns the scalars to log (``ada_p``) or nothing."""
        if self.ada is None:
            return {}
        self.ada.accumulate(real_logits.detach() - threshold)
        return {"ada_p": torch.tensor(self.ada.p)}

    def update_augment(self, ctx: StepContext) -> None:
        """After a step: let ADA adjust ``p`` (every ``ada_interval`` steps, over all processes)."""
        if self.ada is not None:
            self.ada.update(int(round(ctx.images_per_step)))

    def after_step(self, ctx: StepContext) -> None:
        """Default ``after_step`` of a model with this mixin: :meth:`update_augment` (override and call it)."""
        self.update_augment(ctx)

    def training_state(self) -> dict[str, Any]:
        """Default training state of a model with this mixin: :meth:`augment_state` (override and merge it)."""
        return self.augment_state()

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Default: :meth:`load_augment_state`."""
        self.load_augment_state(state)

    def augment_state(self) -> dict[str, Any]:
        """``ada`` (the controller's state) and ``augment_rng`` (the generator's), for the training state."""
        state: dict[str, Any] = {"ada": self.ada.state_dict()} if self.ada is not None else {}
        if getattr(self.config, "augment", "none") != "none":
            state["augment_rng"] = self.augment_generator.get_state()  # uint8 tensor
        return state

    def load_augment_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`augment_state` returned (other keys of ``state`` are ignored)."""
        if self.ada is not None and "ada" in state:
            self.ada.load_state_dict(state["ada"])
        if "augment_rng" in state and getattr(self.config, "augment", "none") != "none":
            # checkpoints from before the separate generator have none: it starts from the seed
            self.augment_generator.set_state(state["augment_rng"])
