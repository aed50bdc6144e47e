"""Tests of the data layer: IDX / CIFAR / folder / zip loaders, downloads, bad input, augmentation."""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from _data_fixtures import (CIFAR_CLASSES, cifar_batch, idx_bytes, image_bytes, make_mnist_arrays, shared,
                            solid, tar_gz_dir, write_cifar_dir, write_files, write_idx, write_mnist_dir,
                            write_zip)
from imagegen.data import DATA_ROOT_ENV, build_dataset
from imagegen.data import cifar, download, idx
from imagegen.data.augment import AugmentConfig, augment, random_crop, random_flip, random_rotate, rotate
from imagegen.data.download import Resource, download_file
from imagegen.data.folder import CorruptImageWarning, labels_from_paths, load_image_files
from imagegen.errors import ConfigError, DataError


def png(mode="RGB", size=(8, 8), color=(255, 0, 0)) -> bytes:
    return image_bytes(solid(mode, size, color), "PNG")


def jpg(mode="RGB", size=(8, 8), color=(0, 0, 255)) -> bytes:
    return image_bytes(solid(mode, size, color), "JPEG", quality=95)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# ----------------------------------------------------------------------------------------- IDX

@pytest.mark.parametrize("gz", [True, False])
def test_mnist_loads_gz_and_raw(tmp_path, gz):
    arrays = write_mnist_dir(tmp_path, gz=gz)
    for split in ("train", "test"):
        raw = idx.load_mnist(str(tmp_path), split, download=False)
        assert raw.images.dtype == np.uint8 and raw.images.shape == arrays[f"{split}_x"].shape + (1,)
        np.testing.assert_array_equal(raw.images[..., 0], arrays[f"{split}_x"])
        assert raw.labels.dtype == np.int64
        np.testing.assert_array_equal(raw.labels, arrays[f"{split}_y"])
        assert raw.class_names == [str(i) for i in range(10)]
    both = idx.load_mnist(str(tmp_path), "all", download=False)
    assert len(both.images) == 12 + 7


def test_fashion_mnist_class_names_and_torchvision_layout(tmp_path):
    raw_dir = tmp_path / "FashionMNIST" / "raw"
    write_mnist_dir(raw_dir)
    os.rename(raw_dir / "t10k-images-idx3-ubyte.gz", raw_dir / "t10k-images.idx3-ubyte.gz")  # dotted
    raw = idx.load_fashion_mnist(str(tmp_path), "test", download=False)
    assert len(raw.images) == 7 and raw.class_names[0] == "T-shirt/top" and raw.class_names[9] == "Ankle boot"


def test_build_dataset_mnist_resize_channels_and_env_root(tmp_path, monkeypatch):
    write_mnist_dir(tmp_path / "fashion_mnist")  # underscore spelling of the dataset name
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path))
    ds = build_dataset("fashion-mnist", split="train", resolution=32, channels=3, download=False)
    assert (len(ds), ds.channels, ds.resolution, ds.num_classes) == (12, 3, 32, 10)
    img, label = ds.get_batch(torch.arange(5))
    assert img.shape == (5, 3, 32, 32) and img.dtype == torch.float32
    assert img.min() >= -1 and img.max() <= 1 and label.dtype == torch.int64


def test_read_idx_other_dtypes(tmp_path):
    arr = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    p = tmp_path / "x.idx"
    p.write_bytes(idx_bytes(arr, 0x0C))
    out = idx.read_idx(p)
    np.testing.assert_array_equal(out, arr)
    assert out.dtype.isnative and out.flags.writeable


def test_idx_bad_magic_names_file(tmp_path):
    write_mnist_dir(tmp_path)
    p = tmp_path / "train-images-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(b"\x12\x34\x56\x78" + bytes(100)))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz is not an IDX file"):
        idx.load_mnist(str(tmp_path), "train", download=False)


def test_idx_swapped_files_named(tmp_path):
    write_mnist_dir(tmp_path)
    x, _ = make_mnist_arrays(12)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", x)  # images where labels belong
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz has magic number 2051, expected 2049"):
        idx.load_mnist(str(tmp_path), "train", download=False)


@pytest.mark.parametrize("gz,name,cut,msg", [
    (False, "t10k-images-idx3-ubyte", 30, r"t10k-images-idx3-ubyte is truncated.*re-download"),
    (True, "t10k-images-idx3-ubyte.gz", 40, r"t10k-images-idx3-ubyte.gz is a truncated or corrupt gzip"),
])
def test_idx_truncated_file_names_file(tmp_path, gz, name, cut, msg):
    write_mnist_dir(tmp_path, gz=gz)
    p = tmp_path / name
    p.write_bytes(p.read_bytes()[:-cut])
    with pytest.raises(DataError, match=msg):
        idx.load_mnist(str(tmp_path), "test", download=False)


def test_idx_label_count_mismatch_names_both_files(tmp_path):
    write_mnist_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(11, np.uint8))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz has 11 labels but .*train-images-idx3-"
                                        r"ubyte.gz has 12 images"):
        idx.load_mnist(str(tmp_path), "train", download=False)


def test_idx_label_out_of_range(tmp_path):
    write_mnist_dir(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(7, 12, np.uint8))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz has label 12"):
        idx.load_mnist(str(tmp_path), "test", download=False)


def test_named_dataset_without_root_says_data_root_or_env(monkeypatch):
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    with pytest.raises(DataError, match=r"--data-root.*IMAGEGEN_DATA"):
        build_dataset("mnist", download=False)
    with pytest.raises(DataError, match=r"--data-root.*IMAGEGEN_DATA"):
        build_dataset("cifar10", download=False)


def test_missing_directory_without_download_lists_files(tmp_path):
    d = tmp_path / "nothing"
    with pytest.raises(DataError) as e:
        idx.load_mnist(str(d), "test", download=False)
    msg = str(e.value)
    assert "\n" not in msg and str(d) in msg and "t10k-images-idx3-ubyte.gz" in msg
    assert "t10k-labels-idx1-ubyte.gz" in msg and "https://ossci-datasets.s3.amazonaws.com/mnist/" in msg
    assert not d.exists()


def test_unknown_split(tmp_path):
    with pytest.raises(DataError, match="splits train, test and all"):
        idx.load_mnist(str(tmp_path), "val", download=False)


# ------------------------------------------------------------------------------------ download

def _serve_mnist(tmp_path, monkeypatch, corrupt: str = "") -> dict:
    """Write the four files in a 'server' directory and point the URL table at them (file://)."""
    server = tmp_path / "server"
    arrays = write_mnist_dir(server)
    table = {}
    for stem, res in idx.SOURCES["mnist"].items():
        data = (server / res.filename).read_bytes()
        table[stem] = Resource(res.filename, (server / res.filename).as_uri(), md5(data))
        if res.filename == corrupt:  # served bytes differ from the published md5
            (server / res.filename).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    monkeypatch.setitem(idx.SOURCES, "mnist", table)
    return arrays


def test_download_missing_files_checksum_ok(tmp_path, monkeypatch):
    arrays = _serve_mnist(tmp_path, monkeypatch)
    root = tmp_path / "data" / "mnist"
    raw = idx.load_mnist(str(root), "test", download=True)
    np.testing.assert_array_equal(raw.labels, arrays["test_y"])
    assert sorted(p.name for p in root.iterdir()) == ["t10k-images-idx3-ubyte.gz",
                                                      "t10k-labels-idx1-ubyte.gz"]


def test_download_checksum_mismatch_rejected(tmp_path, monkeypatch):
    _serve_mnist(tmp_path, monkeypatch, corrupt="t10k-labels-idx1-ubyte.gz")
    root = tmp_path / "data"
    with pytest.raises(DataError, match=r"download of .*t10k-labels-idx1-ubyte.gz is corrupt \(md5"):
        idx.load_mnist(str(root), "test", download=True)
    assert sorted(p.name for p in root.iterdir()) == ["t10k-images-idx3-ubyte.gz"]  # no partial file left


def test_download_failure_is_one_line_naming_file_and_directory(tmp_path, monkeypatch):
    table = {stem: Resource(r.filename, (tmp_path / "offline" / r.filename).as_uri(), r.md5)
             for stem, r in idx.SOURCES["mnist"].items()}
    monkeypatch.setitem(idx.SOURCES, "mnist", table)
    root = tmp_path / "data"
    with pytest.raises(DataError) as e:
        idx.load_mnist(str(root), "train", download=True)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"mnist: missing train-images-idx3-ubyte.gz, "
                                              f"train-labels-idx1-ubyte.gz in {root}; download them from")
    assert "--data-root DIR holding the four IDX .gz files" in msg and "download failed" in msg


def test_user_file_with_other_md5_is_accepted_and_kept(tmp_path, monkeypatch):
    _serve_mnist(tmp_path, monkeypatch)
    root = tmp_path / "data"
    write_mnist_dir(root)
    p = root / "train-images-idx3-ubyte.gz"
    x, _ = make_mnist_arrays(12, 1)
    write_idx(p, x, mtime=123456)  # same content, different gzip wrapper → different md5
    before = p.read_bytes()
    raw = idx.load_mnist(str(root), "train", download=True)
    np.testing.assert_array_equal(raw.images[..., 0], x)
    assert p.read_bytes() == before


def test_download_file_direct(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello" * 1000)
    dest = tmp_path / "sub" / "dest.bin"
    assert download_file(src.as_uri(), dest, md5(src.read_bytes()), progress=False) == dest
    assert dest.read_bytes() == src.read_bytes()
    with pytest.raises(DataError, match="is corrupt"):
        download_file(src.as_uri(), tmp_path / "other.bin", "0" * 32, progress=False)
    assert not (tmp_path / "other.bin").exists()
    with pytest.raises(download.DownloadError, match="cannot download"):
        download_file((tmp_path / "absent").as_uri(), tmp_path / "x.bin", progress=False)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["dest.bin"]


# ------------------------------------------------------------------------------------- CIFAR-10

def _expected(batches: dict, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([batches[n][b"data"] for n in names]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    y = np.concatenate([batches[n][b"labels"] for n in names])
    return x, y


@pytest.mark.parametrize("layout", ["parent", "batches_dir", "tar_file", "tar_in_dir"])
def test_cifar10_layouts(tmp_path, layout):
    batches = write_cifar_dir(tmp_path / "src" / "cifar-10-batches-py")
    root = {"parent": tmp_path / "src", "batches_dir": tmp_path / "src" / "cifar-10-batches-py"}.get(layout)
    if layout.startswith("tar"):
        (tmp_path / "t").mkdir()
        archive = tar_gz_dir(tmp_path / "src" / "cifar-10-batches-py",
                             tmp_path / "t" / "cifar-10-python.tar.gz")
        root = archive if layout == "tar_file" else archive.parent
    train = cifar.load_cifar10(str(root), "train", download=False)
    x, y = _expected(batches, [f"data_batch_{i}" for i in range(1, 6)])
    assert train.images.shape == (15, 32, 32, 3) and train.images.dtype == np.uint8
    np.testing.assert_array_equal(train.images, x)
    np.testing.assert_array_equal(train.labels, y)
    assert train.class_names == CIFAR_CLASSES
    test = cifar.load_cifar10(str(root), "test", download=False)
    np.testing.assert_array_equal(test.images, _expected(batches, ["test_batch"])[0])


def test_cifar10_channel_layout(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    write_cifar_dir(d, n=1)
    data = np.concatenate([np.full(1024, 10), np.full(1024, 20), np.full(1024, 30)]).astype(np.uint8)[None]
    data[0, 1] = 99  # red plane, row 0, column 1
    (d / "test_batch").write_bytes(pickle.dumps({b"data": data, b"labels": [3]}, protocol=2))
    raw = cifar.load_cifar10(str(tmp_path), "test", download=False)
    assert raw.images[0, 5, 5].tolist() == [10, 20, 30] and raw.images[0, 0, 1, 0] == 99
    assert raw.labels.tolist() == [3]


def test_cifar10_truncated_batch_names_file(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    write_cifar_dir(d)
    (d / "data_batch_3").write_bytes((d / "data_batch_3").read_bytes()[:500])
    with pytest.raises(DataError, match="data_batch_3 is not a valid CIFAR-10 python batch"):
        cifar.load_cifar10(str(tmp_path), "train", download=False)


def test_cifar10_refuses_code_in_pickle(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    write_cifar_dir(d)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    (d / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(DataError, match=r"test_batch is not a valid CIFAR-10 python batch \(unexpected"):
        cifar.load_cifar10(str(tmp_path), "test", download=False)
    assert not marker.exists()


def test_cifar10_label_count_mismatch(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    write_cifar_dir(d)
    b = cifar_batch(3, 0)
    b[b"labels"] = b[b"labels"][:2]
    (d / "test_batch").write_bytes(pickle.dumps(b, protocol=2))
    with pytest.raises(DataError, match="test_batch has 2 labels for 3 images"):
        cifar.load_cifar10(str(tmp_path), "test", download=False)


def test_cifar10_missing_batch_and_corrupt_tar(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    write_cifar_dir(d)
    (d / "data_batch_5").unlink()
    with pytest.raises(DataError, match="has no data_batch_5"):
        cifar.load_cifar10(str(tmp_path), "train", download=False)
    archive = tar_gz_dir(d, tmp_path / "c.tar.gz")
    archive.write_bytes(archive.read_bytes()[: len(archive.read_bytes()) // 2])
    with pytest.raises(DataError, match=r"c.tar.gz is not a readable .tar.gz"):
        cifar.load_cifar10(str(archive), "train", download=False)


def test_cifar10_download_from_file_url(tmp_path, monkeypatch):
    batches = write_cifar_dir(tmp_path / "src" / "cifar-10-batches-py")
    archive = tar_gz_dir(tmp_path / "src" / "cifar-10-batches-py", tmp_path / "served.tar.gz")
    monkeypatch.setattr(cifar, "ARCHIVE", Resource("cifar-10-python.tar.gz", archive.as_uri(),
                                                   md5(archive.read_bytes())))
    root = tmp_path / "data" / "cifar10"
    raw = cifar.load_cifar10(str(root), "test", download=True)
    np.testing.assert_array_equal(raw.labels, batches["test_batch"][b"labels"])
    assert (root / "cifar-10-python.tar.gz").is_file()
    with pytest.raises(DataError, match=r"cifar10: missing cifar-10-python.tar.gz in .*empty; download it"):
        cifar.load_cifar10(str(tmp_path / "empty"), "test", download=False)


# --------------------------------------------------------------------------------- folder / zip

def test_folder_class_subfolders_sorted_and_nested(tmp_path):
    write_files(tmp_path, {"dog/a.png": png(), "cat/x/b.jpg": jpg(), "cat/c.webp": image_bytes(
        solid("RGB", (8, 8), (0, 255, 0)), "WEBP", lossless=True), "cat/notes.txt": b"not an image",
        "dog/.hidden.png": b"junk", ".DS_Store": b"junk"})
    raw = load_image_files(tmp_path)
    assert raw.class_names == ["cat", "dog"]
    # sorted paths: cat/c.webp, cat/x/b.jpg, dog/a.png
    assert raw.labels.tolist() == [0, 0, 1] and raw.images.shape == (3, 8, 8, 3)
    assert raw.images[0, 4, 4].tolist() == [0, 255, 0] and raw.images[2, 4, 4].tolist() == [255, 0, 0]


def test_folder_unlabelled_and_common_prefix(tmp_path):
    write_files(tmp_path / "flat", {"a.png": png(), "b.png": png()})
    assert load_image_files(tmp_path / "flat").labels is None
    write_files(tmp_path / "mixed", {"a.png": png(), "cls/b.png": png()})
    assert load_image_files(tmp_path / "mixed").labels is None
    assert labels_from_paths(["train/x/1.png", "train/y/2.png"])[1] == ["x", "y"]
    assert labels_from_paths(["horse2zebra/trainA/1.jpg", "horse2zebra/trainA/2.jpg"]) == (None, None)


def test_folder_mixed_modes_give_one_channel_count(tmp_path):
    write_files(tmp_path / "gray", {"a.png": png("L", color=100), "b.jpg": jpg("L", color=30),
                                    "c.png": png("1", color=1), "d.png": png("LA", color=(200, 255))})
    raw = load_image_files(tmp_path / "gray")
    assert raw.images.shape == (4, 8, 8, 1)
    assert raw.images[0, 0, 0, 0] == 100 and raw.images[2, 0, 0, 0] == 255 and raw.images[3, 0, 0, 0] == 200

    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent → white background
    rgba16 = Image.fromarray(np.full((8, 8), 0x8000, np.uint16))  # 16-bit grey
    write_files(tmp_path / "mixed", {"a.png": png("L", color=100), "b.png": image_bytes(pal, "PNG"),
                                     "c.png": image_bytes(rgba, "PNG"),
                                     "d.jpg": jpg("CMYK", color=(0, 0, 0, 0)),
                                     "e.png": image_bytes(rgba16, "PNG")})
    raw = load_image_files(tmp_path / "mixed")
    assert raw.images.shape == (5, 8, 8, 3)
    px = raw.images[:, 0, 0]
    assert px[0].tolist() == [100, 100, 100] and px[1].tolist() == [10, 200, 30]
    assert px[2].tolist() == [255, 255, 255] and (px[3] >= 250).all() and px[4].tolist() == [128] * 3


def test_folder_channels_parameter_converts(tmp_path):
    write_files(tmp_path, {"a.png": png("RGB", color=(255, 0, 0)), "b.png": png("L", color=77)})
    gray = load_image_files(tmp_path, channels=1)
    assert gray.images.shape == (2, 8, 8, 1) and gray.images[0, 0, 0, 0] == 76  # 0.299 * 255
    rgb = build_dataset(str(tmp_path), channels=3)
    assert rgb.channels == 3 and rgb.images[1, :, 0, 0].tolist() == [77, 77, 77]


def test_folder_resize_center_crop(tmp_path):
    a = np.zeros((20, 40, 3), np.uint8)  # H=20, W=40: red | green green | blue
    a[:, :10] = (255, 0, 0)
    a[:, 10:30] = (0, 255, 0)
    a[:, 30:] = (0, 0, 255)
    write_files(tmp_path, {"wide.png": image_bytes(Image.fromarray(a), "PNG")})
    raw = load_image_files(tmp_path, resolution=10, resize="nearest")
    assert raw.images.shape == (1, 10, 10, 3)
    assert (raw.images[0] == (0, 255, 0)).all()  # 40x20 → 20x10, centre 10x10 is all green
    ds = build_dataset(str(tmp_path), resolution=6, resize="bilinear", channels=1)
    assert (len(ds), ds.channels, ds.resolution) == (1, 1, 6)


def test_folder_different_sizes_need_resolution(tmp_path):
    write_files(tmp_path, {"a.png": png(size=(8, 8)), "b.png": png(size=(9, 8))})
    with pytest.raises(DataError, match=r"b.png is 9x8 but .*a.png is 8x8; pass a resolution"):
        load_image_files(tmp_path)
    assert load_image_files(tmp_path, resolution=4).images.shape == (2, 4, 4, 3)


def test_folder_large_jpeg_draft_decoding(tmp_path):
    big = np.zeros((512, 768, 3), np.uint8)
    big[:, :, 1] = 200
    write_files(tmp_path, {"big.jpg": image_bytes(Image.fromarray(big), "JPEG", quality=95)})
    raw = load_image_files(tmp_path, resolution=32)
    assert raw.images.shape == (1, 32, 32, 3) and abs(int(raw.images[0, 16, 16, 1]) - 200) <= 3


def test_zip_same_rules_without_extracting(tmp_path):
    z = write_zip(tmp_path / "imgs.zip", {
        "root/b/1.png": png(color=(0, 0, 255)), "root/a/2.jpg": jpg(color=(255, 0, 0)),
        "root/a/readme.md": b"x", "__MACOSX/root/a/._2.jpg": b"junk", "root/a/.DS_Store": b"junk"})
    raw = load_image_files(z)
    assert raw.class_names == ["a", "b"] and raw.labels.tolist() == [0, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs.zip"]
    ds = build_dataset(str(z), resolution=4)
    assert len(ds) == 2 and ds.num_classes == 2 and ds.resolution == 4


def test_corrupt_images_skipped_with_warning_or_strict_error(tmp_path):
    good = png()
    files = {f"ok{i}.png": good for i in range(3)}
    files.update({"bad1.png": b"\x89PNG\r\n\x1a\n garbage", "bad2.jpg": jpg(size=(64, 64))[:200],
                  "bad3.webp": b"RIFF"})
    write_files(tmp_path, files)
    with pytest.warns(CorruptImageWarning, match=r"skipped 3 of 6 images .*bad1.png, bad2.jpg, bad3.webp"):
        raw = load_image_files(tmp_path)
    assert len(raw.images) == 3
    with pytest.raises(DataError, match=r"cannot decode image .*bad1.png .*remove or replace it"):
        load_image_files(tmp_path, strict=True)
    with pytest.raises(DataError, match=r"cannot decode image .*bad1.png"):
        build_dataset(str(tmp_path), strict=True)


def test_corrupt_member_in_zip_named(tmp_path):
    z = write_zip(tmp_path / "c.zip", {"x/a.png": png(), "x/b.jpg": jpg(size=(64, 64))[:300]})
    with pytest.raises(DataError, match=r"c.zip:x/b.jpg"):
        load_image_files(z, strict=True)
    with pytest.warns(CorruptImageWarning, match="x/b.jpg"):
        assert len(load_image_files(z).images) == 1


def test_all_corrupt_empty_missing_and_not_a_zip(tmp_path):
    write_files(tmp_path / "bad", {"a.png": b"nope", "b.png": b"nope"})
    with pytest.raises(DataError, match=r"none of the 2 images in .*bad could be decoded"):
        load_image_files(tmp_path / "bad")
    (tmp_path / "empty").mkdir()
    write_files(tmp_path / "empty", {"notes.txt": b"x"})
    with pytest.raises(DataError, match=r"empty contains no PNG, JPEG or WebP images"):
        build_dataset(str(tmp_path / "empty"))
    with pytest.raises(DataError, match=r"missing_dir does not exist"):
        build_dataset(str(tmp_path / "missing_dir"))
    with pytest.raises(DataError, match=r"missing_dir does not exist"):
        load_image_files(tmp_path / "missing_dir")
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"x.zip is neither a folder nor a valid .zip"):
        build_dataset(str(tmp_path / "x.zip"))


def test_cifar10_jpg_layout(tmp_path):
    members = {f"test/{c}/{i:04d}.jpg": jpg(size=(32, 32), color=(20 * k, 0, 0))
               for k, c in enumerate(reversed(CIFAR_CLASSES)) for i in range(2)}
    write_zip(tmp_path / "cifar10_test_jpg.zip", members)
    raw = cifar.load_cifar10_jpg(str(tmp_path), "test")
    assert raw.images.shape == (20, 32, 32, 3) and raw.class_names == CIFAR_CLASSES
    assert raw.labels.tolist() == [i // 2 for i in range(20)]
    with pytest.raises(DataError, match=r"cifar10-jpg: missing cifar10_train_jpg.zip in"):
        cifar.load_cifar10_jpg(str(tmp_path), "train")
    write_zip(tmp_path / "cifar10_train_jpg.zip", {"train/cow/0.jpg": jpg(), "train/cat/0.jpg": jpg()})
    with pytest.raises(DataError, match=r"cifar10_train_jpg.zip does not hold .*CIFAR-10 class folders"):
        cifar.load_cifar10_jpg(str(tmp_path), "train")


# ---------------------------------------------------------------------------------- augmentation

def _batch(b=6, c=3, h=16, w=16, seed=0):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_augment_shapes_ranges_and_determinism():
    img = _batch()
    cfg = AugmentConfig(flip=True, crop_pad=3, rotate_deg=10.0)
    out1 = augment(img, cfg, torch.Generator().manual_seed(1))
    out2 = augment(img, cfg, torch.Generator().manual_seed(1))
    out3 = augment(img, cfg, torch.Generator().manual_seed(2))
    assert out1.shape == img.shape and out1.dtype == torch.float32
    assert out1.min() >= -1 and out1.max() <= 1
    assert torch.equal(out1, out2) and not torch.equal(out1, out3)
    g = torch.Generator().manual_seed(5)
    state = g.get_state()
    a = augment(img, cfg, g)
    g.set_state(state)
    assert torch.equal(a, augment(img, cfg, g))  # resume from a saved generator state


def test_augment_off_is_identity_and_draws_nothing():
    img, g = _batch(), torch.Generator().manual_seed(0)
    state = g.get_state()
    assert augment(img, AugmentConfig(), g) is img and torch.equal(g.get_state(), state)
    assert not AugmentConfig().enabled and AugmentConfig(flip=True).enabled


def test_flip_actually_flips():
    img = _batch(b=64)
    assert torch.equal(random_flip(img, torch.Generator(), p=1.0), img.flip(3))
    out = random_flip(img, torch.Generator().manual_seed(0))
    flipped = torch.tensor([torch.equal(o, i.flip(2)) for o, i in zip(out, img)])
    same = torch.tensor([torch.equal(o, i) for o, i in zip(out, img)])
    assert (flipped ^ same).all() and 10 < flipped.sum() < 54


def test_crop_is_a_window_of_the_reflect_padded_image():
    img, pad = _batch(b=8, h=10, w=12), 3
    out = random_crop(img, pad, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(img, (pad,) * 4, mode="reflect")
    shifts = set()
    for o, p in zip(out, padded):
        hits = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                if torch.equal(o, p[:, dy:dy + 10, dx:dx + 12])]
        assert hits
        shifts.add(hits[0])
    assert len(shifts) > 1
    with pytest.raises(ValueError, match="crop padding"):
        random_crop(img, 10, torch.Generator())


def test_rotate_exact_quarter_turn_and_small_angles():
    img = _batch(b=2, h=8, w=8)
    quarter = rotate(img, torch.tensor([90.0, -90.0]))
    expected = torch.stack([torch.rot90(img[0], 1, (1, 2)), torch.rot90(img[1], -1, (1, 2))])
    torch.testing.assert_close(quarter, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(rotate(img, 0.0), img, atol=1e-6, rtol=0)
    small = random_rotate(img, 5.0, torch.Generator().manual_seed(0))
    assert small.shape == img.shape and small.min() >= -1 and small.max() <= 1
    assert not torch.equal(small, img)


def test_augment_config_validation():
    with pytest.raises(ConfigError):
        AugmentConfig(crop_pad=-1)
    with pytest.raises(ConfigError):
        AugmentConfig(rotate_deg=200)


# ------------------------------------------------------------------------- real data (optional)

@pytest.mark.skipif(shared("mnist") is None, reason="../shared/data/mnist not available")
def test_real_mnist():
    train = idx.load_mnist(str(shared("mnist")), "train", download=False)
    test = idx.load_mnist(str(shared("mnist")), "test", download=False)
    assert train.images.shape == (60000, 28, 28, 1) and test.images.shape == (10000, 28, 28, 1)
    assert np.bincount(train.labels).tolist()[:3] == [5923, 6742, 5958]
    assert np.bincount(test.labels, minlength=10).tolist()[:2] == [980, 1135] and test.labels.max() == 9


@pytest.mark.skipif(shared("cifar10_jpg", "cifar10_test_jpg.zip") is None,
                    reason="../shared/data/cifar10_jpg not available")
def test_real_cifar10_jpg_test_split(monkeypatch):
    monkeypatch.setenv(DATA_ROOT_ENV, str(shared()))  # $IMAGEGEN_DATA/cifar10-jpg → cifar10_jpg
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptImageWarning)
        ds = build_dataset("cifar10-jpg", split="test", download=False)
    assert (len(ds), ds.channels, ds.resolution, ds.num_classes) == (10000, 3, 32, 10)
    assert torch.bincount(ds.labels).tolist() == [1000] * 10 and ds.class_names[0] == "airplane"
