"""Adversarial autoencoder: Makhzani et al. 2016, "Adversarial Autoencoders" (arXiv:1511.05644).

An autoencoder whose aggregated posterior q(z) = E_x q(z|x) is matched to a prior p(z) = N(0, I) by
a GAN in latent space (§2, Fig. 1): a latent discriminator D tells prior samples from codes of real
images, and the encoder, acting as the GAN's generator, learns to fool it. The encoder is
deterministic, z = E(x) (the paper's first choice of q(z|x), §2, used in its experiments). After
training, decoding z ~ N(0, I) generates images.

Each training step has the paper's three phases (§2, "reconstruction phase" and "regularization
phase"), each with its own optimiser:

1. ``recon`` — encoder and decoder minimise the reconstruction error of the batch (Bernoulli
   cross-entropy against the grey levels (x + 1)/2, or squared error).
2. ``D`` — the latent discriminator separates z ~ N(0, I) (real) from E(x) (fake), non-saturating
   GAN loss (Goodfellow et al. 2014).
3. ``G`` — the encoder (the generator of the latent GAN) minimises the non-saturating loss on D(E(x)).

Python API::

    from imagegen.sampling import load_run, generate
    aae = load_run("runs/mnist-aae")
    img = generate(aae, 16, seed=0)   # decode(z ~ N(0, I)): [16, C, R, R] in [-1, 1]
    z = aae.encode(x)                 # x [N, C, R, R] in [-1, 1] → codes [N, z_dim]
    recon = aae.decode(z)             # [N, C, R, R] in [-1, 1]
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import help_field
from ..errors import ConfigError
from ..losses import get_gan_loss
from ..nn import adam
from ..nn.autoencoder import AutoencoderConfig, ConvDecoder, ConvEncoder
from ..registry import register_model
from .base import Batch, GenerativeModel, Phase


@dataclasses.dataclass
class AAEConfig(AutoencoderConfig):
    z_dim: int = help_field(8, "latent z dimension (the prior is N(0, I))")
    d_hidden: int = help_field(512, "width of the two hidden layers of the latent discriminator")
    recon_loss: Literal["bce", "mse"] = help_field(
        "bce", "reconstruction error: bce (Bernoulli cross-entropy against grey levels) or mse")
    lr_ae: float = help_field(1e-3, "Adam learning rate of the reconstruction phase")
    lr_d: float = help_field(5e-4, "Adam learning rate of the latent discriminator")
    lr_g: float = help_field(1e-3, "Adam learning rate of the encoder in the regularisation phase")
    beta1: float = help_field(0.5, "Adam β1")
    beta2: float = help_field(0.999, "Adam β2")

    _positive = ("z_dim", "width", "hidden", "d_hidden")


class LatentDiscriminator(nn.Module):
    """z [N, z_dim] float32 → logits [N]: an MLP with two LeakyReLU(0.2) hidden layers (the paper
    uses two layers of 1000 units for MNIST, §A)."""

    def __init__(self, z_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(z_dim, hidden), nn.LeakyReLU(0.2, True),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2, True), nn.Linear(hidden, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(1)


@register_model("aae")
class AAE(GenerativeModel):
    """Adversarial autoencoder with a Gaussian prior matched by a latent discriminator.

    Logged per step: ``recon/loss`` (reconstruction error per image, summed over pixels),
    ``D/loss``, ``D/d_prior`` and ``D/d_code`` (mean σ(D) on prior samples and on codes),
    ``G/loss`` (the encoder's adversarial loss).
    """

    Config = AAEConfig

    def __init__(self, config: AAEConfig) -> None:
        super().__init__(config)
        c = config.channels or 1
        self.encoder = ConvEncoder(config.resolution, c, config.width, config.hidden, config.z_dim)
        self.decoder = ConvDecoder(config.resolution, c, config.width, config.hidden, config.z_dim)
        self.D = LatentDiscriminator(config.z_dim, config.d_hidden)
        self.d_loss_fn, self.g_loss_fn = get_gan_loss("nonsaturating")

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c, betas = self.config, (self.config.beta1, self.config.beta2)
        return {"AE": adam(itertools.chain(self.encoder.parameters(), self.decoder.parameters()), c.lr_ae, betas),
                "D": adam(self.D.parameters(), c.lr_d, betas),
                "G": adam(self.encoder.parameters(), c.lr_g, betas)}

    def phases(self) -> list[Phase]:
        return [Phase("recon", optimizer="AE"), Phase("D", needs_batch=False), Phase("G", needs_batch=False)]

    def _recon_error(self, img: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Per-image reconstruction error [N] of decoder output ``out`` for ``img`` in [-1, 1]."""
        if self.config.recon_loss == "bce":
            err = F.binary_cross_entropy_with_logits(out, (img + 1) * 0.5, reduction="none")
        else:
            err = (torch.tanh(out) - img).square()
        return err.flatten(1).sum(1)

    def training_step(self, phase: str, batch: Batch) -> dict[str, torch.Tensor]:
        img, label = batch["img"], batch["label"]
        if phase == "recon":
            return {"loss": self._recon_error(img, self.decoder(self.encoder(img))).mean()}
        if phase == "D":
            with torch.no_grad():
                code = self.encoder(img)  # "fake" [N, z_dim]
            prior = torch.randn_like(code)  # "real"
            real_logits, fake_logits = self.D(prior), self.D(code)
            loss = self.d_loss_fn(real_logits, fake_logits)
            return {"loss": loss, "d_prior": torch.sigmoid(real_logits.detach()).mean(),
                    "d_code": torch.sigmoid(fake_logits.detach()).mean()}
        if phase == "G":
            return {"loss": self.g_loss_fn(self.D(self.encoder(img)))}
        raise ValueError(f"unknown phase {phase!r}")

    # ---- using the model ---------------------------------------------------------------------------
    def _image(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out) * 2 - 1 if self.config.recon_loss == "bce" else torch.tanh(out)

    def sample_latents(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """z [n, z_dim] float32 ~ N(0, I), the prior, on the model's device."""
        return torch.randn(n, self.config.z_dim, generator=generator, device=self.device)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """z [N, z_dim] → images float32 [N, C, R, R] in [-1, 1] (eval mode; labels ignored)."""
        was_training = self.training
        self.eval()
        try:
            return self._image(self.decoder(z.to(self.device, torch.float32)))
        finally:
            self.train(was_training)

    def generate(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Same as :meth:`decode` (latents from :meth:`sample_latents`)."""
        return self.decode(z)

    @torch.no_grad()
    def encode(self, img: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Codes z = E(x): img float32 [N, C, R, R] in [-1, 1] → [N, z_dim] (eval mode; labels ignored).

        Raises:
            ConfigError: wrong image shape.
        """
        c, r = self.config.channels or 1, self.config.resolution
        if img.ndim != 4 or tuple(img.shape[1:]) != (c, r, r):
            raise ConfigError(f"aae encodes images [N, {c}, {r}, {r}], got {tuple(img.shape)}")
        was_training = self.training
        self.eval()
        try:
            return self.encoder(img.to(self.device, torch.float32))
        finally:
            self.train(was_training)

    def sample(self, n: int, generator: Optional[torch.Generator] = None,
               labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Decoded prior samples: float32 [n, C, R, R] in [-1, 1]."""
        return self.decode(self.sample_latents(n, generator))
