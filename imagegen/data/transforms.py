"""Resizing and channel conversion of uint8 image arrays (Pillow), applied once at load time.

Resize methods (the ``resize`` option of every loader, ``--resize`` on the command line):

* a Pillow resampling filter (``bicubic``, ``bilinear``, ``lanczos``, ``box``, ``nearest``; keys of
  :data:`RESAMPLE`): the short side is resized to R, then the image is centre-cropped to R×R;
* ``pad`` (:data:`PAD`): no resampling; an image of at most R×R is zero-padded (black: 0 in uint8,
  -1 in [-1, 1]) to R×R, centred, each dimension independently (so a non-square image is padded to a
  square). When a dimension's difference is odd the extra pixel goes to the bottom/right, as
  torchvision's ``CenterCrop(R)`` pads an image smaller than R (MNIST 28×28 → 32×32: 2 pixels on
  each side, the same as ``transforms.Pad(2)``). An image larger than R in either dimension is a
  :class:`~imagegen.errors.DataError` (nothing is cropped or resampled silently).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from PIL import Image

from ..errors import DataError

RESAMPLE = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS,
            "nearest": Image.NEAREST, "box": Image.BOX}

#: the resize method that zero-pads to the resolution instead of resampling
PAD = "pad"

#: the default: pad images that are nearly the resolution already, resample the rest (see :func:`resolve_resize`)
AUTO = "auto"

#: every valid ``resize`` value: ``auto``, the Pillow filters of :data:`RESAMPLE`, then ``pad``
RESIZE_METHODS = (AUTO, *sorted(RESAMPLE), PAD)

#: ``auto`` pads when padding adds at most resolution / AUTO_PAD_FRACTION pixels on each side
AUTO_PAD_FRACTION = 16


def resolve_resize(method: str, height: int, width: int, resolution: int) -> str:
    """The concrete method that ``method`` means for an H×W image brought to R×R.

    Every method but ``auto`` is itself. ``auto`` is ``pad`` when the image is at most R×R and padding
    adds at most R / 16 pixels on each side — MNIST and Fashion-MNIST 28×28 at 32×32 (2 pixels, the
    LeNet-5 framing of a 28×28 digit field in a 32×32 input) — and ``bicubic`` otherwise (e.g. MNIST at
    64, USPS 16×16 at 32, larger photos). Zero-padding keeps every stroke as drawn; upsampling by 32/28
    blurs them and the toolkit's MNIST ablation measured worse samples from it (docs/dcgan_ablation.md:
    a DCGAN's classifier-FID 17.1 vs 13.4 after one epoch, of which 0.6 is the cost of scoring resized
    digits at 28×28).
    """
    if method != AUTO:
        return method
    border = resolution / AUTO_PAD_FRACTION
    if height <= resolution and width <= resolution and max(resolution - height, resolution - width) <= 2 * border:
        return PAD
    return "bicubic"


def check_resize(method: str, error: type[Exception] = DataError) -> None:
    """Raise ``error`` (one line, listing the valid values) unless ``method`` is in :data:`RESIZE_METHODS`."""
    if method not in RESIZE_METHODS:
        raise error(f"unknown resize method {method!r}; use one of {', '.join(RESIZE_METHODS)}")


def describe_resize(method: str) -> str:
    """One-line description of what ``method`` does to an image (recorded with evaluation results)."""
    if method == PAD:
        return "pad (no resampling): zero-padded to RxR, centred, extra pixel bottom/right"
    if method == AUTO:
        return ("auto: pad (no resampling) when the images are at most RxR and within R/16 pixels of it on "
                "each side, else bicubic (Pillow), short side + centre crop")
    return f"{method} (Pillow), short side + centre crop"


def pad_offsets(height: int, width: int, resolution: int) -> tuple[int, int]:
    """``(top, left)`` padding that centres an H×W image in R×R (extra pixel bottom/right).

    Raises:
        DataError: H or W larger than R (one line with the fix).
    """
    if height > resolution or width > resolution:
        raise DataError(f"image is {width}x{height}, larger than the resolution {resolution}x{resolution}: "
                        f"resize pad only pads smaller images; use a resampling method (e.g. --resize "
                        f"bicubic) or --resolution {max(width, height)} or more")
    return (resolution - height) // 2, (resolution - width) // 2


def crop_padding(img: "torch.Tensor", height: int, width: int) -> "torch.Tensor":
    """Undo :data:`PAD`: the H×W region that zero-padding placed in an [N, C, R, R] tensor (any dtype),
    at the same offsets as :func:`pad_offsets`. E.g. a 32×32 sample of a model trained on padded MNIST
    → its 28×28 digit field (to score it against the native test set)."""
    top, left = pad_offsets(height, width, img.shape[-1])
    return img[..., top:top + height, left:left + width].contiguous()


def pad_pil(img: Image.Image, resolution: int) -> Image.Image:
    """Zero-pad a PIL image (any mode) to ``resolution``×``resolution`` without resampling (see :data:`PAD`)."""
    w, h = img.size
    if (w, h) == (resolution, resolution):
        return img
    top, left = pad_offsets(h, w, resolution)
    out = Image.new(img.mode, (resolution, resolution))  # zeros: black
    out.paste(img, (left, top))
    return out


def resize_center_crop_pil(img: Image.Image, resolution: int, method: str = "bicubic") -> Image.Image:
    """Resize the short side of a PIL image to ``resolution`` and centre-crop to a square.

    ``method`` ``pad`` zero-pads instead (:func:`pad_pil`); ``auto`` is resolved for this image's size
    (:func:`resolve_resize`): every loader goes through this function.
    """
    w, h = img.size
    if (w, h) == (resolution, resolution):
        return img
    method = resolve_resize(method, h, w, resolution)
    if method == PAD:
        return pad_pil(img, resolution)
    scale = resolution / min(w, h)
    nw, nh = max(resolution, round(w * scale)), max(resolution, round(h * scale))
    img = img.resize((nw, nh), RESAMPLE[method])
    left, top = (nw - resolution) // 2, (nh - resolution) // 2
    return img.crop((left, top, left + resolution, top + resolution))


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


def resize_array(images: np.ndarray, resolution: Optional[int], method: str = "bicubic",
                 name: str = "") -> np.ndarray:
    """Resize uint8 [N, H, W, C] to [N, R, R, C] (short side to R, then centre crop; ``pad``: zero-pad).

    Args:
        images: uint8 [N, H, W, C].
        resolution: R, or None to keep the size.
        method: a value of :data:`RESIZE_METHODS` (``auto``: see :func:`resolve_resize`).
        name: the dataset's name, for error messages.

    Raises:
        DataError: unknown ``method``; with ``pad``, images larger than R (naming the dataset).
    """
    check_resize(method)
    if resolution is None or images.shape[1:3] == (resolution, resolution):
        return images
    method = resolve_resize(method, images.shape[1], images.shape[2], resolution)
    if method == PAD:
        h, w = images.shape[1:3]
        try:
            top, left = pad_offsets(h, w, resolution)
        except DataError as e:
            raise DataError(f"{name}: {e}" if name else str(e)) from None
        return np.pad(images, ((0, 0), (top, resolution - h - top), (left, resolution - w - left), (0, 0)))
    c = images.shape[-1]
    out = np.empty((len(images), resolution, resolution, c), np.uint8)
    for i, im in enumerate(images):
        pil = Image.fromarray(im[..., 0] if c == 1 else im)
        arr = np.asarray(resize_center_crop_pil(pil, resolution, method))
        out[i] = arr[..., None] if c == 1 else arr
    return out
