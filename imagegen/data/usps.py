"""USPS handwritten digits (Hull 1994) from the common ``usps.h5`` file: 7,291 train + 2,007 test, 16×16.

``usps.h5`` is the Kaggle "USPS dataset" file, the ESL (Hastie, Tibshirani & Friedman) ``zip.train`` /
``zip.test`` digits rescaled from [-1, 1] to [0, 1]. Layout: HDF5 groups ``train`` and ``test``, each
with ``data`` float32 [N, 256] (row-major 16×16 images, 0 = background, 1 = ink, digits upright) and
``target`` int32 [N] (the digit, 0–9). Images become uint8 ``round(255·x)``, like MNIST (0 = background).

``--data-root`` is the directory holding ``usps.h5`` (or the file itself). When the file is missing and
downloading is allowed it is downloaded (md5-checked) from a pinned commit of a public GitHub
repository; the file's SHA-256 is :data:`SHA256` for those who fetch it by hand. Reading needs
``h5py``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import DataError
from .base import RawData, register_dataset
from .download import Resource, fetch, resolve_root

FILENAME = "usps.h5"
#: byte copy of the Kaggle file in niuers/Learning-From-Data-A-Short-Course, pinned to a commit
RESOURCE = Resource(FILENAME, "https://raw.githubusercontent.com/niuers/Learning-From-Data-A-Short-Course/"
                              "879a698b960e5867f7c2b11f8938fa89c3d21839/data/usps.h5",
                    "355df6b942eb766252e0340bc019b0b9")
SHA256 = "734f88c541104a956d88be2c95d03b4a463ffd74ccc2ba9c80841fb98e3fcb36"
SIZE = 16
CLASS_NAMES = [str(i) for i in range(10)]
#: images per split of the published file
NUM_IMAGES = {"train": 7291, "test": 2007}
_SPLITS = {"train": ("train",), "test": ("test",), "all": ("train", "test")}
_NEED = FILENAME


def read_usps_h5(path: str | Path, group: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one split of ``usps.h5``.

    Args:
        path: the HDF5 file.
        group: ``train`` or ``test``.

    Returns:
        ``(images, labels)``: uint8 [N, 16, 16, 1] (``round(255·x)``, 0 = background) and int64 [N] in
        [0, 10).

    Raises:
        DataError: the file cannot be read or is not HDF5; the group or its ``data`` / ``target``
            datasets are missing; wrong shapes; pixel values outside [0, 1]; labels outside 0–9. The
            message names the file and the fix.
    """
    import h5py

    path = Path(path)
    fix = f"re-download {FILENAME} or pass --data-root DIR holding the original file"
    try:
        with h5py.File(path, "r") as f:
            if group not in f or not isinstance(f[group], h5py.Group):
                raise DataError(f"{path} has no '{group}' group (found {', '.join(sorted(f)) or 'nothing'}); "
                                f"it is not the usps.h5 file; {fix}")
            g = f[group]
            missing = [k for k in ("data", "target") if k not in g]
            if missing:
                raise DataError(f"{path}: group '{group}' has no {' or '.join(missing)} dataset; {fix}")
            data, target = np.asarray(g["data"]), np.asarray(g["target"])
    except DataError:
        raise
    except (OSError, KeyError, ValueError) as e:  # not HDF5, truncated, corrupt chunks
        raise DataError(f"cannot read {path} as HDF5 ({' '.join(str(e).split())}); {fix}") from None
    if data.ndim != 2 or data.shape[1] != SIZE * SIZE or not np.issubdtype(data.dtype, np.floating):
        raise DataError(f"{path}: {group}/data is {data.dtype} {list(data.shape)}, expected float "
                        f"[N, {SIZE * SIZE}] (16×16 images); {fix}")
    if target.shape != (len(data),):
        raise DataError(f"{path}: {group}/target has shape {list(target.shape)} for {len(data)} images; {fix}")
    if data.size and (np.nanmin(data) < -1e-3 or np.nanmax(data) > 1 + 1e-3 or np.isnan(data).any()):
        raise DataError(f"{path}: {group}/data has values outside [0, 1]; it is not the [0, 1] usps.h5 "
                        f"(the ESL text files hold [-1, 1]); {fix}")
    labels = target.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES)):
        raise DataError(f"{path}: {group}/target has labels outside 0..9; {fix}")
    images = np.clip(np.rint(data * 255.0), 0, 255).astype(np.uint8).reshape(-1, SIZE, SIZE, 1)
    return images, labels


def find_usps_file(root: Optional[str], download: bool) -> Path:
    """The ``usps.h5`` of ``root`` (a directory or the file itself), downloaded there if missing and
    allowed.

    Raises:
        DataError: no ``root``; ``root`` is a missing ``.h5`` file or a file of another kind; the file is
            missing and cannot be downloaded (the message names the directory and the URL); a corrupt
            download.
    """
    path = resolve_root("usps", root, _NEED)
    if path.suffix.lower() in (".h5", ".hdf5"):
        if not path.is_file():
            raise DataError(f"usps: {path} does not exist; pass --data-root DIR holding {FILENAME} (downloaded "
                            "there if missing), or the path of the file itself")
        return path
    if path.is_file():
        raise DataError(f"usps: {path} is not an HDF5 file; pass --data-root DIR holding {FILENAME} "
                        "(or the file itself)")
    if (path / FILENAME).is_file():
        return path / FILENAME
    return fetch("usps", path, [RESOURCE], download=download, need=_NEED)[0]


@register_dataset("usps")
def load_usps(root: Optional[str] = None, split: str = "train", strict: bool = False,
              download: bool = True, **_: object) -> RawData:
    """USPS (Hull 1994): 7,291 train / 2,007 test handwritten digits, 16×16 grayscale.

    Args:
        root: the directory holding ``usps.h5``, or the file (``--data-root``).
        split: ``train``, ``test`` or ``all`` (train then test).
        strict: unused (the file has no individually corrupt images).
        download: download a missing file (md5-checked).

    Returns:
        RawData: images uint8 [N, 16, 16, 1] (0 = background, 255 = ink), labels int64 [N] in [0, 10),
        class names ``"0"`` … ``"9"``.

    Raises:
        DataError: unknown split, missing file that cannot be downloaded, or a file that is not
            ``usps.h5`` (see :func:`read_usps_h5`).
    """
    if split not in _SPLITS:
        raise DataError(f"usps has splits train, test and all, not {split!r}")
    path = find_usps_file(root, download)
    parts = [read_usps_h5(path, g) for g in _SPLITS[split]]
    images = np.concatenate([p[0] for p in parts])  # [N, 16, 16, 1]
    labels = np.concatenate([p[1] for p in parts])
    return RawData(images, labels, list(CLASS_NAMES))
