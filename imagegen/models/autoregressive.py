"""What every pixel-level autoregressive model shares: the exact likelihood, sampling pixel by
pixel (naive or with a model's incremental cache), completion of partly known images.

The image is modelled as p(x) = Π_i p(x_i | x_<i) over pixels in raster order and, within a pixel,
channels in R → G → B order (van den Oord et al. 2016a, "Pixel Recurrent Neural Networks",
arXiv:1601.06759, §2.1, Eq. 1–2). A subclass supplies the *body*: a network whose features at pixel
(i, j) depend only on pixels before (i, j) (PixelCNN's masked convolutions, PixelRNN's LSTMs); the
per-pixel distribution is one of the heads of :mod:`imagegen.nn.pixel_heads` (Bernoulli for
binarised images, 256-way softmax, PixelCNN++'s discretised logistic mixture).

* Training minimises −log p(x) per image in nats (logged with bits/dim), on dynamically binarised
  images for ``bernoulli`` (a fresh binarisation every time an image is seen, as for the VAE).
* :meth:`AutoregressiveModel.log_likelihood` is exact (one forward pass), so
  ``imagegen evaluate --metrics nll`` reports the same number for any ``k``.
* :meth:`AutoregressiveModel.sample` generates one pixel at a time. ``method="naive"`` runs the whole
  body for every pixel (H·W passes); ``method="fast"`` uses the body's incremental sampler where it
  has one (:meth:`AutoregressiveModel.fast_sampler`: only the activations that change are
  computed; Ramachandran et al. 2017, "Fast Generation for Convolutional Autoregressive Models",
  arXiv:1704.06001). Both consume the random generator in the same order, so the same seed gives
  the same images (up to float rounding; tests check exact equality).
* :meth:`AutoregressiveModel.complete` keeps the given pixels of an image and samples the rest (the
  occlusion completions of van den Oord et al. 2016a, Figure 1).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Literal, Optional, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from ..config import help_field
from ..errors import ConfigError
from ..nn import adam
from ..nn.likelihoods import LOG_2, binarize
from ..nn.pixel_heads import PixelHead, build_head, check_temperature, quantize
from .base import Batch, GenerativeModel, Phase

Method = Literal["auto", "fast", "naive"]


@dataclasses.dataclass
class AutoregressiveConfig:
    """Options shared by the autoregressive models."""

    resolution: int = help_field(28, "image size in pixels (28 keeps MNIST's original pixels)")
    channels: Optional[int] = help_field(None, "image channels (1 or 3); default: the dataset's")
    distribution: Literal["bernoulli", "categorical", "logistic_mixture"] = help_field(
        "bernoulli", "per-pixel distribution: bernoulli (dynamically binarised images, e.g. MNIST), "
                     "categorical (256-way softmax per sub-pixel) or logistic_mixture (PixelCNN++'s "
                     "discretised mixture of logistics, 8-bit colour)")
    num_mixtures: int = help_field(10, "logistic_mixture: mixture components per pixel")
    head_hidden: int = help_field(32, "hidden units per channel of the output head")
    conditional: bool = help_field(False, "condition on the class label (needs a labelled dataset)")
    num_classes: Optional[int] = help_field(None, "number of classes when --conditional; default: the dataset's")
    lr: float = help_field(1e-3, "Adam learning rate")
    beta1: float = help_field(0.9, "Adam β1")
    beta2: float = help_field(0.999, "Adam β2")
    lr_decay: float = help_field(1.0, "learning-rate factor per 1,000 steps (exponential decay; 1 = constant)")

    _positive = ("resolution", "num_mixtures", "head_hidden")

    def __post_init__(self) -> None:
        if self.channels is not None and self.channels not in (1, 3):
            raise ConfigError(f"channels={self.channels}: use 1 or 3")
        for name in self._positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: must be ≥ 1")
        if self.distribution not in ("bernoulli", "categorical", "logistic_mixture"):
            raise ConfigError(f"distribution={self.distribution!r}: use bernoulli, categorical or logistic_mixture")
        if self.resolution < 2:
            raise ConfigError(f"resolution={self.resolution}: must be ≥ 2")
        if not 0 < self.lr_decay <= 1:
            raise ConfigError(f"lr_decay={self.lr_decay}: must be in (0, 1]")
        if not self.conditional:
            self.num_classes = 0  # unconditional: the trainer does not ask the data for labels
        elif self.num_classes is not None and self.num_classes < 2:
            raise ConfigError(f"num_classes={self.num_classes}: a conditional model needs ≥ 2 classes")


class FastSampler(Protocol):
    """An incremental sampler of a body (see :meth:`AutoregressiveModel.fast_sampler`).

    The sampling loop calls ``pixel(i, j)`` for every pixel in raster order, after every pixel
    before (i, j) has its final value in the image tensor the sampler was built on, and
    ``end_row(i)`` once row i is complete.
    """

    def pixel(self, i: int, j: int) -> torch.Tensor:
        """Features [N, F] of pixel (i, j), equal to ``body(x)[:, :, i, j]``."""

    def end_row(self, i: int) -> None:
        """Row i of the image is final."""


class AutoregressiveModel(GenerativeModel):
    """Base of the pixel-level autoregressive models (see the module docstring).

    Subclasses build their body in ``__init__``, then call :meth:`build_head` with the body's
    feature width, and implement :meth:`body`; they may implement :meth:`fast_sampler`.

    Logged per step: ``train/loss`` = ``train/nll`` (−log p(x) in nats per image on the training
    batch) and ``train/bpd`` (bits/dim).
    """

    evaluation = ("distribution", "likelihood")
    exact_likelihood = True
    head: PixelHead

    def __init__(self, config: AutoregressiveConfig) -> None:
        super().__init__(config)
        if config.conditional and not config.num_classes:
            raise ConfigError(f"{self.model_name or 'the model'} --conditional needs num_classes (the "
                              "trainer fills it from a labelled dataset)")

    def build_label_embedding(self, dim: int) -> int:
        """Create ``self.embedding`` (a learned vector of size ``dim`` per class) for conditional models;
        return the size of the conditioning vector the body's layers take (0 = unconditional)."""
        k = self.num_classes
        self.embedding = nn.Embedding(k, dim) if k else None
        return dim if k else 0

    def label_vectors(self, labels: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """Conditioning vectors [N, dim] of int64 [N] labels, or None (unconditional, or no labels)."""
        return None if self.embedding is None or labels is None else self.embedding(labels)

    def build_head(self, features: int) -> None:
        """Create the output head for body features of width ``features``."""
        c = self.config
        self.head = build_head(c.distribution, features, c.channels or 1, hidden=c.head_hidden,
                               num_mixtures=c.num_mixtures)

    # ---- the body (subclasses) ------------------------------------------------------------------
    def body(self, x_in: torch.Tensor, labels: Optional[torch.Tensor]) -> torch.Tensor:
        """Causal features: x_in [N, C, H, W] float32 in [-1, 1] (:meth:`PixelHead.to_input` of the
        targets), labels int64 [N] or None → [N, F, H, W], where ``[:, :, i, j]`` depends only on
        pixels before (i, j) in raster order."""
        raise NotImplementedError

    def fast_sampler(self, x: torch.Tensor, labels: Optional[torch.Tensor]) -> Optional[FastSampler]:
        """An incremental sampler reading the network-scale image ``x`` [N, C, H, W] (updated in
        place by the sampling loop), or None if the body has none (then sampling is naive)."""
        return None

    # ---- likelihood -----------------------------------------------------------------------------
    def _labels(self, labels: Optional[torch.Tensor], n: int) -> Optional[torch.Tensor]:
        """Checked int64 [n] labels on the model's device for conditional models, else None."""
        k = self.num_classes
        if not k:
            return None
        if labels is None:
            raise ConfigError(f"{self.model_name} is class-conditional: give labels (e.g. --class 3)")
        labels = torch.as_tensor(labels, dtype=torch.int64, device=self.device).reshape(-1)
        if len(labels) != n or bool((labels < 0).any()) or bool((labels >= k).any()):
            raise ConfigError(f"{self.model_name} needs {n} class labels in [0, {k - 1}]")
        return labels

    def likelihood_targets(self, img: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """What the likelihood scores: a dynamic binarisation of ``img`` (values in {0, 1}) for
        ``bernoulli``, else ``img`` rounded to the 8-bit grid in [-1, 1]."""
        if self.config.distribution == "bernoulli":
            return binarize(img, generator)
        return quantize(img)

    def log_prob(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Exact log p(x) (log p(x | y) for conditional models) per image in nats.

        Args:
            x: targets float32 [N, C, R, R] (:meth:`likelihood_targets`).
            labels: int64 [N] for conditional models.

        Returns:
            float32 [N] ≤ 0.

        Raises:
            DataError: targets the head cannot score (8-bit images given to a Bernoulli model).
            ConfigError: wrong image shape, missing labels.
        """
        self._check_shape(x)
        self.head.check_targets(x)
        h = self.body(self.head.to_input(x), self._labels(labels, x.shape[0]))
        return self.head.log_prob(h, x)

    def _check_shape(self, x: torch.Tensor) -> None:
        c, r = self.config.channels or 1, self.config.resolution
        if x.ndim != 4 or tuple(x.shape[1:]) != (c, r, r):
            raise ConfigError(f"{self.model_name} models images [N, {c}, {r}, {r}], got {tuple(x.shape)}; "
                              f"load or resize the images to {r}×{r} with {c} channel(s)")

    def log_likelihood(self, batch: Batch, *, generator: Optional[torch.Generator] = None,
                       num_samples: int = 1) -> dict[str, torch.Tensor]:
        """Exact log p(x) of ``batch["img"]`` (already :meth:`likelihood_targets`) in nats per image,
        float64 [N]; ``num_samples`` and ``generator`` are unused (nothing is estimated)."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                x = batch["img"].to(self.device, torch.float32)
                return {"log_px": self.log_prob(x, batch.get("label")).double()}
        finally:
            self.train(was_training)

    # ---- training -------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"train": adam(self.parameters(), c.lr, (c.beta1, c.beta2))}

    def lr_schedules(self) -> dict[str, Any]:
        decay = self.config.lr_decay
        return {} if decay == 1.0 else {"train": lambda ctx: decay ** (ctx.step / 1000.0)}

    def lr_schedules_need_length(self) -> bool:
        return False  # a factor per 1,000 steps: --minutes alone is enough

    def phases(self) -> list[Phase]:
        return [Phase("train")]

    def training_step(self, phase: str, batch: Batch) -> dict[str, torch.Tensor]:
        if phase != "train":
            raise ValueError(f"unknown phase {phase!r}")
        x = self.likelihood_targets(batch["img"])  # dynamic binarisation for bernoulli
        nll = -self.log_prob(x, batch.get("label") if self.num_classes else None)  # [N] nats
        loss = nll.mean()
        return {"loss": loss, "nll": loss.detach(), "bpd": loss.detach() / (self.num_dims * LOG_2)}

    # ---- sampling -------------------------------------------------------------------------------
    @torch.no_grad()
    def autoregress(self, x: torch.Tensor, known: Optional[torch.Tensor], labels: Optional[torch.Tensor],
                    generator: Optional[torch.Generator] = None, temperature: float = 1.0,
                    method: Method = "auto", progress: bool = False) -> torch.Tensor:
        """Fill the unknown pixels of ``x`` one at a time in raster order.

        Args:
            x: targets float32 [N, C, R, R]; the values of unknown pixels are ignored.
            known: bool [R, R], True where ``x`` is given and kept (None: nothing is known).
            labels: int64 [N] for conditional models.
            generator: torch.Generator on the model's device.
            temperature: divides the logits (mixture weights) and multiplies the logistic scales;
                1 samples the model's distribution.
            method: ``naive`` (the whole body per pixel), ``fast`` (the body's incremental sampler;
                ConfigError if it has none) or ``auto`` (fast where available).
            progress: show a progress bar over pixels.

        Returns:
            targets float32 [N, C, R, R] (given pixels unchanged).
        """
        temperature = check_temperature(temperature)
        self._check_shape(x)
        n, _, r, _ = x.shape
        labels = self._labels(labels, n)
        known = torch.zeros(r, r, dtype=torch.bool) if known is None else known.to("cpu", torch.bool)
        x = x.clone()
        x_in = self.head.to_input(x)  # network-scale copy, updated pixel by pixel
        was_training = self.training
        self.eval()
        try:
            sampler = None
            if method != "naive":
                sampler = self.fast_sampler(x_in, labels)
                if sampler is None and method == "fast":
                    raise ConfigError(f"{self.model_name} has no fast sampler; use --method naive")
            todo = int((~known).sum())
            bar = tqdm(total=todo, desc="sampling pixels", unit="px", disable=not progress, leave=False)
            for i in range(r):
                for j in range(r):
                    if sampler is not None:
                        h = sampler.pixel(i, j)  # the cache needs every pixel, given or not
                    if known[i, j]:
                        continue
                    if sampler is None:
                        h = self.body(x_in, labels)[:, :, i, j]
                    v = self.head.sample_pixel(h, generator, temperature)  # [N, C]
                    x[:, :, i, j] = v
                    x_in[:, :, i, j] = self.head.to_input(v)
                    bar.update(1)
                if sampler is not None:
                    sampler.end_row(i)
            bar.close()
            return x
        finally:
            self.train(was_training)

    def sample(self, n: int, generator: Optional[torch.Generator] = None,
               labels: Optional[torch.Tensor] = None, *, temperature: float = 1.0,
               method: Method = "auto", progress: bool = False) -> torch.Tensor:
        """Draw ``n`` images pixel by pixel (see :meth:`autoregress` for the options).

        Returns:
            float32 [n, C, R, R] in [-1, 1] (binary images as {-1, 1}).
        """
        c, r = self.config.channels or 1, self.config.resolution
        x = torch.zeros(n, c, r, r, device=self.device, dtype=next(self.parameters()).dtype)
        x = self.autoregress(x, None, labels, generator, temperature, method, progress)
        return self.head.to_image(x)

    def complete(self, img: torch.Tensor, known: torch.Tensor, labels: Optional[torch.Tensor] = None,
                 generator: Optional[torch.Generator] = None, *, temperature: float = 1.0,
                 method: Method = "auto", progress: bool = False) -> torch.Tensor:
        """Keep the ``known`` pixels of ``img`` and sample the others from p(rest | known).

        Args:
            img: float32 [N, C, R, R] in [-1, 1]; a Bernoulli model thresholds it at 0 (a pixel is
                on where its intensity is above one half), the other distributions round it to the
                8-bit grid.
            known: bool [R, R], True where pixels are kept.
            labels, generator, temperature, method, progress: as in :meth:`autoregress`.

        Returns:
            float32 [N, C, R, R] in [-1, 1]: the given pixels (thresholded or rounded) and samples.

        Raises:
            ConfigError: wrong image shape, a mask of another size, or a mask that keeps every pixel.
        """
        img = img.to(self.device, next(self.parameters()).dtype)
        self._check_shape(img)
        r = self.config.resolution
        known = torch.as_tensor(known, dtype=torch.bool)
        if tuple(known.shape) != (r, r):
            raise ConfigError(f"the mask of known pixels is {tuple(known.shape)}; the model needs ({r}, {r})")
        if bool(known.all()):
            raise ConfigError("every pixel is kept, so there is nothing to sample; keep fewer pixels")
        x = (img > 0).to(img.dtype) if self.config.distribution == "bernoulli" else quantize(img)
        x = self.autoregress(x, known, labels, generator, temperature, method, progress)
        return self.head.to_image(x)
