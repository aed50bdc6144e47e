"""Writers for tiny dataset files in the official formats (IDX, CIFAR python batches, image folders).

Used by ``tests/test_data.py``; handy for any test that needs a small real-format dataset on disk.
"""
from __future__ import annotations

import gzip
import io
import pickle
import tarfile
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def idx_bytes(arr: np.ndarray, type_code: int = 0x08) -> bytes:
    """The IDX encoding of ``arr`` (uint8 by default): magic, big-endian dims, payload."""
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[type_code]
    header = bytes([0, 0, type_code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + np.ascontiguousarray(arr, dtype=dtype).tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool = True, mtime: int = 0) -> Path:
    """Write ``arr`` as an IDX file (gzipped when ``gz``); returns the path."""
    data = idx_bytes(arr)
    path.write_bytes(gzip.compress(data, mtime=mtime) if gz else data)
    return path


def make_mnist_arrays(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random images uint8 [n, 28, 28] and labels uint8 [n] in [0, 10)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def write_mnist_dir(root: Path, n_train: int = 12, n_test: int = 7, gz: bool = True) -> dict:
    """The four IDX files in ``root``; returns the arrays written (``train_x``, ``train_y``, ...)."""
    root.mkdir(parents=True, exist_ok=True)
    sfx = ".gz" if gz else ""
    out = {}
    for split, prefix, n, seed in (("train", "train", n_train, 1), ("test", "t10k", n_test, 2)):
        x, y = make_mnist_arrays(n, seed)
        write_idx(root / f"{prefix}-images-idx3-ubyte{sfx}", x, gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{sfx}", y, gz)
        out[f"{split}_x"], out[f"{split}_y"] = x, y
    return out


def cifar_batch(n: int, seed: int, label_offset: int = 0) -> dict:
    """A CIFAR-10 batch dict with bytes keys, as the official Python-2 pickles decode."""
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"test", b"data": rng.integers(0, 256, (n, 3072), np.uint8),
            b"labels": [int(v) for v in (rng.integers(0, 10, n) + label_offset) % 10],
            b"filenames": [f"{i}.png".encode() for i in range(n)]}


def write_cifar_dir(batches_dir: Path, n: int = 3) -> dict[str, dict]:
    """``data_batch_1..5``, ``test_batch``, ``batches.meta`` in ``batches_dir``; returns the batches."""
    batches_dir.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = {name: cifar_batch(n, seed) for seed, name in enumerate(names)}
    for name, b in batches.items():
        (batches_dir / name).write_bytes(pickle.dumps(b, protocol=2))
    meta = {b"label_names": [c.encode() for c in CIFAR_CLASSES], b"num_vis": 3072}
    (batches_dir / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return batches


def tar_gz_dir(src: Path, dest: Path, arcname: str = "cifar-10-batches-py") -> Path:
    """Pack a directory into a ``.tar.gz`` under ``arcname``; returns ``dest``."""
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(src, arcname=arcname)
    return dest


CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def image_bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    """Encode a PIL image (``PNG``, ``JPEG``, ``WEBP``)."""
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def solid(mode: str, size: tuple[int, int], color) -> Image.Image:
    """A single-colour PIL image."""
    return Image.new(mode, size, color)


def write_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    """A zip with the given member names and contents."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    """Write relative paths → bytes under ``root`` (parents created); returns ``root``."""
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def shared(*parts: str) -> Optional[Path]:
    """A path under ``../shared/data`` if it exists, else None."""
    p = SHARED_DATA.joinpath(*parts)
    return p if p.exists() else None
