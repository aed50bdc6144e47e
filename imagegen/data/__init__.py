"""Datasets: named datasets (``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``, ``usps``), image folders and zips.

Use :func:`build_dataset`. Named datasets, and folders/zips whose decoded images fit in
:data:`STREAM_THRESHOLD_BYTES`, come back as an in-memory :class:`~imagegen.data.base.ImageDataset`;
larger folders/zips as a :class:`~imagegen.data.streaming.StreamingImageDataset` that decodes files on
access (``storage`` forces either). Both have the same interface: items float32 [C, H, W] in [-1, 1],
``get_batch``/``get_batch_uint8`` for batches, and :func:`~imagegen.data.streaming.iterate_batches`
decodes a given order of batches in worker processes.
"""
from __future__ import annotations

import os
import warnings
from typing import Optional, Union

from ..errors import DataError
from . import digits  # noqa: F401  (registers the dataset)
from .base import (BatchDataset, ImageDataset, RawData, dataset_loaders, float_to_uint8, register_dataset,
                   spread_description, spread_indices, uint8_to_float)
from .streaming import StreamingImageDataset, iterate_batches
from .transforms import convert_channels, resize_array

for _mod in ("idx", "cifar", "usps", "folder"):  # optional loaders, registered on import
    try:
        __import__(f"{__name__}.{_mod}")
    except ModuleNotFoundError as _e:  # pragma: no cover - only while a loader file is absent
        if _e.name != f"{__name__}.{_mod}":
            raise

DATA_ROOT_ENV = "IMAGEGEN_DATA"

#: ``storage="auto"`` streams a folder/zip whose decoded images (N x R x R x C bytes) would take at
#: least this much memory, and loads smaller ones into memory.
STREAM_THRESHOLD_BYTES = 2 * 1024**3
STORAGE_MODES = ("auto", "memory", "stream")


def default_root(name: str, root: Optional[str]) -> Optional[str]:
    """``root`` if given, else ``$IMAGEGEN_DATA/<name>`` if that variable is set, else None."""
    if root:
        return root
    env = os.environ.get(DATA_ROOT_ENV)
    return os.path.join(env, name) if env else None


def build_dataset(name: str, *, root: Optional[str] = None, split: str = "train",
                  resolution: Optional[int] = None, channels: Optional[int] = None,
                  resize: str = "auto", strict: bool = False, download: bool = True,
                  storage: str = "auto") -> Union[ImageDataset, StreamingImageDataset]:
    """Load a dataset at the requested resolution and channel count, in memory or streamed from disk.

    Args:
        name: a registered dataset name (``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``,
            ``cifar10-jpg``, ``usps``) or the path of a folder or ``.zip`` of images (PNG/JPEG/WebP,
            searched recursively).
        root: directory holding the dataset's files (default: ``$IMAGEGEN_DATA/<name>``).
        split: ``train`` or ``test`` (``all`` where a dataset allows it).
        resolution: square output size in pixels; images are resized (short side) and centre-cropped
            (with ``resize="pad"``: zero-padded). None keeps the native size.
        channels: 1 (grayscale) or 3 (RGB); None keeps the native channel count.
        resize: ``auto`` (the default: ``pad`` for images within R/16 pixels per side of R×R, such as
            MNIST 28×28 at 32, else ``bicubic``; :func:`~imagegen.data.transforms.resolve_resize`), a
            Pillow resampling method (``bicubic``, ``bilinear``, ``lanczos``, ``box``, ``nearest``),
            or ``pad``: no resampling; images of at most R×R are zero-padded (black) to R×R, centred,
            the extra pixel of an odd difference on the bottom/right (MNIST 28×28 → 32×32: 2 pixels
            on every side); a larger image is a DataError. See :mod:`imagegen.data.transforms`.
        strict: for folders/zips, fail on the first corrupt image instead of skipping it with a warning
            (streamed: instead of replacing it by the next image when a batch meets it).
        download: allow downloading missing files of a named dataset (checksums verified).
        storage: where the decoded images live, for folders/zips: ``memory`` (all decoded now),
            ``stream`` (decoded on access, see :class:`StreamingImageDataset`), or ``auto``: memory
            when the estimated decoded size, N x R x R x C bytes (C = 3 when ``channels`` is None; R
            the first image's size when ``resolution`` is None), is below
            :data:`STREAM_THRESHOLD_BYTES` (2 GiB), else stream. Named datasets are small (at most
            60,000 images) and always load into memory; ``stream`` warns for them.

    Returns:
        An :class:`ImageDataset` (images uint8 in memory) or a :class:`StreamingImageDataset`; both
        give batches float32 NCHW in [-1, 1] (``get_batch``) and labels int64 (-1 if unlabelled).

    Raises:
        DataError: unknown name, ``storage`` or ``resize``, missing/corrupt/empty files, mismatched
            labels, images larger than ``resolution`` with ``resize="pad"`` (one-line message naming
            the file or dataset and the fix).

    Warns:
        UserWarning: ``storage="stream"`` for a named dataset (loaded into memory instead).
        CorruptImageWarning: corrupt images skipped (or, streamed, replaced) without ``strict``.
    """
    if storage not in STORAGE_MODES:
        raise DataError(f"unknown storage {storage!r}: use one of {', '.join(STORAGE_MODES)}")
    loaders = dataset_loaders()
    if name in loaders:
        if storage == "stream":
            warnings.warn(f"{name} is a named dataset and always loads into memory; storage='stream' "
                          "applies to image folders and zips", UserWarning, stacklevel=2)
        raw = loaders[name](root=default_root(name, root), split=split, strict=strict, download=download)
        ds_name = name
    elif os.path.exists(name):
        from .folder import ImageSource, load_image_files  # folders and zips

        ds_name = os.path.abspath(name)
        if storage != "memory":
            source = ImageSource(name)
            names = source.list_images()
            if storage == "stream" or decoded_size(source, names, resolution, channels) >= STREAM_THRESHOLD_BYTES:
                return StreamingImageDataset(source, resolution=resolution, channels=channels, resize=resize,
                                             strict=strict, name=ds_name, names=names)
            source.close()
        raw = load_image_files(name, resolution=resolution, resize=resize, strict=strict, channels=channels)
    elif os.sep in name or "/" in name or name.lower().endswith(".zip"):
        raise DataError(f"{name} does not exist; pass an existing image folder or .zip, or one of "
                        f"the dataset names {', '.join(sorted(loaders))}")
    else:
        raise DataError(f"unknown dataset {name!r}: use one of {', '.join(sorted(loaders))} "
                        "or the path of an image folder or .zip")
    images = convert_channels(raw.images, channels)
    images = resize_array(images, resolution, resize, name=name)
    return ImageDataset(images, raw.labels, name=ds_name, class_names=raw.class_names)


def decoded_size(path: "str | os.PathLike | ImageSource", names: list[str], resolution: Optional[int],
                 channels: Optional[int]) -> int:
    """Estimated bytes of a folder/zip decoded into memory: N x H x W x C.

    Args:
        path: the folder or zip (or an :class:`~imagegen.data.folder.ImageSource` on it).
        names: its images (:func:`~imagegen.data.folder.list_images`).
        resolution: the target size R (H = W = R), or None for the size in the header of the first
            image that opens (0 if none does: loading then reports the corrupt files).
        channels: 1 or 3; None counts 3 (an upper bound, known without decoding).
    """
    from .folder import ImageSource

    c = channels or 3
    if resolution is not None:
        return len(names) * resolution * resolution * c
    source = path if isinstance(path, ImageSource) else ImageSource(path)
    try:
        for n in names[:100]:
            try:
                with source.peek(n) as img:
                    w, h = img.size
            except Exception:  # noqa: BLE001 - a corrupt file: try the next one
                continue
            return len(names) * w * h * c
        return 0
    finally:
        if source is not path:
            source.close()


__all__ = ["BatchDataset", "ImageDataset", "StreamingImageDataset", "RawData", "build_dataset",
           "spread_description", "spread_indices",
           "iterate_batches", "register_dataset", "dataset_loaders", "decoded_size", "uint8_to_float",
           "float_to_uint8", "DATA_ROOT_ENV", "STREAM_THRESHOLD_BYTES", "STORAGE_MODES"]
