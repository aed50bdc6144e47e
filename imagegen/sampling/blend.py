"""Image fusion: blend image A into image B where a mask says so, three ways.

* :func:`laplacian_blend` — the multiresolution spline of Burt & Adelson 1983 ("A Multiresolution
  Spline With Application to Image Mosaics", ACM ToG 2(4), §3): Laplacian pyramids of A and B and a
  Gaussian pyramid of the mask; each level is ``LS_k = GR_k · LA_k + (1 − GR_k) · LB_k`` and the
  blended pyramid is collapsed. REDUCE/EXPAND are OpenCV's ``pyrDown``/``pyrUp``, whose 5-tap kernel
  [1, 4, 6, 4, 1] / 16 is the paper's generating kernel with a = 0.375 (Burt & Adelson 1983, "The
  Laplacian Pyramid as a Compact Image Code", §2). Each Laplacian level is ``G_k − EXPAND(G_k+1)``
  with the same EXPAND that collapses it, so a pyramid collapses back to its image exactly.
* :func:`poisson_blend` — gradient-domain blending (Pérez, Gangnet & Blake 2003, "Poisson Image
  Editing", SIGGRAPH, §2 Eq. 4, §3 Eq. 11 and 13): inside the mask, the image whose gradient field is
  closest to A's (``normal``) or to the stronger of A's and B's (``mixed``) with B's values on the
  mask's boundary; OpenCV's ``seamlessClone`` solves it. Outside the mask the result is B.
* :func:`latent_blend` — through a trained generator: both images are brought into the model's
  latent space (a VAE/AAE encoder's code, or a StyleGAN/StyleGAN2 projection into W or W+, see
  :mod:`imagegen.sampling.project`), and the output at each pixel is decoded from a latent between
  B's and A's chosen by the mask (see the function). The transition across a soft (feathered) mask
  therefore goes through images the model can generate instead of a cross-fade of pixels.

Conventions: images are float32 [C, H, W] in [-1, 1] (C = 1 or 3), the mask float32 [H, W] in
[0, 1] with **1 (white) = take A** and 0 (black) = keep B. Files are read with
:func:`load_blend_inputs` (Pillow; the mask's 8-bit grey value / 255).

Python API::

    from imagegen.sampling.blend import load_blend_inputs, laplacian_blend, poisson_blend, save_image
    a, b, mask = load_blend_inputs("apple.png", "orange.png", "half.png")
    save_image(laplacian_blend(a, b, mask), "orapple.png")
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..data.base import float_to_uint8, uint8_to_float
from ..errors import ConfigError, DataError
from .images import save_png_atomic

METHODS = ("laplacian", "poisson", "latent")
PoissonMode = Literal["normal", "mixed"]
POISSON_MODES = ("normal", "mixed")
#: Pillow filters for ``--resize`` (B and the mask to A's size), plus ``none`` (refuse other sizes)
RESIZE_FILTERS = ("none", "bicubic", "bilinear", "lanczos", "box", "nearest")


# ---------------------------------------------------------------------------------------------- files
def _read(path: Union[str, os.PathLike], what: str, channels: Optional[int]) -> np.ndarray:
    """uint8 [H, W, C] of an image file (``channels`` None: its own, 1 or 3); DataError for bad files."""
    from ..data.folder import decode_image

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} {path}: no such file; give a PNG/JPEG/WebP image")
    try:
        return decode_image(path, channels=channels)
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds for corrupt files
        msg = " ".join(str(e).split())[:160] or type(e).__name__
        raise DataError(f"{what} {path}: cannot read the image ({msg})") from None


def _resize(arr: np.ndarray, size: tuple[int, int], method: str) -> np.ndarray:
    """uint8 [H, W, C] → [h, w, C] with a Pillow filter (``size`` = (w, h); the aspect ratio is not kept)."""
    from ..data.transforms import RESAMPLE
    from .images import to_pil

    out = np.asarray(to_pil(arr).resize(size, RESAMPLE[method]))
    return out[..., None] if out.ndim == 2 else out


def load_blend_inputs(a: Union[str, os.PathLike], b: Union[str, os.PathLike], mask: Union[str, os.PathLike],
                      resize: str = "none") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Read the two images and the mask of a blend.

    Both images get the same channel count: RGB if either is colour, else grayscale. The mask is read
    as grayscale (colour masks by ITU-R 601-2 luma) and divided by 255: white (1) = take A, black (0) =
    keep B, grey values weight the two.

    Args:
        a, b, mask: image files (PNG, JPEG, WebP, ...).
        resize: ``none`` to refuse a B or mask of another size than A, or a Pillow filter (``bicubic``,
            ``bilinear``, ``lanczos``, ``box``, ``nearest``) to resize them to A's width × height
            (stretched: the aspect ratio is not kept).

    Returns:
        (a, b) float32 [C, H, W] in [-1, 1] and the mask float32 [H, W] in [0, 1], at A's size.

    Raises:
        DataError: a missing, unreadable or corrupt file.
        ConfigError: B or the mask of another size than A with ``resize="none"``; an unknown ``resize``.
    """
    if resize not in RESIZE_FILTERS:
        raise ConfigError(f"--resize {resize}: use one of {', '.join(RESIZE_FILTERS)}")
    arrs = [_read(a, "--a", None), _read(b, "--b", None)]
    channels = max(x.shape[2] for x in arrs)
    arrs = [x if x.shape[2] == channels else np.repeat(x, channels, 2) for x in arrs]  # grey → RGB
    m = _read(mask, "--mask", 1)
    h, w = arrs[0].shape[:2]
    for i, (x, what, path) in enumerate([(arrs[1], "--b", b), (m, "--mask", mask)]):
        if x.shape[:2] == (h, w):
            continue
        if resize == "none":
            raise ConfigError(f"{what} {path} is {x.shape[1]}x{x.shape[0]} but --a {a} is {w}x{h}; give "
                              f"images of one size or pass --resize bicubic (stretches {what} to A's size)")
        x = _resize(x, (w, h), resize)
        if i == 0:
            arrs[1] = x
        else:
            m = x
    img_a, img_b = (uint8_to_float(torch.from_numpy(x.copy()).permute(2, 0, 1)) for x in arrs)  # [C, H, W]
    return img_a, img_b, torch.from_numpy(m[..., 0].astype(np.float32) / 255.0)


def save_image(img: torch.Tensor, path: Union[str, os.PathLike]) -> None:
    """Write img float [C, H, W] (or [1, C, H, W]) in [-1, 1] as an image file (format from the
    extension), atomically."""
    img = img[0] if img.ndim == 4 else img
    save_png_atomic(float_to_uint8(img).permute(1, 2, 0).cpu().numpy(), path)


def feather_mask(mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """The mask float32 [H, W] in [0, 1] blurred with a Gaussian of standard deviation ``sigma`` pixels
    (scipy.ndimage, edges extended); ``sigma`` 0 returns it unchanged."""
    if sigma < 0:
        raise ConfigError(f"--feather {sigma}: must be ≥ 0")
    if sigma == 0:
        return mask
    from scipy.ndimage import gaussian_filter

    out = gaussian_filter(mask.detach().cpu().double().numpy(), sigma, mode="nearest")
    return torch.from_numpy(out).float().clamp_(0, 1)


def _check_inputs(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> None:
    if a.ndim != 3 or a.shape[0] not in (1, 3) or a.shape != b.shape:
        raise DataError(f"blend needs images a, b [C, H, W] of one shape (C = 1 or 3), got {tuple(a.shape)} "
                        f"and {tuple(b.shape)}")
    if tuple(mask.shape) != tuple(a.shape[1:]):
        raise DataError(f"the mask is {tuple(mask.shape)} but the images are {tuple(a.shape[1:])}; give a "
                        "mask [H, W] of the images' size")
    if not torch.isfinite(mask).all() or mask.min() < 0 or mask.max() > 1:
        raise DataError("the mask must be float in [0, 1] (1 = take A); divide 8-bit masks by 255")


def _hwc(x: torch.Tensor) -> np.ndarray:
    """[C, H, W] → float32 [H, W, C] (or [H, W] for C = 1), as OpenCV wants it."""
    arr = x.detach().cpu().float().permute(1, 2, 0).numpy()
    return np.ascontiguousarray(arr[..., 0] if arr.shape[2] == 1 else arr)


def _chw(arr: np.ndarray) -> torch.Tensor:
    """OpenCV's [H, W, C] or [H, W] → float32 [C, H, W]."""
    arr = arr[..., None] if arr.ndim == 2 else arr
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).permute(2, 0, 1).contiguous()


# ---------------------------------------------------------------------------------------------- laplacian
def max_levels(height: int, width: int) -> int:
    """The most pyramid levels of an H×W image: 1 + ⌊log2(min(H, W))⌋ (the top at least 1 pixel)."""
    return 1 + int(math.floor(math.log2(max(1, min(height, width)))))


def default_levels(height: int, width: int) -> int:
    """Levels until the top is about 4 pixels on the short side: 1 + ⌊log2(min(H, W) / 4)⌋, at least 1."""
    return max(1, 1 + int(math.floor(math.log2(max(1, min(height, width)) / 4))))


def gaussian_pyramid(x: np.ndarray, levels: int) -> list[np.ndarray]:
    """G_0 = x, G_k+1 = REDUCE(G_k) (OpenCV ``pyrDown``: 5×5 Gaussian [1, 4, 6, 4, 1] / 16, every second
    pixel; sizes ⌈H / 2^k⌉ × ⌈W / 2^k⌉). x: float32 [H, W] or [H, W, C]; ``levels`` arrays."""
    import cv2

    pyr = [x]
    for _ in range(levels - 1):
        pyr.append(cv2.pyrDown(pyr[-1]))
    return pyr


def _expand(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    """EXPAND (OpenCV ``pyrUp``) of x to the height and width of ``like``."""
    import cv2

    return cv2.pyrUp(x, dstsize=(like.shape[1], like.shape[0]))


def laplacian_pyramid(x: np.ndarray, levels: int) -> list[np.ndarray]:
    """L_k = G_k − EXPAND(G_k+1) for k < levels − 1 and L_top = G_top (Burt & Adelson 1983, §2);
    :func:`collapse` inverts it exactly (to float rounding). x: float32 [H, W] or [H, W, C]."""
    g = gaussian_pyramid(x, levels)
    return [g[k] - _expand(g[k + 1], g[k]) for k in range(levels - 1)] + [g[-1]]


def collapse(pyr: Sequence[np.ndarray]) -> np.ndarray:
    """The image of a Laplacian pyramid: G_top = L_top, G_k = L_k + EXPAND(G_k+1); returns G_0."""
    x = pyr[-1]
    for lap in reversed(pyr[:-1]):
        x = lap + _expand(x, lap)
    return x


def laplacian_blend(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, levels: Optional[int] = None) -> torch.Tensor:
    """Multiresolution spline (Burt & Adelson 1983, "A Multiresolution Spline With Application to Image
    Mosaics", §3.2): ``LS_k = GR_k · LA_k + (1 − GR_k) · LB_k`` at every level k of the Laplacian pyramids
    LA, LB of the images and the Gaussian pyramid GR of the mask, then collapsed. Each frequency band
    is thus joined over a transition zone of its own scale. A mask of ones returns A, of zeros B (to
    float rounding), since REDUCE keeps a constant.

    Args:
        a, b: float32 [C, H, W] in [-1, 1] (C = 1 or 3), the same shape.
        mask: float32 [H, W] in [0, 1]; 1 = A, 0 = B.
        levels: pyramid levels (1 = a plain per-pixel mix); default :func:`default_levels`, at most
            :func:`max_levels`.

    Returns:
        float32 [C, H, W] in [-1, 1] (clamped: a spline can overshoot slightly at strong edges).

    Raises:
        DataError: inputs of mismatched shapes or a mask outside [0, 1].
        ConfigError: ``levels`` outside 1..max_levels.
    """
    _check_inputs(a, b, mask)
    H, W = mask.shape
    levels = default_levels(H, W) if levels is None else int(levels)
    if not 1 <= levels <= max_levels(H, W):
        raise ConfigError(f"--levels {levels}: a {W}x{H} image has 1 to {max_levels(H, W)} pyramid levels")
    la, lb = laplacian_pyramid(_hwc(a), levels), laplacian_pyramid(_hwc(b), levels)
    gr = gaussian_pyramid(np.ascontiguousarray(mask.detach().cpu().float().numpy()), levels)  # [h_k, w_k]
    blended = []
    for pa, pb, m in zip(la, lb, gr):
        m = m[..., None] if pa.ndim == 3 else m
        blended.append(m * pa + (1 - m) * pb)  # LS_k
    return _chw(collapse(blended)).clamp_(-1, 1)


# ---------------------------------------------------------------------------------------------- poisson
def poisson_blend(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, mode: PoissonMode = "normal") -> torch.Tensor:
    """Poisson image editing (Pérez, Gangnet & Blake 2003): inside the mask Ω, the image f that solves
    ``Δf = div v`` with ``f = B`` on ∂Ω (Eq. 4 / 7), where the guidance field v is A's gradient
    (``normal``, "seamless cloning", Eq. 11) or at each pixel the larger of A's and B's gradients
    (``mixed``, Eq. 13). Solved by OpenCV's ``seamlessClone`` (``NORMAL_CLONE`` / ``MIXED_CLONE``).

    Only the gradients of A are kept, so A's colour is shifted to fit B's: A = B + a constant returns B.
    Details of the solver: the mask is binarised at 0.5; OpenCV clears the mask's outermost 1-pixel
    ring of the image (those pixels keep B, the boundary condition needs them); images are processed
    as 8-bit RGB (grayscale repeated), so the result is quantised to 256 levels.

    Args:
        a, b: float32 [C, H, W] in [-1, 1] (C = 1 or 3), the same shape, H, W ≥ 3.
        mask: float32 [H, W] in [0, 1]; ≥ 0.5 = Ω (take A's gradients).
        mode: ``normal`` or ``mixed``.

    Returns:
        float32 [C, H, W] in [-1, 1]; equal to B outside Ω (and everywhere when Ω is empty).

    Raises:
        DataError: inputs of mismatched shapes or a mask outside [0, 1].
        ConfigError: an unknown ``mode``.
    """
    import cv2

    _check_inputs(a, b, mask)
    if mode not in POISSON_MODES:
        raise ConfigError(f"--poisson-mode {mode}: use one of {', '.join(POISSON_MODES)}")
    C, H, W = a.shape
    m = np.where(mask.detach().cpu().numpy() >= 0.5, 255, 0).astype(np.uint8)  # [H, W]
    m[0, :] = m[-1, :] = m[:, 0] = m[:, -1] = 0  # what OpenCV does to the mask anyway
    if not m.any():
        return b.detach().cpu().float().clone()

    def rgb_u8(x: torch.Tensor) -> np.ndarray:
        u8 = float_to_uint8(x).permute(1, 2, 0).cpu().numpy()  # [H, W, C]
        return np.ascontiguousarray(np.repeat(u8, 3, 2) if C == 1 else u8)

    x, y, w, h = cv2.boundingRect(m)
    # OpenCV places the mask's bounding box at (p.x − w / 2, p.y − h / 2) with integer division: this p
    # puts it where it is, so A's pixels stay in place. A copy of the mask: OpenCV 5 writes into it.
    centre = (x + w // 2, y + h // 2)
    flag = cv2.NORMAL_CLONE if mode == "normal" else cv2.MIXED_CLONE
    out = cv2.seamlessClone(rgb_u8(a), rgb_u8(b), m.copy(), centre, flag)  # [H, W, 3] uint8
    out = torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1)[:C]  # grayscale: all three channels equal
    return uint8_to_float(out)


# ---------------------------------------------------------------------------------------------- latent
@dataclasses.dataclass
class LatentBlendResult:
    """The outcome of :func:`latent_blend`.

    Attributes:
        image: float32 [C, R, R] in [-1, 1], the blend at the model's resolution and channels.
        recon_a, recon_b: float32 [C, R, R] in [-1, 1], A and B decoded from their own latents (how
            well the model reaches them bounds how faithful the blend can be).
        a, b: float32 [C, R, R] in [-1, 1], the inputs as the model saw them.
        mask: float32 [R, R] in [0, 1], the mask used (resized, feathered).
        latent: how the latents were found, e.g. ``z (vae encoder)`` or ``w+ (projection, 1000 steps)``.
    """

    image: torch.Tensor
    recon_a: torch.Tensor
    recon_b: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    mask: torch.Tensor
    latent: str


def check_latent_model(model: Any) -> str:
    """``encoder`` for a model with an encoder (vae, cvae, aae), ``projection`` for a style-based one
    (stylegan2, stylegan); otherwise :class:`ConfigError` naming what would work."""
    if getattr(model, "has_encoder", False):
        return "encoder"
    if getattr(model, "has_style_latents", False):
        return "projection"
    raise ConfigError(f"latent blending needs a run that can encode images (vae, cvae, aae) or be projected "
                      f"into (stylegan2, stylegan); {model.model_name} can do neither; use --method laplacian "
                      "or poisson")


def to_model_input(x: torch.Tensor, resolution: int, channels: Optional[int] = None) -> torch.Tensor:
    """An image [C, H, W] (or a mask [H, W]) in the model's geometry: the centred square of the short
    side, resized to ``resolution`` (images bicubic with antialiasing; masks by area averaging when
    shrunk, bilinear when enlarged), and for images the
    model's channel count (RGB → grey by ITU-R 601-2 luma, grey → RGB repeated). Images stay in
    [-1, 1] and masks in [0, 1] (clamped)."""
    is_mask = x.ndim == 2
    x = x[None] if is_mask else x
    _, H, W = x.shape
    s = min(H, W)
    top, left = (H - s) // 2, (W - s) // 2
    x = x[None, :, top:top + s, left:left + s].float()  # [1, C, s, s]
    if s != resolution and is_mask and s > resolution:  # box average: a mask stays a pixel-area fraction
        x = F.interpolate(x, size=(resolution, resolution), mode="area")
    elif s != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear" if is_mask else "bicubic",
                          align_corners=False, antialias=True)
    if is_mask:
        return x[0, 0].clamp(0, 1)
    x = x[0].clamp(-1, 1)
    if channels == 1 and x.shape[0] == 3:
        x = (x * x.new_tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0, keepdim=True)
    elif channels == 3 and x.shape[0] == 1:
        x = x.repeat(3, 1, 1)
    return x


def _normalised(n: torch.Tensor) -> torch.Tensor:
    """A noise map back to zero mean and unit variance (as the projection keeps them)."""
    n = n - n.mean()
    return n * n.square().mean().clamp_min(1e-12).rsqrt()


def latent_blend(model: Any, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, *, alpha: float = 1.0,
                 layers: Optional[Sequence[int]] = None, feather: float = 0.0, decode_levels: int = 9,
                 labels: Optional[int] = None, steps: int = 1000, space: str = "w+",
                 features: Any = "auto", seed: int = 0,
                 progress: Optional[Callable[[str, Any], None]] = None) -> LatentBlendResult:
    """Blend A into B through the latent space of a trained model.

    1. **Latents.** ``l_A``, ``l_B``: the encoder's code (vae/cvae: the posterior mean, Kingma & Welling
       2014; aae: E(x), Makhzani et al. 2016), or for style-based models a projection into W or W+
       with its noise maps (:func:`imagegen.sampling.project.project`: Karras et al. 2020, StyleGAN2
       §5 and Appendix D; W+ as Abdal et al. 2019, "Image2StyleGAN", §3).
    2. **Mix.** ``l(t) = (1 − t·α) l_B + t·α l_A``, linear — in W linear paths are perceptually
       smooth (Karras et al. 2019, StyleGAN §4.2). With ``layers`` (style-based models) only those
       layers' w move toward A and the rest keep B's: style mixing (StyleGAN §3.1), e.g. coarse layers
       = A's shape, fine layers = B's colours. Noise maps are mixed the same way and re-normalised.
    3. **Decode and place.** ``decode_levels`` images ``D_k = G(l(k / (K − 1)))`` are decoded, and the
       output at pixel x is ``D`` at t = m(x), linear between the two nearest k. So where the mask is 1
       the output is the decoded mix at α (α = 1: A's reconstruction), where it is 0 B's
       reconstruction, and across a soft mask the pixels come from images decoded from intermediate
       latents rather than from a pixel cross-fade. With a hard mask this is just a paste of the two
       reconstructions: feather it (``feather``).

    This placement is our construction, not a published algorithm: global latents (one vector per
    image) have no spatial extent to mask directly. The published method closest to it is the
    "image crossover" of Abdal et al. 2020 ("Image2StyleGAN++", §5), which instead optimises one W+
    latent against a masked target; it is not implemented here.

    Args:
        model: a model with an encoder (``has_encoder``) or a mapping network (``has_style_latents``).
        a, b: float32 [C, H, W] in [-1, 1], the same shape; brought to the model's square resolution
            and channels by :func:`to_model_input` (centre square, resized).
        mask: float32 [H, W] in [0, 1]; 1 = A.
        alpha: how far toward A the latent goes where the mask is 1, in [0, 1].
        layers: style-based models: the w indices that mix (default all).
        feather: Gaussian σ in pixels of the model's resolution applied to the resized mask.
        decode_levels: K ≥ 2, images decoded along the latent path.
        labels: class of both images for class-conditional encoder models (cvae).
        steps, space, features, seed: of the projection (style-based models only).
        progress: called as ``progress(image_name, step)`` with each :class:`ProjectionStep`.

    Returns:
        A :class:`LatentBlendResult` (tensors on the CPU).

    Raises:
        ConfigError: a model that can neither encode nor be projected; ``alpha`` outside [0, 1];
            ``decode_levels`` < 2; ``layers`` for an encoder model; missing/unneeded ``labels``.
        DataError: inputs of mismatched shapes or a mask outside [0, 1].
    """
    kind = check_latent_model(model)
    _check_inputs(a, b, mask)
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"--alpha {alpha}: must be in [0, 1] (1 = A's latent inside the mask)")
    if int(decode_levels) < 2:
        raise ConfigError(f"--decode-levels {decode_levels}: must be ≥ 2")
    if layers is not None and kind != "projection":
        raise ConfigError(f"--layers needs a style-based run (stylegan2, stylegan); {model.model_name} has one "
                          "latent per image; drop --layers")
    C, R = model.config.channels or 1, model.config.resolution
    a_in, b_in = to_model_input(a, R, C), to_model_input(b, R, C)  # [C, R, R]
    m = feather_mask(to_model_input(mask, R), feather)  # [R, R]
    K = int(decode_levels)
    t = torch.linspace(0, 1, K, dtype=torch.float64)  # [K]
    dev = model.device

    if kind == "encoder":
        num_classes = getattr(model, "num_classes", 0) or 0
        if num_classes and labels is None:
            raise ConfigError(f"{model.model_name} is class-conditional: give the images' class with --class C")
        if not num_classes and labels is not None:
            raise ConfigError(f"{model.model_name} is unconditional; drop --class")
        if labels is not None and not 0 <= labels < num_classes:
            raise ConfigError(f"--class {labels}: the model has classes 0..{num_classes - 1}")
        lab = None if labels is None else torch.full((1,), int(labels), dtype=torch.int64, device=dev)
        z = model.encode(torch.stack([a_in, b_in]).to(dev), None if lab is None else lab.repeat(2))  # [2, z_dim]
        z_a, z_b = z[0:1], z[1:2]
        w_t = (t * alpha).to(z)[:, None]  # [K, 1]
        zs = (1 - w_t) * z_b + w_t * z_a  # [K, z_dim]
        decoded = model.decode(zs, None if lab is None else lab.repeat(K)).float().cpu()  # [K, C, R, R]
        rec = model.decode(z, None if lab is None else lab.repeat(2)).float().cpu()  # [2, C, R, R]
        latent = f"z ({model.model_name} encoder)"
    else:
        from .project import load_noise, noise_inputs, project

        num_ws = model.num_ws
        mix = torch.zeros(num_ws, dtype=torch.bool)
        mix[list(range(num_ws)) if layers is None else list(layers)] = True
        results = {}
        for name, img in (("A", a_in), ("B", b_in)):
            cb = None if progress is None else (lambda p, n=name: progress(n, p))
            results[name] = project(model, img[None], steps=steps, space=space,  # type: ignore[arg-type]
                                    features=features, seed=seed, progress=cb)
        ra, rb = results["A"], results["B"]
        saved = {n: mod.noise_const.detach().clone() for n, mod in noise_inputs(model).items()}
        decoded_list = []
        try:
            for tk in t.tolist():
                s = tk * alpha
                ws = rb.ws.clone()  # [1, num_ws, w_dim]
                ws[:, mix] = (1 - s) * rb.ws[:, mix] + s * ra.ws[:, mix]
                load_noise(model, {n: _normalised((1 - s) * rb.noise[n] + s * ra.noise[n]) if 0 < s < 1 else
                                   (ra.noise[n] if s >= 1 else rb.noise[n]) for n in ra.noise})
                decoded_list.append(model.synthesize(ws.to(dev), noise_mode="const").float().cpu()[0])
        finally:
            load_noise(model, saved)
        decoded = torch.stack(decoded_list)  # [K, C, R, R]
        rec = torch.cat([ra.image, rb.image])  # [2, C, R, R]
        latent = f"{space} (projection, {steps} steps, {ra.feature_network.split(':')[0]})"

    # per pixel: D at t = m(x), linear between the nearest two of the K decoded images
    u = m.double() * (K - 1)  # [R, R] in [0, K − 1]
    k0 = u.floor().long().clamp_(max=K - 2)
    frac = (u - k0).float()[None]  # [1, R, R]
    d0 = torch.gather(decoded, 0, k0[None, None].expand(1, C, R, R))[0]  # [C, R, R]
    d1 = torch.gather(decoded, 0, (k0 + 1)[None, None].expand(1, C, R, R))[0]
    image = ((1 - frac) * d0 + frac * d1).clamp(-1, 1)
    return LatentBlendResult(image=image, recon_a=rec[0], recon_b=rec[1], a=a_in.cpu(), b=b_in.cpu(), mask=m,
                             latent=latent)


def blend(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, method: str = "laplacian",
          **kwargs: Any) -> torch.Tensor:
    """Dispatch to :func:`laplacian_blend` or :func:`poisson_blend` (``kwargs``: ``levels`` /
    ``mode``); latent blending needs a model: call :func:`latent_blend`. Shapes as those functions."""
    if method == "laplacian":
        return laplacian_blend(a, b, mask, **kwargs)
    if method == "poisson":
        return poisson_blend(a, b, mask, **kwargs)
    if method == "latent":
        raise ConfigError("latent blending needs a trained model: call latent_blend(model, a, b, mask)")
    raise ConfigError(f"--method {method}: use one of {', '.join(METHODS)}")


__all__ = ["load_blend_inputs", "save_image", "feather_mask", "laplacian_blend", "poisson_blend", "latent_blend",
           "LatentBlendResult", "blend", "gaussian_pyramid", "laplacian_pyramid", "collapse", "to_model_input",
           "check_latent_model", "default_levels", "max_levels", "METHODS", "POISSON_MODES", "RESIZE_FILTERS"]
