"""Negative log-likelihood of likelihood models on a test split: ELBO and the IWAE estimate.

For a model with :meth:`log_weights` (``vae``, ``cvae``) and every test image x, k importance samples
z_j ~ q(z|x) give log-weights log w_j = log p(x|z_j) + log p(z_j) − log q(z_j|x) and

* the IWAE estimate L_k = log (1/k) Σ_j w_j (Burda et al. 2016, Eq. 8), reported as
  ``nll = −mean_x L_k``: an upper bound on the true NLL in expectation, tightening as k grows
  (Theorem 1), the number papers report with k = 5000;
* the ELBO estimate (1/k) Σ_j log w_j from the same samples (Kingma & Welling 2014, Eq. 3),
  reported as ``neg_elbo`` ≥ ``nll`` for every image (Jensen).

Units: nats per image, and bits per dimension ``nats / (D · ln 2)`` with D = C·H·W. Both likelihoods
of the VAE are discrete (Bernoulli over binary pixels, discretised logistic over 256 levels), so
bits/dim needs no dequantisation offset. For Bernoulli models the test images are binarised once,
with a fixed seed (``seed``), the same draw for every k and every run: the protocol of "dynamically
binarised MNIST" evaluations (Burda et al. 2016, §5). Compare nats only at the same resolution:
28×28 MNIST has D = 784; the same digits resized to 32×32 have D = 1024 and a different NLL.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

import torch

from ..data import ImageDataset
from ..errors import ConfigError


def evaluate_nll(model: Any, dataset: ImageDataset, *, k: int = 5000, num_images: Optional[int] = None,
                 batch_size: int = 16, seed: int = 0, max_batch: int = 8192,
                 progress: Optional[Callable[[int, int], None]] = None) -> dict[str, Any]:
    """ELBO and importance-weighted NLL of ``model`` on the first ``num_images`` images of ``dataset``.

    Args:
        model: a likelihood model with ``log_weights(x, labels, k, generator, max_batch)`` and
            ``likelihood_targets(img, generator)`` (``vae``, ``cvae``), e.g. from ``load_run``.
        dataset: the evaluation images at the model's resolution and channels (labels for cvae).
        k: importance samples per image (Burda et al. use 5000).
        num_images: evaluate the first N images (None = all).
        batch_size: images per call of ``log_weights``.
        seed: seed of the binarisation and of the importance samples.
        max_batch: images × samples per decoder pass (memory).
        progress: optional callback ``(images_done, images_total)``.

    Returns:
        dict with ``nll`` and ``neg_elbo`` (nats per image), ``nll_bpd`` and ``neg_elbo_bpd``
        (bits/dim), ``nll_sem`` (standard error of ``nll`` over images, nats), ``k``,
        ``num_images``, ``dims`` and ``likelihood``.

    Raises:
        ConfigError: the model has no likelihood, or the data do not match its resolution/channels.
    """
    if not hasattr(model, "log_weights"):
        raise ConfigError(f"{getattr(model, 'model_name', type(model).__name__)} has no likelihood; "
                          "the nll metric needs a likelihood model (vae, cvae)")
    cfg = model.config
    c, r = cfg.channels or 1, cfg.resolution
    if (dataset.channels, dataset.resolution) != (c, r):
        raise ConfigError(f"the data are {dataset.channels}×{dataset.resolution}² but the model expects "
                          f"{c}×{r}²; load the data at the model's resolution and channels")
    if k < 1:
        raise ConfigError(f"k={k}: the IWAE estimate needs k ≥ 1")
    n = len(dataset) if num_images is None else min(num_images, len(dataset))
    if n < 1:
        raise ConfigError(f"num_images={num_images}: evaluate at least one image")
    conditional = bool(model.num_classes)
    if conditional and dataset.labels is None:
        raise ConfigError(f"{model.model_name} is class-conditional; evaluate it on a labelled dataset")
    dims = c * r * r
    gen = torch.Generator(device=model.device).manual_seed(seed)
    bin_gen = torch.Generator().manual_seed(seed + 1)
    iwae, elbo = [], []
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(n, start + batch_size))
        img, label = dataset.get_batch(idx)
        x = model.likelihood_targets(img, bin_gen)  # fixed binarisation (Bernoulli) or the image itself
        lw = model.log_weights(x.to(model.device), label.to(model.device) if conditional else None, k=k,
                               generator=gen, max_batch=max_batch).double()  # [B, k]
        iwae.append(torch.logsumexp(lw, 1) - math.log(k))
        elbo.append(lw.mean(1))
        if progress is not None:
            progress(int(idx[-1]) + 1, n)
    l_k, l_1 = torch.cat(iwae), torch.cat(elbo)
    nll, neg_elbo = float(-l_k.mean()), float(-l_1.mean())
    scale = 1.0 / (dims * math.log(2.0))
    return {"nll": nll, "neg_elbo": neg_elbo, "nll_bpd": nll * scale, "neg_elbo_bpd": neg_elbo * scale,
            "nll_sem": float(l_k.std() / math.sqrt(n)) if n > 1 else float("nan"), "k": k,
            "num_images": n, "dims": dims, "likelihood": getattr(cfg, "likelihood", "")}
