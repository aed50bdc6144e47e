"""Restoration models: trained on clean images degraded on the fly, applied to degraded images.

A restoration model (:class:`RestorationModel`) trains on one image dataset (``--data``); each step
degrades the clean batch with the :class:`~imagegen.data.degradations.Degradation` of its config
(drawn from torch's global RNG, which the trainer checkpoints, so a resumed run sees the same noise
and masks) and learns to map the degraded batch back. No paired data is needed. The degradation is
a field of the config, so it is saved in ``config.json`` and the same operation is applied by
``imagegen degrade`` and in evaluation (:func:`imagegen.metrics.paired.evaluate_paired`: the targets
are clean held-out images, the inputs their degradation with per-image seeds).

Using a trained model: :meth:`RestorationModel.restore` (degraded [N, C, h, w] and, for inpainting,
its mask → restored [N, C, h·scale, w·scale]); :meth:`~RestorationModel.translate` with direction
``"AB"`` (degraded → clean) is the same call; :meth:`~RestorationModel.predict` restores
``batch["input"]`` or degrades-then-restores clean ``batch["img"]``; the training preview shows
degraded | restored | clean rows.

Models: ``dncnn`` (denoising, :mod:`imagegen.models.dncnn`), ``srresnet`` (super-resolution,
:mod:`imagegen.models.srnet`), ``context-encoder`` (inpainting, :mod:`imagegen.models.inpaint`).
The optional adversarial term of ``srresnet`` and ``context-encoder`` uses the
:class:`~imagegen.nn.image2image.PatchDiscriminator` (70×70 PatchGAN with batch norm, as
pix2pix's) and the GAN losses of :mod:`imagegen.losses`; ``--augment diffaugment|ada`` passes every
image that D sees (the clean images and the restorations, in both phases) through DiffAugment or ADA
(:mod:`imagegen.models.d_augment`; not in the SRGAN or Context Encoder papers, for small datasets).
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import help_field
from ..data.degradations import Degradation, Degraded
from ..errors import ConfigError
from ..losses import get_gan_loss, real_threshold
from ..nn import adam
from ..nn.image2image import PatchDiscriminator, patch_min_size
from .base import Batch, DataSource, GenerativeModel, Phase
from .d_augment import DAugment, DAugmentConfig


def degradation_field() -> Any:
    """The ``degradation`` field of a restoration config: derived from the config's other fields in
    ``__post_init__`` (so ``config.json`` records it), not a command-line option."""
    return help_field(None, "the degradation the model undoes (derived from the options above; recorded in "
                            "config.json)", cli=False)


@dataclasses.dataclass
class RestorationConfig:
    """Fields shared by every restoration config (subclasses add the task's and the network's)."""

    resolution: int = help_field(32, "training image size in pixels (images are resized/cropped to it)")
    channels: Optional[int] = help_field(None, "image channels (1 or 3); default: the dataset's")
    quantize: bool = help_field(True, "clip degraded images to [0, 255] and round them to 8 bits, as a saved PNG "
                                      "holds them (what `imagegen degrade` writes); --no-quantize keeps float "
                                      "values")
    lr: float = help_field(1e-3, "Adam learning rate of the restoration network")
    beta1: float = help_field(0.9, "Adam beta1")
    beta2: float = help_field(0.999, "Adam beta2")

    def make_degradation(self) -> Degradation:  # pragma: no cover - abstract
        raise NotImplementedError

    def __post_init__(self) -> None:
        if self.resolution < 4:
            raise ConfigError(f"--resolution {self.resolution}: use at least 4 pixels")
        if self.channels is not None and self.channels not in (1, 3):
            raise ConfigError(f"--channels {self.channels}: use 1 or 3")
        if not self.lr > 0:
            raise ConfigError(f"--lr {self.lr}: must be > 0")
        # derived, whatever was given (a saved config.json passes the recorded one back in)
        self.degradation = self.make_degradation()
        if self.degradation.task == "super-resolution" and self.resolution % self.degradation.scale:
            raise ConfigError(f"--resolution {self.resolution} is not a multiple of --scale {self.degradation.scale}; "
                              "change one of them")


@dataclasses.dataclass
class AdversarialRestorationConfig(RestorationConfig, DAugmentConfig):
    """A restoration config with the optional adversarial term (a :class:`PatchDiscriminator` D)."""

    adv_weight: float = help_field(0.0, "weight of the adversarial term in the restorer's loss (0 = no "
                                        "discriminator)")
    gan_loss: Literal["nonsaturating", "hinge", "lsgan"] = help_field(
        "nonsaturating", "adversarial loss (see imagegen.losses)")
    d_width: int = help_field(64, "discriminator width: channels of its first layer")
    d_layers: int = help_field(3, "PatchGAN stride-2 layers: 3 = 70×70 patches (Isola et al. 2017), 2 = 34×34, 1 = 16×16")
    lr_d: float = help_field(2e-4, "discriminator Adam learning rate")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.adv_weight < 0:
            raise ConfigError(f"--adv-weight {self.adv_weight}: must be ≥ 0 (0 = no discriminator)")
        if self.gan_loss not in ("nonsaturating", "hinge", "lsgan"):
            raise ConfigError(f"--gan-loss {self.gan_loss}: use nonsaturating, hinge or lsgan")
        self.check_augment()
        if self.augment != "none" and self.adv_weight == 0:
            raise ConfigError(f"--augment {self.augment} augments what the discriminator sees, and --adv-weight 0 "
                              "means no discriminator: give --adv-weight > 0 or drop --augment")
        if self.adv_weight > 0:
            if self.d_width < 1 or self.d_layers < 1:
                raise ConfigError(f"--d-width {self.d_width} / --d-layers {self.d_layers}: both must be ≥ 1")
            if self.resolution < patch_min_size(self.d_layers):
                raise ConfigError(f"--d-layers {self.d_layers} needs images of at least "
                                  f"{patch_min_size(self.d_layers)} pixels; --resolution is {self.resolution}: "
                                  "lower --d-layers")


class RestorationModel(DAugment, GenerativeModel):
    """Base of the restoration models (see the module docstring).

    Subclasses set :attr:`restoration_task`, build ``self.G`` (and ``self.D`` through
    :meth:`build_discriminator` when adversarial) and implement :meth:`network`; they may override
    :meth:`reconstruction_loss`. Phases: ``G`` (reconstruction + ``adv_weight`` × adversarial loss),
    then ``D`` on the same step's batch when the model has a discriminator.

    Logged per step: ``G/loss``, ``G/rec`` (the reconstruction loss), ``G/psnr`` (of the batch's
    restorations, in dB on [0, 1] images, before 8-bit rounding) and, when adversarial, ``G/adv``,
    ``D/loss``, ``D/d_real``, ``D/d_fake``, ``D/acc_real`` (share of real patches D calls real) and with
    ADA ``D/ada_p``.
    """

    #: ``denoise``, ``super-resolution`` or ``inpaint``: the task the model restores
    restoration_task: ClassVar[str] = ""
    evaluation = ("paired",)
    directions = ("AB",)

    G: nn.Module
    D: Optional[nn.Module]

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        if config.degradation.task != self.restoration_task:  # pragma: no cover - a programming error
            raise RuntimeError(f"{type(self).__name__} restores {self.restoration_task}, its config degrades "
                               f"for {config.degradation.task}")
        self.D = None
        self._fake: Optional[torch.Tensor] = None
        self.init_augment()

    @classmethod
    def data_sources(cls) -> list[DataSource]:
        return [DataSource(label_key=None, help="clean training images (degraded on the fly)")]

    @property
    def degradation(self) -> Degradation:
        """The degradation the model was trained to undo (``config.degradation``)."""
        return self.config.degradation

    @property
    def adversarial(self) -> bool:
        return self.D is not None

    def build_discriminator(self) -> None:
        """Create ``self.D`` when ``config.adv_weight`` > 0 (else leave it None)."""
        c = self.config
        if getattr(c, "adv_weight", 0) > 0:
            self.D = PatchDiscriminator(c.channels or 1, c.d_width, c.d_layers, norm="batch")
            self.d_loss_fn, self.g_loss_fn = get_gan_loss(c.gan_loss)

    # ---- the network ---------------------------------------------------------------------------------
    def network(self, degraded: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:  # pragma: no cover
        """The restorer's output, with gradients, unclamped: degraded [N, C, h, w] (and mask bool
        [N, 1, h, w] for inpainting) → [N, C, h·scale, w·scale]."""
        raise NotImplementedError

    def degrade(self, clean: torch.Tensor, generator: Optional[torch.Generator] = None) -> Degraded:
        """``self.degradation.apply(clean, generator)`` (see :class:`~imagegen.data.degradations.Degradation`)."""
        return self.degradation.apply(clean, generator)

    def reconstruction_loss(self, out: torch.Tensor, clean: torch.Tensor, degraded: Degraded) -> torch.Tensor:
        """Mean squared error of the output against the clean image (the default)."""
        return F.mse_loss(out, clean)

    # ---- training --------------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        opts = {"G": adam(self.G.parameters(), c.lr, (c.beta1, c.beta2))}
        if self.D is not None:
            opts["D"] = adam(self.D.parameters(), c.lr_d, (c.beta1, c.beta2))
        return opts

    def phases(self) -> list[Phase]:
        return [Phase("G")] + ([Phase("D", needs_batch=False)] if self.D is not None else [])

    def training_step(self, phase: str, batch: Batch) -> dict[str, torch.Tensor]:
        clean = batch["img"]
        if phase == "G":
            d = self.degrade(clean)  # torch's global RNG: checkpointed by the trainer
            out = self.network(d.image, d.mask)
            rec = self.reconstruction_loss(out, clean, d)
            with torch.no_grad():
                mse = (out.detach().clamp(-1, 1) - clean).square().flatten(1).mean(1) / 4  # on [0, 1] images
                logs = {"rec": rec.detach(), "psnr": (-10 * torch.log10(mse.clamp_min(1e-10))).mean()}
            loss = getattr(self.config, "rec_weight", 1.0) * rec
            if self.D is not None:
                adv = self.g_loss_fn(self.D(self.augment_d(out)))
                loss = loss + self.config.adv_weight * adv
                logs["adv"] = adv.detach()
                self._fake = out.detach()  # for this step's D phase
            return {"loss": loss, **logs}
        if phase == "D":
            if self._fake is None:
                raise RuntimeError("the D phase runs after the G phase of the same step")
            real_logits, fake_logits = self.D(self.augment_d(clean)), self.D(self.augment_d(self._fake))
            self._fake = None
            threshold = real_threshold(self.config.gan_loss)
            return {"loss": self.d_loss_fn(real_logits, fake_logits),
                    "d_real": torch.sigmoid(real_logits.detach()).mean(),
                    "d_fake": torch.sigmoid(fake_logits.detach()).mean(),
                    "acc_real": self.real_accuracy(real_logits, threshold),
                    **self.observe_real_logits(real_logits, threshold)}
        raise ValueError(f"unknown phase {phase!r}")

    # ---- using the model -------------------------------------------------------------------------------
    def check_input(self, degraded: torch.Tensor, mask: Optional[torch.Tensor]) -> None:
        """Raise :class:`ConfigError` unless ``degraded`` (and ``mask``) suit the model."""
        c = self.config.channels or 1
        if degraded.ndim != 4 or degraded.shape[1] != c:
            raise ConfigError(f"input images {tuple(degraded.shape)}: {self.model_name} restores [N, {c}, H, W] "
                              f"images ({'greyscale' if c == 1 else 'RGB'}); convert the input")
        h, w = degraded.shape[2:]
        m = self.size_multiple
        if h % m or w % m:
            raise ConfigError(f"input of {w}x{h}: {self.model_name} needs a height and width that are multiples "
                              f"of {m}; pad or crop the image")
        if mask is not None:
            if self.restoration_task != "inpaint":
                raise ConfigError(f"{self.model_name} restores {self.restoration_task}; a mask applies to "
                                  "inpainting models only")
            if mask.shape != (degraded.shape[0], 1, h, w):
                raise ConfigError(f"mask {tuple(mask.shape)}: expected [{degraded.shape[0]}, 1, {h}, {w}] "
                                  "(the input's size)")

    @torch.no_grad()
    def restore(self, degraded: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Restore degraded images, in eval mode without grad (the training mode is restored after).

        Args:
            degraded: float32 [N, C, h, w] in [-1, 1] (any h, w that are multiples of
                :attr:`size_multiple`; not only the training resolution).
            mask: inpainting only: bool [N, 1, h, w], True = missing; None = the centre mask of the
                model's ``mask_fraction`` (:meth:`Degradation.centre_mask`), whatever masks it was
                trained on.

        Returns:
            float32 [N, C, h·scale, w·scale] in [-1, 1] (scale = 1 except for super-resolution) on
            the model's device.

        Raises:
            ConfigError: wrong channel count or shape, a size that :attr:`size_multiple` does not
                divide, or a mask given to a model that does not inpaint.
        """
        self.check_input(degraded, mask)
        degraded = degraded.to(self.device, torch.float32)
        if self.restoration_task == "inpaint":
            n, _, h, w = degraded.shape
            mask = self.degradation.centre_mask(n, h, w) if mask is None else mask
            mask = mask.to(self.device, torch.bool)
        was_training = self.training
        self.eval()
        try:
            return self.network(degraded, mask).clamp(-1, 1)
        finally:
            self.train(was_training)

    def translate(self, img: torch.Tensor, direction: str = "AB",
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Direction ``AB`` (degraded → clean): :meth:`restore` of ``img`` (inpainting: with the centre
        mask of the model's ``mask_fraction``); ``generator`` is not used."""
        self.check_direction(direction)
        return self.restore(img)

    @torch.no_grad()
    def predict(self, batch: Batch, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Restorations of ``batch["input"]`` (degraded, with optional ``batch["mask"]``), or of the
        degradation of clean ``batch["img"]`` drawn with ``generator`` (None: a CPU generator seeded
        0, so that repeated calls agree).

        Returns:
            float32 [N, C, H, W] in [-1, 1] on the model's device (the clean images' size for ``img``).
        """
        if "input" in batch:
            return self.restore(batch["input"], batch.get("mask"))
        clean = batch["img"].to(self.device)
        d = self.degrade(clean, generator if generator is not None else torch.Generator().manual_seed(0))
        return self.restore(d.image, d.mask)

    def preview(self, batch: Batch, generator: torch.Generator, n: int) -> tuple[torch.Tensor, Optional[int]]:
        """Rows: degraded inputs (super-resolution: enlarged by pixel repetition to the output size),
        restorations, clean images."""
        clean = batch["img"][:n].to(self.device)
        d = self.degrade(clean, generator)
        shown = d.image.clamp(-1, 1)
        if shown.shape[2:] != clean.shape[2:]:
            shown = F.interpolate(shown, size=clean.shape[2:], mode="nearest")
        return torch.cat([shown, self.restore(d.image, d.mask), clean]), len(clean)
