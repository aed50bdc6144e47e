"""Resizing and channel conversion of uint8 image arrays (Pillow), applied once at load time."""
from __future__ import annotations

from typing import Optional

import numpy as np
from PIL import Image

from ..errors import DataError

RESAMPLE = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS,
            "nearest": Image.NEAREST, "box": Image.BOX}


def convert_channels(images: np.ndarray, channels: Optional[int]) -> np.ndarray:
    """Convert uint8 [N, H, W, C] to ``channels`` (1 = grayscale by ITU-R 601-2 luma, 3 = RGB)."""
    if channels is None or images.shape[-1] == channels:
        return images
    if channels == 3 and images.shape[-1] == 1:
        return np.repeat(images, 3, axis=-1)
    if channels == 1 and images.shape[-1] == 3:
        luma = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
    raise DataError(f"cannot convert {images.shape[-1]}-channel images to {channels} channels; use 1 or 3")


def resize_center_crop_pil(img: Image.Image, resolution: int, method: str = "bicubic") -> Image.Image:
    """Resize the short side of a PIL image to ``resolution`` and centre-crop to a square."""
    w, h = img.size
    if (w, h) == (resolution, resolution):
        return img
    scale = resolution / min(w, h)
    nw, nh = max(resolution, round(w * scale)), max(resolution, round(h * scale))
    img = img.resize((nw, nh), RESAMPLE[method])
    left, top = (nw - resolution) // 2, (nh - resolution) // 2
    return img.crop((left, top, left + resolution, top + resolution))


def resize_array(images: np.ndarray, resolution: Optional[int], method: str = "bicubic") -> np.ndarray:
    """Resize uint8 [N, H, W, C] to [N, R, R, C] (short side to R, then centre crop)."""
    if resolution is None or images.shape[1:3] == (resolution, resolution):
        return images
    if method not in RESAMPLE:
        raise DataError(f"unknown resize method {method!r}; use one of {sorted(RESAMPLE)}")
    c = images.shape[-1]
    out = np.empty((len(images), resolution, resolution, c), np.uint8)
    for i, im in enumerate(images):
        pil = Image.fromarray(im[..., 0] if c == 1 else im)
        arr = np.asarray(resize_center_crop_pil(pil, resolution, method))
        out[i] = arr[..., None] if c == 1 else arr
    return out
