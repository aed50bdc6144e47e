"""Image I/O at the edges: float32 NCHW in [-1, 1] ↔ uint8 NHWC, grids, PNG and NPZ files (Pillow, NumPy)."""
from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..checkpoint import write_npz_atomic
from ..data.base import float_to_uint8
from ..errors import ImagegenError


def to_uint8_nhwc(img: torch.Tensor) -> np.ndarray:
    """float [N, C, H, W] in [-1, 1] → uint8 [N, H, W, C] in [0, 255] (NumPy)."""
    if img.ndim != 4 or img.shape[1] not in (1, 3):
        raise ValueError(f"expected images [N, 1|3, H, W], got {tuple(img.shape)}")
    return float_to_uint8(img).permute(0, 2, 3, 1).cpu().numpy()


def make_grid(img: torch.Tensor, nrow: Optional[int] = None, padding: int = 2, pad_value: int = 0) -> np.ndarray:
    """Tile images into one picture.

    Args:
        img: float [N, C, H, W] in [-1, 1].
        nrow: images per row (default: ⌈√N⌉).
        padding: pixels between images.
        pad_value: uint8 value of the padding.

    Returns:
        uint8 [H', W', C] grid.
    """
    arr = to_uint8_nhwc(img)
    n, h, w, c = arr.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    ncol = math.ceil(n / nrow)
    grid = np.full((ncol * (h + padding) + padding, nrow * (w + padding) + padding, c), pad_value, np.uint8)
    for i in range(n):
        r, q = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + q * (w + padding)
        grid[y:y + h, x:x + w] = arr[i]
    return grid


def mosaic(rows: Sequence[Sequence[Optional[np.ndarray]]], cell: int, padding: int = 4,
           header: Optional[Sequence[str]] = None, wrap_header: bool = False) -> Image.Image:
    """Images of different sizes in a table on white: each is fitted into a ``cell`` × ``cell`` square
    (aspect ratio kept, Lanczos, centred); ``None`` leaves a cell blank; ``header`` puts column titles
    (Pillow's default font, about 6 pixels per character) above the columns: one 18-pixel line, each title
    cut to its cell's width, or with ``wrap_header`` wrapped onto up to three 12-pixel lines (what is
    longer than three cell widths is cut).

    Args:
        rows: rows of uint8 [H, W, C] arrays (C = 1 or 3) or None.
        cell: cell side in pixels.
        padding: pixels between cells.
        header: one title per column, or None.
        wrap_header: wrap long titles onto up to 3 lines (the header grows by 12 pixels a line).

    Returns:
        an RGB PIL image.
    """
    n_rows, n_cols = len(rows), max((len(r) for r in rows), default=0)
    width = max(1, cell // 6)
    titles = [(textwrap.wrap(text, width, break_on_hyphens=False)[:3] if wrap_header else [text[:width]]) or [""]
              for text in header or []]
    top = 6 + 12 * max(map(len, titles)) if titles else 0
    out = Image.new("RGB", (n_cols * (cell + padding) + padding, top + n_rows * (cell + padding) + padding), "white")
    draw = ImageDraw.Draw(out)
    for j, lines in enumerate(titles):
        for k, line in enumerate(lines):
            draw.text((padding + j * (cell + padding) + 2, 3 + 12 * k), line, fill="black")
    for i, row in enumerate(rows):
        for j, arr in enumerate(row):
            if arr is None:
                continue
            im = to_pil(arr).convert("RGB")
            scale = cell / max(im.size)
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                           Image.Resampling.LANCZOS)
            out.paste(im, (padding + j * (cell + padding) + (cell - im.width) // 2,
                           top + padding + i * (cell + padding) + (cell - im.height) // 2))
    return out


def to_pil(arr_hwc: np.ndarray) -> Image.Image:
    """uint8 [H, W, C] with C = 1 (greyscale "L") or 3 (RGB) → a PIL image."""
    return Image.fromarray(arr_hwc[..., 0] if arr_hwc.shape[-1] == 1 else arr_hwc)


def save_pil_atomic(im: Image.Image, path: str | os.PathLike, **save_kwargs: Any) -> None:
    """``im.save(path, **save_kwargs)`` (format from the extension: PNG, JPEG, WebP, GIF) via a
    temporary file and rename, so a reader never sees a half-written file."""
    path = Path(path)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}{path.suffix}")
    im.save(tmp, **save_kwargs)
    os.replace(tmp, path)


def save_png_atomic(arr_hwc: np.ndarray, path: str | os.PathLike) -> None:
    """Write uint8 [H, W, C] as an image (format from the extension: PNG, JPEG, WebP) atomically."""
    save_pil_atomic(to_pil(arr_hwc), path)


def save_grid(img: torch.Tensor, path: str | os.PathLike, nrow: Optional[int] = None, padding: int = 2) -> np.ndarray:
    """Save images float [N, C, H, W] in [-1, 1] as one PNG grid; returns the uint8 grid [H', W', C]."""
    grid = make_grid(img, nrow, padding)
    save_png_atomic(grid, path)
    return grid


def save_npz(path: str | os.PathLike, img: torch.Tensor, labels: Optional[torch.Tensor] = None) -> None:
    """Save ``images``: uint8 [N, H, W, C] (and ``labels``: int64 [N] if given) to an ``.npz``."""
    arrays = {"images": to_uint8_nhwc(img)}
    if labels is not None:
        arrays["labels"] = labels.cpu().numpy().astype(np.int64)
    write_npz_atomic(Path(path), arrays)


def save_images(img: torch.Tensor, out: str | os.PathLike, labels: Optional[torch.Tensor] = None,
                nrow: Optional[int] = None) -> str:
    """Write samples to ``out`` by its extension: ``.npz`` (uint8 array) or ``.png``/``.jpg``/``.webp``
    (a grid). Returns a one-line description.

    Raises:
        ImagegenError: for an unsupported extension or a missing parent directory.
    """
    out = Path(out)
    if not out.parent.exists():
        raise ImagegenError(f"directory {out.parent} does not exist; create it or choose another --out")
    ext = out.suffix.lower()
    if ext == ".npz":
        save_npz(out, img, labels)
        return f"wrote {len(img)} images ({tuple(img.shape[1:])}) to {out} (key 'images', uint8 NHWC)"
    if ext in (".png", ".jpg", ".jpeg", ".webp"):
        save_png_atomic(make_grid(img, nrow), out)
        return f"wrote a grid of {len(img)} images to {out}"
    raise ImagegenError(f"--out {out}: unsupported extension {ext!r}; use .npz for arrays or .png for a grid")
