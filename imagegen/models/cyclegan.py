"""CycleGAN: Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks" (ICCV; arXiv:1703.10593), registered as ``cyclegan``.

Two unpaired domains A and B (``imagegen train cyclegan --data-a HORSES --data-b ZEBRAS``; batch
fields ``A`` and ``B``, item i of one batch unrelated to item i of the other). Names and the paper's:
``G_AB`` is G: X → Y, ``G_BA`` is F: Y → X, ``D_A`` is D_X (real A vs G_BA(B)), ``D_B`` is D_Y
(real B vs G_AB(A)); domain A is X, domain B is Y.

* **Networks** (§4, appendix 7.2): :class:`~imagegen.nn.image2image.ResnetGenerator` (instance norm,
  reflection padding, ``g_blocks`` residual blocks: the paper uses 6 at 128×128 and 9 at 256×256 and
  above, which is the default rule) and 70×70 :class:`~imagegen.nn.image2image.PatchDiscriminator`
  with instance norm. Weights N(0, 0.02).
* **Objective** (Eq. 3): L = L_GAN(G_AB, D_B) + L_GAN(G_BA, D_A) + λ L_cyc, with the least-squares
  adversarial loss of §4 (G minimises E[(D(G(x)) − 1)²]; D minimises ½(E[(D(y) − 1)²] + E[D(G(x))²]),
  halved as appendix 7.1 says), the cycle loss of Eq. 2 ``L_cyc = E‖G_BA(G_AB(a)) − a‖₁ +
  E‖G_AB(G_BA(b)) − b‖₁`` with λ = ``lambda_cycle`` (10), and the identity loss of §5.2
  ``E‖G_AB(b) − b‖₁ + E‖G_BA(a) − a‖₁`` weighted ``lambda_identity · lambda_cycle`` (0.5 · 10, as the
  paper's 0.5λ and the reference implementation's ``--lambda_identity 0.5``). L1 terms are means
  over pixels.
* **History pool** (§4): each discriminator is trained on a mix of current fakes and fakes from a
  pool of the last ``pool_size`` (50) generated images
  (:class:`~imagegen.nn.image2image.ImagePool`), saved with the run's training state.
* **Optimisation** (§4): Adam(``lr`` 2e-4, β1 0.5), one optimiser for both generators (``G``) and one
  for both discriminators (``D``); the rate is constant for the first ``decay_start`` fraction of
  the steps, then decays linearly to zero (the paper: 100 + 100 epochs, ``decay_start = 0.5``).
  Each step runs phase ``G`` (both generators, on a fresh batch) then ``D`` (both discriminators on
  that batch's reals and pooled fakes), in the reference's order.
* **Augmentation** (appendix 7.1 / the reference's ``resize_and_crop`` and flips): with ``jitter``,
  ``training_step`` enlarges each batch of each domain to ``jitter_scale`` × the resolution (286/256),
  crops back at random and mirrors at random (:func:`~imagegen.nn.image2image.random_jitter`, torch's
  global RNG). It is applied in phase ``G``; phase ``D`` sees the same jittered reals. The data are
  resized to ``resolution`` first, so the enlargement resamples the resized images (the reference
  resizes the originals to 286 directly). The trainer's ``--flip`` is then redundant.
* **Discriminator augmentation** (optional, ``--augment diffaugment|ada``; not in the paper, for small
  domains): every image D_A and D_B see — reals, pooled fakes in phase ``D``, fakes in phase ``G`` —
  passes through DiffAugment (Zhao et al. 2020) or ADA (Karras et al. 2020b)
  (:mod:`imagegen.models.d_augment`), a fresh transform per image. With ADA one ``p`` serves both
  discriminators, steered by r_t over both (the LSGAN outputs' signs about 0.5, the midpoint of the
  targets 1 and 0); ``ada_kimg`` counts images of one domain (the batch size per step), so at the
  reference's batch of 1 ``p`` moves at most 0.1 per 50 k steps with the default 500 — lower
  ``--ada-kimg`` for short runs. ``p`` is logged as ``D/ada_p`` and resumed exactly.

**Widths.** ``g_width`` and ``d_width`` default to the paper's 64 so that a default run is the
published architecture (and the benchmark reference's); 32 costs about a quarter of the
arithmetic per step for CPU budgets.

**Use.** :meth:`CycleGAN.translate` maps A → B (``"AB"``) or B → A (``"BA"``) at any size whose sides
are multiples of 4 (fully convolutional). There is no metric computed during training
(``evaluation = ()``): FID of translations against real images of the target domain is measured
with ``imagegen translate RUN --input FOLDER --direction AB --out OUT`` followed by
``imagegen evaluate --fake OUT`` against the target domain's real images.

**Semantic consistency** (optional, ``--semantic-weight``; CyCADA, Hoffman et al. 2018, Eq. 4 as
secondary summaries of the paper give it): the cycle loss lets the generators change what an image
shows (a digit's class) as long as the other generator changes it back. A classifier f_S trained on
domain A (the source) and kept fixed gives each real image a hard label p(f_S, x) = argmax f_S(x),
and the loss adds ``semantic_weight`` × (CE(f_S(G_AB(a)), p(f_S, a)) + CE(f_S(G_BA(b)), p(f_S, b))).
f_S is the toolkit's dataset classifier (:mod:`imagegen.metrics.classifier`) from
``imagegen train-classifier --data DOMAIN_A``; its directory and weights hash are recorded in the
run's config, and it is not a weight of the run. CyCADA also adapts features and trains a task
network; only the pixel-level semantic term is here.

Logged per step: ``G/adv_AB``, ``G/adv_BA`` (LSGAN G terms), ``G/cycle_A``, ``G/cycle_B`` (L1 of the
reconstructions), ``G/idt_A``, ``G/idt_B`` (L1 of the identity maps), ``G/sem_AB``, ``G/sem_BA``
(cross-entropies in nats, with ``semantic_weight``), ``G/loss``; ``D/loss_A``, ``D/loss_B``, ``D/loss``
and the mean patch outputs ``D/d_real_A``, ``D/d_fake_A``, ``D/d_real_B``, ``D/d_fake_B`` (LSGAN
targets: 1 real, 0 fake; fakes as drawn from the pool, all as D saw them: augmented with ``--augment``),
``D/acc_real`` (the share of real patches of both discriminators above 0.5: (1 + r_t) / 2 of ADA's
heuristic, with or without ADA), with ADA also ``D/ada_p``.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F

from ..config import help_field
from ..errors import ConfigError
from ..losses import real_threshold
from ..nn import adam
from ..nn.image2image import (ImagePool, PatchDiscriminator, ResnetGenerator, check_translate_input,
                              decay_schedules, patch_min_size, random_jitter,
                              translation_gan_losses)
from ..registry import register_model
from .base import Batch, DataSource, GenerativeModel, LRSchedule, Phase
from .d_augment import DAugment, DAugmentConfig


@dataclasses.dataclass
class CycleGANConfig(DAugmentConfig):
    resolution: int = help_field(
        256, "training crop size in pixels (a multiple of 4, large enough for the PatchGAN; the paper's 256; "
             "translation works at any multiple of 4)")
    channels: Optional[int] = help_field(
        None, "channels of both domains (1 or 3); default: domain A's (domain B's images are converted to it)")
    g_width: int = help_field(64, "generator width ngf: channels of its first layer (the paper's 64; 32 for CPU "
                                  "budgets)")
    g_blocks: Optional[int] = help_field(
        None, "residual blocks of each generator; default: the paper's rule, 6 at resolution ≤ 128, else 9")
    d_width: int = help_field(64, "discriminator width ndf: channels of its first layer (the paper's 64)")
    d_layers: int = help_field(3, "stride-2 layers of the PatchGAN: 3 = 70×70 patches (the paper), 2 = 34×34, "
                                  "1 = 16×16")
    lambda_cycle: float = help_field(10.0, "λ, weight of the cycle-consistency loss (Eq. 3)")
    lambda_identity: float = help_field(
        0.5, "weight of the identity loss as a multiple of lambda_cycle (the paper's 0.5λ; 0 = off)")
    pool_size: int = help_field(50, "generated images kept in each discriminator's history pool (0 = off)")
    lr: float = help_field(2e-4, "Adam learning rate of the generators and the discriminators")
    beta1: float = help_field(0.5, "Adam β1")
    beta2: float = help_field(0.999, "Adam β2")
    decay_start: float = help_field(
        0.5, "fraction of the steps after which the learning rate decays linearly to zero (the paper's 100 + "
             "100 epochs: 0.5; 1 = constant)")
    jitter: bool = help_field(True, "random resize-crop and mirroring of the training batches (the paper's)")
    jitter_scale: float = help_field(286 / 256, "jitter: enlarge to this × resolution before the random crop "
                                                "(286/256 as the paper; 1 = mirroring only)")
    semantic_weight: float = help_field(
        0.0, "weight of CyCADA's semantic-consistency loss (Hoffman et al. 2018): translations must keep the class "
             "that a fixed classifier of domain A (--semantic-classifier) gives the input; 0 = off (CycleGAN)")
    semantic_classifier: Optional[str] = help_field(
        None, "directory of the fixed source-domain classifier for --semantic-weight, as `imagegen train-classifier "
              "--data DOMAIN_A` writes it (model.safetensors + config.json)")
    semantic_classifier_sha256: Optional[str] = help_field(
        None, "weights hash of --semantic-classifier, recorded when the run starts (resume checks it)", cli=False)

    def __post_init__(self) -> None:
        self._check_semantic()
        self.check_augment()
        if self.resolution < 8 or self.resolution % 4:
            raise ConfigError(f"resolution={self.resolution}: cyclegan needs a multiple of 4, at least 8 "
                              "(e.g. 128 or 256)")
        if self.channels is not None and self.channels not in (1, 3):
            raise ConfigError(f"channels={self.channels}: use 1 or 3")
        if self.g_blocks is None:
            self.g_blocks = 6 if self.resolution <= 128 else 9
        for name in ("g_width", "g_blocks", "d_width", "d_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: must be ≥ 1")
        if self.resolution < patch_min_size(self.d_layers):
            raise ConfigError(f"resolution={self.resolution}: a {self.d_layers}-layer PatchGAN needs images of at "
                              f"least {patch_min_size(self.d_layers)} pixels; use a larger resolution or fewer "
                              "--d-layers")
        if self.lambda_cycle < 0 or self.lambda_identity < 0:
            raise ConfigError(f"lambda_cycle={self.lambda_cycle}, lambda_identity={self.lambda_identity}: both "
                              "must be ≥ 0")
        if self.pool_size < 0:
            raise ConfigError(f"pool_size={self.pool_size}: use 0 (off) or a number of images (the paper's 50)")
        if self.lr <= 0:
            raise ConfigError(f"lr={self.lr}: must be > 0")
        if not 0.0 <= self.decay_start <= 1.0:
            raise ConfigError(f"decay_start={self.decay_start}: give a fraction of the steps in [0, 1]")
        if self.jitter_scale < 1.0:
            raise ConfigError(f"jitter_scale={self.jitter_scale}: must be ≥ 1 (the image is enlarged, then cropped)")

    def _check_semantic(self) -> None:
        """Validate the semantic-consistency options; for a new run, make the classifier path absolute and
        record its weights hash from its ``config.json`` (a saved run's config keeps both, untouched)."""
        if self.semantic_weight < 0:
            raise ConfigError(f"semantic_weight={self.semantic_weight}: must be ≥ 0 (0 = off)")
        if self.semantic_weight == 0 or self.semantic_classifier_sha256 is not None:
            return
        if not self.semantic_classifier:
            raise ConfigError("--semantic-weight needs --semantic-classifier DIR: train one on domain A with "
                              "`imagegen train-classifier --data DOMAIN_A` and pass the directory it prints")
        d = Path(self.semantic_classifier).expanduser().resolve()
        try:
            meta = json.loads((d / "config.json").read_text())
            sha = str(meta["weights_sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            raise ConfigError(f"--semantic-classifier {self.semantic_classifier}: no dataset classifier there "
                              "(config.json with weights_sha256); pass the directory `imagegen train-classifier` "
                              "prints") from None
        self.semantic_classifier, self.semantic_classifier_sha256 = str(d), sha


@register_model("cyclegan")
class CycleGAN(DAugment, GenerativeModel):
    """CycleGAN (Zhu et al. 2017): unpaired translation between domains A (--data-a) and B (--data-b)
    by two ResNet generators G_AB, G_BA and two 70×70 PatchGANs D_A, D_B, trained with least-squares
    adversarial, cycle-consistency (λ = 10) and identity (0.5·λ) losses and a history pool of 50
    generated images."""

    Config = CycleGANConfig
    evaluation = ()  # FID of translations: imagegen translate, then imagegen evaluate --fake
    directions = ("AB", "BA")
    train_defaults = {"batch_size": 1}  # one image per step, as the reference implementation (--batch_size 1)

    def __init__(self, config: CycleGANConfig) -> None:
        super().__init__(config)
        c = config.channels or 1
        # G_AB = the paper's G (X → Y), G_BA = F (Y → X), D_A = D_X, D_B = D_Y; domain A = X, B = Y
        self.G_AB = ResnetGenerator(c, c, config.g_width, config.g_blocks)
        self.G_BA = ResnetGenerator(c, c, config.g_width, config.g_blocks)
        self.D_A = PatchDiscriminator(c, config.d_width, config.d_layers, norm="instance")
        self.D_B = PatchDiscriminator(c, config.d_width, config.d_layers, norm="instance")
        self.pool_A = ImagePool(config.pool_size)  # fakes of domain A, G_BA(B), for D_A
        self.pool_B = ImagePool(config.pool_size)  # fakes of domain B, G_AB(A), for D_B
        self.d_loss_fn, self.g_loss_fn = translation_gan_losses("lsgan")
        self._step_cache: Optional[dict[str, torch.Tensor]] = None
        self.init_augment()
        # the fixed f_S of the semantic loss: loaded when training needs it, not a weight of the run (kept
        # out of state_dict and of DDP in a list; translating with a run never needs it)
        self._f_S: list[Any] = []

    def semantic_classifier(self) -> Any:
        """The fixed source classifier f_S (a :class:`~imagegen.metrics.classifier.DatasetClassifier`,
        eval mode, no parameter gradients), loaded on first use (on the CPU; :meth:`semantic_losses`
        moves it to the images' device).

        Raises:
            ConfigError: the directory is gone, or its weights differ from those the run started with.
            CheckpointError: its files are corrupt.
        """
        if not self._f_S:
            from ..metrics.classifier import DatasetClassifier

            c = self.config
            if not (Path(c.semantic_classifier) / "config.json").exists():
                raise ConfigError(f"the semantic classifier {c.semantic_classifier} of this run is missing; "
                                  "restore that directory (training needs the same f_S) or start a new run")
            f = DatasetClassifier.load(c.semantic_classifier)
            if f.weights_hash != c.semantic_classifier_sha256:
                raise ConfigError(f"the semantic classifier in {c.semantic_classifier} has weights "
                                  f"{f.weights_hash[:12]}, this run trained with {c.semantic_classifier_sha256[:12]}; "
                                  "restore the original directory or start a new run")
            self._f_S.append(f.requires_grad_(False).eval())
        return self._f_S[0]

    def semantic_losses(self, real_A: torch.Tensor, real_B: torch.Tensor, fake_A: torch.Tensor,
                        fake_B: torch.Tensor) -> dict[str, torch.Tensor]:
        """CyCADA's semantic-consistency terms (Hoffman et al. 2018, Eq. 4, as read in secondary summaries
        of the paper): with the fixed source classifier f_S and its hard labels p(f_S, x) = argmax f_S(x),
        ``sem_AB`` = CE(f_S(G_AB(a)), p(f_S, a)) and ``sem_BA`` = CE(f_S(G_BA(b)), p(f_S, b)), means over
        the batch (nats). Domain A is the source. Inputs float32 [N, C, H, W] in [-1, 1]; the fakes carry
        grad, which flows through f_S into the generators."""
        f = self.semantic_classifier().to(real_A.device)
        with torch.no_grad():
            label_A, label_B = f(real_A)[1].argmax(1), f(real_B)[1].argmax(1)
        return {"sem_AB": F.cross_entropy(f(fake_B)[1], label_A), "sem_BA": F.cross_entropy(f(fake_A)[1], label_B)}

    @classmethod
    def data_sources(cls) -> list[DataSource]:
        return [DataSource("a", image_key="A", label_key=None, help="domain A images"),
                DataSource("b", image_key="B", label_key=None, help="domain B images")]

    # ---- training ----------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        betas = (c.beta1, c.beta2)
        return {"G": adam(itertools.chain(self.G_AB.parameters(), self.G_BA.parameters()), c.lr, betas),
                "D": adam(itertools.chain(self.D_A.parameters(), self.D_B.parameters()), c.lr, betas)}

    def lr_schedules(self) -> dict[str, LRSchedule]:
        """Constant, then linear decay to zero from ``decay_start`` of the run; none at ``decay_start`` 1."""
        return decay_schedules(self.config.decay_start)

    def phases(self) -> list[Phase]:
        return [Phase("G"), Phase("D", needs_batch=False)]

    def cycle_losses(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, torch.Tensor]:
        """The generators' loss terms for reals [N, C, H, W] in [-1, 1] of each domain.

        Returns:
            ``loss`` (Eq. 3 plus the identity term, scalar with grad), the unweighted terms ``adv_AB``,
            ``adv_BA`` (LSGAN), ``cycle_A``, ``cycle_B`` (Eq. 2, mean absolute error), ``idt_A``,
            ``idt_B`` (§5.2; zero when ``lambda_identity`` = 0), with ``semantic_weight`` > 0 also
            ``sem_AB``, ``sem_BA`` (:meth:`semantic_losses`), and the fakes ``fake_A`` = G_BA(B),
            ``fake_B`` = G_AB(A) (with grad).
        """
        c = self.config
        fake_B, fake_A = self.G_AB(real_A), self.G_BA(real_B)
        out = {"fake_A": fake_A, "fake_B": fake_B,
               "adv_AB": self.g_loss_fn(self.D_B(self.augment_d(fake_B))),
               "adv_BA": self.g_loss_fn(self.D_A(self.augment_d(fake_A))),
               "cycle_A": F.l1_loss(self.G_BA(fake_B), real_A), "cycle_B": F.l1_loss(self.G_AB(fake_A), real_B)}
        if c.lambda_identity > 0:
            out["idt_A"] = F.l1_loss(self.G_BA(real_A), real_A)
            out["idt_B"] = F.l1_loss(self.G_AB(real_B), real_B)
        else:
            out["idt_A"] = out["idt_B"] = real_A.new_zeros(())
        out["loss"] = (out["adv_AB"] + out["adv_BA"] + c.lambda_cycle * (out["cycle_A"] + out["cycle_B"])
                       + c.lambda_cycle * c.lambda_identity * (out["idt_A"] + out["idt_B"]))
        if c.semantic_weight > 0:
            out.update(self.semantic_losses(real_A, real_B, fake_A, fake_B))
            out["loss"] = out["loss"] + c.semantic_weight * (out["sem_AB"] + out["sem_BA"])
        return out

    def training_step(self, phase: str, batch: Batch) -> dict[str, torch.Tensor]:
        if phase == "G":
            real_A, real_B = batch["A"], batch["B"]
            if self.config.jitter:
                real_A = random_jitter(real_A, self.config.jitter_scale)
                real_B = random_jitter(real_B, self.config.jitter_scale)
            out = self.cycle_losses(real_A, real_B)
            fake_A, fake_B = out.pop("fake_A"), out.pop("fake_B")
            self._step_cache = {"real_A": real_A, "real_B": real_B, "fake_A": fake_A.detach(),
                                "fake_B": fake_B.detach()}
            return {k: v if k == "loss" else v.detach() for k, v in out.items()}
        if phase == "D":
            if self._step_cache is None:
                raise RuntimeError("cyclegan: phase D runs after phase G of the same step")
            s, self._step_cache = self._step_cache, None
            fake_A, fake_B = self.pool_A.query(s["fake_A"]), self.pool_B.query(s["fake_B"])
            aug = self.augment_d
            real_logits_A, fake_logits_A = self.D_A(aug(s["real_A"])), self.D_A(aug(fake_A))
            real_logits_B, fake_logits_B = self.D_B(aug(s["real_B"])), self.D_B(aug(fake_B))
            loss_A = self.d_loss_fn(real_logits_A, fake_logits_A)
            loss_B = self.d_loss_fn(real_logits_B, fake_logits_B)
            # ADA: one r_t over both discriminators' patches; LSGAN decides "real" above 0.5
            threshold = real_threshold("lsgan")
            self.observe_real_logits(real_logits_A, threshold)
            ada = self.observe_real_logits(real_logits_B, threshold)
            acc_real = self.real_accuracy(torch.cat([real_logits_A.flatten(), real_logits_B.flatten()]), threshold)
            return {"loss": loss_A + loss_B, "loss_A": loss_A.detach(), "loss_B": loss_B.detach(),
                    "d_real_A": real_logits_A.detach().mean(), "d_fake_A": fake_logits_A.detach().mean(),
                    "d_real_B": real_logits_B.detach().mean(), "d_fake_B": fake_logits_B.detach().mean(),
                    "acc_real": acc_real, **ada}
        raise ValueError(f"unknown phase {phase!r}")

    def training_state(self) -> dict[str, Any]:
        return {"pool_A": self.pool_A.state(), "pool_B": self.pool_B.state(), **self.augment_state()}

    def load_training_state(self, state: dict[str, Any]) -> None:
        self.pool_A.load_state(state["pool_A"], self.device)
        self.pool_B.load_state(state["pool_B"], self.device)
        self.load_augment_state(state)

    # ---- using the model ---------------------------------------------------------------------------
    @property
    def size_multiple(self) -> int:
        return ResnetGenerator.size_multiple

    @torch.no_grad()
    def translate(self, img: torch.Tensor, direction: str = "AB",
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``G_AB(img)`` (``"AB"``) or ``G_BA(img)`` (``"BA"``), in eval mode without grad (instance norm
        behaves the same in both modes; the generators are deterministic, ``generator`` is ignored).

        Args:
            img: float32 [N, C, H, W] in [-1, 1] with C = ``config.channels``, H and W multiples of 4 and
                at least 8.
            direction: ``"AB"`` or ``"BA"``.

        Returns:
            float32 [N, C, H, W] in [-1, 1] on the model's device.

        Raises:
            ConfigError: an unknown direction, or an image of the wrong channels or size.
        """
        self.check_direction(direction)
        check_translate_input(img, self.config.channels or 1, ResnetGenerator.size_multiple,
                              ResnetGenerator.min_size, self.model_name)
        G = self.G_AB if direction == "AB" else self.G_BA
        was = G.training
        G.eval()
        try:
            return G(img.to(self.device, torch.float32))
        finally:
            G.train(was)

    def predict(self, batch: Batch, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``batch["A"]`` [N, C, H, W] translated A → B (see :meth:`translate`)."""
        return self.translate(batch["A"], "AB")

    def preview(self, batch: Batch, generator: torch.Generator, n: int) -> tuple[torch.Tensor, Optional[int]]:
        """Rows of six: A | G_AB(A) | G_BA(G_AB(A)) | B | G_BA(B) | G_AB(G_BA(B)), for ``max(1, n // 6)``
        items of the fixed batch (about ``n`` images)."""
        m = max(1, min(n // 6, len(batch["A"]), len(batch["B"])))
        a, b = batch["A"][:m].to(self.device), batch["B"][:m].to(self.device)
        fake_B, fake_A = self.translate(a, "AB"), self.translate(b, "BA")
        cols = [a, fake_B, self.translate(fake_B, "BA"), b, fake_A, self.translate(fake_A, "AB")]
        return torch.stack(cols, 1).flatten(0, 1), 6  # [m·6, C, H, W], one item per row
