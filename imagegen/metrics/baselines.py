"""Classic restoration baselines from libraries, scored by the same protocol as the models.

Each baseline maps a :class:`~imagegen.data.degradations.Degraded` batch (float32 [N, C, h, w] in
[-1, 1], mask bool [N, 1, h, w] for inpainting) to restorations float32 [N, C, H, W] in [-1, 1], so
:func:`evaluate_baseline` runs it through :func:`~imagegen.metrics.paired.evaluate_restorer`: the
same held-out images, the same per-image seeded degradations and the same PSNR/SSIM (torchmetrics on
8-bit [0, 1] images) as ``imagegen evaluate RUN`` reports for a trained model.

Baselines (:data:`BASELINES`); the scikit-image functions work on float64 [0, 1] images, H×W×C:

* ``input`` (denoise, inpaint): the degraded image itself, the floor every method must beat.
* ``bicubic`` (super-resolution): PyTorch's antialiased bicubic upsampling (Keys kernel, a = −0.5: the
  family of Pillow's ``BICUBIC`` and of the downsampler that made the input).
* ``nl-means`` (denoise): ``skimage.restoration.denoise_nl_means`` (Buades et al. 2005), 5×5 patches,
  13×13 search window (``patch_distance`` 6), ``fast_mode``, h = 0.8 σ and ``sigma`` = σ, as
  scikit-image's documentation recommends; σ is the known noise level for a fixed σ, and
  ``estimate_sigma`` (Donoho's wavelet MAD estimate; needs PyWavelets) per image for blind noise.
* ``wavelet`` (denoise): ``skimage.restoration.denoise_wavelet``, BayesShrink soft thresholding
  (Chang et al. 2000) with σ as above, in YCbCr for colour images; needs PyWavelets.
* ``tv`` (denoise): ``skimage.restoration.denoise_tv_chambolle`` (Chambolle 2004) with weight
  ``tv_factor`` × σ/255 (default factor 1.0: a rule of thumb of ours, not tuned on evaluation data).
* ``bm3d`` (denoise): ``bm3d.bm3d`` / ``bm3d.bm3d_rgb`` (Dabov et al. 2007; the authors' package
  ``bm3d`` on PyPI, free for non-commercial use) with ``sigma_psd`` = σ/255; optional: a
  :class:`~imagegen.errors.ConfigError` names the package when it is not installed.
* ``biharmonic`` (inpaint): ``skimage.restoration.inpaint_biharmonic`` (Damelin & Hoang 2018).

σ is the level of the degradation (or its per-image estimate); the noisy inputs are the clipped,
8-bit ones when the degradation ``quantize``s (the default), as every method sees them.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..data.degradations import Degradation, Degraded
from ..errors import ConfigError
from .paired import evaluate_restorer

#: baseline names per restoration task
BASELINES: dict[str, tuple[str, ...]] = {
    "denoise": ("input", "nl-means", "wavelet", "tv", "bm3d"),
    "super-resolution": ("bicubic",),
    "inpaint": ("input", "biharmonic"),
}


def _to_numpy(img: torch.Tensor) -> np.ndarray:
    """float [C, H, W] in [-1, 1] → float64 [H, W, C] in [0, 1] (values outside kept: unclipped noise)."""
    return ((img.detach().double().cpu() + 1) / 2).permute(1, 2, 0).numpy()


def _to_tensor(arr: np.ndarray) -> torch.Tensor:
    """float [H, W, C] (or [H, W]) in [0, 1] → float32 [C, H, W] in [-1, 1]."""
    arr = arr[..., None] if arr.ndim == 2 else arr
    return (torch.from_numpy(np.ascontiguousarray(arr)).float().permute(2, 0, 1) * 2 - 1).clamp(-1, 1)


def _sigma_of(img: np.ndarray, degradation: Degradation, estimate: bool) -> float:
    """Noise σ of one image in [0, 1] units: the degradation's own (fixed σ), else estimated."""
    if not estimate and not degradation.blind:
        return degradation.sigma / 255.0
    _need_pywavelets("estimating the noise level (blind noise, or estimate_sigma=True)")
    from skimage.restoration import estimate_sigma

    return float(estimate_sigma(img, average_sigmas=True, channel_axis=-1))


def _need_pywavelets(what: str) -> None:
    """Raise :class:`ConfigError` unless PyWavelets (which scikit-image's wavelet functions need) imports."""
    try:
        import pywt  # noqa: F401
    except ImportError:
        raise ConfigError(f"{what} needs PyWavelets: pip install PyWavelets") from None


def _per_image(fn: Callable[[np.ndarray, int], np.ndarray]) -> Callable[[Degraded], torch.Tensor]:
    def run(d: Degraded) -> torch.Tensor:
        return torch.stack([_to_tensor(fn(_to_numpy(x), i)) for i, x in enumerate(d.image)])
    return run


def make_baseline(name: str, degradation: Degradation, *, estimate_sigma: bool = False,
                  tv_factor: float = 1.0) -> Callable[[Degraded], torch.Tensor]:
    """The restoration function of baseline ``name`` for ``degradation``.

    Args:
        name: one of ``BASELINES[degradation.task]``.
        degradation: what the inputs went through (its σ or scale parameterises the baseline).
        estimate_sigma: denoisers estimate σ per image (``skimage.restoration.estimate_sigma``) even
            when the degradation's σ is fixed (blind noise is always estimated).
        tv_factor: ``tv``: Chambolle weight = tv_factor × σ (σ in [0, 1] units).

    Returns:
        ``restore(degraded: Degraded) -> float32 [N, C, H, W] in [-1, 1]`` (CPU).

    Raises:
        ConfigError: an unknown baseline for the task, or a missing optional package (PyWavelets
            for ``wavelet``, ``bm3d`` for ``bm3d``), naming the fix.
    """
    task = degradation.task
    if name not in BASELINES[task]:
        raise ConfigError(f"unknown {task} baseline {name!r}; use one of {', '.join(BASELINES[task])}")
    if name == "input":
        return lambda d: d.image.clamp(-1, 1)
    if name == "bicubic":
        s = degradation.scale
        return lambda d: F.interpolate(d.image, scale_factor=s, mode="bicubic", align_corners=False,
                                       antialias=True).clamp(-1, 1)
    if name == "biharmonic":
        from skimage.restoration import inpaint_biharmonic

        def biharmonic(d: Degraded) -> torch.Tensor:
            out = [_to_tensor(inpaint_biharmonic(_to_numpy(x), m[0].cpu().numpy(), channel_axis=-1))
                   for x, m in zip(d.image, d.mask)]
            return torch.stack(out)
        return biharmonic
    from skimage import restoration as sk

    if name == "nl-means":
        def nl_means(x: np.ndarray, i: int) -> np.ndarray:
            s = _sigma_of(x, degradation, estimate_sigma)
            return sk.denoise_nl_means(x, patch_size=5, patch_distance=6, h=0.8 * s, sigma=s, fast_mode=True,
                                       channel_axis=-1)
        return _per_image(nl_means)
    if name == "wavelet":
        _need_pywavelets("the wavelet baseline")

        def wavelet(x: np.ndarray, i: int) -> np.ndarray:
            s = _sigma_of(x, degradation, estimate_sigma)
            return sk.denoise_wavelet(x, sigma=s, method="BayesShrink", mode="soft", rescale_sigma=True,
                                      convert2ycbcr=x.shape[-1] == 3, channel_axis=-1)
        return _per_image(wavelet)
    if name == "tv":
        def tv(x: np.ndarray, i: int) -> np.ndarray:
            return sk.denoise_tv_chambolle(x, weight=tv_factor * _sigma_of(x, degradation, estimate_sigma),
                                           channel_axis=-1)
        return _per_image(tv)
    try:
        import bm3d
    except ImportError:
        raise ConfigError("the bm3d baseline needs the authors' package: pip install bm3d") from None

    def run_bm3d(x: np.ndarray, i: int) -> np.ndarray:
        s = _sigma_of(x, degradation, estimate_sigma)
        return bm3d.bm3d_rgb(x, sigma_psd=s) if x.shape[-1] == 3 else bm3d.bm3d(x[..., 0], sigma_psd=s)
    return _per_image(run_bm3d)


def evaluate_baseline(name: str, dataset: Any, degradation: Degradation, *, num_images: Optional[int] = None,
                      batch_size: int = 64, seed: int = 0, **options: Any) -> dict[str, Any]:
    """PSNR/SSIM of baseline ``name`` by the protocol of :func:`~imagegen.metrics.paired.evaluate_restorer`
    (the inputs an evaluation of a model with this degradation and ``seed`` gets).

    Args:
        name: a baseline of ``BASELINES[degradation.task]``.
        dataset: clean images (``get_batch`` → (images, labels)), e.g. the test split a model is
            evaluated on.
        degradation: the degradation (e.g. a run's ``model.config.degradation``).
        num_images, batch_size, seed: as in :func:`~imagegen.metrics.paired.evaluate_restorer`.
        **options: of :func:`make_baseline` (``estimate_sigma``, ``tv_factor``).

    Returns:
        :func:`~imagegen.metrics.paired.evaluate_restorer`'s result with ``protocol["baseline"]``:
        the name and options.

    Raises:
        ConfigError: as :func:`make_baseline`.
    """
    restore = make_baseline(name, degradation, **options)
    res = evaluate_restorer(restore, dataset, degradation, num_images=num_images, batch_size=batch_size, seed=seed)
    res["protocol"]["baseline"] = {"name": name, **options}
    return res
