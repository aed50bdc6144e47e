"""Latent-space tools: interpolation ("tweening") between latents or real images, and reconstruction.

* :func:`slerp` — spherical linear interpolation (Shoemake 1985, "Animating rotation with quaternion
  curves", §3.3), recommended for Gaussian latents by White 2016, "Sampling Generative Networks"
  (arXiv:1609.04468, §2.1): a straight line between two samples of N(0, I) in high dimension passes
  near the origin, where the prior has almost no mass (norms ≈ √d), while the great-circle arc keeps
  the norm of equal-norm endpoints.
* :func:`tween` — images along a path through latent keyframes (from seeds with
  :func:`latents_for_seeds`, or from real images with the model's ``encode``); for style-based models
  optionally linear in the intermediate latent w instead of z (Karras et al. 2019, StyleGAN §4.2).
* :func:`reconstruct` — encode and decode real images (optionally decoding with another label).
* :func:`save_gif` / :func:`save_strip` — write the frames as an animated GIF or a one-row PNG.

Python API::

    from imagegen.sampling import load_run
    from imagegen.sampling.interpolate import latents_for_seeds, tween, save_gif
    model = load_run("runs/mnist-cgan")
    frames = tween(model, latents_for_seeds(model, [1, 2]), steps=16, labels=7)  # [16, C, H, W]
    save_gif(frames, "tween.gif")
"""
from __future__ import annotations

import os
from typing import Literal, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from ..data.base import uint8_to_float
from ..data.transforms import check_resize, resize_center_crop_pil
from ..errors import ConfigError, DataError
from .images import make_grid, save_pil_atomic, save_png_atomic, to_pil, to_uint8_nhwc
from .project import ProjectedLatent, load_noise, noise_loaded

Method = Literal["slerp", "lerp"]
Space = Literal["z", "w"]


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation (1 − t)·z0 + t·z1.

    Args:
        z0, z1: [..., D] float tensors of the same shape.
        t: [T] float in [0, 1].

    Returns:
        [T, ..., D].
    """
    t = t.to(z0).view(-1, *([1] * z0.ndim))
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Spherical linear interpolation along the last dimension (Shoemake 1985; White 2016, §2.1):

    ``slerp(z0, z1; t) = sin((1 − t)Ω)/sin Ω · z0 + sin(tΩ)/sin Ω · z1``, cos Ω = ẑ0·ẑ1.

    It returns z0 at t = 0 and z1 at t = 1; for |z0| = |z1| every point has that norm. Where the
    vectors are (anti)parallel within ``eps`` (sin Ω ≈ 0) it falls back to :func:`lerp`.

    Args:
        z0, z1: [..., D] float tensors of the same shape (not zero).
        t: [T] float in [0, 1].

    Returns:
        [T, ..., D], same dtype as z0.
    """
    _check_same_shape(z0, z1)
    return _slerp(z0, z1, t.double().view(-1, *([1] * (z0.ndim - 1))), eps)  # t as [T, ...] (without D)


def slerp_pairs(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """:func:`slerp` of each row at its own t: row i of the result lies at ``t[i]`` between ``z0[i]`` and
    ``z1[i]`` (e.g. the per-pair steps of perceptual path length, Karras et al. 2019 §4.2).

    Args:
        z0, z1: [N, D] float tensors of the same shape (no zero rows).
        t: [N] float, usually in [0, 1].

    Returns:
        [N, D], same dtype as z0.

    Raises:
        ConfigError: z0 and z1 differ in shape.
    """
    _check_same_shape(z0, z1)
    return _slerp(z0, z1, t.double().view(z0.shape[:-1]), eps)


def _check_same_shape(z0: torch.Tensor, z1: torch.Tensor) -> None:
    if z0.shape != z1.shape:
        raise ConfigError(f"cannot interpolate latents of shapes {tuple(z0.shape)} and {tuple(z1.shape)}")


def _slerp(z0: torch.Tensor, z1: torch.Tensor, tt: torch.Tensor, eps: float) -> torch.Tensor:
    """Slerp of z0 and z1 (computed in float64) at ``tt``, which broadcasts against z0's shape without its
    last dimension; falls back to lerp where sin Ω ≤ ``eps``."""
    a, b = z0.double(), z1.double()
    cos = ((a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-30)).clamp(-1, 1)  # [...]
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    safe = sin.abs() > eps
    denom = torch.where(safe, sin, torch.ones_like(sin))
    w0 = torch.where(safe, torch.sin((1 - tt) * omega) / denom, 1 - tt)
    w1 = torch.where(safe, torch.sin(tt * omega) / denom, tt.expand_as(w0))
    return (w0[..., None] * a + w1[..., None] * b).to(z0.dtype)


def interpolation_path(keys: torch.Tensor, steps: int, method: Method = "slerp") -> torch.Tensor:
    """Latents along a path through keyframes, ``steps`` frames per segment including both ends
    (shared ends counted once).

    Args:
        keys: [K, ...] latents, K ≥ 2.
        steps: frames per segment (≥ 2).
        method: ``slerp`` or ``lerp``.

    Returns:
        [(K − 1)·(steps − 1) + 1, ...] latents; frame 0 is keys[0] and the last is keys[-1].

    Raises:
        ConfigError: fewer than 2 keys or steps < 2, unknown method.
    """
    if len(keys) < 2:
        raise ConfigError("interpolation needs at least two endpoints (e.g. --seeds 1,2)")
    if steps < 2:
        raise ConfigError(f"--steps {steps}: use at least 2 (the two endpoints)")
    fns = {"slerp": slerp, "lerp": lerp}
    if method not in fns:
        raise ConfigError(f"unknown interpolation {method!r}; use slerp or lerp")
    t = torch.linspace(0, 1, steps)
    segs = [fns[method](keys[i], keys[i + 1], t)[(1 if i else 0):] for i in range(len(keys) - 1)]
    return torch.cat(segs)


def latents_for_seeds(model, seeds: Sequence[int]) -> torch.Tensor:
    """One prior latent per seed, ``model.sample_latents(1, Generator().manual_seed(seed))``: frame
    i of a tween equals the first sample of ``imagegen sample RUN --seed s_i`` (for conditional
    models with ``--class``). Returns [len(seeds), ...] on the model's device.

    Raises:
        ConfigError: the model has no latent space.
    """
    zs = [model.sample_latents(1, torch.Generator(device=model.device).manual_seed(int(s))) for s in seeds]
    return torch.cat(zs)


def _labels_for(model, labels: Optional[int | torch.Tensor], n: int) -> Optional[torch.Tensor]:
    if not model.num_classes:
        if labels is not None:
            raise ConfigError(f"{model.model_name} is unconditional; drop --class")
        return None
    if labels is None:
        raise ConfigError(f"{model.model_name} is class-conditional: give the class with --class C")
    labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
    if len(labels) == 1:
        labels = labels.expand(n)
    if len(labels) != n or labels.min() < 0 or labels.max() >= model.num_classes:
        raise ConfigError(f"labels must be class indices in [0, {model.num_classes - 1}]")
    return labels.to(model.device)


@torch.no_grad()
def tween(model, keys: torch.Tensor, steps: int = 16, labels: Optional[int | torch.Tensor] = None,
          method: Optional[Method] = None, batch_size: int = 64, space: Space = "z") -> torch.Tensor:
    """Images along an interpolation path through latent keyframes.

    Args:
        model: a model with ``generate(z, labels)`` (dcgan, cgan, vae, cvae, aae, stylegan2).
        keys: [K, ...] keyframe latents (:func:`latents_for_seeds` or ``model.encode(img)``).
        steps: frames per segment, endpoints included.
        labels: class for conditional models: an int for every frame, or int64 [frames] (``space="w"``:
            int64 [K], one per keyframe, since labels enter through the mapping network).
        method: ``slerp`` or ``lerp``; default slerp in z, lerp in w.
        batch_size: frames per forward pass.
        space: ``z`` interpolates the keys themselves; ``w`` (style-based models, ``has_style_latents``)
            maps the keys z [K, z_dim] to ws [K, num_ws, w_dim] with ``model.mapping`` and interpolates
            linearly there, as the perceptual path length in W does (Karras et al. 2019, StyleGAN §4.2),
            decoding with ``model.synthesize`` and constant noise.

    Returns:
        float32 [(K − 1)·(steps − 1) + 1, C, H, W] in [-1, 1] on the CPU.

    Raises:
        ConfigError: no latent space, missing/extra labels, fewer than 2 keys; ``space="w"`` for a model
            without a mapping network or with ``method="slerp"`` (w is not Gaussian).
    """
    if space == "w":
        return _tween_w(model, keys, steps, labels, method or "lerp", batch_size)
    if space != "z":
        raise ConfigError(f"unknown latent space {space!r}; use z or w")
    z = interpolation_path(keys.detach().cpu(), steps, method or "slerp").to(model.device)
    lab = _labels_for(model, labels, len(z))
    out = [model.generate(z[i:i + batch_size], None if lab is None else lab[i:i + batch_size]).float().cpu()
           for i in range(0, len(z), batch_size)]
    return torch.cat(out)


def _tween_w(model, keys: torch.Tensor, steps: int, labels: Optional[int | torch.Tensor], method: Method,
              batch_size: int) -> torch.Tensor:
    """:func:`tween` with ``space="w"``: keys z [K, z_dim] → ws [K, num_ws, w_dim] → linear path → images."""
    if not getattr(model, "has_style_latents", False):
        raise ConfigError(f"--space w needs a style-based model with a mapping network (stylegan2, stylegan), not "
                          f"{model.model_name}; use --space z")
    if method != "lerp":
        raise ConfigError(f"--method {method}: w is not Gaussian, so --space w interpolates linearly "
                          "(StyleGAN §4.2); drop --method or use lerp")
    ws = model.mapping(keys.to(model.device), _labels_for(model, labels, len(keys)))  # [K, num_ws, w_dim]
    path = interpolation_path(ws.cpu(), steps, method)  # [T, num_ws, w_dim]
    out = [model.synthesize(path[i:i + batch_size], noise_mode="const").float().cpu()
           for i in range(0, len(path), batch_size)]
    return torch.cat(out)


@torch.no_grad()
def tween_projections(model, keys: Sequence[ProjectedLatent], steps: int = 16) -> torch.Tensor:
    """Images along a linear path through projected real images (``imagegen project``): their ws are
    interpolated linearly (w is not Gaussian; StyleGAN §4.2) and so are their noise maps, so that every
    keyframe is its projection exactly (midway the noise maps are blends of two unit-variance maps, with
    less variance, so fine detail is smoother there).

    Args:
        model: the style-based model the projections were made with (``has_style_latents``).
        keys: K ≥ 2 projections, each ws [1, num_ws, w_dim] and noise maps
            (:func:`~imagegen.sampling.project.load_projected_latent`).
        steps: frames per segment, endpoints included.

    Returns:
        float32 [(K − 1)·(steps − 1) + 1, C, H, W] in [-1, 1] on the CPU.

    Raises:
        ConfigError: fewer than 2 keys, steps < 2.
    """
    if len(keys) < 2:
        raise ConfigError("interpolation needs at least two projections (e.g. --projections a.npz,b.npz)")
    ws = interpolation_path(torch.cat([k.ws for k in keys]), steps, "lerp")  # [T, num_ws, w_dim]
    noise = {name: interpolation_path(torch.stack([k.noise[name] for k in keys]), steps, "lerp")  # [T, 1, 1, r, r]
             for name in keys[0].noise}
    frames = []
    with noise_loaded(model, {name: maps[0] for name, maps in noise.items()}):  # restores the model's own after
        for t in range(len(ws)):
            load_noise(model, {name: maps[t] for name, maps in noise.items()})
            frames.append(model.synthesize(ws[t:t + 1], noise_mode="const").float().cpu())
    return torch.cat(frames)


@torch.no_grad()
def reconstruct(model, img: torch.Tensor, labels: Optional[torch.Tensor] = None,
                decode_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``decode(encode(img))``: for VAEs the decoder mean at the posterior mean.

    Args:
        model: an encoder model (vae, cvae, aae).
        img: float32 [N, C, H, W] in [-1, 1] at the model's resolution and channels.
        labels: int64 [N] true classes for conditional models (used by the encoder).
        decode_labels: int64 [N] classes to decode with (default: ``labels``), e.g. to redraw a digit's
            style as another class with cvae.

    Returns:
        float32 [N, C, H, W] in [-1, 1] on the CPU.

    Raises:
        ConfigError: the model has no encoder, or labels are missing for a conditional model.
    """
    if not model.has_encoder:
        raise ConfigError(f"{model.model_name} has no encoder; reconstruction needs vae, cvae or aae")
    z = model.encode(img.to(model.device), labels)
    return model.decode(z, labels if decode_labels is None else decode_labels).float().cpu()


def load_images(paths: Sequence[str | os.PathLike], resolution: int, channels: int,
                resize: str = "bicubic") -> torch.Tensor:
    """Read image files as model input: grayscale or RGB, short side resized to ``resolution`` and
    centre-cropped (``resize="pad"``: zero-padded to it, no resampling; larger images are an error).

    Returns:
        float32 [len(paths), channels, resolution, resolution] in [-1, 1].

    Raises:
        DataError: a file is missing or not an image, or (``pad``) larger than ``resolution``.
        ConfigError: unknown resize method.
    """
    check_resize(resize, ConfigError)
    arrs = []
    for p in paths:
        try:
            with Image.open(p) as im:
                im = im.convert("L" if channels == 1 else "RGB")
                im = resize_center_crop_pil(im, resolution, resize)
                arr = np.asarray(im, dtype=np.uint8)
        except DataError as e:  # pad: larger than the resolution
            raise DataError(f"{p}: {e}") from None
        except (OSError, ValueError) as e:
            raise DataError(f"cannot read image {p} ({type(e).__name__}); pass PNG/JPEG files") from None
        arrs.append(arr[..., None] if arr.ndim == 2 else arr)
    u8 = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2)  # [N, C, H, W] uint8
    return uint8_to_float(u8)


def _frame_arrays(frames: torch.Tensor, scale: int, nrow: Optional[int]) -> list[np.ndarray]:
    """uint8 [H, W, C] pictures, one per frame: [T, C, H, W] frames as they are, [T, N, C, H, W]
    frames each tiled into a grid of N images (``nrow`` per row, default all in one row)."""
    if frames.ndim == 5:
        arrs = [make_grid(f, nrow=nrow or f.shape[0]) for f in frames]
    else:
        arrs = list(to_uint8_nhwc(frames))
    if scale > 1:
        arrs = [a.repeat(scale, axis=0).repeat(scale, axis=1) for a in arrs]  # nearest-neighbour upscaling
    return arrs


def save_gif(frames: torch.Tensor, path: str | os.PathLike, fps: float = 12.0, boomerang: bool = True,
             scale: int = 1, nrow: Optional[int] = None) -> None:
    """Write frames as a looping animated GIF.

    Args:
        frames: float [T, C, H, W] in [-1, 1], or [T, N, C, H, W] (each frame a grid of N images,
            e.g. one per class, ``nrow`` per row).
        fps: frames per second.
        boomerang: play forwards then backwards, so the loop has no jump.
        scale: integer nearest-neighbour upscaling (small images are hard to see at 1×).
    """
    arrs = _frame_arrays(frames, scale, nrow)
    seq = arrs + (arrs[-2:0:-1] if boomerang and len(arrs) > 2 else [])
    ims = [to_pil(a) for a in seq]
    save_pil_atomic(ims[0], path, save_all=True, append_images=ims[1:], duration=max(20, round(1000 / fps)), loop=0)


def save_strip(frames: torch.Tensor, path: str | os.PathLike, scale: int = 1, nrow: Optional[int] = None) -> None:
    """Write frames as a PNG: [T, C, H, W] as one row (or rows of ``nrow``); [T, N, C, H, W] as N rows
    of T frames (e.g. one row per class)."""
    if frames.ndim == 5:
        grid = make_grid(frames.transpose(0, 1).flatten(0, 1), nrow=frames.shape[0])
    else:
        grid = make_grid(frames, nrow=nrow or len(frames))
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    save_png_atomic(grid, path)
