"""In-memory image datasets, the interface shared with streamed ones, and the dataset registry.

An :class:`ImageDataset` is decoded once into a uint8 array ``[N, H, W, C]`` at the model's resolution
and kept in memory (MNIST: 60 MB, CIFAR-10: 150 MB); a
:class:`~imagegen.data.streaming.StreamingImageDataset` decodes image files on access. Both are
:class:`BatchDataset`: batches are uint8 NCHW as stored (``get_batch_uint8``) and converted to float32
NCHW in [-1, 1] on the fly (``get_batch``); uint8 exists only here, at the edge.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np
import torch

from ..errors import DataError


@dataclasses.dataclass
class RawData:
    """What a dataset loader returns before resizing.

    Attributes:
        images: uint8 array [N, H, W, C] (C = 1 or 3), 0 = black, 255 = white.
        labels: int64 array [N] of class indices, or None for unlabelled data.
        class_names: names of the classes in label order, or None.
    """

    images: np.ndarray
    labels: Optional[np.ndarray] = None
    class_names: Optional[list[str]] = None


Loader = Callable[..., RawData]
_DATASETS: dict[str, Loader] = {}


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    """Register a loader ``fn(root: str | None, split: str, **options) -> RawData`` under ``name``."""

    def deco(fn: Loader) -> Loader:
        _DATASETS[name] = fn
        return fn

    return deco


def dataset_loaders() -> dict[str, Loader]:
    """The registered named datasets (name → loader)."""
    return dict(_DATASETS)


class BatchDataset(torch.utils.data.Dataset):
    """What every image dataset shares: batched access by index, labels and class names.

    Subclasses set ``name``, ``labels`` (int64 tensor [N] or None) and ``class_names`` and implement
    ``__len__``, ``channels``, ``resolution`` and :meth:`get_batch_uint8`; the float batches, single
    items and ``num_classes`` follow from those.
    """

    name: str
    labels: Optional[torch.Tensor]
    class_names: Optional[list[str]]

    @property
    def num_classes(self) -> int:
        """Number of classes (0 for unlabelled data)."""
        if self.labels is None:
            return 0
        return len(self.class_names) if self.class_names else int(self.labels.max()) + 1

    @property
    def channels(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def resolution(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_batch_uint8(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and labels of a batch, images as stored.

        Args:
            indices: int64 tensor [B] of item indices in ``[0, len(self))``.

        Returns:
            ``(img, label)``: img uint8 [B, C, H, W] in [0, 255]; label int64 [B] (-1 if unlabelled).
        """
        raise NotImplementedError  # pragma: no cover - abstract

    def _labels_of(self, indices: torch.Tensor) -> torch.Tensor:
        """Labels int64 [B] of ``indices`` (int64 [B]), -1 everywhere for unlabelled data."""
        if self.labels is None:
            return torch.full((len(indices),), -1, dtype=torch.int64)
        return self.labels[indices]

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images float32 [B, C, H, W] in [-1, 1] and labels int64 [B] (-1 if unlabelled).

        Args:
            indices: int64 tensor [B] of item indices.
        """
        img, label = self.get_batch_uint8(indices)
        return uint8_to_float(img), label

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(img, label)``: img float32 [C, H, W] in [-1, 1], label int64 scalar (-1 if unlabelled)."""
        img, label = self.get_batch(torch.tensor([i]))
        return img[0], label[0]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`get_batch` of a list of indices (the batched fetch of ``torch.utils.data.DataLoader``)."""
        return self.get_batch(torch.as_tensor(indices, dtype=torch.int64))


class ImageDataset(BatchDataset):
    """An in-memory image dataset.

    Args:
        images: uint8 array [N, H, W, C].
        labels: int64 array [N] or None.
        name: dataset name, recorded in run configs and metric protocols.
        class_names: optional class names in label order.

    ``dataset[i]`` returns ``(img, label)``: img float32 [C, H, W] in [-1, 1], label int64 scalar
    tensor (-1 when the dataset has no labels). ``dataset.get_batch(indices)`` returns the same for a
    batch: img [B, C, H, W], label [B], without a Python loop over items; ``get_batch_uint8`` the
    images as stored (uint8 [B, C, H, W]).

    Raises:
        DataError: images not uint8 [N, H, W, 1|3], no images, or as many labels as images.
    """

    def __init__(self, images: np.ndarray, labels: Optional[np.ndarray] = None, *, name: str = "",
                 class_names: Optional[list[str]] = None) -> None:
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise DataError(f"dataset {name!r}: expected uint8 images [N, H, W, 1|3], got "
                            f"{images.dtype} {tuple(images.shape)}")
        if len(images) == 0:
            raise DataError(f"dataset {name!r} has no images; check the path or split")
        if labels is not None and len(labels) != len(images):
            raise DataError(f"dataset {name!r}: {len(labels)} labels for {len(images)} images; "
                            "the label file does not match the image file")
        # [N, H, W, C] uint8 -> [N, C, H, W] uint8, contiguous for fast batched indexing
        self.images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        self.labels = None if labels is None else torch.as_tensor(labels, dtype=torch.int64)
        self.name = name
        self.class_names = class_names

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def resolution(self) -> int:
        return int(self.images.shape[2])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def get_batch_uint8(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images uint8 [B, C, H, W] in [0, 255] and labels int64 [B] (-1 if unlabelled).

        Args:
            indices: int64 tensor [B] of item indices.
        """
        return self.images[indices], self._labels_of(indices)


def spread_indices(length: int, n: int) -> torch.Tensor:
    """int64 [n]: the indices i·L//n (i < n) of ``n`` ≤ L evenly spaced items among ``length`` = L (all of
    them, in order, when n = L), so that a split stored in class order (the CIFAR-10 JPEG copy, whose
    first 1,000 test images are all aeroplanes) is represented by every class."""
    return torch.arange(n) * length // n


def spread_description(n: int, length: int, name: str) -> str:
    """The protocol's words for the ``n`` of ``length`` items of ``name`` that :func:`spread_indices` picks."""
    return f"all {n} of {name}" if n == length else f"{n} evenly spaced of {name}"


def uint8_to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] → float32 [-1, 1] (same shape)."""
    return x.to(torch.float32).mul_(2.0 / 255.0).sub_(1.0)


def float_to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] → uint8 [0, 255] (same shape), rounding to nearest and clamping."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round_().to(torch.uint8)
