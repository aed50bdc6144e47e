"""Image folders and zips streamed from disk, and batches decoded by worker processes.

:class:`StreamingImageDataset` keeps only the file list and the labels in memory (200,000 files with
40-character names: 14 MB) and decodes every image when a batch asks for it, with exactly the conversion, resize and
centre crop of the in-memory loader (:func:`imagegen.data.folder.load_image_files`), so the same file
gives the same pixels either way. :func:`iterate_batches` decodes a given sequence of index batches in
``DataLoader`` worker processes, in exactly that order, so a training run that restarts at batch *k*
of an epoch passes the remaining batches and sees what an uninterrupted run would have seen.

Differences from the in-memory dataset, all because nothing is decoded before training starts:

* A file that cannot be decoded is met during training, not at load time. With ``strict`` that is a
  :class:`~imagegen.errors.DataError` naming the file; otherwise a
  :class:`~imagegen.data.folder.CorruptImageWarning` and the next decodable file in sorted order takes
  its place (index ``i + 1``, ``i + 2``, … wrapping around), label included. The dataset's length
  therefore counts the corrupt files (the in-memory dataset drops them), and the replacement depends
  only on the files, so the batch order stays a function of the seed only.
* ``channels=None`` is decided as the in-memory loader does (RGB if any image is colour, else
  grayscale) from the first decodable image and, only when that one is grayscale, from the *headers*
  of the other files (no pixel decoding; stops at the first colour image). A file whose header reads
  but whose pixels do not decode counts here and not in the in-memory loader. Pass ``channels`` to
  skip the scan.
* ``resolution=None`` takes the size of the first decodable image; a file of another size is a
  ``DataError`` when it is met (the in-memory loader fails at load time with the same message).
  Likewise with ``resize="pad"``, a file larger than the resolution is a ``DataError`` (naming it)
  when it is met, not at construction (unless it is the first image).
"""
from __future__ import annotations

import os
import warnings
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np
import torch
from ..errors import ConfigError, DataError, ImagegenError
from .base import BatchDataset, uint8_to_float
from .folder import (CorruptImageWarning, ImageSource, check_options, decode_member, labels_from_paths,
                     native_channels, size_mismatch_error)
from .transforms import convert_channels


class StreamingImageDataset(BatchDataset):
    """An image folder or ``.zip`` decoded on access (see the module docstring for the rules).

    Same interface as :class:`~imagegen.data.base.ImageDataset`: ``dataset[i]`` is ``(img, label)``
    with img float32 [C, H, W] in [-1, 1] and label an int64 scalar (-1 when unlabelled);
    ``get_batch(indices)`` gives img float32 [B, C, H, W] in [-1, 1] and label int64 [B];
    ``get_batch_uint8(indices)`` gives img uint8 [B, C, H, W] in [0, 255]. Pixels and labels are
    identical to the in-memory dataset's for the same files and options. Safe to use from forked
    ``DataLoader`` workers (zip members are read with ``os.pread`` at indexed offsets, files opened
    per process) and picklable. Held in memory: the file names (fixed-width bytes), the labels and,
    for a zip, an index of the members: the longest name's length + 8 (+ 21 for a zip) bytes per image.

    Args:
        path: a folder (searched recursively) or a ``.zip`` of PNG/JPEG/WebP images, or an
            :class:`~imagegen.data.folder.ImageSource` on one (its open zip is reused); labels come
            from class subfolders as for the in-memory loader.
        resolution: square output size R (short side resized to R, then centre crop; with ``pad``
            zero-padded to R), or None to keep the native size (that of the first decodable image).
        channels: 1 (grayscale), 3 (RGB), or None: RGB if any image is colour, else grayscale.
        resize: Pillow resampling method (``bicubic``, ``bilinear``, ``lanczos``, ``box``, ``nearest``),
            or ``pad`` (no resampling; see :mod:`imagegen.data.transforms`).
        strict: a file that cannot be decoded is an error (at construction for the first file, else
            when a batch meets it) instead of being replaced by the next decodable file.
        name: the dataset name (default: the absolute path).
        names: the image list if already computed: ``path.list_images()`` of the
            :class:`~imagegen.data.folder.ImageSource` passed as ``path`` (saves listing twice).

    Raises:
        DataError: ``path`` missing or not a folder/zip; no images; none decodable; the first image
            corrupt with ``strict``; bad ``resize`` or ``channels``; with ``pad``, a first image larger
            than R (later ones: when a batch meets them).
    """

    def __init__(self, path: str | os.PathLike | ImageSource, *, resolution: Optional[int] = None,
                 channels: Optional[int] = None, resize: str = "bicubic", strict: bool = False,
                 name: Optional[str] = None, names: Optional[Sequence[str]] = None) -> None:
        check_options(resize, channels)
        self.source = path if isinstance(path, ImageSource) else ImageSource(path)
        if names is None or not self.source.indexed:
            listed = self.source.list_images()
            names = listed if names is None else list(names)
        if not names:
            raise DataError(f"{path} contains no PNG, JPEG or WebP images; point to a folder or .zip of images")
        labels, self.class_names = labels_from_paths(names)
        self.labels = None if labels is None else torch.from_numpy(labels)
        # fixed-width bytes, not a list of str: forked workers touching a list's items would copy its pages
        self._names = np.array([n.encode("utf-8") for n in names], dtype=np.bytes_)
        self.name = os.path.abspath(self.source.path) if name is None else name
        self.strict, self.resize = strict, resize
        self._resolution_arg, self._channels_arg = resolution, channels
        self._bad: dict[int, str] = {}  # index -> why it cannot be decoded (filled as files are met)

        first, arr = self._first_decodable()
        self._first_name = self._name(first)
        self._shape = arr.shape[:2]  # (H, W)
        if channels is not None or arr.shape[2] == 3:
            self._channels = arr.shape[2]
        else:
            self._channels = self._scan_channels(first + 1)
        self.source.close()  # drops this process's ZipFile and its directory; reads go through the index

    # ------------------------------------------------------------------ interface
    @property
    def channels(self) -> int:
        """Channels of every image: 1 or 3."""
        return self._channels

    @property
    def resolution(self) -> int:
        """Image height in pixels (= width when a resolution was given)."""
        return int(self._shape[0])

    @property
    def images(self) -> torch.Tensor:
        """Not available: raises DataError (nothing is decoded in advance)."""
        raise DataError(f"dataset {self.name} is streamed from disk and has no decoded images in memory; "
                        "read batches with get_batch, or load it with build_dataset(..., storage='memory')")

    def __len__(self) -> int:
        return len(self._names)

    def get_batch_uint8(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode a batch of images.

        Args:
            indices: int64 tensor [B] (or a sequence of ints) of indices in ``[-N, N)``.

        Returns:
            ``(img, label)``: img uint8 [B, C, H, W] in [0, 255]; label int64 [B] (-1 if unlabelled).
            A corrupt file's slot holds the next decodable file and its label (unless ``strict``).

        Raises:
            IndexError: an index out of range.
            DataError: with ``strict``, a file that cannot be decoded; with ``resolution=None``, an
                image of another size than the first; with ``pad``, an image larger than R; no file
                decodable at all.

        Warns:
            CorruptImageWarning: a file could not be decoded and was replaced (once per file and
                process under the default warning filters).
        """
        idx = torch.as_tensor(indices, dtype=torch.int64).reshape(-1).tolist()
        n = len(self)
        out = np.empty((len(idx), *self._shape, self._channels), np.uint8)  # [B, H, W, C]
        src = torch.empty(len(idx), dtype=torch.int64)
        for k, i in enumerate(idx):
            if not -n <= i < n:
                raise IndexError(f"index {i} out of range for dataset {self.name} of {n} images")
            src[k], out[k] = self._decode(i % n)
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous(), self._labels_of(src)

    # ------------------------------------------------------------------ decoding
    def _name(self, i: int) -> str:
        return self._names[i].decode("utf-8")

    def _try(self, i: int) -> Optional[np.ndarray]:
        """Image ``i`` as uint8 [H, W, C] as the decoder gives it, or None (reason kept in ``_bad``)."""
        if i in self._bad:
            return None
        arr, reason = decode_member(self.source, self._name(i), self._resolution_arg, self._channels_arg,
                                    self.resize, self.strict, i)
        if arr is None:
            self._bad[i] = reason
        return arr

    def _first_decodable(self) -> tuple[int, np.ndarray]:
        for i in range(len(self)):
            arr = self._try(i)
            if arr is not None:
                return i, arr
        raise self._none_decodable()

    def _none_decodable(self) -> DataError:
        first = min(self._bad)
        return DataError(f"none of the {len(self)} images in {self.source.path} could be decoded (first: "
                         f"{self._name(first)}: {self._bad[first]}); check that they are valid PNG/JPEG/WebP "
                         "files")

    def _scan_channels(self, start: int) -> int:
        """3 if any image from ``start`` on has a colour header, else 1 (headers only, no pixels)."""
        for i in range(start, len(self)):
            try:
                with self.source.peek(self._name(i)) as img:
                    if native_channels(img) == 3:
                        return 3
            except Exception:  # noqa: BLE001 - corrupt files are dealt with when met
                continue
        return 1

    def _decode(self, i: int) -> tuple[int, np.ndarray]:
        """``(j, image)``: j = i, or the next decodable index if file i is corrupt; image uint8 [H, W, C]."""
        n = len(self)
        for step in range(n):
            j = (i + step) % n
            arr = self._try(j)
            if arr is None:
                continue
            if step:
                warnings.warn(f"cannot decode image {self.source.display(self._name(i))} ({self._bad[i]}); "
                              f"using {self._name(j)} (index {j}) in its place; load with strict to fail "
                              "instead", CorruptImageWarning, stacklevel=3)
            if arr.shape[:2] != self._shape:
                raise size_mismatch_error(self.source, self._name(j), arr.shape, self._first_name, self._shape)
            if arr.shape[2] != self._channels:  # channels=None: grayscale file in a colour dataset
                arr = np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else convert_channels(arr[None], 1)[0]
            return j, arr
        raise self._none_decodable()


# ---------------------------------------------------------------------------------------- batches

def iterate_batches(dataset: BatchDataset, index_batches: Iterable[torch.Tensor], workers: int = 0,
                    prefetch: int = 2) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield the batches of ``index_batches``, in exactly that order, decoded by worker processes.

    Workers return uint8 images (4× less inter-process traffic than float32); the conversion to
    float happens here, in the calling process. To resume at batch *k*, pass the batches from *k*
    on: the result depends only on the indices. Worker processes start on the first ``next()`` and
    end when the iterator is exhausted or garbage-collected (no persistent workers).

    Args:
        dataset: an :class:`~imagegen.data.base.ImageDataset` or :class:`StreamingImageDataset`
            (anything with ``get_batch_uint8``). Workers only pay off for streaming datasets.
        index_batches: int64 tensors [B] (or int sequences) of dataset indices, one per batch; may be
            a lazy (even endless) iterable: at most ``workers * prefetch`` batches are read ahead.
        workers: worker processes; 0 decodes in this process, batch by batch, when asked.
        prefetch: batches each worker prepares ahead (ignored with ``workers=0``).

    Yields:
        ``(img, label)``: img float32 [B, C, H, W] in [-1, 1]; label int64 [B] (-1 if unlabelled).

    Raises:
        ConfigError: ``workers`` < 0 or ``prefetch`` < 1 (at the call, not at the first ``next()``).
        DataError: what the dataset raises for a batch (e.g. a corrupt file with ``strict``), re-raised
            here with its one-line message when it happened in a worker.

    Warns:
        CorruptImageWarning: as the dataset does; warnings raised in workers are re-issued here.
    """
    if not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"workers must be an integer >= 0, not {workers!r}")
    if not isinstance(prefetch, int) or prefetch < 1:
        raise ConfigError(f"prefetch must be an integer >= 1, not {prefetch!r}")
    if workers == 0:
        return _iterate_here(dataset, index_batches)
    return _iterate_workers(dataset, index_batches, workers, prefetch)


def _iterate_here(dataset: BatchDataset, index_batches: Iterable) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for idx in index_batches:
        img, label = dataset.get_batch_uint8(torch.as_tensor(idx, dtype=torch.int64))
        yield uint8_to_float(img), label


def _iterate_workers(dataset: BatchDataset, index_batches: Iterable, workers: int,
                     prefetch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    # an own generator: otherwise the loader draws its workers' base seed from torch's global RNG,
    # which would shift every random number the training step draws after it (and break exact resume)
    loader = torch.utils.data.DataLoader(_Uint8Batches(dataset), batch_sampler=_IndexLists(index_batches),
                                         num_workers=workers, prefetch_factor=prefetch,
                                         persistent_workers=False, collate_fn=_identity,
                                         generator=torch.Generator().manual_seed(0))
    for img, label, error, caught in loader:
        for w in caught:
            warnings.warn(w, stacklevel=2)
        if error is not None:
            raise error
        yield uint8_to_float(img), label


class _IndexLists:
    """A ``batch_sampler``: the index batches as lists of ints (cheap to send to a worker)."""

    def __init__(self, batches: Iterable) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[list[int]]:
        for b in self.batches:
            yield torch.as_tensor(b, dtype=torch.int64).reshape(-1).tolist()

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]  # only when the caller asks for it


class _Uint8Batches(torch.utils.data.Dataset):
    """Runs ``get_batch_uint8`` in a worker; errors and warnings travel back as values."""

    def __init__(self, dataset: BatchDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitems__(self, indices: list[int]) -> tuple:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                img, label = self.dataset.get_batch_uint8(torch.as_tensor(indices, dtype=torch.int64))
                error = None
            except ImagegenError as e:  # re-raised in the main process with its one-line message
                img = label = None
                error = e
        return img, label, error, [w.message for w in caught]


def _identity(batch: tuple) -> tuple:
    return batch


__all__ = ["StreamingImageDataset", "iterate_batches"]
