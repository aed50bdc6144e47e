"""Negative log-likelihood of any likelihood model on a test split, in nats and bits/dim.

Works through the model contract: :meth:`~imagegen.models.base.GenerativeModel.likelihood_targets`
(what is scored, e.g. a fixed binarisation) and
:meth:`~imagegen.models.base.GenerativeModel.log_likelihood` (log p(x) per image in nats, plus
optional bounds). ``nll = −mean_x log p(x)``. For latent-variable models (``vae``, ``cvae``) log p(x)
is the IWAE estimate with k importance samples z_j ~ q(z|x),

* L_k = log (1/k) Σ_j w_j (Burda et al. 2016, Eq. 8): an upper bound on the true NLL in expectation,
  tightening as k grows (Theorem 1), the number papers report with k = 5000;
* and the ELBO estimate (1/k) Σ_j log w_j from the same samples (Kingma & Welling 2014, Eq. 3),
  reported as ``neg_elbo`` ≥ ``nll`` for every image (Jensen).

Exact-likelihood models (autoregressive) ignore k and report ``nll`` only.

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
from ..data.base import spread_description, spread_indices
from ..errors import ConfigError


def evaluate_nll(model: Any, dataset: ImageDataset, *, k: int = 5000, num_images: Optional[int] = None,
                 batch_size: Optional[int] = None, seed: int = 0,
                 progress: Optional[Callable[[int, int], None]] = None, spread: bool = False) -> dict[str, Any]:
    """NLL of ``model`` on ``num_images`` images of ``dataset`` (the first ones, or evenly spaced ones
    with ``spread``): exact for autoregressive models (``model.exact_likelihood``), else the
    importance-weighted estimate and the ELBO.

    Args:
        model: a model with a likelihood (``model.has_likelihood``), e.g. from ``load_run``.
        dataset: the evaluation images at the model's resolution and channels (labels for cvae).
        k: importance samples per image for latent-variable models (Burda et al. use 5000; exact
            models ignore it).
        num_images: evaluate N images (None = all).
        spread: take images i·L//N (i < N) of the L in ``dataset`` instead of the first N, so that a
            split stored in class order (the CIFAR-10 JPEG copy) is represented by every class.
        batch_size: images per call of ``log_likelihood`` (default: 128 for exact likelihoods, 16 for
            importance-weighted estimates, whose calls hold k samples per image).
        seed: seed of the binarisation and of the importance samples.
        progress: optional callback ``(images_done, images_total)``.

    Returns:
        dict with ``nll`` and (if the model gives an ELBO) ``neg_elbo`` (nats per image), ``nll_bpd``
        and ``neg_elbo_bpd`` (bits/dim), ``nll_sem`` (standard error of ``nll`` over images, nats), ``k``,
        ``num_images``, ``dims`` and ``likelihood``.

    Raises:
        ConfigError: the model has no likelihood, or the data do not match its resolution/channels.
    """
    if not getattr(model, "has_likelihood", False):
        raise ConfigError(f"{getattr(model, 'model_name', type(model).__name__)} has no likelihood; "
                          "the nll metric needs a likelihood model (e.g. vae, cvae)")
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
    dims = model.num_dims
    gen = torch.Generator(device=model.device).manual_seed(seed)
    bin_gen = torch.Generator().manual_seed(seed + 1)
    iwae, elbo = [], []
    if batch_size is None:
        batch_size = 128 if getattr(model, "exact_likelihood", False) else 16
    order = spread_indices(len(dataset), n) if spread else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        img, label = dataset.get_batch(idx)
        x = model.likelihood_targets(img, bin_gen)  # e.g. a fixed binarisation, else the image itself
        batch = {"img": x.to(model.device), "label": label.to(model.device)}
        out = model.log_likelihood(batch, generator=gen, num_samples=k)
        iwae.append(out["log_px"].double().cpu())
        if "elbo" in out:
            elbo.append(out["elbo"].double().cpu())
        if progress is not None:
            progress(min(n, start + batch_size), n)
    l_k = torch.cat(iwae)
    nll = float(-l_k.mean())
    scale = 1.0 / (dims * math.log(2.0))
    res = {"nll": nll, "nll_bpd": nll * scale,
           "nll_sem": float(l_k.std() / math.sqrt(n)) if n > 1 else float("nan"), "k": k,
           "num_images": n, "dims": dims,
           "likelihood": getattr(cfg, "likelihood", None) or getattr(cfg, "distribution", "")}
    if elbo:
        neg_elbo = float(-torch.cat(elbo).mean())
        res.update(neg_elbo=neg_elbo, neg_elbo_bpd=neg_elbo * scale)
    return res


def nll_command(model: Any, reference: ImageDataset, metrics_spec: str, *, k: int, num_images: Optional[int],
                seed: int, run_dir: Optional[str], as_json: bool, echo: Callable[[str], None],
                info: Callable[[str], None]) -> str:
    """The ``nll`` part of ``imagegen evaluate``: compute :func:`evaluate_nll` of a run's model on the
    reference split, print it (a table, or one JSON object with ``as_json``), append a record to
    ``RUN/metrics.jsonl``, and return the remaining comma-separated metrics for the usual sample-based
    evaluation (empty if ``nll`` was the only one).

    Raises:
        ConfigError: no run (``--fake`` images have no likelihood) or a model without a likelihood.
    """
    import json
    import time

    from ..sampling.api import run_dir_of
    from ..checkpoint import append_metrics

    if model is None:
        raise ConfigError("metric nll needs a run directory (a likelihood model), not --fake images")
    if not model.has_likelihood:
        raise ConfigError(f"{model.model_name} has no likelihood; the nll metric needs a likelihood model (e.g. vae, cvae)")
    rest = ",".join(m for m in (s.strip() for s in metrics_spec.split(",")) if m and m != "nll")
    n = len(reference) if num_images is None else min(num_images, len(reference))
    exact = bool(getattr(model, "exact_likelihood", False))
    info(f"nll: {'exact log-likelihood' if exact else f'IWAE with k={k}'} on {n:,} images of {reference.name} ...")
    t0 = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 30 or done == total:
            last[0] = time.perf_counter()
            info(f"  {done:,}/{total:,} images, {last[0] - t0:.0f} s")

    # evenly spaced images (i·L//N), as during training: class-ordered test splits (the CIFAR-10 JPEG copy)
    # would otherwise be scored on one class
    res = evaluate_nll(model, reference, k=k, num_images=num_images, seed=seed, progress=progress, spread=True)
    meta = getattr(model, "checkpoint_meta", {})
    record = {"step": meta.get("step"), **{m: res[m] for m in ("nll", "neg_elbo", "nll_bpd", "neg_elbo_bpd", "nll_sem")
                                          if m in res},
              "protocol": {"metric": "nll", "estimator": (f"IWAE k={k} (Burda et al. 2016) and ELBO from the same samples"
                                                         if "neg_elbo" in res else "exact log-likelihood"),
                           "images": spread_description(res["num_images"], len(reference), reference.name),
                           "dims": res["dims"],
                           "likelihood": res["likelihood"], "binarisation_seed": seed + 1 if res["likelihood"] == "bernoulli" else None,
                           "units": "nats per image; bits/dim = nats / (dims * ln 2)", "seconds": round(time.perf_counter() - t0, 1)},
              "source": "evaluate"}
    if run_dir is not None:
        append_metrics(run_dir_of(model), record)
    if as_json:
        echo(json.dumps(record))
    else:
        how = "exact" if exact else f"k={k}"
        echo(f"{run_dir} (step {meta.get('step')}): NLL on {res['num_images']:,} images of {reference.name} "
             f"({res['dims']} dims, {res['likelihood']} likelihood), {how}, {record['protocol']['seconds']} s")
        echo(f"  {'nll':<14}{res['nll']:.3f} ± {res['nll_sem']:.2f} nats  ({res['nll_bpd']:.4f} bits/dim)")
        if "neg_elbo" in res:
            echo(f"  {'-elbo':<14}{res['neg_elbo']:.3f} nats  ({res['neg_elbo_bpd']:.4f} bits/dim)")
    return rest


class NLLEvaluator:
    """The ``nll`` metric during training (``--eval-metrics nll``): NLL of the model on a fixed set of
    reference images, ``num_images`` evenly spaced ones (i·L//N) of the dataset's test split where it
    has one, else of the training images, so that a split stored in class order is represented by
    every class; a fixed seed, so successive values differ only because the model changed. The
    protocol's ``k`` reads ``exact`` for exact-likelihood models.

    Args:
        dataset: the reference images at the model's resolution and channels.
        num_images: images scored per evaluation.
        k: importance samples per image (latent-variable models).
        seed: seed of the binarisation and the importance samples.
        split: the name of the reference split, for the protocol.
    """

    best_metric = "nll"

    def __init__(self, dataset: ImageDataset, num_images: int, k: int, seed: int = 0, split: str = "test") -> None:
        self.dataset, self.num_images, self.k, self.seed = dataset, min(num_images, len(dataset)), k, seed
        self.protocol = {"metric": "nll", "images": f"{self.num_images} evenly spaced of {dataset.name} ({split}: "
                                                    f"images i*{len(dataset)}//{self.num_images})",
                         "k": k, "seed": seed, "units": "nats per image; bits/dim = nats / (dims * ln 2)"}

    def __call__(self, model: Any, step: int) -> tuple[dict[str, float], list[str]]:
        if getattr(model, "exact_likelihood", False):
            self.protocol["k"] = "exact"
        res = evaluate_nll(model, self.dataset, k=self.k, num_images=self.num_images, seed=self.seed, spread=True)
        return {m: res[m] for m in ("nll", "nll_bpd", "neg_elbo") if m in res}, []
