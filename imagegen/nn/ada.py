"""Adaptive discriminator augmentation (ADA).

Karras, Aittala, Hellsten, Laine, Lehtinen & Aila, "Training Generative Adversarial Networks with
Limited Data", NeurIPS 2020. Every image D sees, real or fake, in D's and in G's step, first goes
through :func:`ada_augment` with the current probability ``p`` (§2.1, Figure 2: stochastic
discriminator augmentation); G is trained through the augmentation, which is why every transform is
differentiable. Each transform is applied to each image independently with probability ``p``;
because every transform is invertible (in distribution) and skipped with probability ``1 - p``,
the augmentations do not leak into G's images as long as ``p`` stays below about 0.8 (§2.2).
:class:`AdaController` tunes ``p`` during training from D's outputs on the reals (§3, Eq. (1)).

Implemented groups (§2.2; distributions and parameters as in Appendix B and the defaults of the
official implementation). "Applied" means the transform's random parameter is used; for the
coin-toss transforms (x-flip, luma flip) an applied transform still leaves the image as it is half
the time, and a 90° rotation a quarter of the time.

- ``"blit"`` (pixel blitting): x-flip; rotation by k·90°, k uniform in {0, 1, 2, 3}; integer
  translation by ``round(u · size)`` pixels, ``u ~ U(-0.125, 0.125)``, in x and y.
- ``"geom"`` (general geometric): isotropic scaling by ``s ~ lognormal(0, (0.2 ln 2)²)``; arbitrary
  rotation ``θ ~ U(-π, π)`` applied before *and* after the anisotropic scaling, each with
  probability ``p_rot = 1 - sqrt(1 - p)`` so that the image is rotated at all with probability
  ``p``; anisotropic scaling by ``(s, 1/s)``, ``s ~ lognormal(0, (0.2 ln 2)²)``; fractional
  translation by ``t ~ N(0, 0.125²)`` times the image size.
- ``"color"``: brightness (add ``b ~ N(0, 0.2²)``), contrast (scale by
  ``lognormal(0, (0.5 ln 2)²)``), luma flip (Householder reflection of the colour along the luma
  axis), hue rotation (``θ ~ U(-π, π)`` about the luma axis) and saturation (scale chroma by
  ``lognormal(0, (ln 2)²)``), composed into one 4×4 colour matrix per image. Images in [-1, 1]
  are treated as centred colours (0 = mid-grey), as in the official code. RGB images get all
  five; grey images (C = 1) brightness, contrast and luma flip only.

Not implemented: the image-space filtering group (band amplification with a wavelet filter bank)
and the corruption group (additive RGB noise, cutout); use :mod:`imagegen.nn.diffaugment` for
cutout.

Resampling (Appendix B, as the official code): an image whose transform sends pixel centres to
pixel centres (flips, 90° turns, integer shifts) is copied exactly; any other is reflection-padded,
upsampled 2× with the ``sym6`` wavelet low-pass filter, sampled bilinearly at twice the output
resolution and filtered and decimated back, so that rotating or shrinking aliases far less, in the
image D sees and in the gradient G receives through it (:func:`affine_warp`). Until 2026-12-02 this toolkit
resampled once with bilinear ``grid_sample`` and no filter (``affine_warp(..., antialias=False)``);
the ADA runs in docs/stylegan.md before that date used it.

All transforms of the ``blit`` and ``geom`` groups are composed into one 3×3 matrix per image, so
each image is resampled once. Images whose matrix (or colour matrix) is the identity are passed
through bit for bit.

Typical use::

    ada = AdaController(target=0.6)
    # D step
    logits_real = D(ada_augment(x, ada.p, gen, groups=("blit", "geom", "color")))
    logits_fake = D(ada_augment(G(z).detach(), ada.p, gen, groups=("blit", "geom", "color")))
    ada.accumulate(logits_real)
    ada.update(batch_size_total=global_batch_size)
    # G step: logits_fake = D(ada_augment(G(z), ada.p, gen, groups=...))
"""
from __future__ import annotations

import functools
import math
from typing import Any, Iterable, Optional

import torch
import torch.nn.functional as F

from ..errors import CheckpointError, ConfigError

#: the augmentation groups :func:`ada_augment` knows
GROUPS: tuple[str, ...] = ("blit", "geom", "color")

# parameters of the transforms (Appendix B; official AugmentPipe defaults)
XINT_MAX = 0.125  #: largest integer translation, as a fraction of the image size
SCALE_STD = 0.2  #: log2 standard deviation of isotropic scaling
ROTATE_MAX = 1.0  #: range of arbitrary rotation, 1 = the full circle [-π, π]
ANISO_STD = 0.2  #: log2 standard deviation of anisotropic scaling
XFRAC_STD = 0.125  #: standard deviation of fractional translation, as a fraction of the image size
BRIGHTNESS_STD = 0.2  #: standard deviation of the brightness offset (images in [-1, 1])
CONTRAST_STD = 0.5  #: log2 standard deviation of contrast
HUE_MAX = 1.0  #: range of hue rotation, 1 = the full circle
SATURATION_STD = 1.0  #: log2 standard deviation of saturation


def check_groups(groups: Iterable[str]) -> tuple[str, ...]:
    """Validate the augmentation groups of :func:`ada_augment`.

    Args:
        groups: names from :data:`GROUPS` (a string such as ``"blit"`` counts as one name).

    Returns:
        The names as a tuple, in the order given.

    Raises:
        ConfigError: a name is not in :data:`GROUPS`.
    """
    names = (groups,) if isinstance(groups, str) else tuple(groups)
    bad = [g for g in names if g not in GROUPS]
    if bad:
        raise ConfigError(f"unknown ADA augmentation group {bad[0]!r}: choose from {', '.join(GROUPS)}")
    return names


def ada_augment(img: torch.Tensor, p: float, generator: Optional[torch.Generator] = None,
                groups: Iterable[str] = ("blit", "geom"), antialias: bool = True) -> torch.Tensor:
    """Augment each image with the ADA pipeline at probability ``p`` (Karras et al. 2020, §2.2, App. B).

    Every transform of the chosen groups is applied to every image independently with probability
    ``p`` (the arbitrary rotation: pre- and post-rotation each with ``1 - sqrt(1 - p)``, so rotated at
    all with ``p``). The groups run in the order blit → geom → color whatever the order given; blit
    and geom are composed into one affine matrix per image and resampled once (see
    :func:`affine_warp`). Differentiable w.r.t. ``img``.

    For a given batch shape and set of groups, a call with ``p > 0`` always draws the same amount
    of random numbers, so a generator's stream does not depend on ``p``; ``p == 0`` draws none.

    Args:
        img: [N, C, H, W] float (float32 in [-1, 1] in this toolkit), any device, may require grad.
            The ``color`` group needs C = 3 (RGB) or C = 1 (grey).
        p: augmentation probability in [0, 1] (:attr:`AdaController.p`). ``p == 0`` returns ``img``
            itself.
        generator: source of randomness. Random numbers are drawn on the generator's device (a CPU
            generator is the usual choice) and moved to ``img``'s device, so a seeded generator gives
            the same augmentation on every device. None draws from torch's global RNG on ``img``'s
            device.
        groups: which groups to apply, from :data:`GROUPS`.
        antialias: resample geometric transforms through the 2× ``sym6``-filtered grid (the paper's
            way, default) or with one unfiltered bilinear sample (see :func:`affine_warp`).

    Returns:
        [N, C, H, W], same dtype and device as ``img``. ``blit`` keeps the input's values (copies
        pixels); ``geom``'s filtered resampling can ring slightly beyond the input's range at sharp
        edges (see :func:`affine_warp`); ``color`` can leave [-1, 1].

    Raises:
        ConfigError: ``p`` is not in [0, 1] or a group is unknown.
        ValueError: ``img`` is not 4-D, or ``color`` is asked for with C not 1 or 3.
    """
    names = check_groups(groups)
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"ADA augmentation probability p must be in [0, 1], not {p!r}")
    if img.ndim != 4:
        raise ValueError(f"expected images [N, C, H, W], got shape {tuple(img.shape)}")
    N, C, H, W = img.shape
    if "color" in names and C not in (1, 3):
        raise ValueError(f"the ADA color group needs RGB or grey images (C = 3 or 1), got C = {C}")
    if p == 0.0 or not names:
        return img
    draw = _Draw(generator, img.device)

    if "blit" in names or "geom" in names:
        G_inv = torch.eye(3, device=img.device).repeat(N, 1, 1)  # [N, 3, 3] output px → input px
        if "blit" in names:
            G_inv = G_inv @ _blit_matrix(N, H, W, p, draw)
        if "geom" in names:
            G_inv = G_inv @ _geom_matrix(N, H, W, p, draw)
        img = affine_warp(img, G_inv, antialias=antialias)

    if "color" in names:
        img = color_transform(img, _color_matrix(N, p, draw))
    return img


def affine_warp(img: torch.Tensor, G_inv: torch.Tensor, antialias: bool = True) -> torch.Tensor:
    """Resample each image with its own affine map from output to input pixel coordinates.

    Coordinates are in pixels with the origin at the image centre, x to the right and y down (pixel
    (i, j) has its centre at ``(j + 0.5 - W/2, i + 0.5 - H/2)``); the output pixel at ``q`` takes the
    input value at ``G_inv @ q``. Points outside the image are mirrored back in about the edge pixels'
    centres, the edge pixel not repeated (``F.pad(mode="reflect")``, as the official code pads).
    Images whose ``G_inv`` is exactly the identity are returned unchanged, bit for bit; images whose
    map sends every pixel centre to a pixel centre (flips, 90° turns of square images, integer
    shifts) are copied pixel for pixel (exact values).

    Every other image is resampled as in Karras et al. 2020 ("Training GANs with Limited Data",
    Appendix B; the official ``AugmentPipe``): reflection-padded as far as the map reaches, upsampled
    2× with the ``sym6`` low-pass filter (:data:`SYM6`), sampled bilinearly on a 2× output grid and
    low-pass filtered and decimated back to [H, W]. The filter has negative taps, so such images can
    ring a little beyond the input's range near sharp edges. With ``antialias=False`` every image
    that is not the identity is instead sampled once, bilinearly with ``grid_sample``'s
    ``padding_mode="reflection"``, which mirrors about the image's outer border and so repeats the
    edge pixel (this toolkit's behaviour before 2026-12-02: shrinking and rotating then alias).

    Args:
        img: [N, C, H, W] float, any device.
        G_inv: [N, 3, 3] homogeneous matrices (last row ``[0, 0, 1]``), any float dtype, on ``img``'s
            device. With ``antialias``, points more than H - 1 (W - 1) pixels beyond the image (past
            what one reflection covers) read as 0; ADA's maps stay well within.
        antialias: use the filtered 2× resampling for the images that need interpolation, and the
            official reflection for every image.

    Returns:
        [N, C, H, W], same dtype and device; differentiable w.r.t. ``img`` (and, on the unfiltered
        path, ``G_inv``).

    Raises:
        ValueError: ``img`` is not 4-D or ``G_inv`` is not [N, 3, 3].
    """
    if img.ndim != 4:
        raise ValueError(f"expected images [N, C, H, W], got shape {tuple(img.shape)}")
    N, C, H, W = img.shape
    if G_inv.shape != (N, 3, 3):
        raise ValueError(f"expected matrices [{N}, 3, 3], got shape {tuple(G_inv.shape)}")
    G_inv = G_inv.to(device=img.device, dtype=torch.float32)
    identity = (G_inv == torch.eye(3, device=img.device)).flatten(1).all(dim=1)  # [N] bool
    if not antialias:
        return torch.where(identity[:, None, None, None], img, _bilinear_warp(img, G_inv))
    exact = _maps_centres_to_centres(G_inv, H, W) & ~identity  # [N] bool: pixel copies
    smooth = ~(identity | exact)  # [N] bool: needs interpolation
    out = img
    for chosen, warp in ((exact, _copy_warp), (smooth, _filtered_warp)):
        if bool(chosen.any()):
            idx = chosen.nonzero().flatten()
            out = out.index_copy(0, idx, warp(img[idx], G_inv[idx]))
    return out


#: ``sym6`` wavelet decomposition low-pass filter (Daubechies' least-asymmetric wavelet with 6
#: vanishing moments; values as PyWavelets' ``pywt.Wavelet("sym6").dec_lo``, sum √2, unit norm): the
#: resampling filter of ADA's geometric transforms (Karras et al. 2020, Appendix B).
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)


def _bilinear_warp(img: torch.Tensor, G_inv: torch.Tensor) -> torch.Tensor:
    """One bilinear ``grid_sample`` of [N, C, H, W] with [N, 3, 3] float32 maps, ``grid_sample``'s
    reflection padding (about the outer border: the edge pixel repeated)."""
    H, W = img.shape[-2:]
    return _sample(img, G_inv, H, W, mode="bilinear", padding_mode="reflection")


def _maps_centres_to_centres(G_inv: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """[N] bool: the map's linear part is a signed permutation and the corner pixels' centres land
    on pixel centres, so that every output pixel copies one input pixel."""
    A = G_inv[:, :2, :2]
    signed_perm = ((A.abs() == 1) | (A == 0)).flatten(1).all(dim=1) & (A.abs().sum(dim=1) == 1).all(dim=1)
    cx, cy = (W - 1) / 2, (H - 1) / 2
    corners = torch.tensor([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1.0, 1.0, 1.0, 1.0]],
                           device=G_inv.device)  # [3, 4]
    src = (G_inv @ corners)[:, :2, :]  # [N, 2, 4] in centred pixel coordinates
    offset = torch.tensor([W / 2 - 0.5, H / 2 - 0.5], device=G_inv.device)[None, :, None]
    on_centres = ((src + offset) - (src + offset).round()).abs().amax(dim=(1, 2)) < 1e-4
    return signed_perm & on_centres


def _fir(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Correlate each row of [R, n] with the 1-D filter ``f``, 'valid' region only: [R, n - len(f) + 1]."""
    return F.conv1d(x[:, None, :], f[None, None, :])[:, 0, :]


def _upsample2x_1d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """[R, n] → [R, 2n]: a zero inserted after every sample, then convolved with ``f`` (sum 1) at
    gain 2 (along one axis, the official ``upsample2d`` with its default padding)."""
    R, n = x.shape
    x = torch.stack([x, torch.zeros_like(x)], dim=2).reshape(R, 2 * n)
    k = f.numel()
    return _fir(F.pad(x, [(k + 1) // 2, (k - 2) // 2]), f.flip(0) * 2)  # true convolution with f


def _downsample2x_1d(x: torch.Tensor, f: torch.Tensor, crop: int) -> torch.Tensor:
    """[R, n] cropped, correlated with ``f`` (sum 1), every second sample kept (along one axis, the
    official ``downsample2d(x, f, down=2, padding=-crop, flip_filter=True)``)."""
    k = f.numel()
    c0, c1 = crop - (k - 1) // 2, crop - (k - 2) // 2  # the crop, net of the filter's own padding
    return _fir(x[:, c0:x.shape[1] - c1], f)[:, ::2]


def _resampling_matrix(kind: str, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The linear map of :func:`_upsample2x_1d` (``kind="up"``) or of :func:`_downsample2x_1d` with
    the crop of :func:`_filtered_warp` (``"down"``) on length-``n`` signals, as an [n, n_out] matrix
    (``y = x @ M``): two dense matrix products run the 2-D filtering several times faster on a CPU
    than depthwise or strided-window convolutions do.

    The padded length of the upsampled images changes with every batch's maps; the upsampling's
    matrix only depends on ``2 i - j`` (zero padding, no wrap), so the one for ``n`` is the top-left
    [n, 2n] block of any larger one, and one matrix per power of two is cached and sliced."""
    if kind == "up":
        size = 1 << max(n - 1, 1).bit_length()  # the next power of two ≥ n (≥ 2)
        return _dense_resampling_matrix("up", size, dtype, device)[:n, :2 * n]
    return _dense_resampling_matrix(kind, n, dtype, device)


@functools.lru_cache(maxsize=32)
def _dense_resampling_matrix(kind: str, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """:func:`_resampling_matrix` computed from its filter for exactly length ``n``."""
    f = torch.tensor(SYM6, dtype=torch.float64)
    f = f / f.sum()
    eye = torch.eye(n, dtype=torch.float64)
    M = _upsample2x_1d(eye, f) if kind == "up" else _downsample2x_1d(eye, f, crop=2 * (len(SYM6) // 4))
    return M.to(dtype=dtype, device=device)


def _separable(x: torch.Tensor, kind: str) -> torch.Tensor:
    """[N, C, H, W] → [N, C, H', W'] with :func:`_resampling_matrix` ``kind`` along y and x."""
    H, W = x.shape[-2:]
    M_y = _resampling_matrix(kind, H, x.dtype, x.device)
    M_x = _resampling_matrix(kind, W, x.dtype, x.device)
    return M_y.T @ (x @ M_x)


def _reflect_pad_to_reach(img: torch.Tensor, G_inv: torch.Tensor,
                          extra: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Reflection-pad [N, C, H, W] (``F.pad(mode="reflect")``, as the official ``AugmentPipe``) as far
    as the [N, 3, 3] float32 maps reach from the output's corner pixels, plus ``extra`` pixels, at
    most H - 1 and W - 1 per side; returns the padded images and the maps from output pixels to
    the padded images' centred pixel coordinates."""
    N, C, H, W = img.shape
    dev = img.device
    cx, cy = (W - 1) / 2, (H - 1) / 2
    corners = torch.tensor([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1.0, 1.0, 1.0, 1.0]], device=dev)
    reach = (G_inv @ corners)[:, :2, :].permute(1, 0, 2).flatten(1)  # [2 (x, y), N·4]
    margin = torch.cat([-reach, reach]).amax(dim=1)  # [x0, y0, x1, y1] furthest corner from the centre
    margin = margin + torch.tensor([extra - cx, extra - cy] * 2, device=dev)
    margin = margin.clamp(min=0).minimum(torch.tensor([W - 1.0, H - 1.0] * 2, device=dev))
    mx0, my0, mx1, my1 = (int(m) for m in margin.ceil().tolist())
    x = F.pad(img, [mx0, mx1, my0, my1], mode="reflect")
    G = _translate(torch.full((N,), (mx0 - mx1) / 2, device=dev),
                   torch.full((N,), (my0 - my1) / 2, device=dev)) @ G_inv
    return x, G


def _sample(x: torch.Tensor, G: torch.Tensor, out_h: int, out_w: int, mode: str,
            padding_mode: str = "zeros") -> torch.Tensor:
    """``grid_sample`` [N, C, h, w] at [N, 3, 3] maps from centred output pixel coordinates of an
    [out_h, out_w] grid to centred pixel coordinates of ``x`` (``affine_grid`` works in coordinates
    normalised by the half sizes, hence the conjugation with S); outside points as ``padding_mode``."""
    N, C, h, w = x.shape
    S = torch.diag(torch.tensor([2.0 / w, 2.0 / h, 1.0], device=x.device))
    S_inv = torch.diag(torch.tensor([out_w / 2.0, out_h / 2.0, 1.0], device=x.device))
    theta = (S @ G @ S_inv)[:, :2, :].to(x.dtype)  # [N, 2, 3]
    grid = F.affine_grid(theta, [N, C, out_h, out_w], align_corners=False)  # [N, out_h, out_w, 2]
    return F.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=False)


def _copy_warp(img: torch.Tensor, G_inv: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] with maps that send pixel centres to pixel centres (:func:`_maps_centres_to_centres`):
    every output pixel a copy of one input pixel, mirrored as :func:`_reflect_pad_to_reach` pads."""
    H, W = img.shape[-2:]
    x, G = _reflect_pad_to_reach(img, G_inv, extra=0)
    return _sample(x, G, H, W, mode="nearest")


def _filtered_warp(img: torch.Tensor, G_inv: torch.Tensor) -> torch.Tensor:
    """Resample [N, C, H, W] with [N, 3, 3] float32 maps through a 2× ``sym6``-filtered grid
    (Karras et al. 2020, Appendix B): reflection-pad as far as the maps reach (at most H - 1 and
    W - 1 per side), upsample, sample bilinearly at 2× the output size plus the filter's margin,
    filter and decimate."""
    N, C, H, W = img.shape
    dev = img.device
    fpad = len(SYM6) // 4  # margin of output pixels the decimating filter needs on each side
    x, G = _reflect_pad_to_reach(img, G_inv, extra=2 * fpad)  # G: output px → padded input px
    x = _separable(x, "up")
    # → upsampled input px, on a 2× output grid; the upsampling's half-pixel phase is the
    # conjugation with a shift of -0.5 (as the official code)
    two = torch.full((N,), 2.0, device=dev)
    half = torch.full((N,), -0.5, device=dev)
    G = _scale_inv(1 / two, 1 / two) @ G @ _scale_inv(two, two)
    G = _translate(half, half) @ G @ _translate_inv(half, half)
    x = _sample(x, G, (H + 2 * fpad) * 2, (W + 2 * fpad) * 2, mode="bilinear")
    return _separable(x, "down")


def color_transform(img: torch.Tensor, C_mat: torch.Tensor) -> torch.Tensor:
    """Apply a homogeneous 4×4 colour matrix per image (``rgb_out = C[:3, :3] @ rgb + C[:3, 3]``).

    For grey images (C = 1) the matrix is reduced as in the official code: the grey value is scaled
    by the mean row sum of ``C[:3, :3]`` and offset by the mean of ``C[:3, 3]``. Images whose matrix
    is exactly the identity are returned unchanged, bit for bit.

    Args:
        img: [N, C, H, W] float with C = 3 (RGB) or 1 (grey); values centred on 0 (as [-1, 1] is).
        C_mat: [N, 4, 4] colour matrices on ``img``'s device.

    Returns:
        [N, C, H, W], same dtype and device; differentiable w.r.t. ``img``.

    Raises:
        ValueError: C is not 1 or 3, or ``C_mat`` is not [N, 4, 4].
    """
    N, C, H, W = img.shape
    if C not in (1, 3):
        raise ValueError(f"colour transforms need RGB or grey images (C = 3 or 1), got C = {C}")
    if C_mat.shape != (N, 4, 4):
        raise ValueError(f"expected colour matrices [{N}, 4, 4], got shape {tuple(C_mat.shape)}")
    C_mat = C_mat.to(device=img.device, dtype=torch.float32)
    identity = (C_mat == torch.eye(4, device=img.device)).flatten(1).all(dim=1)  # [N] bool
    C_mat = C_mat.to(img.dtype)
    flat = img.reshape(N, C, H * W)  # [N, C, HW]
    if C == 3:
        out = C_mat[:, :3, :3] @ flat + C_mat[:, :3, 3:]  # [N, 3, HW]
    else:
        rows = C_mat[:, :3, :].mean(dim=1)  # [N, 4]
        out = flat * rows[:, :3].sum(dim=1)[:, None, None] + rows[:, 3][:, None, None]  # [N, 1, HW]
    return torch.where(identity[:, None, None, None], img, out.reshape(N, C, H, W))


class AdaController:
    """Tunes the ADA probability ``p`` from D's outputs on the reals (Karras et al. 2020, §3).

    The overfitting heuristic is ``r_t = E[sign(D(x_real))]`` (Eq. (1)): the fraction of reals that
    D scores positive, mapped to [-1, 1]. Every ``interval`` D steps ``p`` moves by
    ``sign(r_t - target) · images / (speed_kimg · 1000)``, where ``images`` is the number of real
    images in those steps (``batch_size · interval`` at a fixed batch size), so ``p`` can climb from 0
    to 1 in ``speed_kimg`` thousand images; it is clamped to [0, 1]. Defaults are the paper's:
    target 0.6, every 4 minibatches, 500 kimg.

    Use: after each D step call :meth:`accumulate` with the real logits and then :meth:`update` with
    the global batch size; pass :attr:`p` to :func:`ada_augment`. The signs are accumulated on the
    logits' device (no host sync per step); :meth:`update` reads them once per interval.

    **Distributed training.** Each process sees only its own reals, so the accumulators must be
    summed across processes before ``r_t`` is computed, or the processes' ``p`` drift apart.
    :meth:`update` does this with one ``torch.distributed.all_reduce`` of ``[sum of signs, count]``
    when ``all_reduce`` is true (by default whenever ``torch.distributed`` is initialised), so every
    process computes the same ``p``. Every process must then call :meth:`update` equally often.

    With ``fixed=True`` :meth:`update` still measures ``r_t`` every interval but leaves ``p`` where
    it started (the paper's fixed-``p`` runs, §2.3; the official ``--aug fixed --p``).

    Attributes:
        p: current augmentation probability in [0, 1] (starts at ``p``, default 0).
        fixed: ``p`` is held, not steered.
        target: target value of ``r_t`` in [-1, 1].
        interval: D steps between adjustments.
        speed_kimg: thousands of images for ``p`` to go from 0 to 1.
        rt: ``r_t`` of the last adjustment (None before the first), for logging.
    """

    def __init__(self, target: float = 0.6, interval: int = 4, speed_kimg: float = 500.0,
                 p: float = 0.0, fixed: bool = False) -> None:
        """Args:
            target: target ``r_t`` in [-1, 1] (the paper: 0.6).
            interval: adjust ``p`` every this many D steps, >= 1 (the paper: 4).
            speed_kimg: thousands of images for ``p`` to rise from 0 to 1, > 0 (the paper: 500).
            p: initial probability in [0, 1].
            fixed: hold ``p`` (only measure ``r_t``).

        Raises:
            ConfigError: a value is out of range.
        """
        if not -1.0 <= float(target) <= 1.0:
            raise ConfigError(f"ADA target must be in [-1, 1] (it is compared with E[sign(D(real))]), "
                              f"not {target!r}")
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ConfigError(f"ADA interval must be a whole number of D steps >= 1, not {interval!r}")
        if not float(speed_kimg) > 0:
            raise ConfigError(f"ADA speed_kimg must be a positive number of thousands of images, "
                              f"not {speed_kimg!r}")
        if not 0.0 <= float(p) <= 1.0:
            raise ConfigError(f"ADA probability p must be in [0, 1], not {p!r}")
        self.target = float(target)
        self.interval = interval
        self.speed_kimg = float(speed_kimg)
        self.p = float(p)
        self.fixed = bool(fixed)
        self.rt: Optional[float] = None
        self._acc: Optional[torch.Tensor] = None  # [2]: sum of signs, count (on the logits' device)
        self._steps = 0  # update() calls since the last adjustment
        self._images = 0  # images in those steps

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Add the signs of D's logits on a batch of real images.

        Args:
            real_logits: D's raw outputs on (augmented) reals, any shape (e.g. [N] or [N, 1]), any
                float dtype and device; detached here. Positive = "real".
        """
        signs = torch.sign(real_logits.detach()).flatten()
        dtype = _acc_dtype(signs.device)
        stats = torch.stack([signs.to(dtype).sum(), torch.tensor(float(signs.numel()), dtype=dtype,
                                                                  device=signs.device)])  # [2]
        if self._acc is None:
            self._acc = stats
        else:
            self._acc = self._acc.to(device=signs.device, dtype=dtype) + stats

    def update(self, batch_size_total: int, all_reduce: Optional[bool] = None) -> Optional[float]:
        """Count one D step and, every :attr:`interval` steps, adjust :attr:`p`.

        Args:
            batch_size_total: real images in this D step over all processes (the global batch size).
            all_reduce: sum the accumulators over ``torch.distributed`` processes before computing
                ``r_t``; None (the default) means "if ``torch.distributed`` is available and
                initialised", decided at call time. All processes must call :meth:`update` together.

        Returns:
            ``r_t`` when it was measured in this call (and ``p`` adjusted, unless :attr:`fixed`), else
            None (also when no logits were accumulated in the interval, in which case ``p`` is left
            as it is).

        Raises:
            ValueError: ``batch_size_total`` is negative.
        """
        if batch_size_total < 0:
            raise ValueError(f"batch_size_total must be >= 0, not {batch_size_total}")
        self._steps += 1
        self._images += int(batch_size_total)
        if self._steps < self.interval:
            return None
        if all_reduce is None:
            all_reduce = torch.distributed.is_available() and torch.distributed.is_initialized()
        stats = self._acc
        if all_reduce:
            device = _dist_device()
            stats = (torch.zeros(2, dtype=_acc_dtype(device), device=device) if stats is None
                     else stats.to(device=device, dtype=_acc_dtype(device)))
            torch.distributed.all_reduce(stats, op=torch.distributed.ReduceOp.SUM)
        sign_sum, count = stats.tolist() if stats is not None else (0.0, 0.0)
        images = self._images
        self._acc, self._steps, self._images = None, 0, 0
        if count <= 0:
            return None
        rt = sign_sum / count
        adjust = math.copysign(1.0, rt - self.target) if rt != self.target and not self.fixed else 0.0
        self.p = min(max(self.p + adjust * images / (self.speed_kimg * 1000.0), 0.0), 1.0)
        self.rt = rt
        return rt

    def state_dict(self) -> dict[str, Any]:
        """The controller's state as plain Python numbers (JSON- and ``torch.save``-safe).

        Returns:
            ``{"p", "rt", "sign_sum", "count", "steps", "images"}``: the probability, the last
            ``r_t`` (or None), the accumulated signs and their count, and the D steps and images
            counted towards the next adjustment. The settings (target, interval, speed) are not
            included; they come from the run's config.
        """
        sign_sum, count = self._acc.tolist() if self._acc is not None else (0.0, 0.0)
        return {"p": self.p, "rt": self.rt, "sign_sum": float(sign_sum), "count": float(count),
                "steps": self._steps, "images": self._images}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state saved by :meth:`state_dict` exactly.

        Args:
            state: the dict from :meth:`state_dict`.

        Raises:
            CheckpointError: keys are missing or values are out of range.
        """
        missing = [k for k in ("p", "sign_sum", "count", "steps", "images") if k not in state]
        if missing:
            raise CheckpointError(f"ADA controller state lacks {', '.join(missing)}: "
                                  f"the checkpoint is incomplete or from another version")
        p = float(state["p"])
        if not 0.0 <= p <= 1.0:
            raise CheckpointError(f"ADA controller state has p = {p!r} outside [0, 1]: "
                                  f"the checkpoint is corrupt")
        self.p = p
        self.rt = None if state.get("rt") is None else float(state["rt"])
        sign_sum, count = float(state["sign_sum"]), float(state["count"])
        self._acc = (None if sign_sum == 0.0 and count == 0.0
                     else torch.tensor([sign_sum, count], dtype=torch.float64))
        self._steps, self._images = int(state["steps"]), int(state["images"])

    def __repr__(self) -> str:
        return (f"AdaController(p={self.p:.4f}, target={self.target}, interval={self.interval}, "
                f"speed_kimg={self.speed_kimg}, fixed={self.fixed})")


# ----------------------------------------------------------------------------------------------
# Matrices. All are "inverse" maps (output pixel → input pixel) in centred pixel coordinates, so
# that composing G_inv = G_inv @ M_inv applies the transforms in the order they are listed.

class _Draw:
    """Random numbers drawn on the generator's device (float32) and moved to ``device``."""

    def __init__(self, generator: Optional[torch.Generator], device: torch.device) -> None:
        self.generator = generator
        self.device = device
        self.gen_device = generator.device if generator is not None else device

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator, device=self.gen_device).to(self.device)

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self.gen_device).to(self.device)

    def apply(self, p: float, *shape: int) -> torch.Tensor:
        """Bernoulli(p) mask of ``shape`` (bool)."""
        return self.rand(*shape) < p


def _affine(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor,
            d: torch.Tensor, e: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """[N, 3, 3] matrices ``[[a, b, c], [d, e, f], [0, 0, 1]]`` from [N] tensors."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, c, d, e, f, zero, zero, one], dim=1).reshape(-1, 3, 3)


def _scale_inv(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    z = torch.zeros_like(sx)
    return _affine(1 / sx, z, z, z, 1 / sy, z)


def _translate_inv(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    z, o = torch.zeros_like(tx), torch.ones_like(tx)
    return _affine(o, z, -tx, z, o, -ty)


def _translate(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    z, o = torch.zeros_like(tx), torch.ones_like(tx)
    return _affine(o, z, tx, z, o, ty)


def _rotate_inv(cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Inverse of the rotation by θ (given cos θ, sin θ): the rotation by -θ."""
    z = torch.zeros_like(cos)
    return _affine(cos, sin, z, -sin, cos, z)


def _blit_matrix(N: int, H: int, W: int, p: float, draw: _Draw) -> torch.Tensor:
    """Pixel blitting: x-flip, k·90° rotation, integer translation; [N, 3, 3] output → input."""
    # x-flip: a coin toss, applied with probability p
    flip = torch.floor(draw.rand(N) * 2)
    flip = torch.where(draw.apply(p, N), flip, torch.zeros_like(flip))  # [N] in {0, 1}
    M = _scale_inv(1 - 2 * flip, torch.ones_like(flip))
    # rotation by k·90°, k uniform in {0, 1, 2, 3}; exact cos/sin from a table
    k = torch.floor(draw.rand(N) * 4)
    k = torch.where(draw.apply(p, N), k, torch.zeros_like(k)).long()  # [N]
    cos = torch.tensor([1.0, 0.0, -1.0, 0.0], device=draw.device)[k]
    sin = torch.tensor([0.0, 1.0, 0.0, -1.0], device=draw.device)[k]
    M = M @ _rotate_inv(cos, sin)
    # integer translation by round(U(-0.125, 0.125) · size) pixels
    t = (draw.rand(N, 2) * 2 - 1) * XINT_MAX
    t = torch.where(draw.apply(p, N, 1), t, torch.zeros_like(t))  # [N, 2]
    return M @ _translate_inv(torch.round(t[:, 0] * W), torch.round(t[:, 1] * H))


def _geom_matrix(N: int, H: int, W: int, p: float, draw: _Draw) -> torch.Tensor:
    """General geometric: isotropic scale, pre-rotation, anisotropic scale, post-rotation,
    fractional translation; [N, 3, 3] output → input."""
    one = torch.ones(N, device=draw.device)
    # isotropic scaling, s ~ lognormal(0, (0.2 ln 2)^2)
    s = torch.exp2(draw.randn(N) * SCALE_STD)
    s = torch.where(draw.apply(p, N), s, one)
    M = _scale_inv(s, s)
    # arbitrary rotation, before and after the anisotropic scaling: P(either) = p
    p_rot = 1.0 - math.sqrt(max(0.0, 1.0 - p))
    theta = (draw.rand(N) * 2 - 1) * math.pi * ROTATE_MAX
    theta = torch.where(draw.apply(p_rot, N), theta, torch.zeros_like(theta))
    M = M @ _rotate_inv(torch.cos(theta), torch.sin(theta))
    # anisotropic scaling (s, 1/s), s ~ lognormal(0, (0.2 ln 2)^2)
    s = torch.exp2(draw.randn(N) * ANISO_STD)
    s = torch.where(draw.apply(p, N), s, one)
    M = M @ _scale_inv(s, 1 / s)
    theta = (draw.rand(N) * 2 - 1) * math.pi * ROTATE_MAX
    theta = torch.where(draw.apply(p_rot, N), theta, torch.zeros_like(theta))
    M = M @ _rotate_inv(torch.cos(theta), torch.sin(theta))
    # fractional translation, t ~ N(0, 0.125^2) of the image size
    t = draw.randn(N, 2) * XFRAC_STD
    t = torch.where(draw.apply(p, N, 1), t, torch.zeros_like(t))  # [N, 2]
    return M @ _translate_inv(t[:, 0] * W, t[:, 1] * H)


def _color_matrix(N: int, p: float, draw: _Draw) -> torch.Tensor:
    """Colour: brightness, contrast, luma flip, hue rotation, saturation; [N, 4, 4] in → out."""
    dev = draw.device
    I4 = torch.eye(4, device=dev)
    v = torch.tensor([1.0, 1.0, 1.0, 0.0], device=dev) / math.sqrt(3)  # luma axis
    vv = torch.outer(v, v)  # [4, 4]
    C = I4.repeat(N, 1, 1)  # [N, 4, 4]
    # brightness: add b ~ N(0, 0.2^2) to R, G, B
    b = draw.randn(N) * BRIGHTNESS_STD
    b = torch.where(draw.apply(p, N), b, torch.zeros_like(b))
    T = I4.repeat(N, 1, 1)
    T[:, :3, 3] = b[:, None]
    C = T @ C
    # contrast: scale by c ~ lognormal(0, (0.5 ln 2)^2)
    c = torch.exp2(draw.randn(N) * CONTRAST_STD)
    c = torch.where(draw.apply(p, N), c, torch.ones_like(c))
    S = I4.repeat(N, 1, 1)
    S[:, 0, 0] = S[:, 1, 1] = S[:, 2, 2] = c
    C = S @ C
    # luma flip: Householder reflection I - 2 v v^T (a coin toss, applied with probability p)
    i = torch.floor(draw.rand(N) * 2)
    i = torch.where(draw.apply(p, N), i, torch.zeros_like(i))
    C = (I4 - 2 * vv * i[:, None, None]) @ C
    # hue rotation about the luma axis by θ ~ U(-π, π) (Rodrigues' formula)
    theta = (draw.rand(N) * 2 - 1) * math.pi * HUE_MAX
    theta = torch.where(draw.apply(p, N), theta, torch.zeros_like(theta))
    cos, sin = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
    K = torch.zeros(4, 4, device=dev)  # cross-product matrix of v (3-D part)
    K[0, 1], K[0, 2], K[1, 0], K[1, 2], K[2, 0], K[2, 1] = -v[2], v[1], v[2], -v[0], -v[1], v[0]
    P = vv.clone()
    P[3, 3] = 1.0  # keeps the homogeneous coordinate
    R = cos * (I4 - P) + sin * K + P  # [N, 4, 4]; identity where θ = 0
    R = torch.where((theta == 0)[:, None, None], I4, R)
    C = R @ C
    # saturation: scale the chroma (the part orthogonal to v) by s ~ lognormal(0, (ln 2)^2)
    s = torch.exp2(draw.randn(N) * SATURATION_STD)
    s = torch.where(draw.apply(p, N), s, torch.ones_like(s))
    Sat = torch.where((s == 1)[:, None, None], I4, P + (I4 - P) * s[:, None, None])  # P: v v^T, 1 at [3, 3]
    return Sat @ C


def _acc_dtype(device: torch.device) -> torch.dtype:
    """float64 for exact integer sums, except on MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def _dist_device() -> torch.device:
    """The device collective tensors must live on for the initialised process group's backend."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
