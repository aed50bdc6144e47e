"""Datasets: named datasets (``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``), image folders and zips.

Use :func:`build_dataset`; every dataset comes back as an in-memory
:class:`~imagegen.data.base.ImageDataset` whose items are float32 [C, H, W] in [-1, 1].
"""
from __future__ import annotations

import os
from typing import Optional

from ..errors import DataError
from . import digits  # noqa: F401  (registers the dataset)
from .base import ImageDataset, RawData, dataset_loaders, float_to_uint8, register_dataset, uint8_to_float
from .transforms import convert_channels, resize_array

for _mod in ("idx", "cifar", "folder"):  # optional loaders, registered on import
    try:
        __import__(f"{__name__}.{_mod}")
    except ModuleNotFoundError as _e:  # pragma: no cover - only while a loader file is absent
        if _e.name != f"{__name__}.{_mod}":
            raise

DATA_ROOT_ENV = "IMAGEGEN_DATA"


def default_root(name: str, root: Optional[str]) -> Optional[str]:
    """``root`` if given, else ``$IMAGEGEN_DATA/<name>`` if that variable is set, else None."""
    if root:
        return root
    env = os.environ.get(DATA_ROOT_ENV)
    return os.path.join(env, name) if env else None


def build_dataset(name: str, *, root: Optional[str] = None, split: str = "train",
                  resolution: Optional[int] = None, channels: Optional[int] = None,
                  resize: str = "bicubic", strict: bool = False, download: bool = True) -> ImageDataset:
    """Load a dataset into memory at the requested resolution and channel count.

    Args:
        name: a registered dataset name (``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``,
            ``cifar10-jpg``) or the path of a folder or ``.zip`` of images (PNG/JPEG/WebP,
            searched recursively).
        root: directory holding the dataset's files (default: ``$IMAGEGEN_DATA/<name>``).
        split: ``train`` or ``test`` (``all`` where a dataset allows it).
        resolution: square output size in pixels; images are resized (short side) and centre-cropped.
            None keeps the native size.
        channels: 1 (grayscale) or 3 (RGB); None keeps the native channel count.
        resize: Pillow resampling method (``bicubic``, ``bilinear``, ``lanczos``, ``box``, ``nearest``).
        strict: for folders/zips, fail on the first corrupt image instead of skipping it with a warning.
        download: allow downloading missing files of a named dataset (checksums verified).

    Returns:
        An :class:`ImageDataset` (images uint8 in memory; batches float32 NCHW in [-1, 1]).

    Raises:
        DataError: unknown name, missing/corrupt/empty files, mismatched labels (one-line message
            naming the file and the fix).
    """
    loaders = dataset_loaders()
    if name in loaders:
        raw = loaders[name](root=default_root(name, root), split=split, strict=strict, download=download)
        ds_name = name
    elif os.path.exists(name):
        from .folder import load_image_files  # folders and zips

        raw = load_image_files(name, resolution=resolution, resize=resize, strict=strict, channels=channels)
        ds_name = os.path.abspath(name)
    elif os.sep in name or "/" in name or name.lower().endswith(".zip"):
        raise DataError(f"{name} does not exist; pass an existing image folder or .zip, or one of "
                        f"the dataset names {', '.join(sorted(loaders))}")
    else:
        raise DataError(f"unknown dataset {name!r}: use one of {', '.join(sorted(loaders))} "
                        "or the path of an image folder or .zip")
    images = convert_channels(raw.images, channels)
    images = resize_array(images, resolution, resize)
    return ImageDataset(images, raw.labels, name=ds_name, class_names=raw.class_names)


__all__ = ["ImageDataset", "RawData", "build_dataset", "register_dataset", "dataset_loaders",
           "uint8_to_float", "float_to_uint8", "DATA_ROOT_ENV"]
