"""Paired image datasets: aligned pairs (A, B) of the same scene, for pix2pix-style models.

Two layouts are read, from a folder or a ``.zip``:

* ``folders``: subfolders ``A/`` and ``B/`` (at the top, or under ``train/`` etc. when the path names
  that folder) holding files with the same relative names; a file present on one side only is an
  error naming it.
* ``side-by-side``: each file holds A and B next to each other (A on the left), as in the datasets of
  the pix2pix repository (``facades``, ``maps``, ...). Each image is split down the middle *before*
  resizing, so a 512×256 file gives two 256×256 halves; neither half is cropped away.

``auto`` picks ``folders`` when both ``A/`` and ``B/`` exist, else ``side-by-side`` for files twice as
wide as high (anything else is an error: a folder of unpaired images is not split in half silently). After the split,
each image is resized and centre-cropped to the model's resolution as any other image (or, with
``resize="pad"``, zero-padded to it: each half must then be at most R×R).
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Literal, Optional

import numpy as np
import torch
from PIL import Image

from ..errors import DataError
from .base import uint8_to_float
from .folder import ImageSource, decode_image
from .transforms import check_resize, resize_center_crop_pil

PairedLayout = Literal["auto", "folders", "side-by-side"]


def _pairs_from_folders(names: list[str]) -> Optional[list[tuple[str, str]]]:
    """(A name, B name) pairs when the names contain ``A/…`` and ``B/…`` trees, else None."""
    a = {n.split("/", 1)[1]: n for n in names if n.startswith("A/")}
    b = {n.split("/", 1)[1]: n for n in names if n.startswith("B/")}
    if not a or not b:
        return None
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        side, missing = ("B", only_a) if only_a else ("A", only_b)
        raise DataError(f"paired folders: {len(missing)} file(s) have no partner in {side}/ (first: "
                        f"{missing[0]}); A/ and B/ must hold files with the same names")
    return [(a[k], b[k]) for k in sorted(a)]


def _pil(x: np.ndarray) -> Image.Image:
    """uint8 [H, W, 1|3] → a Pillow image (L or RGB)."""
    return Image.fromarray(x[..., 0] if x.shape[-1] == 1 else x)


def _to_array(img: Image.Image, resolution: Optional[int], resize: str, what: str = "") -> np.ndarray:
    if resolution is not None:
        try:
            img = resize_center_crop_pil(img, resolution, resize)
        except DataError as e:  # pad: larger than the resolution
            raise DataError(f"{what}: {e}" if what else str(e)) from None
    arr = np.asarray(img)
    return arr[..., None] if arr.ndim == 2 else arr


class PairedDataset(torch.utils.data.Dataset):
    """Aligned image pairs in memory.

    Args:
        a: uint8 [N, R, R, C] first images (e.g. the input: a label map, an edge map).
        b: uint8 [N, R, R, C] second images (e.g. the target photo).
        name: dataset name (recorded in run configs).

    ``get_batch(indices)`` returns ``(a, b, label)``: float32 [B, C, R, R] in [-1, 1] each and int64
    [B] labels (-1: pairs are unlabelled).
    """

    labels = None
    class_names = None
    num_classes = 0

    def __init__(self, a: np.ndarray, b: np.ndarray, *, name: str = "") -> None:
        if a.shape != b.shape or a.dtype != np.uint8 or a.ndim != 4:
            raise DataError(f"paired dataset {name!r}: A {a.shape} and B {b.shape} must be uint8 [N, R, R, C] "
                            "of the same shape")
        if len(a) == 0:
            raise DataError(f"paired dataset {name!r} has no pairs; check the path")
        self.a = torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))
        self.b = torch.from_numpy(np.ascontiguousarray(b.transpose(0, 3, 1, 2)))
        self.name = name

    @property
    def channels(self) -> int:
        return int(self.a.shape[1])

    @property
    def resolution(self) -> int:
        return int(self.a.shape[2])

    def __len__(self) -> int:
        return int(self.a.shape[0])

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A and B float32 [B, C, R, R] in [-1, 1] and labels int64 [B] (all -1)."""
        return (uint8_to_float(self.a[indices]), uint8_to_float(self.b[indices]),
                torch.full((len(indices),), -1, dtype=torch.int64))


def load_paired(path: str | os.PathLike, *, resolution: Optional[int] = None, channels: Optional[int] = None,
                resize: str = "bicubic", layout: PairedLayout = "auto", strict: bool = True) -> PairedDataset:
    """Load aligned pairs from a folder or zip (see the module docstring for the layouts).

    Args:
        path: folder or ``.zip``.
        resolution: square size R of each image after the split (short side resized to R, centre
            crop); None keeps the native size, which must then be equal for all.
        channels: 1 or 3 (None: the images' own, RGB if any is colour).
        resize: Pillow resampling method, or ``pad`` (zero-pad each image, or each half of a
            side-by-side image, to R×R without resampling; see :mod:`imagegen.data.transforms`).
        layout: ``auto``, ``folders`` or ``side-by-side``.
        strict: fail on an undecodable file (default) instead of skipping the pair.

    Returns:
        A :class:`PairedDataset`.

    Raises:
        DataError: missing path, no images, unmatched names, undecodable files, a side-by-side file
            with an odd width, sizes that differ with ``resolution=None``, an unknown ``resize``, or
            with ``pad`` an image (half) larger than R.
    """
    path = Path(path)
    check_resize(resize)
    source = ImageSource(path)
    names = source.list_images()
    if not names:
        raise DataError(f"{path} contains no PNG, JPEG or WebP images; point to a folder or .zip of pairs")
    pairs = _pairs_from_folders(names) if layout in ("auto", "folders") else None
    if layout == "folders" and pairs is None:
        raise DataError(f"{path} has no A/ and B/ subfolders; use layout side-by-side for A|B files")
    a_list, b_list = [], []
    with source:
        def decode(name: str) -> Optional[np.ndarray]:
            try:
                return decode_image(source.open(name), None, channels)
            except Exception as e:  # noqa: BLE001 - decoders raise many types for corrupt data
                if strict:
                    raise DataError(f"cannot decode image {source.display(name)} ({e}); remove or replace "
                                    "it") from e
                return None

        if pairs is not None:
            for na, nb in pairs:
                xa, xb = decode(na), decode(nb)
                if xa is None or xb is None:
                    continue
                a_list.append(_to_array(_pil(xa), resolution, resize, source.display(na)))
                b_list.append(_to_array(_pil(xb), resolution, resize, source.display(nb)))
        else:
            for name in names:
                x = decode(name)
                if x is None:
                    continue
                h, w = x.shape[:2]
                if w % 2:
                    raise DataError(f"{source.display(name)} is {w}x{h}: a side-by-side A|B image needs an even "
                                    "width; check the layout (use A/ and B/ folders for separate files)")
                if layout == "auto" and w != 2 * h:
                    raise DataError(f"{source.display(name)} is {w}x{h}, not an A|B pair side by side (width = "
                                    "2 × height) and there are no A/ and B/ subfolders: put paired images in A/ "
                                    "and B/ with matching names (or pass --paired-layout side-by-side)")
                img = _pil(x)
                a_list.append(_to_array(img.crop((0, 0, w // 2, h)), resolution, resize,
                                        f"{source.display(name)} (left half)"))
                b_list.append(_to_array(img.crop((w // 2, 0, w, h)), resolution, resize,
                                        f"{source.display(name)} (right half)"))
    if not a_list:
        raise DataError(f"no pair in {path} could be decoded")
    c = max(x.shape[-1] for x in a_list + b_list)
    a_list = [np.repeat(x, c, -1) if x.shape[-1] != c else x for x in a_list]
    b_list = [np.repeat(x, c, -1) if x.shape[-1] != c else x for x in b_list]
    shapes = {x.shape for x in a_list + b_list}
    if len(shapes) > 1:
        raise DataError(f"pairs in {path} have different sizes {sorted(shapes)[:2]}; pass a resolution")
    return PairedDataset(np.stack(a_list), np.stack(b_list), name=str(PurePosixPath(path)))
