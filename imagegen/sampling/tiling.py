"""Running an image-to-image network at any size: reflection padding to its size multiple, and tiles.

**Sizes.** An image is reflect-padded (about half on each side, the odd pixel on the bottom/right) up to
a multiple of the model's :attr:`~imagegen.models.base.GenerativeModel.size_multiple`, run at that size
(the networks are fully convolutional), and the output cropped back (× the scale for super-resolution,
read from the output's shape).

**Tiles.** A large image is cut into overlapping ``tile`` × ``tile`` tiles (rounded down to a multiple of
``size_multiple``, with starts on that grid and the last tile flush with the border, so every tile sees
the pixel alignment of the whole image), and the tiles' outputs are **blended**: each output pixel is
the weighted mean of the tiles covering it, with weights that ramp linearly from ≈0 to 1 across
``overlap`` pixels at every tile edge inside the image (1 at the image's own border). For a model whose
outputs depend on each pixel alone the result equals the untiled one; for convolutional networks the
ramps hide the seams where receptive fields are cut and per-tile statistics (instance normalisation)
differ from the whole image's.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F

#: a batch function: images float32 [B, C, h, w] in [-1, 1] and masks bool [B, 1, h, w] (True = missing)
#: or None → float32 [B, C', s·h, s·w] in [-1, 1]
BatchFn = Callable[[torch.Tensor, Optional[torch.Tensor]], torch.Tensor]


def pad_to_multiple(img: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad H and W up to multiples of ``multiple`` (the odd pixel on the bottom/right).

    Args:
        img: float32 [N, C, H, W] (bool masks are padded as 0/1 floats and come back as bool), with
            H, W ≥ ``multiple``.
        multiple: the model's :attr:`~imagegen.models.base.GenerativeModel.size_multiple`.

    Returns:
        ``(padded, (top, left))``: [N, C, H', W'] and the offset of the original image in it.
    """
    h, w = img.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if not ph and not pw:
        return img, (0, 0)
    top, left = ph // 2, pw // 2
    x = img.float() if img.dtype == torch.bool else img
    x = F.pad(x, (left, pw - left, top, ph - top), mode="reflect")
    return (x > 0.5 if img.dtype == torch.bool else x), (top, left)


def tile_starts(length: int, tile: int, step: int) -> list[int]:
    """Starts of tiles of ``tile`` pixels covering ``length`` pixels, ``step`` apart, the last one flush
    with the end (one tile of the whole length when ``length`` ≤ ``tile``)."""
    if length <= tile:
        return [0]
    return list(range(0, length - tile, step)) + [length - tile]


def blend_ramp(start: int, size: int, length: int, overlap: int) -> torch.Tensor:
    """1-D blending weights float32 [size] of a tile at ``start`` in ``length`` pixels: a linear ramp
    over ``overlap`` pixels at each edge that lies inside the image, 1 elsewhere (never 0)."""
    i = torch.arange(size, dtype=torch.float32) + 0.5
    w = torch.ones(size)
    if overlap > 0 and start > 0:
        w = torch.minimum(w, i / overlap)
    if overlap > 0 and start + size < length:
        w = torch.minimum(w, (size - i) / overlap)
    return w


def tiled(fn: BatchFn, img: torch.Tensor, mask: Optional[torch.Tensor], tile: int, overlap: int,
          multiple: int, batch_size: int) -> torch.Tensor:
    """Run ``fn`` on overlapping tiles of one image and blend the outputs (see the module docstring).

    Args:
        fn: the batch function (images [B, C, t, t] and masks [B, 1, t, t] or None → [B, C', s·t, s·t]).
        img: float32 [1, C, H, W], H and W multiples of ``multiple``.
        mask: bool [1, 1, H, W] or None.
        tile: tile side in pixels (rounded down to a multiple of ``multiple``; at least ``multiple``).
        overlap: pixels shared by neighbouring tiles (the blending ramp's length).
        multiple: the model's size multiple (tile starts and sizes lie on its grid).
        batch_size: tiles per call of ``fn``.

    Returns:
        float32 [1, C', s·H, s·W].
    """
    h, w = img.shape[-2:]
    t = max(multiple, tile // multiple * multiple)
    step = max(multiple, (t - overlap) // multiple * multiple)
    th, tw = min(t, h), min(t, w)
    boxes = [(top, left) for top in tile_starts(h, th, step) for left in tile_starts(w, tw, step)]
    out = weight = None
    scale = 1
    for b in range(0, len(boxes), batch_size):
        chunk = boxes[b:b + batch_size]
        x = torch.cat([img[..., top:top + th, left:left + tw] for top, left in chunk])  # [B, C, th, tw]
        m = None if mask is None else torch.cat([mask[..., top:top + th, left:left + tw] for top, left in chunk])
        pieces = fn(x, m).float().cpu()  # [B, C', s·th, s·tw]
        if out is None:
            scale = output_scale(pieces, th, tw)
            out = torch.zeros(1, pieces.shape[1], scale * h, scale * w)
            weight = torch.zeros(1, 1, scale * h, scale * w)
        for (top, left), piece in zip(chunk, pieces):
            wy = blend_ramp(scale * top, scale * th, scale * h, scale * overlap)
            wx = blend_ramp(scale * left, scale * tw, scale * w, scale * overlap)
            wgt = wy[:, None] * wx[None, :]  # [s·th, s·tw]
            ys, xs = slice(scale * top, scale * (top + th)), slice(scale * left, scale * (left + tw))
            out[0, :, ys, xs] += piece * wgt
            weight[0, 0, ys, xs] += wgt
    return out / weight


def output_scale(out: torch.Tensor, h: int, w: int) -> int:
    """The integer factor s with ``out`` [B, C', s·h, s·w] (1 for translation, 2 or 4 for ×2/×4 SR).

    Raises:
        ValueError: the output is not an integer multiple of the input's size on both axes (a model bug).
    """
    s = out.shape[-2] // h
    if s < 1 or out.shape[-2] != s * h or out.shape[-1] != s * w:
        raise ValueError(f"the model mapped a {w}x{h} input to {out.shape[-1]}x{out.shape[-2]}; an "
                         "image-to-image model must keep the size or scale it by a whole number")
    return s
