"""Neural style transfer by optimising the output's pixels (Gatys, Ecker & Bethge 2016, "Image Style
Transfer Using Convolutional Neural Networks", CVPR), with the controls of Gatys et al. 2017
("Controlling Perceptual Factors in Neural Style Transfer", CVPR): colour preservation and
coarse-to-fine optimisation.

Losses (``F``: the output's activations at layer l, ``N_l`` channels × ``M_l = H_l W_l`` positions;
``P``: the content image's; ``A``: the style image's Gram matrix):

* content (§2, Eq. 1, divided by ``N_l M_l`` so that weights do not depend on the image size):
  ``L_content = 1 / (2 N_l M_l) Σ_ij (F_ij − P_ij)²`` at one layer (``relu4_2``, the paper's conv4_2);
* style (Eq. 3–5): Gram matrix ``G_ij = Σ_k F_ik F_jk`` (Eq. 3); per layer
  ``E_l = 1 / (4 N_l² M_l²) Σ_ij (G_ij − A_ij)²`` (Eq. 4, exactly; computed as ``¼ Σ (Ĝ − Â)²`` with the
  normalised Gram ``Ĝ = G / (N_l M_l)`` of :func:`gram_matrix`); ``L_style = Σ_l w_l E_l`` with
  ``w_l = 1 / (number of style layers)`` (Eq. 5; the paper's 1/5 for relu1_1 ... relu5_1). Several
  styles: ``Σ_s π_s L_style(s)`` with mixing weights ``π`` normalised to sum to 1;
* total variation (Mahendran & Vedaldi 2015, β = 2): mean squared difference of vertically and of
  horizontally neighbouring pixels, summed;
* total (Eq. 7 plus TV): ``α L_content + β L_style + γ L_tv``.

By default each layer's activations are first divided by their mean over the content and style images
(``normalize_features``): a per-layer form of the paper's network normalisation (§2: every filter
rescaled to mean activation 1), which makes α, β and γ mean the same for the ImageNet, random or any
other encoder. With it, α = 1 and β = 10 (the defaults) stylise strongly from the content image.

Pixels are optimised directly in [-1, 1] image space. Adam steps are projected back onto [-1, 1] after
every step; L-BFGS runs unconstrained (clamping between its steps would make its curvature pairs
inconsistent; Gatys' and Johnson's implementations do not clamp either) and its result is clamped to
[-1, 1] at the end of each scale. The targets come from in-range images, so little is clipped.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..nn.vgg import VGG19Encoder, check_pooling, layer_index, load_vgg19, pools_before

DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
DEFAULT_CONTENT_LAYER = "relu4_2"
INITS = ("content", "noise", "style")
OPTIMIZERS = ("lbfgs", "adam")
PRESERVE_COLORS = ("none", "luminance", "histogram")
#: default learning rates: L-BFGS step scale (its usual 1), Adam in [-1, 1] pixel units per step
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}

# YIQ (NTSC 1953): Y = luma, I/Q = chrominance; RGB in [0, 1] → Y in [0, 1].
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                            [0.595716, -0.274453, -0.321263],
                            [0.211456, -0.522591, 0.311135]], dtype=torch.float64)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


@dataclasses.dataclass(frozen=True)
class GatysProgress:
    """What :func:`stylize_gatys` reports to its ``progress`` callback after every iteration.

    Attributes:
        scale: 0-based index of the current scale, coarse to fine; ``num_scales`` in all.
        step: 1-based iteration within this scale; ``steps`` in all at this scale.
        height, width: the image size at this scale (pixels).
        loss: the weighted total ``α L_content + β L_style + γ L_tv`` at the point evaluated.
        content_loss, style_loss, tv_loss: the unweighted terms (see the module docstring).
    """

    scale: int
    num_scales: int
    step: int
    steps: int
    height: int
    width: int
    loss: float
    content_loss: float
    style_loss: float
    tv_loss: float


# ---- losses -------------------------------------------------------------------------------------------
def gram_matrix(feat: torch.Tensor) -> torch.Tensor:
    """Normalised Gram matrix ``Ĝ = F Fᵀ / (N M)`` (Gatys et al. 2016, Eq. 3, divided by ``N M``).

    Args:
        feat: activations [B, N, H, W] (``N`` channels, ``M = H W`` positions).

    Returns:
        [B, N, N], ``Ĝ[b, i, j] = Σ_k F[b, i, k] F[b, j, k] / (N M)``.
    """
    b, n, h, w = feat.shape
    f = feat.reshape(b, n, h * w)  # [B, N, M]
    return torch.bmm(f, f.transpose(1, 2)) / (n * h * w)


def style_layer_loss(gram: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """``E_l`` of Gatys et al. 2016, Eq. 4, from normalised Gram matrices [B, N, N] (:func:`gram_matrix`):
    ``¼ Σ_ij (Ĝ_ij − Â_ij)² = 1 / (4 N² M²) Σ_ij (G_ij − A_ij)²``; mean over the batch; a scalar."""
    return 0.25 * (gram - target_gram).pow(2).sum(dim=(1, 2)).mean()


def content_loss(feat: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Gatys et al. 2016, Eq. 1 divided by ``N_l M_l``: ``½ mean (F − P)²`` over [B, N, H, W]; a scalar."""
    return 0.5 * (feat - target).pow(2).mean()


def total_variation(img: torch.Tensor) -> torch.Tensor:
    """Squared total variation of [B, C, H, W]: mean of (vertical differences)² plus mean of
    (horizontal differences)²; a scalar (0 for a constant image)."""
    tv = img.new_zeros(())
    if img.shape[-2] > 1:
        tv = tv + (img[..., 1:, :] - img[..., :-1, :]).pow(2).mean()
    if img.shape[-1] > 1:
        tv = tv + (img[..., :, 1:] - img[..., :, :-1]).pow(2).mean()
    return tv


# ---- colour ---------------------------------------------------------------------------------------------
def rgb_to_yiq(rgb: torch.Tensor) -> torch.Tensor:
    """RGB [N, 3, H, W] in [0, 1] → YIQ [N, 3, H, W] (Y in [0, 1]; I in ±0.596, Q in ±0.523)."""
    return torch.einsum("ij,njhw->nihw", _RGB_TO_YIQ.to(rgb), rgb)


def yiq_to_rgb(yiq: torch.Tensor) -> torch.Tensor:
    """YIQ [N, 3, H, W] → RGB [N, 3, H, W] (not clamped: out-of-gamut colours leave [0, 1])."""
    return torch.einsum("ij,njhw->nihw", _YIQ_TO_RGB.to(yiq), yiq)


def luminance(img: torch.Tensor) -> torch.Tensor:
    """Y of YIQ for images [N, 3, H, W] in [-1, 1] → [N, 1, H, W] in [0, 1]."""
    return rgb_to_yiq((img + 1) * 0.5)[:, :1]


def match_luminance(style_y: torch.Tensor, content_y: torch.Tensor) -> torch.Tensor:
    """Luminance matching before luminance-only transfer (Gatys et al. 2017, §5.1):
    ``L_s' = σ_c / σ_s (L_s − μ_s) + μ_c``, so the style's luminance has the content's mean and standard
    deviation. Luminances [1, 1, H, W] in [0, 1]; the result is clamped to [0, 1]."""
    mu_s, sd_s = style_y.mean(), style_y.std(unbiased=False)
    mu_c, sd_c = content_y.mean(), content_y.std(unbiased=False)
    return ((style_y - mu_s) * (sd_c / sd_s.clamp_min(1e-6)) + mu_c).clamp(0, 1)


def _sqrtm(cov: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    evals, evecs = torch.linalg.eigh(cov)
    evals = evals.clamp_min(1e-8)
    return evecs @ torch.diag(evals.rsqrt() if inverse else evals.sqrt()) @ evecs.T


def match_color_histogram(style: torch.Tensor, content: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Colour histogram matching of the style to the content before transfer (Gatys et al. 2017, §5.1;
    the linear colour transfer of Hertzmann's Image Analogies): ``x' = A (x − μ_s) + μ_c`` per pixel, with
    ``A = Σ_c^½ Σ_s^−½`` (symmetric matrix square roots) so that ``x'`` has the content's RGB mean ``μ_c``
    and covariance ``Σ_c``.

    Args:
        style: [1, 3, H, W] in [-1, 1].
        content: [1, 3, H', W'] in [-1, 1].
        eps: added to the covariances' diagonals (flat images).

    Returns:
        The recoloured style [1, 3, H, W] in [-1, 1] (clamped).
    """
    def stats(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = img.reshape(3, -1).double()  # [3, M]
        mu = x.mean(dim=1, keepdim=True)
        xc = x - mu
        return mu, xc @ xc.T / x.shape[1] + eps * torch.eye(3, dtype=x.dtype, device=x.device)

    mu_s, cov_s = stats(style)
    mu_c, cov_c = stats(content)
    a = _sqrtm(cov_c) @ _sqrtm(cov_s, inverse=True)
    x = style.reshape(3, -1).double()
    out = a @ (x - mu_s) + mu_c
    return out.reshape(style.shape).to(style.dtype).clamp(-1, 1)


# ---- the optimisation -------------------------------------------------------------------------------
def _as_image(img: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(img, torch.Tensor):
        raise ConfigError(f"{what}: expected a tensor [1, 3, H, W] in [-1, 1], got {type(img).__name__}")
    if img.ndim == 3:
        img = img.unsqueeze(0)
    if img.ndim != 4 or img.shape[0] != 1 or img.shape[1] != 3:
        raise ConfigError(f"{what}: expected one RGB image [1, 3, H, W] (or [3, H, W]), got {tuple(img.shape)}")
    if not torch.isfinite(img).all():
        raise ConfigError(f"{what}: the image has NaN or infinite values")
    return img.detach().to(torch.float32).clamp(-1, 1)


def _resize(img: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize (antialiased when shrinking) of [N, C, H, W] in [-1, 1] to ``hw``, clamped."""
    if tuple(img.shape[-2:]) == tuple(hw):
        return img
    return F.interpolate(img, size=hw, mode="bicubic", align_corners=False, antialias=True).clamp(-1, 1)


def _fit_long_side(hw: tuple[int, int], long_side: float) -> tuple[int, int]:
    h, w = hw
    f = long_side / max(h, w)
    return max(1, round(h * f)), max(1, round(w * f))


def _mix_weights(style_weights: Optional[Sequence[float]], n: int) -> list[float]:
    if style_weights is None:
        return [1.0 / n] * n
    w = [float(v) for v in style_weights]
    if len(w) != n:
        raise ConfigError(f"style weights {w}: {len(w)} values for {n} style image(s); give one per style")
    if any(not math.isfinite(v) or v < 0 for v in w) or sum(w) <= 0:
        raise ConfigError(f"style weights {w}: need non-negative numbers with a positive sum")
    return [v / sum(w) for v in w]


def _steps_per_scale(steps: Union[int, Sequence[int]], scales: int) -> list[int]:
    per = [int(steps)] * scales if isinstance(steps, int) else [int(s) for s in steps]
    if len(per) != scales:
        raise ConfigError(f"steps {per}: give one number, or one per scale ({scales}), coarse to fine")
    if any(s < 1 for s in per):
        raise ConfigError(f"steps {per}: need at least 1 iteration per scale")
    return per


def _check_weight(value: float, what: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{what} {value}: must be a finite number ≥ 0")
    return value


def scale_sizes(out_hw: tuple[int, int], scales: int) -> list[tuple[int, int]]:
    """Image sizes of the coarse-to-fine schedule: each scale halves the previous one's sides, the last
    is ``out_hw``; e.g. (512, 384) with 3 scales → [(128, 96), (256, 192), (512, 384)]."""
    h, w = out_hw
    return [(max(1, round(h / 2 ** k)), max(1, round(w / 2 ** k))) for k in range(scales - 1, -1, -1)]


def stylize_gatys(
    content: torch.Tensor,
    styles: Union[torch.Tensor, Sequence[torch.Tensor]],
    *,
    style_weights: Optional[Sequence[float]] = None,
    content_layer: str = DEFAULT_CONTENT_LAYER,
    style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
    content_weight: float = 1.0,
    style_weight: float = 10.0,
    tv_weight: float = 0.0,
    init: str = "content",
    optimizer: str = "lbfgs",
    steps: Union[int, Sequence[int]] = 300,
    lr: Optional[float] = None,
    size: Union[None, int, tuple[int, int]] = None,
    scales: int = 1,
    style_scale: float = 1.0,
    preserve_color: str = "none",
    encoder: Union[VGG19Encoder, str, os.PathLike] = "auto",
    pooling: str = "avg",
    normalize_features: bool = True,
    generator: Optional[torch.Generator] = None,
    seed: int = 0,
    progress: Optional[Callable[[GatysProgress], None]] = None,
) -> torch.Tensor:
    """Paint ``content`` in the style of ``styles`` by optimising the output's pixels (Gatys et al. 2016).

    The losses and their normalisation are in the module docstring; the paper's α/β ratios (1e-3, 1e-4)
    assume its Eq. 1 (a sum) and its rescaled ImageNet VGG, so they do not carry over numerically.

    Args:
        content: the photo, [1, 3, H, W] (or [3, H, W]) float in [-1, 1]; its aspect ratio is kept.
        styles: one style image or several, each [1, 3, H_s, W_s] in [-1, 1] (any size: resized).
        style_weights: mixing weights of several styles (≥ 0, normalised to sum to 1; default equal).
            Styles of weight 0 are skipped.
        content_layer: the layer of the content loss (default ``relu4_2``, the paper's conv4_2).
        style_layers: the layers of the style loss, equally weighted (default relu1_1 ... relu5_1).
        content_weight: α (≥ 0).
        style_weight: β (≥ 0).
        tv_weight: γ, weight of the total variation term (≥ 0; 0 = off, the paper's setting).
        init: starting image of the first scale: ``content`` (the photo), ``noise`` (white noise, uniform
            in [-1, 1], the paper's default, from ``generator``/``seed``) or ``style`` (the first style
            image of positive weight, stretched to the output size). Later scales start from the
            previous scale's result, upsampled (bicubic).
        optimizer: ``lbfgs`` (the paper's; no line search, history 100) or ``adam``.
        steps: iterations per scale: one number for every scale, or one per scale, coarse to fine. One
            L-BFGS iteration evaluates the network once (forward and backward).
        lr: step size (default 1 for L-BFGS, 0.02 pixel units in [-1, 1] for Adam).
        size: output size: the long side in pixels (aspect ratio kept), an exact ``(H, W)``, or None for
            the content's own size.
        scales: number of scales of the coarse-to-fine schedule (Gatys et al. 2017, §6): each one halves
            the previous one's sides; 1 = optimise at the output size only.
        style_scale: each style image is resized so that its long side is ``style_scale`` times the
            current scale's long side (its aspect ratio kept; Gatys et al. 2017, §6 on the style's scale).
        preserve_color: ``none``; ``luminance`` (Gatys et al. 2017, §5.1: transfer on the YIQ luminance
            only, after matching the style's luminance mean/std to the content's, then recombine with the
            content's I and Q); or ``histogram`` (recolour each style to the content's RGB mean and
            covariance before transfer, :func:`match_color_histogram`).
        encoder: a :class:`~imagegen.nn.vgg.VGG19Encoder` (moved to the content's device), or the
            ``weights`` argument of :func:`~imagegen.nn.vgg.load_vgg19` (``auto``, ``imagenet``,
            ``random`` or a path).
        pooling: ``avg`` (Gatys et al. 2016, §2: average pooling gives "slightly more appealing results";
            the default) or ``max``.
        normalize_features: divide each layer's activations by their mean over the content and style
            images at the current scale (the paper's network normalisation, §2, which rescales every
            filter to mean activation 1 over ImageNet images, done per layer and on the images at hand):
            the weights then mean the same for the ImageNet, random or any other encoder. False: the
            raw activations, exactly Eq. 1 and 4 on the encoder's own scale.
        generator: random generator of the noise initialisation (default: one seeded with ``seed``).
        seed: seed of the noise when no ``generator`` is given (the random encoder has its own seed 0).
        progress: called with a :class:`GatysProgress` after every iteration.

    Returns:
        The stylised image, float32 [1, 3, H_out, W_out] in [-1, 1], on the content's device.

    Raises:
        ConfigError: bad images, options or weights; an output (or its coarsest scale, or a style
            image) too small for the deepest layer used; an encoder file of the wrong layout.
        WeightsError: ``encoder="imagenet"`` and no weights file found.
    """
    content = _as_image(content, "content")
    style_list = [styles] if isinstance(styles, torch.Tensor) else list(styles)
    if not style_list:
        raise ConfigError("no style image; give at least one")
    style_list = [_as_image(s, f"style image {i + 1}") for i, s in enumerate(style_list)]
    mix = _mix_weights(style_weights, len(style_list))
    alpha = _check_weight(content_weight, "content weight")
    beta = _check_weight(style_weight, "style weight")
    gamma = _check_weight(tv_weight, "tv weight")
    if alpha == 0 and beta == 0:
        raise ConfigError("content weight and style weight are both 0: nothing to transfer")
    for value, choices, what in ((init, INITS, "init"), (optimizer, OPTIMIZERS, "optimizer"),
                                 (preserve_color, PRESERVE_COLORS, "preserve_color")):
        if value not in choices:
            raise ConfigError(f"{what} {value!r}: use one of {', '.join(choices)}")
    if int(scales) < 1:
        raise ConfigError(f"scales {scales}: must be ≥ 1")
    scales = int(scales)
    per_scale = _steps_per_scale(steps, scales)
    lr = DEFAULT_LR[optimizer] if lr is None else float(lr)
    if not (math.isfinite(lr) and lr > 0):
        raise ConfigError(f"learning rate {lr}: must be > 0")
    if not (math.isfinite(style_scale) and style_scale > 0):
        raise ConfigError(f"style scale {style_scale}: must be > 0")
    pooling = check_pooling(pooling)
    layer_index(content_layer)
    style_layers = tuple(dict.fromkeys(style_layers))
    for name in style_layers:
        layer_index(name)
    if beta > 0 and not style_layers:
        raise ConfigError("no style layers; give at least one, or set the style weight to 0")

    # output size and the coarse-to-fine schedule
    if size is None:
        out_hw = tuple(content.shape[-2:])
    elif isinstance(size, int):
        if size < 1:
            raise ConfigError(f"size {size}: must be ≥ 1 pixel")
        out_hw = _fit_long_side(tuple(content.shape[-2:]), size)
    else:
        out_hw = tuple(int(v) for v in size)
        if len(out_hw) != 2 or min(out_hw) < 1:
            raise ConfigError(f"size {size}: give the long side or (height, width) in pixels")
    sizes = scale_sizes(out_hw, scales)
    layers: list[str] = ([content_layer] if alpha > 0 else []) + (list(style_layers) if beta > 0 else [])
    deepest = max(layers, key=layer_index)
    need = 2 ** pools_before(deepest)
    if min(sizes[0]) < need:
        raise ConfigError(f"the {'coarsest scale' if scales > 1 else 'output'} is {sizes[0][1]}x{sizes[0][0]} "
                          f"pixels (width x height); VGG-19 layer {deepest} needs at least {need} per side: use a "
                          f"larger size{' or fewer scales' if scales > 1 else ''}")

    device = content.device
    if not isinstance(encoder, VGG19Encoder):
        encoder = load_vgg19(encoder)
    encoder = encoder.to(device).freeze()
    if generator is None:
        generator = torch.Generator().manual_seed(int(seed))

    # colour preservation (Gatys et al. 2017, §5.1): the images the network sees
    content_out = _resize(content, out_hw)  # [1, 3, H_out, W_out], also the source of I and Q
    numbers = [i + 1 for i, w in enumerate(mix) if w > 0]  # 1-based numbers of the styles used, for messages
    active = [(w, s) for w, s in zip(mix, style_list) if w > 0]
    if preserve_color == "histogram":
        active = [(w, match_color_histogram(s, content_out)) for w, s in active]
    luma = preserve_color == "luminance"
    if luma:
        content_y = luminance(content_out)
        active = [(w, (match_luminance(luminance(s), content_y) * 2 - 1).expand(-1, 3, -1, -1))
                  for w, s in active]
        work_content = (content_y * 2 - 1).expand(-1, 3, -1, -1)  # grey RGB in [-1, 1]
    else:
        work_content = content_out
    for number, (_, s) in zip(numbers, active):
        s_hw = _fit_long_side(tuple(s.shape[-2:]), max(sizes[0]) * style_scale)
        if min(s_hw) < need and beta > 0:
            raise ConfigError(f"style image {number} would be {s_hw[1]}x{s_hw[0]} pixels (width x height) at the "
                              f"coarsest scale; VGG-19 layer {deepest} needs at least {need} per side: use a larger "
                              f"style scale or size, or fewer scales")

    def to_rgb(x: torch.Tensor) -> torch.Tensor:  # the optimised image → what the encoder sees
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    x: Optional[torch.Tensor] = None
    for k, (hw, n_steps) in enumerate(zip(sizes, per_scale)):
        with torch.no_grad():
            c_img = _resize(work_content, hw)
            c_feats = encoder(c_img, layers, pooling)
            s_feats = [(w, encoder(_resize(s, _fit_long_side(tuple(s.shape[-2:]), max(hw) * style_scale)),
                                   style_layers, pooling)) for w, s in active] if beta > 0 else []
            # per-layer feature scale: 1 / mean activation over the content and style images (or 1)
            scale = {n: 1.0 for n in layers}
            if normalize_features:
                for n in layers:
                    means = [float(c_feats[n].mean())] + [float(f[n].mean()) for _, f in s_feats if n in f]
                    m = sum(means) / len(means)
                    scale[n] = 1.0 / m if m > 1e-12 else 1.0
            p_target = c_feats[content_layer] * scale[content_layer] if alpha > 0 else None
            style_targets = [(w, {n: gram_matrix(f[n] * scale[n]) for n in style_layers}) for w, f in s_feats]
            del c_feats, s_feats
            if x is None:
                channels = 1 if luma else 3
                if init == "content":
                    start = c_img[:, :channels]
                elif init == "noise":
                    start = (torch.rand((1, channels, *hw), generator=generator) * 2 - 1).to(device)
                else:
                    start = _resize(active[0][1], hw)[:, :channels]
            else:
                start = _resize(x, hw)
        x = start.clone().contiguous().requires_grad_(True)

        def evaluate(img: torch.Tensor) -> tuple[torch.Tensor, float, float, float]:
            feats = encoder(to_rgb(img), layers, pooling)
            zero = img.new_zeros(())
            l_c = content_loss(feats[content_layer] * scale[content_layer], p_target) if alpha > 0 else zero
            l_s = zero
            for w, grams in style_targets:
                e = sum(style_layer_loss(gram_matrix(feats[n] * scale[n]), grams[n]) for n in style_layers)
                l_s = l_s + w * e / len(style_layers)
            l_tv = total_variation(img) if gamma > 0 else zero
            total = alpha * l_c + beta * l_s + gamma * l_tv
            return total, float(l_c.detach()), float(l_s.detach()), float(l_tv.detach())

        last: dict[str, float] = {}
        kappa: list[float] = []  # the objective's constant factor at this scale (set on the first evaluation)

        def closure() -> torch.Tensor:
            opt.zero_grad(set_to_none=False)
            total, l_c, l_s, l_tv = evaluate(x)
            total.backward()
            last.update(loss=float(total.detach()), content_loss=l_c, style_loss=l_s, tv_loss=l_tv)
            if not kappa:  # gradient RMS 1 at the start of each scale (see below)
                rms = float(x.grad.pow(2).mean().sqrt())
                kappa.append(1.0 / rms if math.isfinite(rms) and rms > 0 else 1.0)
            x.grad.mul_(kappa[0])
            return total.detach() * kappa[0]

        # The objective is multiplied by a constant κ per scale so that its gradient has RMS 1 at the
        # start: the minimiser is the same, but L-BFGS's absolute thresholds (curvature pairs with
        # sᵀy ≤ 1e-10 are dropped) and Adam's ε no longer stall the optimisation when the losses are small.
        if optimizer == "adam":
            opt = torch.optim.Adam([x], lr=lr)
        else:
            opt = torch.optim.LBFGS([x], lr=lr, max_iter=1, history_size=100, tolerance_grad=0.0,
                                    tolerance_change=0.0)
        for step in range(1, n_steps + 1):
            opt.step(closure)  # L-BFGS keeps its history across calls: one call = one iteration
            if optimizer == "adam":
                with torch.no_grad():
                    x.clamp_(-1, 1)  # projected gradient: back into the image range
            if progress is not None:
                progress(GatysProgress(scale=k, num_scales=scales, step=step, steps=n_steps, height=hw[0],
                                       width=hw[1], **last))
        x = x.detach().clamp_(-1, 1)

    assert x is not None
    if luma:  # the optimised luminance with the content's chrominance (I, Q)
        yiq = rgb_to_yiq((content_out + 1) * 0.5)
        yiq = torch.cat([(x + 1) * 0.5, yiq[:, 1:]], dim=1)
        return (yiq_to_rgb(yiq).clamp(0, 1) * 2 - 1).to(torch.float32)
    return x.to(torch.float32)
