"""Variational autoencoders: ``vae`` (Kingma & Welling 2014) and ``cvae`` (Sohn et al. 2015).

* Posterior q(z|x) = N(μ(x), diag σ²(x)) from a convolutional encoder, prior p(z) = N(0, I),
  reparameterised sampling z = μ + σ ⊙ ε (Kingma & Welling 2014, "Auto-Encoding Variational Bayes",
  arXiv:1312.6114, §2.4 and Appendix B for the closed-form Gaussian KL).
* Likelihood p(x|z), chosen with ``likelihood``:

  - ``bernoulli``: per-pixel Bernoulli with logits from the decoder, for binary images. Each training
    batch is *dynamically binarised* inside :meth:`VAE.training_step` (pixel ~ Bernoulli((x + 1) / 2),
    a fresh draw every time an image is seen; the protocol of Burda et al. 2016, §5), so the trainer
    stays generic. Report NLL in nats per image.
  - ``logistic``: discretised logistic per sub-pixel for 8-bit images (Kingma et al. 2016, "Improved
    Variational Inference with IAF", §5.2; Salimans et al. 2017, PixelCNN++, Eq. 2, single
    component): the probability mass of the bin [x − 1/255, x + 1/255] of the 256 levels in [-1, 1],
    with the edge bins extended to ±∞, so the 256 probabilities sum to 1 and −log p is a code length.
    Report bits/dim.

* Training loss: −ELBO with a β weight on the KL term, ``E_q[−log p(x|z)] + β·KL(q(z|x) ‖ p(z))``
  (β-VAE, Higgins et al. 2017, Eq. 4); β = 1 is the plain VAE.
* Evaluation (:meth:`VAE.log_weights`, :func:`iwae_bound`): the importance-weighted estimate of
  log p(x) with k samples from q (Burda et al. 2016, "Importance Weighted Autoencoders",
  arXiv:1509.00519, Eq. 8), ``L_k = log (1/k) Σ_j p(x, z_j) / q(z_j|x)``; its expectation is
  non-decreasing in k and converges to log p(x) (Burda et al., Theorem 1). The k-sample ELBO
  estimate ``(1/k) Σ_j log w_j`` uses the same weights and is ≤ L_k for every draw (Jensen).
  :mod:`imagegen.metrics.nll` runs it over a test split (``imagegen evaluate --metrics nll``).

``cvae`` (Sohn et al. 2015, "Learning Structured Output Representation using Deep Conditional
Generative Models", §4, Eq. 4–5) conditions encoder and decoder on the class: q(z|x, y) and
p(x|z, y), with a one-hot y concatenated to the encoder's flattened features and to the decoder's
input. The prior is kept fixed, p(z|y) = N(0, I) (Sohn et al.'s prior network replaced by the
standard normal, as in the generative model of Kingma et al. 2014 "M2"), so sampling a class is
``decode(z ~ N(0, I), y)``; its IWAE bound estimates log p(x | y).

Python API::

    from imagegen.sampling import load_run, generate
    vae = load_run("runs/mnist-vae")
    img = generate(vae, 16, seed=0)          # [16, C, R, R] in [-1, 1]: decoder means of z ~ N(0, I)
    mu = vae.encode(x)                       # x [N, C, R, R] in [-1, 1] → posterior means [N, z_dim]
    recon = vae.decode(mu)                   # [N, C, R, R] in [-1, 1]
    cvae = load_run("runs/mnist-cvae")
    sevens = generate(cvae, 8, labels=torch.full((8,), 7))
    recon_as_3 = cvae.decode(cvae.encode(x, y), torch.full((len(x),), 3))  # x's style, class 3
"""
from __future__ import annotations

import dataclasses
import math
from typing import Literal, Optional

import torch
import torch.nn.functional as F

from ..config import help_field
from ..errors import ConfigError, DataError
from ..nn import adam
from ..nn.autoencoder import AutoencoderConfig, ConvDecoder, ConvEncoder
from ..nn.likelihoods import (LOG_2, bernoulli_log_prob, binarize, bits_per_dim,  # noqa: F401 (public here too)
                              discretized_logistic_log_prob)
from ..registry import register_model
from .base import Batch, GenerativeModel, Phase

# ---- bounds and units (the per-pixel likelihoods are in imagegen.nn.likelihoods) -------------------
def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag e^logvar) ‖ N(0, I)) per row in nats (Kingma & Welling 2014, Appendix B).

    Args:
        mu, logvar: float32 [N, z_dim].

    Returns:
        float32 [N] ≥ 0.
    """
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(1)


def iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """The importance-weighted bound L_k = log (1/k) Σ_j w_j from log-weights (Burda et al. 2016, Eq. 8).

    Args:
        log_w: [N, k] log p(x, z_j) − log q(z_j | x), nats.

    Returns:
        float64 [N] in nats; for k = 1 it is the single-sample ELBO.
    """
    log_w = log_w.double()
    return torch.logsumexp(log_w, 1) - math.log(log_w.shape[1])


def continuous_to_discrete_nll(nll_nats: float, num_dims: int, data_range: float = 2.0,
                               levels: int = 256) -> float:
    """NLL in nats of the dequantised discrete data from a continuous density's NLL: a density p on
    data scaled to a range of width ``data_range`` assigns its ``levels`` bins of width
    data_range / levels the mass ≈ p · width, so −log P = −log p + D · log(levels / data_range)
    (the "+ log 256" of models on [0, 1]: Theis et al. 2016, §3.1; Dinh et al. 2017, §4.1).

    Args:
        nll_nats: −log p(x) of the continuous density per image, in nats.
        num_dims: D = C·H·W.
        data_range: width of the data interval (2 for [-1, 1], 1 for [0, 1]).
        levels: number of discrete values per dimension (256 for 8-bit).
    """
    return nll_nats + num_dims * math.log(levels / data_range)


# ---- configs ----------------------------------------------------------------------------------------
@dataclasses.dataclass
class VAEConfig(AutoencoderConfig):
    likelihood: Literal["bernoulli", "logistic"] = help_field(
        "bernoulli", "p(x|z): bernoulli (dynamically binarised data, e.g. MNIST) or logistic "
                     "(discretised logistic for 8-bit images)")
    beta: float = help_field(1.0, "β-VAE weight of the KL term (1 = plain VAE; Higgins et al. 2017)")
    lr: float = help_field(1e-3, "Adam learning rate")
    beta1: float = help_field(0.9, "Adam β1")
    beta2: float = help_field(0.999, "Adam β2")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta < 0:
            raise ConfigError(f"beta={self.beta}: must be ≥ 0")


@dataclasses.dataclass
class CVAEConfig(VAEConfig):
    num_classes: Optional[int] = help_field(None, "number of classes; default: the dataset's")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_classes is not None and self.num_classes < 2:
            raise ConfigError(f"num_classes={self.num_classes}: a conditional VAE needs ≥ 2 classes")


# ---- models -----------------------------------------------------------------------------------------
@register_model("vae")
class VAE(GenerativeModel):
    """Convolutional VAE with a Gaussian posterior, a Bernoulli or discretised-logistic likelihood
    and a β weight on the KL term.

    Logged per step (nats per image, on the training batch): ``train/loss`` (recon + β·KL),
    ``train/recon`` (−log p(x|z), one sample), ``train/kl``, ``train/elbo`` (β = 1) and
    ``train/bpd`` (−ELBO in bits/dim).
    """

    Config = VAEConfig
    evaluation = ("distribution", "likelihood")
    conditional = False

    def __init__(self, config: VAEConfig) -> None:
        super().__init__(config)
        c = config.channels or 1
        k = self.num_classes if self.conditional else 0
        if self.conditional and not k:
            raise ConfigError(f"{self.model_name or 'cvae'} needs num_classes (the trainer fills it "
                              "from a labelled dataset)")
        out_c = c if config.likelihood == "bernoulli" else 2 * c  # logits | (means, log-scales)
        self.encoder = ConvEncoder(config.resolution, c, config.width, config.hidden, 2 * config.z_dim, k)
        self.decoder = ConvDecoder(config.resolution, out_c, config.width, config.hidden, config.z_dim, k)

    # ---- pieces ------------------------------------------------------------------------------------
    def _cond(self, labels: Optional[torch.Tensor], n: int) -> Optional[torch.Tensor]:
        """One-hot [n, K] float32 for conditional models (checks the labels), None otherwise."""
        if not self.conditional:
            return None
        k = self.num_classes
        if labels is None:
            raise ConfigError(f"{self.model_name} is class-conditional: give labels (e.g. --class 3)")
        labels = torch.as_tensor(labels, dtype=torch.int64, device=self.device).reshape(-1)
        if len(labels) != n:
            raise ConfigError(f"got {len(labels)} labels for {n} images")
        if (labels < 0).any() or (labels >= k).any():
            raise DataError(f"{self.model_name} needs class labels in [0, {k - 1}] for every image; "
                            "use a labelled dataset or a valid --class")
        return F.one_hot(labels, k).float()

    def likelihood_targets(self, img: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """What the likelihood scores: for ``bernoulli`` a dynamic binarisation of ``img`` (values
        in {0, 1}), for ``logistic`` ``img`` itself (float32 on the 256-level grid in [-1, 1])."""
        return binarize(img, generator) if self.config.likelihood == "bernoulli" else img

    def _encoder_input(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 - 1 if self.config.likelihood == "bernoulli" else x  # {0, 1} → {-1, 1}

    def posterior(self, x: torch.Tensor, cond: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x[, y]) parameters from likelihood targets x: (mu, logvar), each float32 [N, z_dim]."""
        mu, logvar = self.encoder(self._encoder_input(x), cond).chunk(2, 1)
        return mu, logvar.clamp(-30.0, 20.0)

    def decoder_log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image in nats: x [N, C, R, R] likelihood targets, out [N, C or 2C, R, R]
        decoder output → [N]."""
        if self.config.likelihood == "bernoulli":
            lp = bernoulli_log_prob(x, out)
        else:
            mean, log_scale = out.chunk(2, 1)
            lp = discretized_logistic_log_prob(x, mean, log_scale.clamp(min=-7.0))
        return lp.flatten(1).sum(1)

    def _mean_image(self, out: torch.Tensor) -> torch.Tensor:
        """Decoder output → the likelihood's mean as an image in [-1, 1]."""
        if self.config.likelihood == "bernoulli":
            return torch.sigmoid(out) * 2 - 1
        return out.chunk(2, 1)[0].clamp(-1, 1)

    # ---- training ----------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"train": adam(self.parameters(), c.lr, (c.beta1, c.beta2))}

    def phases(self) -> list[Phase]:
        return [Phase("train")]

    def training_step(self, phase: str, batch: Batch) -> dict[str, torch.Tensor]:
        img, label = batch["img"], batch["label"]
        if phase != "train":
            raise ValueError(f"unknown phase {phase!r}")
        cond = self._cond(label, img.shape[0])
        x = self.likelihood_targets(img)  # dynamic binarisation for bernoulli
        mu, logvar = self.posterior(x, cond)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # reparameterisation, [N, z_dim]
        recon = -self.decoder_log_prob(x, self.decoder(z, cond))  # [N] nats
        kl = gaussian_kl(mu, logvar)  # [N] nats
        loss = (recon + self.config.beta * kl).mean()
        elbo = -(recon + kl).detach().mean()
        return {"loss": loss, "recon": recon.detach().mean(), "kl": kl.detach().mean(), "elbo": elbo,
                "bpd": -elbo / (self.num_dims * LOG_2)}

    # ---- evaluation --------------------------------------------------------------------------------
    @torch.no_grad()
    def log_weights(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None, k: int = 1,
                    generator: Optional[torch.Generator] = None, max_batch: int = 8192) -> torch.Tensor:
        """Importance log-weights log w_j = log p(x|z_j) + log p(z_j) − log q(z_j|x), z_j ~ q(z|x)
        (Burda et al. 2016, Eq. 8); feed them to :func:`iwae_bound` (L_k) or average them (ELBO).

        Args:
            x: likelihood targets float32 [N, C, R, R] (:meth:`likelihood_targets`: binary {0, 1}
                for ``bernoulli``, the 8-bit grid in [-1, 1] for ``logistic``).
            labels: int64 [N] for ``cvae`` (the weights then estimate log p(x | y)).
            k: importance samples per image (≥ 1).
            generator: torch.Generator for reproducible ε.
            max_batch: images × samples per decoder pass (memory).

        Returns:
            float32 [N, k] in nats. Runs in eval mode.

        Raises:
            ConfigError: k < 1, or missing labels for a conditional model.
        """
        if k < 1:
            raise ConfigError(f"k={k}: the IWAE bound needs k ≥ 1 samples")
        was_training = self.training
        self.eval()
        try:
            x = x.to(self.device, torch.float32)
            n = x.shape[0]
            cond = self._cond(labels, n)
            mu, logvar = self.posterior(x, cond)  # [N, z_dim]
            std = torch.exp(0.5 * logvar)
            out = torch.empty(n, k, device=self.device)
            chunk = max(1, max_batch // n)
            for j in range(0, k, chunk):
                m = min(chunk, k - j)
                eps = torch.randn(m, *mu.shape, generator=generator, device=self.device)  # [m, N, z]
                z = mu + std * eps
                log_q = (-0.5 * eps.square() - 0.5 * logvar - 0.5 * math.log(2 * math.pi)).sum(2)  # [m, N]
                log_pz = (-0.5 * z.square() - 0.5 * math.log(2 * math.pi)).sum(2)
                zf = z.reshape(m * n, -1)
                cf = None if cond is None else cond.repeat(m, 1)
                log_px = self.decoder_log_prob(x.repeat(m, 1, 1, 1), self.decoder(zf, cf)).view(m, n)
                out[:, j:j + m] = (log_px + log_pz - log_q).T
            return out
        finally:
            self.train(was_training)

    def log_likelihood(self, batch: Batch, *, generator: Optional[torch.Generator] = None,
                       num_samples: int = 1, max_batch: int = 8192) -> dict[str, torch.Tensor]:
        """IWAE estimate of log p(x) (log p(x | y) for cvae) and the ELBO, per image, in nats.

        Args:
            batch: ``img``: the likelihood targets (:meth:`likelihood_targets` of the images: binary
                {0, 1} for ``bernoulli``, the 8-bit grid in [-1, 1] for ``logistic``), float32
                [N, C, R, R]; ``label`` int64 [N] for cvae.
            generator: torch.Generator for the importance samples.
            num_samples: k, importance samples per image (Burda et al. 2016, Eq. 8; they use 5000).
            max_batch: images × samples per decoder pass (memory).

        Returns:
            ``log_px`` = L_k = logsumexp_j log w_j − log k and ``elbo`` = mean_j log w_j, each float64
            [N] in nats.
        """
        labels = batch.get("label") if self.conditional else None
        lw = self.log_weights(batch["img"], labels, k=num_samples, generator=generator,
                              max_batch=max_batch).double()  # [N, k]
        return {"log_px": torch.logsumexp(lw, 1) - math.log(num_samples), "elbo": lw.mean(1)}

    # ---- using the model ---------------------------------------------------------------------------
    def sample_latents(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """z [n, z_dim] float32 ~ N(0, I), the prior, on the model's device."""
        return torch.randn(n, self.config.z_dim, generator=generator, device=self.device)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Mean image of p(x|z[, y]): z [N, z_dim] (labels int64 [N] for cvae) → float32
        [N, C, R, R] in [-1, 1] (Bernoulli: 2p − 1; logistic: the clamped location). Eval mode.

        Raises:
            ConfigError: missing or out-of-range labels for cvae.
        """
        z = z.to(self.device, torch.float32)
        was_training = self.training
        self.eval()
        try:
            return self._mean_image(self.decoder(z, self._cond(labels, z.shape[0])))
        finally:
            self.train(was_training)

    def generate(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Same as :meth:`decode` (latents from :meth:`sample_latents`)."""
        return self.decode(z, labels)

    @torch.no_grad()
    def encode(self, img: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Posterior mean μ(x[, y]): img float32 [N, C, R, R] in [-1, 1] (used as is, not binarised)
        → [N, z_dim] float32. Eval mode.

        Raises:
            ConfigError: wrong image shape, or missing labels for cvae.
        """
        c, r = self.config.channels or 1, self.config.resolution
        if img.ndim != 4 or tuple(img.shape[1:]) != (c, r, r):
            raise ConfigError(f"{self.model_name} encodes images [N, {c}, {r}, {r}], got {tuple(img.shape)}")
        img = img.to(self.device, torch.float32)
        was_training = self.training
        self.eval()
        try:
            mu, _ = self.encoder(img, self._cond(labels, img.shape[0])).chunk(2, 1)
            return mu
        finally:
            self.train(was_training)

    def sample(self, n: int, generator: Optional[torch.Generator] = None,
               labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Decoder means of z ~ N(0, I): float32 [n, C, R, R] in [-1, 1]; cvae draws labels uniformly
        if None."""
        z = self.sample_latents(n, generator)
        if self.conditional and labels is None:
            labels = torch.randint(0, self.num_classes, (n,), generator=generator, device=self.device)
        return self.decode(z, labels)


@register_model("cvae")
class CVAE(VAE):
    """Conditional VAE (Sohn et al. 2015): encoder q(z|x, y) and decoder p(x|z, y) take the one-hot
    class; prior N(0, I). Same options and logged scalars as ``vae``."""

    Config = CVAEConfig
    conditional = True
