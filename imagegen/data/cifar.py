"""CIFAR-10 (Krizhevsky 2009): the official python batches, and a JPEG-in-zip copy.

``cifar10`` reads the official "python version" (https://www.cs.toronto.edu/~kriz/cifar.html): the
pickled batches ``data_batch_1`` … ``data_batch_5`` (train, 10,000 images each), ``test_batch``
(10,000) and ``batches.meta`` (class names). ``--data-root`` may be the directory holding
``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz``, the ``cifar-10-batches-py`` directory itself,
or the ``.tar.gz`` file; the archive is read directly without extracting. When nothing is found and
downloading is allowed, the official archive is downloaded (md5-checked).

The batches are unpickled with a restricted unpickler that only rebuilds numpy arrays, lists,
dicts, strings and numbers, so a malicious file cannot run code.

``cifar10-jpg`` reads ``cifar10_train_jpg.zip`` / ``cifar10_test_jpg.zip`` holding
``<split>/<class>/NNNN.jpg`` (a lossy JPEG copy of CIFAR-10 that the developers use; imagegen cannot download it);
it has no download source.
"""
from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import DataError
from .base import RawData, register_dataset
from .download import Resource, fetch, resolve_root

CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
BATCHES_DIR = "cifar-10-batches-py"
ARCHIVE = Resource("cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                   "c58f30108f718f92721af3b95e74349a")
SPLIT_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"],
                 "all": [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]}
_NEED = f"{BATCHES_DIR}/ or {ARCHIVE.filename}"


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that only allows what CIFAR batches contain (numpy arrays and plain data)."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
                ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):  # noqa: ANN201
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        if module.startswith("numpy"):
            if name == "ndarray":
                return np.ndarray
            if name == "dtype":
                return np.dtype
            try:
                from numpy._core import multiarray
            except ImportError:  # numpy < 2
                from numpy.core import multiarray
            return getattr(multiarray, name)
        return super().find_class(module, name)


def read_batch(fp, where: str) -> dict:
    """Unpickle one CIFAR batch or meta file safely.

    Args:
        fp: binary file object.
        where: file name for error messages.

    Returns:
        The dict with ``str`` keys (bytes keys of Python-2 pickles are decoded).

    Raises:
        DataError: not a pickle, a truncated one, or one holding anything but plain data and arrays.
    """
    try:
        obj = _SafeUnpickler(fp, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, OSError, zlib.error) as e:
        raise DataError(f"{where} is not a valid CIFAR-10 python batch ({' '.join(str(e).split())}); "
                        f"re-download {ARCHIVE.filename}") from e
    if not isinstance(obj, dict):
        raise DataError(f"{where} is not a CIFAR-10 python batch (a {type(obj).__name__}, not a dict); "
                        f"re-download {ARCHIVE.filename}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def batch_arrays(batch: dict, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one unpickled batch, checked.

    Returns:
        images uint8 [N, 32, 32, 3] and labels int64 [N] in [0, 10).

    Raises:
        DataError: missing keys, wrong shapes or dtypes, label count mismatch or labels out of range.
    """
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or labels is None:
        raise DataError(f"{where} has no 'data' array or 'labels' list; it is not a CIFAR-10 batch "
                        f"(CIFAR-100 uses 'fine_labels'); re-download {ARCHIVE.filename}")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{where}: 'data' is {data.dtype} {data.shape}, expected uint8 [N, 3072]; the "
                        f"file is corrupt, re-download {ARCHIVE.filename}")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(data),):
        raise DataError(f"{where} has {labels.size} labels for {len(data)} images; the file is corrupt, "
                        f"re-download {ARCHIVE.filename}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES)):
        raise DataError(f"{where} has labels outside 0..9; it is not a CIFAR-10 batch")
    # rows are 1024 red, 1024 green, 1024 blue values, each row-major 32×32
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # [N, 32, 32, 3]
    return np.ascontiguousarray(images), labels


def _class_names(meta: dict, where: str) -> list[str]:
    names = meta.get("label_names")
    if not isinstance(names, list) or len(names) != len(CLASS_NAMES):
        raise DataError(f"{where} has no list of 10 'label_names'; it is not CIFAR-10's batches.meta")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def _read_from_dir(directory: Path, batches: list[str]) -> tuple[dict[str, dict], list[str]]:
    missing = [b for b in batches if not (directory / b).is_file()]
    if missing:
        raise DataError(f"cifar10: {directory} has no {', '.join(missing)}; put the complete "
                        f"{BATCHES_DIR}/ folder (or {ARCHIVE.filename}) there")
    out = {}
    for b in batches:
        with open(directory / b, "rb") as f:
            out[b] = read_batch(f, str(directory / b))
    meta_path = directory / "batches.meta"
    if not meta_path.is_file():
        return out, list(CLASS_NAMES)
    with open(meta_path, "rb") as f:
        return out, _class_names(read_batch(f, str(meta_path)), str(meta_path))


def _read_from_tar(archive: Path, batches: list[str]) -> tuple[dict[str, dict], list[str]]:
    wanted = set(batches) | {"batches.meta"}
    out: dict[str, dict] = {}
    where: dict[str, str] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:  # one sequential pass over the compressed stream
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted and base not in out:
                    where[base] = f"{archive}:{member.name}"
                    out[base] = read_batch(io.BytesIO(tar.extractfile(member).read()), where[base])
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DataError(f"{archive} is not a readable .tar.gz ({' '.join(str(e).split())}); it is "
                        f"truncated or corrupt, re-download it from {ARCHIVE.url}") from e
    missing = [b for b in batches if b not in out]
    if missing:
        raise DataError(f"{archive} has no {', '.join(missing)}; it is not {ARCHIVE.filename}, "
                        f"re-download it from {ARCHIVE.url}")
    meta = out.get("batches.meta")
    names = list(CLASS_NAMES) if meta is None else _class_names(meta, where["batches.meta"])
    return {b: out[b] for b in batches}, names


@register_dataset("cifar10")
def load_cifar10(root: Optional[str] = None, split: str = "train", strict: bool = False,
                 download: bool = True, **_: object) -> RawData:
    """CIFAR-10 from the official python batches (directory or ``.tar.gz``).

    Args:
        root: a directory holding ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz``, that
            batches directory itself, or the archive file.
        split: ``train`` (50,000 images), ``test`` (10,000) or ``all`` (train then test).
        strict: unused (every structural problem is an error).
        download: download the official archive (163 MB, md5-checked) when nothing is found.

    Returns:
        RawData: images uint8 [N, 32, 32, 3] RGB, labels int64 [N] in [0, 10), class_names
        (airplane … truck) from ``batches.meta``.

    Raises:
        DataError: no root; files missing and not downloadable; corrupt or truncated archive or
            batch; wrong shapes; label count mismatch; unknown split.
    """
    if split not in SPLIT_BATCHES:
        raise DataError(f"cifar10 has splits train, test and all, not {split!r}")
    batches = SPLIT_BATCHES[split]
    path = resolve_root("cifar10", root, _NEED)
    if path.is_file():
        read, class_names = _read_from_tar(path, batches)
    elif (path / BATCHES_DIR).is_dir():
        read, class_names = _read_from_dir(path / BATCHES_DIR, batches)
    elif any((path / b).is_file() for b in SPLIT_BATCHES["all"]):
        read, class_names = _read_from_dir(path, batches)
    else:
        archive = path / ARCHIVE.filename
        if not archive.is_file():
            archive = fetch("cifar10", path, [ARCHIVE], download=download, need=_NEED)[0]
        read, class_names = _read_from_tar(archive, batches)
    parts = [batch_arrays(batch, name) for name, batch in read.items()]
    images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    return RawData(images, labels, class_names)


@register_dataset("cifar10-jpg")
def load_cifar10_jpg(root: Optional[str] = None, split: str = "train", strict: bool = False,
                     download: bool = True, **_: object) -> RawData:
    """CIFAR-10 as JPEGs in ``cifar10_{train,test}_jpg.zip`` (``<split>/<class>/NNNN.jpg``).

    The JPEGs are lossy re-encodings of CIFAR-10 (quality ≈ 75): fine for training and smoke tests,
    not for comparing FID/IS with published CIFAR-10 numbers. The order of images is by class, then
    file name (the canonical order is not recoverable).

    Args:
        root: directory holding the zips (``$IMAGEGEN_DATA/cifar10-jpg`` or ``.../cifar10_jpg``).
        split: ``train`` (50,000), ``test`` (10,000) or ``all``.
        strict: fail on the first undecodable JPEG instead of skipping it with a warning.
        download: unused (there is no download source).

    Returns:
        RawData: images uint8 [N, 32, 32, 3], labels int64 [N] in canonical CIFAR-10 order
        (airplane=0 … truck=9), class_names.

    Raises:
        DataError: no root, missing zip, corrupt zip, class folders other than the ten CIFAR-10 ones.
    """
    from .folder import load_image_files

    if split not in SPLIT_BATCHES:
        raise DataError(f"cifar10-jpg has splits train, test and all, not {split!r}")
    need = "cifar10_train_jpg.zip and cifar10_test_jpg.zip"
    directory = resolve_root("cifar10-jpg", root, need)
    images, labels = [], []
    for part in (["train", "test"] if split == "all" else [split]):
        archive = directory / f"cifar10_{part}_jpg.zip"
        if not archive.is_file():
            raise DataError(f"cifar10-jpg: missing {archive.name} in {directory}; pass --data-root DIR "
                            f"holding {need}")
        raw = load_image_files(archive, resolution=None, strict=strict, channels=3)
        if raw.class_names is None or not set(raw.class_names) <= set(CLASS_NAMES):
            raise DataError(f"{archive} does not hold <split>/<class>/*.jpg with the CIFAR-10 class "
                            f"folders ({', '.join(CLASS_NAMES)}); found {raw.class_names}")
        to_canonical = np.array([CLASS_NAMES.index(c) for c in raw.class_names], np.int64)
        images.append(raw.images)
        labels.append(to_canonical[raw.labels])
    return RawData(np.concatenate(images) if len(images) > 1 else images[0],
                   np.concatenate(labels) if len(labels) > 1 else labels[0], list(CLASS_NAMES))
