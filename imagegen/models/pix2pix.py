"""pix2pix: Isola, Zhu, Zhou & Efros 2017, "Image-to-Image Translation with Conditional Adversarial
Networks" (CVPR; arXiv:1611.07004), registered as ``pix2pix``.

Paired data (``imagegen train pix2pix --data PAIRS``): a folder or zip with ``A/`` and ``B/``
subfolders of files with matching names, or of side-by-side ``A|B`` images as in the paper's
datasets (split in half before resizing; :mod:`imagegen.data.paired`). Batch fields ``A`` (input) and
``B`` (target). The model learns A → B.

* **Generator** (§3.2.1, appendix 6.1.1): :class:`~imagegen.nn.image2image.UnetGenerator` of depth
  log2(``resolution``) (8 at 256×256: a 1×1 bottleneck), ``norm`` batch norm as the paper, dropout
  (0.5) after the first ``dropout_layers`` (3) decoder layers as the paper's noise z (§3.1).
* **Discriminator** (§3.2.2, appendix 6.1.2): a 70×70
  :class:`~imagegen.nn.image2image.PatchDiscriminator` conditioned on the input: it judges the
  channel concatenation ``[A, B]`` (real) or ``[A, G(A)]`` (fake), 2·C channels.
* **Objective** (Eq. 4): G* = arg min_G max_D L_cGAN(G, D) + λ L_L1(G), λ = ``lambda_l1`` (100),
  L_L1 = E‖B − G(A)‖₁ (mean over pixels); the adversarial loss is the binary cross-entropy of Eq. 1
  with G maximising log D(A, G(A)) (``loss nonsaturating``) or, as an option, least squares
  (``lsgan``); D's loss is halved (§3.3, :func:`~imagegen.nn.image2image.translation_gan_losses`).
* **Optimisation** (§3.3, appendix 6.2): Adam(``lr`` 2e-4, β1 0.5) for G and for D. The paper states
  no learning-rate decay; the reference implementation's default, 100 epochs constant then 100 of
  linear decay to zero, is ``decay_start 0.5`` here (1 = constant). Each step runs phase ``G`` (on a
  fresh batch) then ``D`` on the same batch and fakes: one generator forward per step, where the
  reference updates D first and G against the updated D.
* **Augmentation** (appendix 6.2): with ``jitter``, phase ``G`` enlarges A and B together to
  ``jitter_scale`` × the resolution (286/256), crops both at the same random offset and mirrors both
  at random (:func:`~imagegen.nn.image2image.random_jitter` on the channel concatenation, torch's global
  RNG); phase ``D`` sees the same jittered pair.
* **Discriminator augmentation** (optional, ``--augment diffaugment|ada``; not in the paper, for small
  paired sets): every pair D sees, ``[A, B]`` and ``[A, G(A)]`` in phase ``D`` and ``[A, G(A)]`` in phase
  ``G``, passes through DiffAugment (Zhao et al. 2020) or ADA (Karras et al. 2020b) with one transform
  for both images of a pair, so that they stay aligned
  (:meth:`~imagegen.models.d_augment.DAugment.augment_d_pair`: the same flips, shifts, warps, colour
  changes and cutout; a fresh transform per pair and per call of D). ADA's r_t is the sign of the
  patch logits (``loss nonsaturating``) or of the outputs about 0.5 (``lsgan``, targets 1 and 0);
  ``ada_kimg`` counts pairs, so at the reference's batch of 1 ``p`` moves at most 0.1 per 50 k steps
  with the default 500 — lower ``--ada-kimg`` for short runs. ``p`` is logged as ``D/ada_p``.

**Inference** (:meth:`Pix2Pix.translate`, :meth:`~Pix2Pix.predict`, previews and paired
evaluation). ``inference paper`` (the default) runs the generator as the paper does at test time
(§3.3): dropout stays on as the noise z, its masks drawn from the ``generator`` argument (a fresh
generator seeded 0 when None, so that an output is reproducible for a given generator and batch),
and batch norm normalises each image with its own statistics — the paper's "statistics of the test
batch" at its test batch size of 1, also what the reference's ``test.py`` does by default (no
``--eval``) — so an image's translation does not depend on the rest of its batch. ``inference eval``
is PyTorch's eval mode (the reference's ``--eval``): no dropout, running batch-norm statistics; the
output is then deterministic.

Logged per step: ``G/adv`` (G's adversarial term), ``G/l1`` (mean absolute error to B), ``G/loss``;
``D/loss``, ``D/d_real``, ``D/d_fake`` (mean patch output: σ(logit) for ``nonsaturating``, the raw
output for ``lsgan``, whose targets are 1 and 0; of the pairs as D saw them), ``D/acc_real`` (the share
of real pairs' patches D calls real: logit > 0, or output > 0.5 with ``lsgan``; (1 + r_t) / 2 of ADA's
heuristic), with ADA also ``D/ada_p``.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Literal, Optional

import torch
import torch.nn.functional as F

from ..config import help_field
from ..errors import ConfigError
from ..losses import real_threshold
from ..nn import adam
from ..nn.image2image import (PatchDiscriminator, UnetGenerator, check_translate_input, decay_schedules,
                              patch_min_size, random_jitter, translation_gan_losses)
from ..registry import register_model
from .base import Batch, DataSource, GenerativeModel, LRSchedule, Phase
from .d_augment import DAugment, DAugmentConfig


@dataclasses.dataclass
class Pix2PixConfig(DAugmentConfig):
    resolution: int = help_field(
        256, "training size in pixels, a power of two ≥ 8 (the paper's 256); the U-Net has log2(resolution) "
             "stride-2 layers and translates any size whose sides are multiples of the resolution")
    channels: Optional[int] = help_field(None, "channels of A and B (1 or 3); default: the data's")
    g_width: int = help_field(64, "generator width ngf: channels of its first layer (the paper's 64)")
    d_width: int = help_field(64, "discriminator width ndf: channels of its first layer (the paper's 64)")
    d_layers: int = help_field(3, "stride-2 layers of the PatchGAN: 3 = 70×70 patches (the paper), 2 = 34×34, "
                                  "1 = 16×16")
    norm: Literal["batch", "instance"] = help_field(
        "batch", "normalisation in G and D: batch (the paper) or instance (no learned scale and shift)")
    dropout_layers: int = help_field(3, "decoder layers with dropout 0.5, from the innermost (the paper's 3)")
    inference: Literal["paper", "eval"] = help_field(
        "paper", "at inference: paper = dropout on (seeded noise) and per-image batch-norm statistics (§3.3); "
                 "eval = no dropout, running statistics (deterministic)")
    loss: Literal["nonsaturating", "lsgan"] = help_field(
        "nonsaturating", "adversarial loss: nonsaturating (the paper's cross-entropy) or lsgan (least squares)")
    lambda_l1: float = help_field(100.0, "λ, weight of the L1 loss (Eq. 4)")
    lr: float = help_field(2e-4, "Adam learning rate of G and D")
    beta1: float = help_field(0.5, "Adam β1")
    beta2: float = help_field(0.999, "Adam β2")
    decay_start: float = help_field(
        0.5, "fraction of the steps after which the learning rate decays linearly to zero (the reference's 100 "
             "+ 100 epochs: 0.5; 1 = constant, as the paper states)")
    jitter: bool = help_field(True, "random resize-crop and mirroring of each training pair (the paper's)")
    jitter_scale: float = help_field(286 / 256, "jitter: enlarge to this × resolution before the random crop "
                                                "(286/256 as the paper; 1 = mirroring only)")

    def __post_init__(self) -> None:
        self.check_augment()
        if self.resolution < 8 or self.resolution & (self.resolution - 1):
            raise ConfigError(f"resolution={self.resolution}: pix2pix needs a power of two ≥ 8 (e.g. 128 or 256)")
        if self.channels is not None and self.channels not in (1, 3):
            raise ConfigError(f"channels={self.channels}: use 1 or 3")
        for name in ("g_width", "d_width", "d_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: must be ≥ 1")
        depth = self.depth
        if not 0 <= self.dropout_layers <= depth - 1:
            raise ConfigError(f"dropout_layers={self.dropout_layers}: the U-Net at resolution {self.resolution} has "
                              f"{depth - 1} hidden decoder layers; use 0 to {depth - 1}")
        if self.resolution < patch_min_size(self.d_layers):
            raise ConfigError(f"resolution={self.resolution}: a {self.d_layers}-layer PatchGAN needs images of at "
                              f"least {patch_min_size(self.d_layers)} pixels; use a larger resolution or fewer "
                              "--d-layers")
        if self.lambda_l1 < 0 or self.lr <= 0:
            raise ConfigError(f"lambda_l1={self.lambda_l1}, lr={self.lr}: need lambda_l1 ≥ 0 and lr > 0")
        if not 0.0 <= self.decay_start <= 1.0:
            raise ConfigError(f"decay_start={self.decay_start}: give a fraction of the steps in [0, 1]")
        if self.jitter_scale < 1.0:
            raise ConfigError(f"jitter_scale={self.jitter_scale}: must be ≥ 1 (the image is enlarged, then cropped)")

    @property
    def depth(self) -> int:
        """Stride-2 layers of the U-Net: log2(resolution)."""
        return int(math.log2(self.resolution))


@register_model("pix2pix")
class Pix2Pix(DAugment, GenerativeModel):
    """pix2pix (Isola et al. 2017): paired translation A → B by a U-Net generator trained with a
    conditional 70×70 PatchGAN and an L1 loss (λ = 100), on A/ and B/ folders with matching names or
    side-by-side A|B images."""

    Config = Pix2PixConfig
    evaluation = ("paired",)
    directions = ("AB",)
    train_defaults = {"batch_size": 1}  # one image per step, as the reference implementation (--batch_size 1)

    def __init__(self, config: Pix2PixConfig) -> None:
        super().__init__(config)
        c = config.channels or 1
        self.G = UnetGenerator(c, c, config.depth, config.g_width, config.norm, config.dropout_layers,
                               image_stats_at_eval=config.inference == "paper")
        self.D = PatchDiscriminator(2 * c, config.d_width, config.d_layers, config.norm)  # judges [A, B]
        self.d_loss_fn, self.g_loss_fn = translation_gan_losses(config.loss)
        self._step_cache: Optional[dict[str, torch.Tensor]] = None
        self.init_augment()

    @classmethod
    def data_sources(cls) -> list[DataSource]:
        return [DataSource(kind="paired", image_key="A", target_key="B", label_key=None,
                           help="aligned pairs: A/ and B/ folders with matching names, or side-by-side A|B images")]

    # ---- training ----------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"G": adam(self.G.parameters(), c.lr, (c.beta1, c.beta2)),
                "D": adam(self.D.parameters(), c.lr, (c.beta1, c.beta2))}

    def lr_schedules(self) -> dict[str, LRSchedule]:
        """Constant, then linear decay to zero from ``decay_start`` of the run; none at ``decay_start`` 1."""
        return decay_schedules(self.config.decay_start)

    def phases(self) -> list[Phase]:
        return [Phase("G"), Phase("D", needs_batch=False)]

    def _d_stats(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:
        squash = torch.sigmoid if self.config.loss == "nonsaturating" else (lambda x: x)
        return {"d_real": squash(real_logits.detach()).mean(), "d_fake": squash(fake_logits.detach()).mean()}

    def training_step(self, phase: str, batch: Batch) -> dict[str, torch.Tensor]:
        if phase == "G":
            a, b = batch["A"], batch["B"]
            if self.config.jitter:  # one transform for both images of a pair
                a, b = random_jitter(torch.cat([a, b], 1), self.config.jitter_scale).chunk(2, 1)
            fake = self.G(a)
            adv = self.g_loss_fn(self.D(torch.cat(self.augment_d_pair(a, fake), 1)))
            l1 = F.l1_loss(fake, b)
            self._step_cache = {"A": a, "B": b, "fake": fake.detach()}
            return {"loss": adv + self.config.lambda_l1 * l1, "adv": adv.detach(), "l1": l1.detach()}
        if phase == "D":
            if self._step_cache is None:
                raise RuntimeError("pix2pix: phase D runs after phase G of the same step")
            s, self._step_cache = self._step_cache, None
            real_logits = self.D(torch.cat(self.augment_d_pair(s["A"], s["B"]), 1))
            fake_logits = self.D(torch.cat(self.augment_d_pair(s["A"], s["fake"]), 1))
            threshold = real_threshold(self.config.loss)
            ada = self.observe_real_logits(real_logits, threshold)
            return {"loss": self.d_loss_fn(real_logits, fake_logits), **self._d_stats(real_logits, fake_logits),
                    "acc_real": self.real_accuracy(real_logits, threshold), **ada}
        raise ValueError(f"unknown phase {phase!r}")

    # ---- using the model ---------------------------------------------------------------------------
    @property
    def size_multiple(self) -> int:
        return 2 ** self.config.depth

    @torch.no_grad()
    def translate(self, img: torch.Tensor, direction: str = "AB",
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """G(img) in eval mode without grad, as ``config.inference`` says (see the module docstring).

        Args:
            img: float32 [N, C, H, W] in [-1, 1] with C = ``config.channels``, H and W multiples of
                :attr:`size_multiple` (= ``resolution``).
            direction: ``"AB"`` only.
            generator: draws the dropout masks with ``inference paper`` (any device; None: a generator
                seeded 0, so the same input batch gives the same output); unused with ``eval``.

        Returns:
            float32 [N, C, H, W] in [-1, 1] on the model's device.

        Raises:
            ConfigError: a direction other than AB, or an image of the wrong channels or size.
        """
        self.check_direction(direction)
        m = self.size_multiple
        check_translate_input(img, self.config.channels or 1, m, m, self.model_name)
        noise = None
        if self.config.inference == "paper":
            noise = generator if generator is not None else torch.Generator(self.device).manual_seed(0)
        was = self.G.training
        self.G.eval()
        try:
            return self.G(img.to(self.device, torch.float32), dropout_generator=noise)
        finally:
            self.G.train(was)

    def predict(self, batch: Batch, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``batch["A"]`` [N, C, H, W] translated to B (see :meth:`translate`)."""
        return self.translate(batch["A"], "AB", generator)

    def preview(self, batch: Batch, generator: torch.Generator, n: int) -> tuple[torch.Tensor, Optional[int]]:
        """Rows of three: A | G(A) | B, for ``max(1, n // 3)`` pairs of the fixed batch (about ``n``
        images); the dropout masks come from ``generator``."""
        m = max(1, min(n // 3, len(batch["A"])))
        a, b = batch["A"][:m].to(self.device), batch["B"][:m].to(self.device)
        return torch.stack([a, self.translate(a, "AB", generator), b], 1).flatten(0, 1), 3
