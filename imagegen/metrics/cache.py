"""Where evaluation artefacts are cached, and the content hashes that key them.

The cache directory is ``$IMAGEGEN_CACHE`` if set, else ``~/.cache/imagegen``. It holds dataset
classifiers (``classifiers/``), reference feature statistics (``reference/``) and downloaded
pretrained weights (``weights/``, see :mod:`imagegen.weights`). Every entry is keyed by content
hashes, so stale entries are never used; it is always safe to delete the directory.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..data.download import sha256sum

CACHE_ENV = "IMAGEGEN_CACHE"


def cache_dir(override: Optional[str | os.PathLike] = None) -> Path:
    """The cache root: ``override`` if given, else ``$IMAGEGEN_CACHE``, else ``~/.cache/imagegen``."""
    if override:
        return Path(override)
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "imagegen"


def safe_name(name: str) -> str:
    """A file-name-safe short form of a dataset name or path (``/a/b/faces.zip`` -> ``faces.zip``)."""
    base = os.path.basename(os.path.normpath(name)) or "data"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", base)[:40]


def _update_tensor(h: "hashlib._Hash", t: torch.Tensor | np.ndarray) -> None:
    arr = t.detach().cpu().contiguous().numpy() if isinstance(t, torch.Tensor) else np.ascontiguousarray(t)
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(memoryview(arr).cast("B"))


def dataset_hash(dataset: Any) -> str:
    """SHA-256 (hex) of a dataset's content: its uint8 images [N, C, H, W] and its labels.

    Args:
        dataset: an :class:`imagegen.data.ImageDataset` (or anything with ``.images`` uint8 tensor and
            ``.labels`` int64 tensor or None).

    Returns:
        64 hex digits. Any change of a pixel, a label, the resolution, the channel count or the order
        changes the hash. Not memoised (about 0.1 s for MNIST), so in-place edits are always seen.
    """
    h = hashlib.sha256(b"imagegen-dataset-v1")
    _update_tensor(h, dataset.images)
    if dataset.labels is not None:
        _update_tensor(h, dataset.labels)
    return h.hexdigest()


def state_dict_hash(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 (hex) of a state dict: names, dtypes, shapes and values, in sorted name order."""
    h = hashlib.sha256(b"imagegen-state-v1")
    for name in sorted(state):
        h.update(name.encode())
        _update_tensor(h, state[name])
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes (:func:`imagegen.data.download.sha256sum`).

    Raises:
        OSError: the file cannot be read.
    """
    return sha256sum(path)


def json_hash(obj: Any) -> str:
    """SHA-256 (hex) of the canonical JSON form of ``obj`` (sorted keys)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
