"""MNIST and Fashion-MNIST from the four standard IDX files (gzipped or not).

IDX format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a big-endian header — two zero bytes,
a type code (0x08 = uint8), the number of dimensions — then one uint32 per dimension, then the
payload in C order. Image files have magic 2051 (uint8, 3 dims: N×28×28, 0 = background,
255 = ink), label files magic 2049 (uint8, 1 dim: N).

A data directory holds ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``; the uncompressed files (without
``.gz``, or spelt ``train-images.idx3-ubyte``) and torchvision's ``MNIST/raw/`` layout are found too.
Missing files are downloaded from the canonical mirrors when allowed (md5-checked).
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import DataError
from .base import RawData, register_dataset
from .download import Resource, fetch, resolve_root

IMAGES_MAGIC = 2051  # 0x00000803: uint8, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: uint8, 1 dimension

_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"


def _resources(base_url: str, md5s: dict[str, str]) -> dict[str, Resource]:
    return {stem: Resource(stem + ".gz", base_url + stem + ".gz", md5) for stem, md5 in md5s.items()}


# Official md5s of the .gz files (the same as torchvision's); checked only for downloads.
SOURCES: dict[str, dict[str, Resource]] = {
    "mnist": _resources(_MNIST_URL, {
        "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
    }),
    "fashion-mnist": _resources(_FASHION_URL, {
        "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
    }),
}

CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
}
_TORCHVISION_DIR = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_SPLIT_PREFIX = {"train": ("train",), "test": ("t10k",), "all": ("train", "t10k")}
_NEED = "the four IDX .gz files"


def read_idx(path: str | Path, magic: Optional[int] = None) -> np.ndarray:
    """Read an IDX file, gzipped or not (detected from its first bytes, not its name).

    Args:
        path: the file.
        magic: expected magic number (e.g. 2051 for MNIST images, 2049 for labels), or None to accept
            any valid IDX header.

    Returns:
        A writable native-endian array with the dimensions from the header (uint8 for MNIST).

    Raises:
        DataError: the file cannot be read, is a corrupt or truncated gzip, has a bad magic number,
            or its payload is shorter or longer than the header says. The message names the file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except OSError as e:
        if isinstance(e, gzip.BadGzipFile):
            raise DataError(f"{path} is not a valid gzip file ({e}); re-download it") from e
        raise DataError(f"cannot read {path}: {e.strerror or e}") from e
    except (EOFError, zlib.error) as e:
        raise DataError(f"{path} is a truncated or corrupt gzip file ({e}); re-download it") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES or data[3] == 0:
        found = int.from_bytes(data[:4].ljust(4, b"\0"), "big")
        raise DataError(f"{path} is not an IDX file (magic number {found}, expected "
                        f"{magic or '2051 or 2049'}); pass the MNIST-format file itself")
    found = int.from_bytes(data[:4], "big")
    if magic is not None and found != magic:
        kind = {IMAGES_MAGIC: "image", LABELS_MAGIC: "label"}.get(magic, "IDX")
        raise DataError(f"{path} has magic number {found}, expected {magic} for an IDX {kind} file; "
                        "check that the image and label files are not swapped or mislabelled")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated inside its header; re-download it")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        what = "truncated" if len(data) - header < expected else "longer than its header says"
        raise DataError(f"{path} is {what}: header says shape {shape} ({expected} bytes) but the "
                        f"payload has {len(data) - header} bytes; re-download it")
    arr = np.frombuffer(data, dtype, count=expected // dtype.itemsize, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)  # writable, native byte order


def find_idx_file(directory: Path, stem: str, dataset: str = "mnist") -> Optional[Path]:
    """Locate one of the four IDX files in a data directory.

    Looks for ``stem`` (e.g. ``train-images-idx3-ubyte``), ``stem.gz`` and the dotted spelling
    ``train-images.idx3-ubyte[.gz]`` in ``directory``, ``directory/raw`` and torchvision's
    ``directory/MNIST/raw`` (``FashionMNIST/raw``). Returns None when absent.
    """
    dotted = stem.replace("-idx", ".idx")
    folders = [directory, directory / "raw", directory / _TORCHVISION_DIR.get(dataset, "MNIST") / "raw"]
    for folder in folders:
        for name in (stem + ".gz", stem, dotted + ".gz", dotted):
            if (folder / name).is_file():
                return folder / name
    return None


def load_idx_dataset(dataset: str, root: Optional[str], split: str = "train", *,
                     download: bool = True) -> RawData:
    """Load ``mnist`` or ``fashion-mnist`` from a data directory.

    Args:
        dataset: ``mnist`` or ``fashion-mnist`` (a key of :data:`SOURCES`).
        root: directory holding the IDX files (created and filled if downloading is allowed).
        split: ``train`` (60,000 images), ``test`` (10,000) or ``all`` (train then test).
        download: download missing files from the canonical mirror (md5-checked).

    Returns:
        RawData: images uint8 [N, 28, 28, 1] (0 = background), labels int64 [N] in [0, 10),
        ``class_names`` from :data:`CLASS_NAMES`.

    Raises:
        DataError: no ``root``; missing files that cannot be downloaded; corrupt, truncated or
            mismatched IDX files; labels out of range; unknown split.
    """
    if split not in _SPLIT_PREFIX:
        raise DataError(f"{dataset} has splits train, test and all, not {split!r}")
    directory = resolve_root(dataset, root, _NEED)
    if directory.exists() and not directory.is_dir():
        raise DataError(f"{dataset}: {directory} is not a directory; pass --data-root DIR holding {_NEED}")
    sources = SOURCES[dataset]
    names = CLASS_NAMES[dataset]
    images_parts, labels_parts = [], []
    stems = [f"{prefix}-{kind}" for prefix in _SPLIT_PREFIX[split]
             for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")]
    paths = {stem: find_idx_file(directory, stem, dataset) for stem in stems}
    missing = [stem for stem in stems if paths[stem] is None]
    if missing:
        got = fetch(dataset, directory, [sources[s] for s in missing], download=download, need=_NEED)
        paths.update(zip(missing, got))
    for prefix in _SPLIT_PREFIX[split]:
        img_path, lbl_path = paths[f"{prefix}-images-idx3-ubyte"], paths[f"{prefix}-labels-idx1-ubyte"]
        images = read_idx(img_path, IMAGES_MAGIC)  # [N, H, W] uint8
        labels = read_idx(lbl_path, LABELS_MAGIC)  # [N] uint8
        if len(labels) != len(images):
            raise DataError(f"{lbl_path} has {len(labels)} labels but {img_path} has {len(images)} "
                            "images; use the label file that belongs to the image file")
        if labels.size and labels.max() >= len(names):
            raise DataError(f"{lbl_path} has label {int(labels.max())}, expected 0..{len(names) - 1}; "
                            f"it is not a {dataset} label file")
        images_parts.append(images[..., None])  # [N, H, W, 1]
        labels_parts.append(labels.astype(np.int64))
    images = images_parts[0] if len(images_parts) == 1 else np.concatenate(images_parts)
    labels = labels_parts[0] if len(labels_parts) == 1 else np.concatenate(labels_parts)
    return RawData(images, labels, list(names))


@register_dataset("mnist")
def load_mnist(root: Optional[str] = None, split: str = "train", strict: bool = False,
               download: bool = True, **_: object) -> RawData:
    """MNIST (LeCun et al. 1998): 60,000 train / 10,000 test handwritten digits, 28×28 grayscale.

    See :func:`load_idx_dataset` for arguments, return value and errors (``strict`` is unused).
    """
    return load_idx_dataset("mnist", root, split, download=download)


@register_dataset("fashion-mnist")
def load_fashion_mnist(root: Optional[str] = None, split: str = "train", strict: bool = False,
                       download: bool = True, **_: object) -> RawData:
    """Fashion-MNIST (Xiao et al. 2017): 60,000 / 10,000 clothing images, 28×28 grayscale, 10 classes.

    See :func:`load_idx_dataset` for arguments, return value and errors (``strict`` is unused).
    """
    return load_idx_dataset("fashion-mnist", root, split, download=download)
