"""Paired metrics: PSNR and SSIM of a model's outputs against the target of each input.

For models whose ``evaluation`` includes ``paired`` (translators and restorers): every item of a
paired dataset gives an input ``batch[image_key]`` and a target ``batch[target_key]``;
:meth:`~imagegen.models.base.GenerativeModel.predict` maps the batch to outputs, which are compared
with the targets.

Protocol (recorded with every result): images quantised to 8 bits (as saved), mapped from [-1, 1]
to [0, 1], data range 1; PSNR per image = 10 log10(1 / MSE) over all channels and pixels, in dB,
averaged over images; SSIM with a Gaussian window of 11×11, σ = 1.5, K1 = 0.01, K2 = 0.03 (Wang et
al. 2004, "Image Quality Assessment: From Error Visibility to Structural Similarity", §III-C), on
the RGB (or grayscale) channels as given (no conversion to luma), averaged over channels and images.
Both come from ``torchmetrics.functional.image``.
"""
from __future__ import annotations

from typing import Any, Optional

import torch

from ..data.base import float_to_uint8
from ..errors import ConfigError

PROTOCOL = {"colour_space": "as stored (RGB or grayscale), no luma conversion", "data_range": "[0, 1] after 8-bit "
            "quantisation", "psnr": "dB, per image then averaged", "ssim": "Gaussian 11x11, sigma 1.5, K1 0.01, "
            "K2 0.03 (Wang et al. 2004), torchmetrics", "library": "torchmetrics.functional.image"}


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


@torch.no_grad()
def evaluate_paired(model: Any, dataset: Any, *, num_images: Optional[int] = None, batch_size: int = 64,
                    seed: int = 0, keep_outputs: bool = False) -> dict[str, Any]:
    """Mean PSNR and SSIM of ``model.predict`` on the first ``num_images`` pairs of ``dataset``.

    Args:
        model: a model with ``"paired"`` in ``model.evaluation`` and one paired data source.
        dataset: a paired dataset (``get_batch`` → (input, target, label)) at the model's size.
        num_images: evaluate the first N pairs (None = all).
        batch_size: pairs per ``predict`` call.
        seed: seed of the generator passed to ``predict`` (stochastic models).
        keep_outputs: also return the outputs as ``outputs``: uint8 [N, C, H, W] (for FID/KID).

    Returns:
        ``psnr`` (dB) and ``ssim`` means, their standard errors ``psnr_sem``/``ssim_sem`` and
        standard deviations ``psnr_std``/``ssim_std``, ``num_images`` and ``protocol``.

    Raises:
        ConfigError: the model is not evaluated by paired metrics.
    """
    if "paired" not in getattr(model, "evaluation", ()):
        raise ConfigError(f"{model.model_name} is not evaluated against targets (paired metrics need a "
                          "translation or restoration model)")
    src = next(s for s in model.data_sources() if s.kind == "paired")
    n = len(dataset) if num_images is None else min(num_images, len(dataset))
    gen = torch.Generator(device=model.device).manual_seed(seed)
    scores: dict[str, list[torch.Tensor]] = {"psnr": [], "ssim": []}
    outputs = []
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(n, start + batch_size))
        a, b, _ = dataset.get_batch(idx)
        out = model.predict({src.image_key: a.to(model.device)}, generator=gen).cpu()
        if keep_outputs:
            outputs.append(float_to_uint8(out))
        for k, v in paired_scores(out, b).items():
            scores[k].append(v)
    res: dict[str, Any] = {"num_images": n, "protocol": dict(PROTOCOL)}
    for k, parts in scores.items():
        v = torch.cat(parts).double()
        res[k] = float(v.mean())
        res[f"{k}_std"] = float(v.std()) if n > 1 else 0.0
        res[f"{k}_sem"] = float(v.std() / n ** 0.5) if n > 1 else float("nan")
    if keep_outputs:
        res["outputs"] = torch.cat(outputs)
    return res


class PairedEvaluator:
    """``--eval-metrics psnr,ssim`` during training: :func:`evaluate_paired` on the first
    ``num_images`` pairs of the training data (higher is better, so no ``best`` checkpoint is kept by
    them)."""

    best_metric = None

    def __init__(self, dataset: Any, num_images: int, metrics: list[str]) -> None:
        self.dataset, self.num_images, self.metrics = dataset, num_images, metrics
        self.protocol = {**PROTOCOL, "pairs": f"first {min(num_images, len(dataset))} of {dataset.name} (training)"}

    def __call__(self, model: Any, step: int) -> tuple[dict[str, float], list[str]]:
        res = evaluate_paired(model, self.dataset, num_images=self.num_images)
        return {m: res[m] for m in self.metrics}, []
