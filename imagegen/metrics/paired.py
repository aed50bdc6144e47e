"""Paired metrics: PSNR and SSIM of a model's outputs against the target of each input.

For models whose ``evaluation`` includes ``paired``:

* translators (a ``paired`` data source): every item of a paired dataset gives an input
  ``batch[image_key]`` and a target ``batch[target_key]``;
  :meth:`~imagegen.models.base.GenerativeModel.predict` maps the batch to outputs, which are compared
  with the targets;
* restorers (a ``degradation`` in their config, :mod:`imagegen.models.restoration`): the targets are
  the clean images of an image dataset (held-out ones: the test split by default) and the inputs
  their degradation by the model's :class:`~imagegen.data.degradations.Degradation`, image i drawn
  with its own generator seeded ``item_seed(seed, i)`` (the same inputs at every evaluation and for
  every batch size, and the ones ``imagegen degrade --seed SEED`` writes for the i-th file of a
  folder); the model's ``restore`` maps them to outputs. :func:`evaluate_restorer` runs any
  restoration function through the same protocol (the classic baselines of
  :mod:`imagegen.metrics.baselines`).

Protocol (recorded with every result): images quantised to 8 bits (as saved), mapped from [-1, 1]
to [0, 1], data range 1; PSNR per image = 10 log10(1 / MSE) over all channels and pixels, in dB,
averaged over images; SSIM with a Gaussian window of 11×11, σ = 1.5, K1 = 0.01, K2 = 0.03 (Wang et
al. 2004, "Image Quality Assessment: From Error Visibility to Structural Similarity", §III-C), on
the RGB (or grayscale) channels as given (no conversion to luma), averaged over channels and images.
Both come from ``torchmetrics.functional.image``. torchmetrics averages the whole SSIM map, whose
5-pixel border is computed on reflection-padded images; scikit-image's ``structural_similarity`` (and
Wang et al.'s reference code) average only the interior, so on 32×32 images the two differ by about
0.01 while their maps agree in the interior to 1e-4 (``tests/test_degradations.py``); PSNR agrees with
scikit-image's ``peak_signal_noise_ratio`` to 1e-3 dB.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Iterator, Optional

import torch

from ..data.base import float_to_uint8, spread_description, spread_indices
from ..data.degradations import Degradation, Degraded, item_seed
from ..errors import ConfigError, DataError

PROTOCOL = {"colour_space": "as stored (RGB or grayscale), no luma conversion", "data_range": "[0, 1] after 8-bit "
            "quantisation", "psnr": "dB, per image then averaged", "ssim": "Gaussian 11x11, sigma 1.5, K1 0.01, "
            "K2 0.03 (Wang et al. 2004), torchmetrics: mean of the whole SSIM map, its 5-pixel border from "
            "reflection padding (scikit-image and Wang's reference code average the interior only)",
            "library": "torchmetrics.functional.image"}


def _to_unit(img: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] → float32 [0, 1] on the 8-bit grid (what a saved image holds)."""
    return ((img.detach().float().clamp(-1, 1) + 1) * 127.5).round() / 255.0


def paired_scores(output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image PSNR (dB) and SSIM of ``output`` against ``target``.

    Args:
        output, target: float [N, C, H, W] in [-1, 1], the same shape.

    Returns:
        ``{"psnr": [N], "ssim": [N]}`` float32 (PSNR is +inf for identical images).

    Raises:
        ConfigError: shapes differ.
    """
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    if output.shape != target.shape:
        raise ConfigError(f"outputs {tuple(output.shape)} and targets {tuple(target.shape)} differ in shape")
    x, y = _to_unit(output), _to_unit(target)
    psnr = peak_signal_noise_ratio(x, y, data_range=1.0, reduction="none", dim=(1, 2, 3))
    ssim = structural_similarity_index_measure(x, y, data_range=1.0, reduction="none")
    return {"psnr": psnr.reshape(-1), "ssim": ssim.reshape(-1)}


def restoration_degradation(model: Any) -> Optional[Degradation]:
    """The degradation a restoration model undoes (``model.config.degradation``), or None for other models."""
    d = getattr(getattr(model, "config", None), "degradation", None)
    return d if isinstance(d, Degradation) else None


def degraded_batches(dataset: Any, degradation: Degradation, num_images: int, batch_size: int,
                     seed: int) -> Iterator[tuple[torch.Tensor, Degraded]]:
    """``(clean, degraded)`` batches of ``num_images`` evenly spaced images of ``dataset``
    (:func:`~imagegen.data.base.spread_indices`), the image at index i degraded with a generator seeded
    :func:`~imagegen.data.degradations.item_seed` (seed, i).

    Yields:
        clean float32 [B, C, H, W] in [-1, 1] and its :class:`~imagegen.data.degradations.Degraded` (CPU).
    """
    for idx in spread_indices(len(dataset), num_images).split(batch_size):
        clean, _ = dataset.get_batch(idx)
        yield clean, degradation.apply_seeded(clean, [item_seed(seed, int(i)) for i in idx])


def _score(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], n: int, keep_outputs: bool) -> dict[str, Any]:
    """Mean/std/sem of PSNR and SSIM over ``(output, target)`` batches (float [B, C, H, W] in [-1, 1],
    CPU) covering ``n`` images; with ``keep_outputs`` also ``outputs`` and ``targets`` as uint8."""
    scores: dict[str, list[torch.Tensor]] = {"psnr": [], "ssim": []}
    outputs, targets = [], []
    for out, target in pairs:
        if keep_outputs:
            outputs.append(float_to_uint8(out))
            targets.append(float_to_uint8(target))
        for k, v in paired_scores(out, target).items():
            scores[k].append(v)
    res: dict[str, Any] = {"num_images": n, "protocol": dict(PROTOCOL)}
    for k, parts in scores.items():
        v = torch.cat(parts).double()
        res[k] = float(v.mean())
        res[f"{k}_std"] = float(v.std()) if n > 1 else 0.0
        res[f"{k}_sem"] = float(v.std() / n ** 0.5) if n > 1 else float("nan")
    if keep_outputs:
        res["outputs"], res["targets"] = torch.cat(outputs), torch.cat(targets)
    return res


@torch.no_grad()
def evaluate_restorer(restore: Callable[[Degraded], torch.Tensor], dataset: Any, degradation: Degradation, *,
                      num_images: Optional[int] = None, batch_size: int = 64, seed: int = 0,
                      keep_outputs: bool = False) -> dict[str, Any]:
    """Mean PSNR and SSIM of ``restore`` on ``num_images`` degraded, evenly spaced images of ``dataset``.

    Args:
        restore: maps a :class:`~imagegen.data.degradations.Degraded` batch (CPU) to restorations float
            [B, C, H, W] in [-1, 1] (the clean images' size).
        dataset: an image dataset (``get_batch`` → (images, labels)) of clean images; for
            super-resolution its size must be a multiple of the scale.
        degradation: applied to image i with a generator seeded ``item_seed(seed, i)``.
        num_images: N evenly spaced images (:func:`~imagegen.data.base.spread_indices`; None = all).
        batch_size: images per ``restore`` call (does not change the results).
        seed: the degradation seed.
        keep_outputs: also return ``outputs`` and ``targets``: uint8 [N, C, H, W] (for FID/KID).

    Returns:
        As :func:`evaluate_paired`; the protocol also records ``degradation`` (its description and
        parameters) and ``seed``.

    Raises:
        ConfigError: outputs of another shape than the clean images, or a size the scale does not divide.
        DataError: an empty dataset.
    """
    n = len(dataset) if num_images is None else min(num_images, len(dataset))
    if n < 1:
        raise DataError(f"no images to evaluate in {getattr(dataset, 'name', 'the dataset')}")
    pairs = ((restore(degraded).detach().cpu(), clean)
             for clean, degraded in degraded_batches(dataset, degradation, n, batch_size, seed))
    res = _score(pairs, n, keep_outputs)
    res["protocol"]["degradation"] = {"description": degradation.describe(), **dataclasses.asdict(degradation)}
    res["protocol"]["inputs"] = f"image i degraded with a CPU generator seeded (seed << 32) + i, seed {seed}"
    return res


@torch.no_grad()
def evaluate_paired(model: Any, dataset: Any, *, num_images: Optional[int] = None, batch_size: int = 64,
                    seed: int = 0, keep_outputs: bool = False) -> dict[str, Any]:
    """Mean PSNR and SSIM of ``model.predict`` on ``num_images`` evenly spaced pairs of ``dataset``.

    Args:
        model: a model with ``"paired"`` in ``model.evaluation``: one with a paired data source, or a
            restoration model (a ``degradation`` in its config; see :func:`evaluate_restorer`).
        dataset: a paired dataset (``get_batch`` → (input, target, label)) at the model's size; for
            a restoration model, an image dataset of clean images (``get_batch`` → (images, labels)).
        num_images: evaluate N evenly spaced pairs (:func:`~imagegen.data.base.spread_indices`; None = all).
        batch_size: pairs per ``predict`` call.
        seed: seed of the generator passed to ``predict`` (stochastic models); for a restoration
            model, the seed of the degradations (image i: ``item_seed(seed, i)``).
        keep_outputs: also return the outputs as ``outputs`` and the targets as ``targets``: uint8
            [N, C, H, W] (for FID/KID).

    Returns:
        ``psnr`` (dB) and ``ssim`` means, their standard errors ``psnr_sem``/``ssim_sem`` and
        standard deviations ``psnr_std``/``ssim_std``, ``num_images`` and ``protocol``.

    Raises:
        ConfigError: the model is not evaluated by paired metrics.
    """
    if "paired" not in getattr(model, "evaluation", ()):
        raise ConfigError(f"{model.model_name} is not evaluated against targets (paired metrics need a "
                          "translation or restoration model)")
    degradation = restoration_degradation(model)
    if degradation is not None:
        def restore(d: Degraded) -> torch.Tensor:
            mask = None if d.mask is None else d.mask.to(model.device)
            return model.restore(d.image.to(model.device), mask)

        return evaluate_restorer(restore, dataset, degradation, num_images=num_images, batch_size=batch_size,
                                 seed=seed, keep_outputs=keep_outputs)
    src = next(s for s in model.data_sources() if s.kind == "paired")
    n = len(dataset) if num_images is None else min(num_images, len(dataset))
    gen = torch.Generator(device=model.device).manual_seed(seed)

    def pairs() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in spread_indices(len(dataset), n).split(batch_size):
            a, b, _ = dataset.get_batch(idx)
            yield model.predict({src.image_key: a.to(model.device)}, generator=gen).cpu(), b

    return _score(pairs(), n, keep_outputs)


class PairedEvaluator:
    """``--eval-metrics psnr,ssim`` during training: :func:`evaluate_paired` on ``num_images`` evenly
    spaced pairs of the training data, or for restoration models of the held-out images that
    :func:`held_out_images` picks (higher is better, so no ``best`` checkpoint is kept by them).

    Args:
        dataset: the paired training data, or the clean images of a restoration model.
        num_images: pairs (images) per evaluation.
        metrics: ``psnr`` and/or ``ssim``.
        split: what ``dataset`` is, for the protocol (``training``, ``test``).
        degradation: a restoration model's degradation (recorded in the protocol), else None.
    """

    best_metric = None

    def __init__(self, dataset: Any, num_images: int, metrics: list[str], split: str = "training",
                 degradation: Optional[Degradation] = None) -> None:
        self.dataset, self.num_images, self.metrics = dataset, num_images, metrics
        self.protocol = {**PROTOCOL, "pairs": spread_description(min(num_images, len(dataset)), len(dataset),
                                                                 f"{dataset.name} ({split})")}
        if degradation is not None:
            self.protocol["degradation"] = degradation.describe()
            self.protocol["inputs"] = "image i degraded with a CPU generator seeded (0 << 32) + i"

    def __call__(self, model: Any, step: int) -> tuple[dict[str, float], list[str]]:
        res = evaluate_paired(model, self.dataset, num_images=self.num_images)
        return {m: res[m] for m in self.metrics}, []


def held_out_images(model: Any, dataset: Any, cfg: Any) -> tuple[Any, str]:
    """The images a restoration model is evaluated on during training: the ``test`` split of a named
    training dataset (loaded as the training data: resolution, channels, ``--resize``) when it has one
    and training did not use it, else the training images themselves.

    Returns:
        ``(dataset, split)`` with split ``test`` or ``training``.
    """
    from ..data import build_dataset, dataset_loaders

    if dataset.name in dataset_loaders() and getattr(cfg, "split", "train") != "test":
        try:
            return build_dataset(dataset.name, root=cfg.data_root, split="test", resolution=model.config.resolution,
                                 channels=model.config.channels, resize=getattr(cfg, "resize", "bicubic")), "test"
        except DataError:  # no test split: the first training images, and the protocol says so
            pass
    return dataset, "training"
