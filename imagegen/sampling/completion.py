"""Image completion with autoregressive models: which pixels are kept, reading the images to complete
at the model's exact size, and the completion grid.

An autoregressive model samples p(rest | kept) exactly when the kept pixels come first in its raster
order, so the regions offered here are raster prefixes: the top rows, or the first pixels (van den
Oord et al. 2016a, Figure 1 and §5.4, complete occluded lower halves).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..data.base import uint8_to_float
from ..data.folder import list_images
from ..errors import ConfigError, DataError

KEEP_HELP = ("pixels kept from the input: top-half, top:ROWS (the first ROWS rows) or first:PIXELS "
             "(the first PIXELS pixels in raster order)")


def known_mask(spec: str, resolution: int) -> torch.Tensor:
    """The kept pixels of a ``--keep`` spec as a bool [R, R] mask (True = kept).

    Raises:
        ConfigError: an unknown spec, or one that keeps every pixel or none.
    """
    r = resolution
    s = spec.strip().lower()
    try:
        if s == "top-half":
            count = (r // 2) * r
        elif s.startswith("top:"):
            count = int(s[4:]) * r
        elif s.startswith("first:"):
            count = int(s[6:])
        else:
            raise ValueError
    except ValueError:
        raise ConfigError(f"--keep {spec!r}: {KEEP_HELP}") from None
    if count >= r * r:
        raise ConfigError(f"--keep {spec!r} keeps all {r}×{r} pixels, leaving nothing to sample; keep fewer")
    if count <= 0:
        raise ConfigError(f"--keep {spec!r} keeps no pixel; use `imagegen sample` to sample whole images")
    mask = torch.zeros(r * r, dtype=torch.bool)
    mask[:count] = True
    return mask.view(r, r)


def input_files(inputs: Sequence[str | os.PathLike]) -> list[str]:
    """Image files from ``--input`` values: files as given, folders expanded (sorted, recursive).

    Raises:
        DataError: a path that does not exist, or a folder without images.
    """
    files: list[str] = []
    for p in inputs:
        path = Path(p)
        if path.is_dir():
            names = list_images(path)
            if not names:
                raise DataError(f"no images in {path}; give PNG/JPEG files")
            files += [str(path / n) for n in names]
        elif path.suffix.lower() == ".zip":
            raise DataError(f"--input {path}: extract the zip, or give image files or a folder")
        elif path.is_file():
            files.append(str(path))
        else:
            raise DataError(f"--input {path} does not exist")
    return files


def read_exact(paths: Sequence[str], resolution: int, channels: int) -> torch.Tensor:
    """Read images that must already have the model's size and channels (no resizing: a completion
    keeps the given pixels as they are).

    Returns:
        float32 [N, C, R, R] in [-1, 1].

    Raises:
        DataError: unreadable files, or a size or channel count other than the model's.
    """
    arrs = []
    for p in paths:
        try:
            with Image.open(p) as im:
                if im.mode in _GRAY_MODES:
                    arr = np.asarray(im.convert("L"), dtype=np.uint8)
                else:
                    arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
                    if channels == 1 and (arr == arr[..., :1]).all():  # grey stored as RGB
                        arr = arr[..., 0]
        except (OSError, ValueError) as e:
            raise DataError(f"cannot read image {p} ({type(e).__name__}); pass PNG/JPEG files") from None
        c = 1 if arr.ndim == 2 else 3
        if arr.shape[:2] != (resolution, resolution) or c != channels:
            raise DataError(f"{p} is {arr.shape[1]}×{arr.shape[0]} with {c} channel(s); the model completes "
                            f"{resolution}×{resolution} images with {channels} channel(s): convert it first")
        arrs.append(arr[..., None] if arr.ndim == 2 else arr)
    u8 = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2)  # [N, C, R, R] uint8
    return uint8_to_float(u8)


_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def completion_grid(inputs: torch.Tensor, known: torch.Tensor, completions: torch.Tensor) -> torch.Tensor:
    """Rows of [occluded input (unknown pixels grey), completions…, original].

    Args:
        inputs: float32 [N, C, R, R] in [-1, 1].
        known: bool [R, R].
        completions: float32 [N·K, C, R, R] in [-1, 1], the K completions of input n at rows n·K … n·K + K − 1.

    Returns:
        float32 [N·(K + 2), C, R, R] for a grid with K + 2 images per row.
    """
    n = inputs.shape[0]
    k = completions.shape[0] // n
    occluded = torch.where(known.to(inputs.device), inputs, torch.zeros_like(inputs))
    rows = [torch.cat([occluded[i:i + 1], completions[i * k:(i + 1) * k], inputs[i:i + 1]]) for i in range(n)]
    return torch.cat(rows)
