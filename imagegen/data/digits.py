"""scikit-learn's bundled 8×8 handwritten digits (UCI ML hand-written digits, 1,797 images, 10 classes).

Ships with every scikit-learn install, so it is the offline default dataset. Pixel values 0–16 are
scaled to 0–255; upsampling to the model's resolution happens in :func:`imagegen.data.build_dataset`.
There is no official split: ``train`` is the first 1,500 images, ``test`` the remaining 297, ``all``
everything.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import DataError
from .base import RawData, register_dataset


@register_dataset("digits")
def load_digits(root: Optional[str] = None, split: str = "train", **_: object) -> RawData:
    from sklearn.datasets import load_digits as _load

    d = _load()
    images = np.clip(np.rint(d.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)[..., None]
    labels = d.target.astype(np.int64)
    sl = {"train": slice(0, 1500), "test": slice(1500, None), "all": slice(None)}.get(split)
    if sl is None:
        raise DataError(f"digits has splits train, test and all, not {split!r}")
    return RawData(images[sl], labels[sl], [str(i) for i in range(10)])
