"""The ``usps`` named dataset: reading ``usps.h5``, bad files, downloads, and the real file when present."""
from __future__ import annotations

import dataclasses
import hashlib

import h5py
import numpy as np
import pytest

from conftest import SHARED_DATA

from imagegen.data import build_dataset, dataset_loaders, usps
from imagegen.data.download import Resource, sha256sum
from imagegen.errors import DataError


def write_usps_h5(path, n_train: int = 5, n_test: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny usps.h5 of the published layout; returns its float data and labels."""
    rng = np.random.default_rng(seed)
    arrays = {}
    with h5py.File(path, "w") as f:
        for split, n in (("train", n_train), ("test", n_test)):
            x = rng.random((n, 256), dtype=np.float32)
            x[:, :3] = [0.0, 1.0, 0.25]  # round(255·0.25) = round(63.75) = 64
            y = (np.arange(n) % 10).astype(np.int32)
            g = f.create_group(split)
            g.create_dataset("data", data=x, compression="gzip")
            g.create_dataset("target", data=y)
            arrays[split] = x, y
    return arrays


def test_tiny_file_loads_with_shapes_labels_and_values(tmp_path):
    arrays = write_usps_h5(tmp_path / "usps.h5")
    raw = usps.load_usps(str(tmp_path), "train", download=False)
    x, y = arrays["train"]
    assert raw.images.shape == (5, 16, 16, 1) and raw.images.dtype == np.uint8
    np.testing.assert_array_equal(raw.images.reshape(5, 256), np.rint(x * 255).astype(np.uint8))
    assert list(raw.images[0, 0, :3, 0]) == [0, 255, 64]  # 0 = background, row-major 16×16
    np.testing.assert_array_equal(raw.labels, y.astype(np.int64))
    assert raw.labels.dtype == np.int64 and raw.class_names == [str(i) for i in range(10)]
    both = usps.load_usps(str(tmp_path / "usps.h5"), "all", download=False)  # the file itself as root
    assert len(both.images) == 8
    ds = build_dataset("usps", root=str(tmp_path), split="test", resolution=32, channels=3)
    assert "usps" in dataset_loaders() and len(ds) == 3 and ds.channels == 3 and ds.resolution == 32


def test_missing_file_is_one_line_error(tmp_path):
    with pytest.raises(DataError) as e:
        usps.load_usps(str(tmp_path / "nowhere"), "train", download=False)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("usps: missing usps.h5 in") and "downloading is disabled" in msg
    assert usps.RESOURCE.url in msg
    with pytest.raises(DataError, match=r"usps: .*other.h5 does not exist; pass --data-root DIR"):
        usps.load_usps(str(tmp_path / "other.h5"), "train", download=True)
    (tmp_path / "usps.txt").write_text("digits")
    with pytest.raises(DataError, match=r"usps.txt is not an HDF5 file"):
        usps.load_usps(str(tmp_path / "usps.txt"), "train", download=False)
    with pytest.raises(DataError, match="no data directory"):
        usps.load_usps(None, "train", download=False)
    with pytest.raises(DataError, match="splits train, test and all"):
        usps.load_usps(str(tmp_path), "val", download=False)


def test_bad_files_are_one_line_errors(tmp_path):
    (tmp_path / "usps.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(DataError, match=r"cannot read .*usps.h5 as HDF5"):
        usps.load_usps(str(tmp_path), "train", download=False)
    with h5py.File(tmp_path / "usps.h5", "w") as f:
        f.create_group("train").create_dataset("data", data=np.zeros((2, 256), np.float32))
    with pytest.raises(DataError, match="has no 'test' group"):
        usps.load_usps(str(tmp_path), "test", download=False)
    with pytest.raises(DataError, match="has no target dataset"):
        usps.load_usps(str(tmp_path), "train", download=False)
    with h5py.File(tmp_path / "usps.h5", "w") as f:
        g = f.create_group("train")
        g.create_dataset("data", data=np.full((2, 256), -1, np.float32))  # the ESL [-1, 1] scaling
        g.create_dataset("target", data=np.zeros(2, np.int32))
    with pytest.raises(DataError, match=r"values outside \[0, 1\]"):
        usps.load_usps(str(tmp_path), "train", download=False)


def test_download_is_checksum_verified(tmp_path, monkeypatch):
    server = tmp_path / "server"
    server.mkdir()
    arrays = write_usps_h5(server / "usps.h5")
    served = (server / "usps.h5").read_bytes()
    good = Resource("usps.h5", (server / "usps.h5").as_uri(), hashlib.md5(served).hexdigest())
    monkeypatch.setattr(usps, "RESOURCE", dataclasses.replace(good, md5="0" * 32))
    root = tmp_path / "data" / "usps"
    with pytest.raises(DataError, match=r"download of .*usps.h5 is corrupt \(md5"):
        usps.load_usps(str(root), "test", download=True)
    assert not any(root.iterdir())  # nothing half-written is left
    monkeypatch.setattr(usps, "RESOURCE", good)
    raw = usps.load_usps(str(root), "test", download=True)
    np.testing.assert_array_equal(raw.labels, arrays["test"][1])
    assert (root / "usps.h5").read_bytes() == served


def test_the_published_checksums_are_recorded():
    assert usps.RESOURCE.md5 == "355df6b942eb766252e0340bc019b0b9"
    assert "879a698b960e5867f7c2b11f8938fa89c3d21839/data/usps.h5" in usps.RESOURCE.url
    assert len(usps.SHA256) == 64


def test_real_usps_file():
    root = SHARED_DATA / "usps"
    if not (root / "usps.h5").is_file():
        pytest.skip(f"{root}/usps.h5 is not available")
    assert sha256sum(root / "usps.h5") == usps.SHA256
    train = usps.load_usps(str(root), "train", download=False)
    test = usps.load_usps(str(root), "test", download=False)
    assert train.images.shape == (7291, 16, 16, 1) and test.images.shape == (2007, 16, 16, 1)
    assert np.bincount(train.labels).tolist() == [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644]
    assert np.bincount(test.labels).tolist() == [359, 264, 198, 166, 200, 160, 170, 147, 166, 177]
    assert train.images.max() == 255 and np.median(train.images) == 0  # ink on a black background


def test_name_split_specs_reach_usps(tmp_path):
    from imagegen.cli.evaluate import load_fake_images, parse_real

    write_usps_h5(tmp_path / "usps.h5")
    assert parse_real("usps:test", None, None) == ("usps", "test")
    images, labels = load_fake_images("usps:test", data_root=str(tmp_path))
    assert tuple(images.shape) == (3, 1, 16, 16) and labels.tolist() == [0, 1, 2]
