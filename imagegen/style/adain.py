"""Using a trained AdaIN network (Huang & Belongie 2017, §7): the user controls of the paper.

* **Content–style trade-off** (Eq. 14): ``T(c, s, α) = g((1 − α) f(c) + α AdaIN(f(c), f(s)))``.
* **Style interpolation** (Eq. 15): ``T = g((1 − α) f(c) + α Σ_k w_k AdaIN(f(c), f(s_k)))`` with
  ``Σ_k w_k = 1`` (weights normalised).
* **Colour preservation** (§7.2, after Gatys et al. 2017): ``histogram`` recolours each style image to the
  content's RGB mean and covariance first (:func:`imagegen.style.gatys.match_color_histogram`);
  ``luminance`` transfers on luminance only (the content's and the luminance-matched style's Y channel,
  replicated to RGB) and puts the output's Y back with the content's I and Q chroma (YIQ).
* **Spatial control** (§7.3): masks ``[K, H, W]`` (one per style, values in {0, 1}, summing to 1 at every
  pixel); AdaIN is applied separately in each region of the content feature map, with the content's
  statistics over that region (``μ``, ``σ`` over the region's positions only, ε as in
  :func:`imagegen.models.adain.adain`) and style k's global statistics. The masks are taken to the
  feature grid of the AdaIN layer (relu4_1, or the run's ``adain_layer``) by area averaging and arg-max, so
  the regions partition it.

Fully convolutional: the content is reflection-padded to a multiple of the decoder's scale (8 pixels per
side from relu4_1, 4 from relu3_1) and the output cropped back, so any size ≥ 8 works.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..models.adain import EPS, AdaIN, adain, load_adain, mean_std
from .gatys import (_as_image, _fit_long_side, _mix_weights, _resize, match_color_histogram, match_luminance,
                    rgb_to_yiq, yiq_to_rgb)

PRESERVE_COLORS = (None, "none", "luminance", "histogram")


def masked_adain(x: torch.Tensor, style_feats: Sequence[torch.Tensor], masks: torch.Tensor,
                 eps: float = EPS) -> torch.Tensor:
    """AdaIN per region: x [1, C, h, w] content features, ``style_feats[k]`` [1, C, h_k, w_k], masks
    [K, h, w] in {0, 1} partitioning the grid → ``Σ_k m_k ⊙ (σ_k (x − μ_x,k) / σ_x,k + μ_k)`` with
    ``μ_x,k``, ``σ_x,k = sqrt(Var + eps)`` over region k's positions (population variance)."""
    out = torch.zeros_like(x)
    for m, sf in zip(masks, style_feats):
        n = m.sum()
        if n == 0:
            continue
        m = m.to(x)[None, None]  # [1, 1, h, w]
        mu = (x * m).sum(dim=(2, 3), keepdim=True) / n
        var = ((x - mu).pow(2) * m).sum(dim=(2, 3), keepdim=True) / n
        mu_s, sd_s = mean_std(sf, eps)
        out = out + m * (sd_s * (x - mu) / (var + eps).sqrt() + mu_s)
    return out


def _check_masks(mask: torch.Tensor, k: int, hw: tuple[int, int]) -> torch.Tensor:
    if not isinstance(mask, torch.Tensor) or mask.ndim != 3:
        raise ConfigError(f"mask: expected a tensor [K, H, W] (one mask per style), got "
                          f"{tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__}")
    if mask.shape[0] != k:
        raise ConfigError(f"mask: {mask.shape[0]} masks for {k} style image(s); give one mask per style")
    if tuple(mask.shape[1:]) != tuple(hw):
        raise ConfigError(f"mask: {mask.shape[2]}x{mask.shape[1]} (width x height) but the content is "
                          f"{hw[1]}x{hw[0]}; give masks of the content's size")
    if not torch.all((mask == 0) | (mask == 1)) or not torch.all(mask.sum(0) == 1):
        raise ConfigError("mask: values must be 0 or 1 and the masks must sum to 1 at every pixel "
                          "(each pixel belongs to exactly one style)")
    return mask.float()


def _features_grid_masks(mask: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """[K, H, W] one-hot masks → [K, h, w] one-hot on the feature grid (area average, then arg-max)."""
    area = F.adaptive_avg_pool2d(mask[None], hw)[0]  # [K, h, w]
    return F.one_hot(area.argmax(0), mask.shape[0]).permute(2, 0, 1).float()


@torch.no_grad()
def stylize_adain(model: Union[AdaIN, str, os.PathLike], content: torch.Tensor,
                  styles: Union[torch.Tensor, Sequence[torch.Tensor]], *, alpha: float = 1.0,
                  style_weights: Optional[Sequence[float]] = None, preserve_color: Optional[str] = None,
                  mask: Optional[torch.Tensor] = None, size: Optional[int] = None,
                  style_size: Optional[int] = None) -> torch.Tensor:
    """Stylise one photo with a trained AdaIN network.

    Args:
        model: an :class:`~imagegen.models.adain.AdaIN` model or its run directory / checkpoint.
        content: [1, 3, H, W] (or [3, H, W]) in [-1, 1].
        styles: one style image or several, each [1, 3, H_s, W_s] in [-1, 1] (any size ≥ 8; resized so
            that the long side is ``style_size``).
        alpha: content–style trade-off in [0, 1] (Eq. 14; 0 = the decoder of the content features).
        style_weights: interpolation weights of several styles (Eq. 15; normalised to sum 1; default equal).
        preserve_color: None/``none``, ``luminance`` or ``histogram`` (see the module docstring).
        mask: [K, H, W] per-style masks in {0, 1} summing to 1, of the content's given size (resized with
            it when ``size`` is given), or None.
        size: long side of the output (the content is resized, keeping its aspect ratio); None: as is.
        style_size: long side the style images are resized to (default: the output's long side).

    Returns:
        [1, 3, H_out, W_out] float32 in [-1, 1] on the model's device.

    Raises:
        ConfigError: bad alpha, weights, colour mode, mask, or an image too small.
    """
    model = load_adain(model)
    dev = model.device
    if not 0.0 <= float(alpha) <= 1.0:
        raise ConfigError(f"alpha={alpha}: use a value in [0, 1] (0 = content only, 1 = full style)")
    if preserve_color not in PRESERVE_COLORS:
        raise ConfigError(f"preserve_color={preserve_color!r}: use none, luminance or histogram")
    style_list = [styles] if isinstance(styles, torch.Tensor) else list(styles)
    if not style_list:
        raise ConfigError("give at least one style image")
    content = _as_image(content, "content").to(dev)
    style_list = [_as_image(s, f"style {i + 1}").to(dev) for i, s in enumerate(style_list)]
    if mask is not None and style_weights is not None:
        raise ConfigError("give either style weights (interpolation) or a mask (one region per style), not both")
    weights = _mix_weights(style_weights, len(style_list))
    if mask is not None:  # at the content's given size; taken to the output size below
        mask = _check_masks(mask, len(style_list), tuple(content.shape[-2:])).to(dev)
    if size is not None:
        if size < 8:
            raise ConfigError(f"size={size}: the output needs at least 8 pixels per side")
        content = _resize(content, _fit_long_side(tuple(content.shape[-2:]), size))
    hw = tuple(content.shape[-2:])
    if min(hw) < 8:
        raise ConfigError(f"content {hw[1]}x{hw[0]} (width x height): needs at least 8 pixels per side")
    if mask is not None and tuple(mask.shape[1:]) != hw:
        mask = _features_grid_masks(mask, hw)
    s_long = style_size or max(hw)
    style_list = [_resize(s, _fit_long_side(tuple(s.shape[-2:]), s_long)) for s in style_list]
    if any(min(s.shape[-2:]) < 8 for s in style_list):
        raise ConfigError("a style image is under 8 pixels on a side after resizing; use a larger style_size")

    if preserve_color == "histogram":
        style_list = [match_color_histogram(s, content) for s in style_list]
    content_yiq = None
    if preserve_color == "luminance":
        content_yiq = rgb_to_yiq((content + 1) * 0.5)
        c_y = content_yiq[:, :1]
        style_list = [match_luminance(rgb_to_yiq((s + 1) * 0.5)[:, :1], c_y).expand(-1, 3, -1, -1) * 2 - 1
                      for s in style_list]
        content = c_y.expand(-1, 3, -1, -1) * 2 - 1

    # reflection padding to a multiple of the decoder's scale (it upsamples relu4_1 by 8, relu3_1 by 4)
    k = model.decoder.scale
    ph, pw = (-hw[0]) % k, (-hw[1]) % k
    x = F.pad(content, (0, pw, 0, ph), mode="reflect") if ph or pw else content
    was = model.training
    model.eval()
    try:
        fc = model.features(x)[model.layer]
        fs = [model.features(s)[model.layer] for s in style_list]
        if mask is not None:
            m = F.pad(mask[None], (0, pw, 0, ph), mode="replicate")[0] if ph or pw else mask
            t = masked_adain(fc, fs, _features_grid_masks(m, tuple(fc.shape[-2:])))
        else:
            t = sum(w * adain(fc, f) for w, f in zip(weights, fs))
        t = alpha * t + (1 - alpha) * fc
        out = model.decoder(t)[..., :hw[0], :hw[1]].clamp(-1, 1)
    finally:
        model.train(was)
    if content_yiq is not None:
        y = rgb_to_yiq((out + 1) * 0.5)[:, :1]  # the output is grey-ish; take its luma
        out = (yiq_to_rgb(torch.cat([y, content_yiq[:, 1:]], 1)).clamp(0, 1) * 2 - 1)
    return out


__all__ = ["stylize_adain", "masked_adain", "adain", "mean_std"]
