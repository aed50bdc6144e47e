"""Tests of datasets streamed from disk (StreamingImageDataset), worker batches and build_dataset(storage=...)."""
from __future__ import annotations

import pickle
import warnings
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import imagegen.data as data
from _data_fixtures import image_bytes, solid, write_files, write_zip
from imagegen.data import (ImageDataset, StreamingImageDataset, build_dataset, decoded_size, iterate_batches)
from imagegen.data.folder import CorruptImageWarning, ImageSource, list_images
from imagegen.errors import ConfigError, DataError

CORRUPT = b"\x89PNG\r\n\x1a\n garbage"


def _noise(mode: str, size: tuple[int, int], seed: int) -> Image.Image:
    """A random image (so that resizing and cropping show), ``size`` = (W, H)."""
    rng = np.random.default_rng(seed)
    bands = {"L": 1, "RGB": 3, "RGBA": 4, "LA": 2}[mode]
    a = rng.integers(0, 256, (size[1], size[0], bands), np.uint8)
    return Image.fromarray(a[..., 0] if bands == 1 else a, mode)


def _files(n_per_class: int = 8) -> dict[str, bytes]:
    """Three classes of images of mixed modes, formats and (mostly non-square) sizes.

    The first file in sorted order is grayscale, so channels=None must find the colour ones.
    """
    pal = Image.new("P", (12, 9))
    pal.putpalette(list(np.random.default_rng(0).integers(0, 256, 768)))
    pal.putdata(list(np.random.default_rng(1).integers(0, 256, 12 * 9)))
    files = {"cat/00_gray.png": image_bytes(_noise("L", (20, 13), 1), "PNG"),
             "cat/01_pal.png": image_bytes(pal, "PNG"),
             "cat/02_rgba.png": image_bytes(_noise("RGBA", (17, 17), 2), "PNG"),
             "cat/03_big.jpg": image_bytes(_noise("RGB", (200, 130), 3), "JPEG", quality=90),  # draft path
             "dog/04_graylarge.jpg": image_bytes(_noise("L", (90, 140), 4), "JPEG", quality=90),
             "dog/05_la.png": image_bytes(_noise("LA", (16, 24), 5), "PNG"),
             "dog/06_cmyk.jpg": image_bytes(solid("CMYK", (10, 30), (10, 200, 30, 5)), "JPEG", quality=95),
             "dog/07_16bit.png": image_bytes(Image.fromarray(
                 np.random.default_rng(6).integers(0, 65536, (15, 19)).astype(np.uint16)), "PNG")}
    for k, cls in enumerate(("cat", "dog", "eel")):
        for i in range(n_per_class):
            size = (16 + 3 * i, 16 + (i * 5) % 11)
            fmt = ("PNG", "JPEG", "WEBP")[(i + k) % 3]
            files[f"{cls}/img{i:02d}.{fmt.lower()}"] = image_bytes(_noise("RGB", size, 100 * k + i), fmt)
    return files


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """The same images as a folder and as a zip (with a shared top directory in the zip)."""
    root = tmp_path_factory.mktemp("stream")
    files = _files()
    folder = write_files(root / "folder", files)
    z = write_zip(root / "imgs.zip", {f"top/{k}": v for k, v in files.items()})
    return {"folder": folder, "zip": z}


@pytest.mark.parametrize("kind", ["folder", "zip"])
@pytest.mark.parametrize("channels", [None, 1])
def test_same_pixels_and_labels_as_in_memory(sources, kind, channels):
    path = str(sources[kind])
    mem = build_dataset(path, resolution=12, channels=channels, storage="memory")
    st = build_dataset(path, resolution=12, channels=channels, storage="stream")
    assert isinstance(mem, ImageDataset) and isinstance(st, StreamingImageDataset)
    assert (st.name, len(st), st.channels, st.resolution) == (mem.name, len(mem), mem.channels, mem.resolution)
    assert st.channels == (channels or 3)  # first image grayscale, others colour: the scan finds them
    assert st.class_names == mem.class_names == ["cat", "dog", "eel"] and st.num_classes == 3
    assert torch.equal(st.labels, mem.labels)
    idx = torch.randperm(len(mem), generator=torch.Generator().manual_seed(0))
    img, label = st.get_batch_uint8(idx)
    assert img.dtype == torch.uint8 and img.shape == (len(mem), st.channels, 12, 12) and img.is_contiguous()
    assert torch.equal(img, mem.images[idx]) and torch.equal(label, mem.labels[idx])
    f_st, f_mem = st.get_batch(idx[:5]), mem.get_batch(idx[:5])
    assert f_st[0].dtype == torch.float32 and torch.equal(f_st[0], f_mem[0]) and torch.equal(f_st[1], f_mem[1])
    x, y = st[3]
    assert torch.equal(x, mem[3][0]) and y.dtype == torch.int64 and int(y) == int(mem.labels[3])


def test_native_size_grayscale_and_unlabelled(tmp_path):
    files = {f"{i}.png": image_bytes(_noise("L", (10, 7), i), "PNG") for i in range(5)}
    write_files(tmp_path, files)
    mem, st = (build_dataset(str(tmp_path), storage=s) for s in ("memory", "stream"))
    assert (st.channels, st.resolution, st.labels, st.num_classes) == (1, 7, None, 0)
    img, label = st.get_batch_uint8(torch.arange(5))
    assert torch.equal(img, mem.images) and label.tolist() == [-1] * 5
    with pytest.raises(DataError, match=r"streamed from disk .*storage='memory'"):
        st.images  # noqa: B018


def test_other_size_without_resolution_named_when_met(tmp_path):
    write_files(tmp_path, {"a.png": image_bytes(_noise("RGB", (8, 8), 0), "PNG"),
                           "b.png": image_bytes(_noise("RGB", (9, 8), 1), "PNG")})
    st = StreamingImageDataset(tmp_path)
    with pytest.raises(DataError, match=r"b.png is 9x8 but .*a.png is 8x8; pass a resolution"):
        st.get_batch(torch.tensor([1]))


def test_zip_members_read_by_position_any_compression_crc_checked(tmp_path):
    z = tmp_path / "mixed.zip"
    methods = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2]
    with zipfile.ZipFile(z, "w") as zf:
        for i in range(9):
            zf.writestr(f"d/{i}.png", image_bytes(_noise("RGB", (9, 7), i), "PNG"), compress_type=methods[i % 3])
    mem = build_dataset(str(z), resolution=6, storage="memory")
    st = StreamingImageDataset(z, resolution=6)
    assert st.source._zf is None  # no ZipFile kept: stored and deflated members are read by position
    assert torch.equal(st.get_batch_uint8(torch.arange(9))[0], mem.images)
    assert st.source._zf is not None  # the bzip2 members went through ZipFile
    # a damaged member (same size, other bytes) fails its CRC check and is named
    data = bytearray(z.read_bytes())
    info = zipfile.ZipFile(z).getinfo("d/3.png")  # stored
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 40:start + 48] = bytes(8)
    z.write_bytes(bytes(data))
    st = StreamingImageDataset(z, resolution=6, strict=True)
    with pytest.raises(DataError, match=r"mixed.zip:d/3.png \(Bad CRC-32"):
        st.get_batch(torch.tensor([3]))
    # names that do not match the listing's positions are still read correctly (by name)
    src = ImageSource(z)
    names = src.list_images()
    assert src.open(names[2], 5).getvalue() == zipfile.ZipFile(z).read(names[2])


def _index_batches(n: int, batch: int, seed: int) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return [order[i:i + batch] for i in range(0, n - batch + 1, batch)]


def test_iterate_batches_order_workers_and_restart(sources):
    st = StreamingImageDataset(sources["zip"], resolution=8)
    batches = _index_batches(len(st), 4, seed=3)
    here = list(iterate_batches(st, batches, workers=0))
    assert len(here) == len(batches)
    for (img, label), idx in zip(here, batches):
        ref = st.get_batch(idx)
        assert img.dtype == torch.float32 and torch.equal(img, ref[0]) and torch.equal(label, ref[1])
    two = list(iterate_batches(st, batches, workers=2, prefetch=1))  # zip read in forked workers
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(here, two))
    assert len(two) == len(here)
    tail = list(iterate_batches(st, batches[3:], workers=2))  # resume at batch 3
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(here[3:], tail))
    assert len(tail) == len(here) - 3
    # the main process's zip handle still works after the workers used theirs; a pickled copy too
    assert torch.equal(st.get_batch(batches[0])[0], here[0][0])
    assert torch.equal(pickle.loads(pickle.dumps(st)).get_batch(batches[1])[0], here[1][0])


def test_iterate_batches_in_memory_and_lazy_endless_iterable(sources):
    mem = build_dataset(str(sources["folder"]), resolution=8, storage="memory")
    batches = _index_batches(len(mem), 5, seed=1)

    def endless():
        while True:
            yield from batches

    it = iterate_batches(mem, endless(), workers=2, prefetch=1)
    got = [next(it) for _ in range(len(batches) + 2)]
    del it  # shuts the workers down
    expect = [mem.get_batch(b) for b in batches + batches[:2]]
    assert all(torch.equal(g[0], e[0]) and torch.equal(g[1], e[1]) for g, e in zip(got, expect))
    with pytest.raises(ConfigError, match="workers"):
        iterate_batches(mem, batches, workers=-1)
    with pytest.raises(ConfigError, match="prefetch"):
        iterate_batches(mem, batches, workers=1, prefetch=0)


@pytest.fixture()
def corrupt_folder(tmp_path):
    files = {f"c/{i:02d}.png": image_bytes(_noise("RGB", (8, 8), i), "PNG") for i in range(10)}
    files["c/04.png"] = CORRUPT
    files["c/09.png"] = CORRUPT  # the last one: replaced by index 0 (wraps around)
    return write_files(tmp_path, files)


def test_corrupt_file_strict_is_an_error_naming_it(corrupt_folder):
    st = StreamingImageDataset(corrupt_folder, strict=True)
    st.get_batch(torch.tensor([0, 3, 5]))
    with pytest.raises(DataError, match=r"cannot decode image .*c/04.png .*remove or replace it"):
        st.get_batch(torch.tensor([3, 4]))
    with pytest.raises(DataError, match=r"^cannot decode image .*c/04.png [^\n]*$"):  # one line from a worker
        list(iterate_batches(st, [torch.tensor([0, 1]), torch.tensor([4, 5])], workers=2))
    (corrupt_folder / "c" / "00.png").write_bytes(CORRUPT)
    with pytest.raises(DataError, match=r"cannot decode image .*c/00.png"):  # the first file, at construction
        StreamingImageDataset(corrupt_folder, strict=True)


def test_corrupt_file_replaced_by_next_with_warning(corrupt_folder):
    st = StreamingImageDataset(corrupt_folder)
    assert len(st) == 10  # corrupt files count: nothing is decoded in advance
    with pytest.warns(CorruptImageWarning) as rec:
        img, _ = st.get_batch_uint8(torch.tensor([4, 9, 2]))
    msgs = [str(w.message) for w in rec]
    assert len(msgs) == 2 and "using c/00.png (index 0)" in msgs[1]
    assert msgs[0].startswith("cannot decode image ") and "c/04.png (" in msgs[0]
    assert "using c/05.png (index 5) in its place; load with strict to fail instead" in msgs[0]
    ref, _ = st.get_batch_uint8(torch.tensor([5, 0, 2]))
    assert torch.equal(img, ref)
    batches = [torch.tensor([9, 4]), torch.tensor([1, 2])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        here = list(iterate_batches(st, batches, workers=0))
    with pytest.warns(CorruptImageWarning) as rec:  # re-issued from the worker
        two = list(iterate_batches(st, batches, workers=2))
    assert sorted(str(w.message).split(" (")[0][-8:] for w in rec) == ["c/04.png", "c/09.png"]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(here, two))
    # labels follow the replacement image
    labelled = write_files(corrupt_folder / "lab", {"a/0.png": CORRUPT, "b/0.png": image_bytes(
        _noise("RGB", (8, 8), 0), "PNG")})
    with pytest.warns(CorruptImageWarning):
        assert StreamingImageDataset(labelled).get_batch(torch.tensor([0]))[1].tolist() == [1]
    write_files(corrupt_folder / "allbad", {"a.png": CORRUPT, "b.png": CORRUPT})
    with pytest.raises(DataError, match=r"none of the 2 images in .*allbad could be decoded"):
        StreamingImageDataset(corrupt_folder / "allbad")


def test_storage_auto_memory_then_stream_above_threshold(sources, monkeypatch):
    path = str(sources["zip"])
    n = len(list_images(path))
    assert decoded_size(path, list_images(path), 12, None) == n * 12 * 12 * 3
    assert decoded_size(path, list_images(path), None, 1) > 0
    assert isinstance(build_dataset(path, resolution=12), ImageDataset)  # default: auto, small → memory
    monkeypatch.setattr(data, "STREAM_THRESHOLD_BYTES", n * 12 * 12 * 3)
    assert isinstance(build_dataset(path, resolution=12), StreamingImageDataset)
    assert isinstance(build_dataset(path, resolution=11), ImageDataset)
    assert isinstance(build_dataset(path, resolution=12, storage="memory"), ImageDataset)
    with pytest.raises(DataError, match=r"unknown storage 'disk'"):
        build_dataset(path, storage="disk")
    with pytest.warns(UserWarning, match=r"digits is a named dataset and always loads into memory"):
        assert isinstance(build_dataset("digits", storage="stream"), ImageDataset)
