"""Class-conditional GAN with a projection discriminator.

* Generator: DCGAN-like (Radford et al. 2015) transposed-convolution stack whose batch norms are
  class-conditional (:class:`~imagegen.nn.conditional.ConditionalBatchNorm2d`; Dumoulin et al. 2017,
  de Vries et al. 2017), as in the generator of Miyato & Koyama 2018, "cGANs with Projection
  Discriminator" (arXiv:1802.05637), §4.
* Discriminator: DCGAN-like strided convolutions with spectral normalisation on every layer
  (Miyato et al. 2018, "Spectral Normalization for GANs", arXiv:1802.05957, §2.1) instead of
  batch norm, features φ(x) = the flattened last 4×4 map and the projection output
  ``D(x, y) = ψ(φ(x)) + embed(y)ᵀ φ(x)`` (Miyato & Koyama 2018, Eq. 3).
* Loss: hinge by default (Lim & Ye 2017; Miyato et al. 2018, Eq. 16–17), non-saturating or LSGAN
  as options (:mod:`imagegen.losses`). Optionally the auxiliary classifier of AC-GAN (Odena et al.
  2017, "Conditional Image Synthesis with Auxiliary Classifier GANs", §3): a classification head on
  φ(x); D minimises the cross-entropy of real *and* fake labels, G that of its fake labels (the
  paper's L_C, maximised as log-likelihood by both players).

Widths follow DCGAN (``g_width=64`` at 32×32: G 256→128→64 channels, D 64→128→256), so the model
trains in minutes on a CPU.

Python API::

    from imagegen.sampling import load_run, generate
    model = load_run("runs/mnist-cgan")                         # CGAN in eval mode
    img = generate(model, 10, seed=0, labels=torch.arange(10))  # [10, C, R, R] in [-1, 1]
    z = model.sample_latents(4)                                 # [4, z_dim] ~ N(0, I)
    img = model.generate(z, torch.tensor([3, 3, 7, 7]))         # same z, chosen classes
"""
from __future__ import annotations

import dataclasses
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..config import help_field
from ..errors import ConfigError, DataError
from ..losses import get_gan_loss
from ..nn import dcgan_init
from ..nn.conditional import ConditionalBatchNorm2d, ProjectionHead
from ..registry import register_model
from .base import Batch
from .gan import GANModel, GANOptimConfig, check_image_size, discriminator_stats, num_upsamplings


@dataclasses.dataclass
class CGANConfig(GANOptimConfig):
    resolution: int = help_field(32, "image size in pixels (a power of two ≥ 8, e.g. 32)")
    channels: Optional[int] = help_field(None, "image channels (1 or 3); default: the dataset's")
    num_classes: Optional[int] = help_field(None, "number of classes; default: the dataset's")
    z_dim: int = help_field(128, "latent z dimension")
    g_width: int = help_field(64, "generator width: channels of its last hidden layer")
    d_width: int = help_field(64, "discriminator width: channels of its first layer")
    loss: Literal["hinge", "nonsaturating", "lsgan"] = help_field(
        "hinge", "adversarial loss (see imagegen.losses)")
    d_cond: Literal["projection", "none"] = help_field(
        "projection", "how D sees the label: projection (Miyato & Koyama 2018, Eq. 3) or none "
                      "(then --ac-weight must be > 0: a pure AC-GAN)")
    ac_weight: float = help_field(0.0, "weight of the AC-GAN auxiliary classification loss (0 = off)")
    spectral_norm: bool = help_field(True, "spectral normalisation of every D layer (Miyato et al. 2018)")
    init: Literal["pytorch", "dcgan"] = help_field(
        "pytorch", "generator weight initialisation: pytorch = PyTorch's layer defaults (better acc, FID, "
                   "precision and recall on MNIST, docs/dcgan_ablation.md step 5), dcgan = N(0, 0.02) "
                   "(Radford et al. 2015 §4, the default before); D keeps PyTorch's init either way")
    ema_decay: float = help_field(
        0.999, "EMA decay of the generator weights used for sampling (0 = off; warm-up min(decay, (1+step)/"
               "(10+step)); G_ema keeps its own batch-norm statistics): on MNIST G_ema beat the same run's G on "
               "acc, FID, KID, precision and recall (docs/dcgan_ablation.md step 5), as for dcgan")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_image_size("cgan", self.resolution, self.channels)
        if self.num_classes is not None and self.num_classes < 2:
            raise ConfigError(f"num_classes={self.num_classes}: a class-conditional GAN needs ≥ 2 classes")
        if self.d_cond == "none" and self.ac_weight <= 0:
            raise ConfigError("d_cond=none leaves D blind to the label; use --d-cond projection or "
                              "set --ac-weight > 0 (AC-GAN)")
        if self.ac_weight < 0:
            raise ConfigError(f"ac_weight={self.ac_weight}: must be ≥ 0")


class CGANGenerator(nn.Module):
    """z [N, z_dim] float32 ~ N(0, I), labels int64 [N] in [0, K) → img [N, C, R, R] in [-1, 1].

    As DCGAN's generator, with conditional batch norm after every hidden layer: Linear → [c0, 4, 4]
    → (ConvTranspose 4×4 stride 2 → conditional BN → ReLU) × (log2(R/4) − 1) → ConvTranspose 4×4
    stride 2 to C channels → tanh.
    """

    def __init__(self, z_dim: int, resolution: int, channels: int, width: int, num_classes: int) -> None:
        super().__init__()
        n = num_upsamplings(resolution)
        chans = [width * 2 ** (n - 1 - i) for i in range(n)]  # e.g. 32×32: [256, 128, 64]
        self.z_dim, self.c0 = z_dim, chans[0]
        self.fc = nn.Linear(z_dim, chans[0] * 16)
        self.norms = nn.ModuleList([ConditionalBatchNorm2d(c, num_classes) for c in chans])
        self.ups = nn.ModuleList([nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)
                                  for c_in, c_out in zip(chans[:-1], chans[1:])])
        self.out = nn.ConvTranspose2d(chans[-1], channels, 4, 2, 1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, self.c0, 4, 4)  # [N, c0, 4, 4]
        h = F.relu(self.norms[0](h, labels))
        for up, norm in zip(self.ups, self.norms[1:]):
            h = F.relu(norm(up(h), labels))  # doubles H, W
        return torch.tanh(self.out(h))  # [N, C, R, R]


class ProjectionDiscriminator(nn.Module):
    """img [N, C, R, R] in [-1, 1], labels int64 [N] → logits [N] (and class logits [N, K] with AC).

    DCGAN's discriminator with spectral normalisation in place of batch norm: strided 4×4
    convolutions (C → w → 2w → … at R/2, R/4, …, 4×4) with LeakyReLU(0.2); φ(x) = the flattened
    last 4×4 feature map; then the projection head (Eq. 3; ψ on the flattened map is DCGAN's final
    4×4 convolution) and, for AC-GAN, a linear classifier on φ(x).

    Design note: on MNIST this shallow SN discriminator trains stably, while two deeper or
    differently shaped SN variants we tried (the SN-GAN "standard CNN" with extra 3×3 layers;
    global sum pooling of the 4×4 map; LeakyReLU(0.1)) let the generator collapse to a single
    mode within a few hundred steps at these widths.

    Args:
        projection: use the label through the projection term (else D's logit is unconditional).
        num_aux_classes: K for an AC-GAN classification head (0 = none).
        sn: spectral normalisation on every layer (the AC head excepted).
    """

    def __init__(self, resolution: int, channels: int, width: int, num_classes: int, projection: bool = True,
                 num_aux_classes: int = 0, sn: bool = True) -> None:
        super().__init__()
        wrap = spectral_norm if sn else (lambda m: m)
        n = num_upsamplings(resolution)
        chans = [width * 2 ** i for i in range(n)]  # e.g. 32×32: [64, 128, 256]
        layers: list[nn.Module] = []
        c_in = channels
        for i, c_out in enumerate(chans):  # 4×4 stride-2 convolutions halving H, W: R → 4
            layers += [wrap(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=i > 0)), nn.LeakyReLU(0.2, True)]
            c_in = c_out
        self.body = nn.Sequential(*layers)  # [N, c, 4, 4]
        feat = c_in * 16
        self.head = ProjectionHead(feat, num_classes if projection else 0, sn=sn)
        self.aux = nn.Linear(feat, num_aux_classes) if num_aux_classes else None

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """φ(x): img [N, C, R, R] → [N, F], the flattened last 4×4 feature map (F = 16 · channels)."""
        return self.body(img).flatten(1)

    def forward(self, img: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        phi = self.features(img)  # [N, F]
        logits = self.head(phi, labels)  # [N]
        return logits, (self.aux(phi) if self.aux is not None else None)  # [N, K] class logits


@register_model("cgan")
class CGAN(GANModel):
    """Class-conditional GAN: conditional-BN generator, spectrally normalised projection
    discriminator, hinge loss; AC-GAN auxiliary classifier as an option.

    Training uses each batch's real labels for the fake images too (so fakes follow the data's
    class frequencies). Logged per step: ``D/loss``, ``D/d_real``/``D/d_fake`` (mean σ(logit)),
    ``D/acc_real``/``D/acc_fake`` (fraction on the correct side of logit 0), with AC-GAN also
    ``D/ac_loss``, ``D/ac_acc_real`` (accuracy of the auxiliary classifier on real images) and
    ``G/ac_loss``.
    """

    Config = CGANConfig

    def __init__(self, config: CGANConfig) -> None:
        super().__init__(config)
        if config.num_classes is None:
            raise ConfigError("cgan needs num_classes (the trainer fills it from a labelled dataset)")
        c, k = config.channels or 1, config.num_classes
        self.G = CGANGenerator(config.z_dim, config.resolution, c, config.g_width, k)
        if config.init == "dcgan":
            self.G.apply(dcgan_init)
        self.D = ProjectionDiscriminator(config.resolution, c, config.d_width, k,
                                         projection=config.d_cond == "projection",
                                         num_aux_classes=k if config.ac_weight > 0 else 0,
                                         sn=config.spectral_norm)
        self.init_ema()
        self.init_augment()
        self.d_loss_fn, self.g_loss_fn = get_gan_loss(config.loss)

    def _check_labels(self, label: Optional[torch.Tensor]) -> torch.Tensor:
        if label is None or (label < 0).any() or (label >= self.num_classes).any():
            raise DataError(f"cgan needs class labels in [0, {self.num_classes - 1}] for every image; "
                            "train on a labelled dataset")
        return label

    def training_step(self, phase: str, batch: Batch) -> dict[str, torch.Tensor]:
        img, label = batch["img"], batch["label"]
        y = self._check_labels(label)
        z = torch.randn(img.shape[0], self.config.z_dim, device=img.device)
        w = self.config.ac_weight
        if phase == "D":
            with torch.no_grad():
                fake = self.G(z, y)
            real_logits, real_cls = self.D(self.augment_d(img), y)
            fake_logits, fake_cls = self.D(self.augment_d(fake), y)
            loss = self.d_loss_fn(real_logits, fake_logits)
            out: dict[str, torch.Tensor] = self.observe_real_logits(real_logits)
            if real_cls is not None and fake_cls is not None:  # AC-GAN L_C on real and fake (Odena §3)
                ac = F.cross_entropy(real_cls, y) + F.cross_entropy(fake_cls, y)
                loss = loss + w * ac
                out.update(ac_loss=ac.detach(), ac_acc_real=(real_cls.argmax(1) == y).float().mean())
            return {"loss": loss, **out, **discriminator_stats(real_logits, fake_logits)}
        if phase == "G":
            fake_logits, fake_cls = self.D(self.augment_d(self.G(z, y)), y)
            loss = self.g_loss_fn(fake_logits)
            if fake_cls is not None:
                ac = F.cross_entropy(fake_cls, y)
                return {"loss": loss + w * ac, "ac_loss": ac.detach()}
            return {"loss": loss}
        raise ValueError(f"unknown phase {phase!r}")

    # ---- using the model ----------------------------------------------------------------------
    def generate(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Images for given latents and classes.

        Args:
            z: [N, z_dim] float32 latents.
            labels: int64 [N] classes in [0, K).

        Returns:
            float32 [N, C, R, R] in [-1, 1] on the model's device (eval mode, EMA weights if kept).

        Raises:
            ConfigError: labels missing, of the wrong length or out of range.
        """
        if labels is None:
            raise ConfigError("cgan is class-conditional: give labels (e.g. --class 3)")
        labels = torch.as_tensor(labels, dtype=torch.int64, device=self.device).reshape(-1)
        if len(labels) != len(z) or labels.min() < 0 or labels.max() >= self.num_classes:
            raise ConfigError(f"labels must be {len(z)} class indices in [0, {self.num_classes - 1}]")
        return self.run_generator(z.to(self.device, torch.float32), labels)

    def generator_inputs(self, n: int) -> tuple[torch.Tensor, ...]:
        """``(z [n, z_dim], labels int64 [n] uniform over the classes)`` from the global RNG."""
        return self.sample_latents(n), torch.randint(0, self.num_classes, (n,), device=self.device)

    def sample(self, n: int, generator: Optional[torch.Generator] = None,
               labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``n`` samples float32 [n, C, R, R] in [-1, 1]; ``labels`` int64 [n] (uniform if None)."""
        z = self.sample_latents(n, generator)
        if labels is None:
            labels = torch.randint(0, self.num_classes, (n,), generator=generator, device=self.device)
        return self.generate(z, labels)
