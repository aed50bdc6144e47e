"""``resize="pad"`` (``--resize pad``): zero-pad images of at most R×R to R×R, centred, no resampling."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from _data_fixtures import image_bytes, write_files, write_mnist_dir
from conftest import SHARED_DATA, run_cli
from imagegen.data import build_dataset, idx
from imagegen.data.folder import load_image_files
from imagegen.data.paired import load_paired
from imagegen.data.transforms import RESIZE_METHODS, pad_pil, resize_array
from imagegen.errors import ConfigError, DataError
from imagegen.sampling.interpolate import load_images


def mnist_like(n: int = 3, seed: int = 0) -> np.ndarray:
    """uint8 [N, 28, 28, 1] with no zero pixel (so padding is told apart from content)."""
    return np.random.default_rng(seed).integers(1, 256, (n, 28, 28, 1), dtype=np.uint8)


def padded(images: np.ndarray, r: int = 32) -> np.ndarray:
    """The expected result: MNIST-style 2-pixel border for 28 -> 32 (any centred pad)."""
    n, h, w, c = images.shape
    out = np.zeros((n, r, r, c), np.uint8)
    top, left = (r - h) // 2, (r - w) // 2
    out[:, top:top + h, left:left + w] = images
    return out


def write_pngs(root, images: np.ndarray) -> None:
    write_files(root, {f"{i:03d}.png": image_bytes(Image.fromarray(im[..., 0]), "PNG")
                       for i, im in enumerate(images)})


def test_pad_is_a_resize_method():
    assert "pad" in RESIZE_METHODS
    with pytest.raises(DataError, match=r"unknown resize method 'padd'; use one of .*nearest, pad"):
        resize_array(mnist_like(1), 32, "padd")


def test_array_28_to_32_two_pixels_each_side():
    x = mnist_like()
    y = resize_array(x, 32, "pad")
    assert y.shape == (3, 32, 32, 1) and y.dtype == np.uint8
    np.testing.assert_array_equal(y[:, 2:30, 2:30], x)
    inner = np.zeros((32, 32), bool)
    inner[2:30, 2:30] = True
    assert (y[:, ~inner] == 0).all()
    np.testing.assert_array_equal(y, padded(x))
    assert resize_array(x, 28, "pad") is x  # already R x R


def test_odd_difference_extra_pixel_bottom_right_and_non_square():
    img = Image.fromarray(np.full((5, 4), 200, np.uint8))  # W=4, H=5 -> 8x8
    out = np.asarray(pad_pil(img, 8))
    rows, cols = np.nonzero(out)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (1, 5, 2, 5)  # top 1, bottom 2; left 2, right 2
    rgb = Image.fromarray(np.full((3, 8, 3), 255, np.uint8))  # W=8, H=3 -> 8x8: only rows are padded
    out = np.asarray(pad_pil(rgb, 8))
    assert out.shape == (8, 8, 3) and (out[2:5] == 255).all() and (out[:2] == 0).all() and (out[5:] == 0).all()


def test_array_larger_than_resolution_is_one_line_error():
    with pytest.raises(DataError) as e:
        resize_array(mnist_like(1), 16, "pad", name="mnist")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("mnist: image is 28x28, larger than the resolution 16x16")
    assert "--resize bicubic" in msg and "--resolution 28" in msg
    with pytest.raises(DataError, match=r"image is 28x20"):  # one dimension too large is enough
        resize_array(np.zeros((1, 20, 28, 1), np.uint8), 24, "pad")


@pytest.mark.parametrize("storage", ["memory", "stream"])
def test_folder_of_pngs_padded(tmp_path, storage):
    x = mnist_like(4)
    write_pngs(tmp_path, x)
    ds = build_dataset(str(tmp_path), resolution=32, resize="pad", storage=storage)
    u8, _ = ds.get_batch_uint8(torch.arange(4))
    np.testing.assert_array_equal(u8.permute(0, 2, 3, 1).numpy(), padded(x))
    img, _ = ds.get_batch(torch.arange(4))
    assert (img[:, :, :2] == -1).all() and (img[:, :, :, 30:] == -1).all()  # black border in [-1, 1]


def test_folder_image_larger_than_resolution_is_an_error_not_skipped(tmp_path):
    x = mnist_like(2)
    write_pngs(tmp_path, x)
    big = np.full((40, 40), 9, np.uint8)
    write_files(tmp_path, {"big.png": image_bytes(Image.fromarray(big), "PNG")})
    with pytest.raises(DataError) as e:
        load_image_files(tmp_path, resolution=32, resize="pad")  # strict=False: still an error
    msg = str(e.value)
    assert "\n" not in msg and "big.png: image is 40x40, larger than the resolution 32x32" in msg
    ds = build_dataset(str(tmp_path), resolution=32, resize="pad", storage="stream")  # met at batch time
    with pytest.raises(DataError, match=r"big.png: image is 40x40"):
        ds.get_batch(torch.arange(len(ds)))


def test_large_jpeg_is_not_silently_drafted_down(tmp_path):
    rgb = np.full((64, 64, 3), 128, np.uint8)
    write_files(tmp_path, {"a.jpg": image_bytes(Image.fromarray(rgb), "JPEG", quality=95)})
    with pytest.raises(DataError, match=r"a.jpg: image is 64x64"):
        build_dataset(str(tmp_path), resolution=32, resize="pad", channels=3)


def test_named_idx_dataset_padded(tmp_path):
    arrays = write_mnist_dir(tmp_path)
    ds = build_dataset("mnist", root=str(tmp_path), split="test", resolution=32, resize="pad", download=False)
    np.testing.assert_array_equal(ds.get_batch_uint8(torch.arange(len(ds)))[0].permute(0, 2, 3, 1).numpy(),
                                  padded(arrays["test_x"][..., None]))
    with pytest.raises(DataError, match=r"^mnist: image is 28x28, larger than the resolution 16x16"):
        build_dataset("mnist", root=str(tmp_path), split="test", resolution=16, resize="pad", download=False)


def test_shared_mnist_padded():
    root = SHARED_DATA / "mnist"
    if not (root / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"{root} is not available")
    raw = idx.load_mnist(str(root), "test", download=False)
    ds = build_dataset("mnist", root=str(root), split="test", resolution=32, resize="pad", download=False)
    assert (len(ds), ds.channels, ds.resolution) == (10000, 1, 32)
    np.testing.assert_array_equal(ds.get_batch_uint8(torch.arange(len(ds)))[0].permute(0, 2, 3, 1).numpy(),
                                  padded(raw.images))


def test_paired_side_by_side_halves_padded(tmp_path):
    a, b = mnist_like(1, seed=1)[0, ..., 0], mnist_like(1, seed=2)[0, ..., 0]
    write_files(tmp_path, {"p.png": image_bytes(Image.fromarray(np.concatenate([a, b], 1)), "PNG")})
    pairs = load_paired(tmp_path, resolution=32, resize="pad", layout="side-by-side")
    np.testing.assert_array_equal(pairs.a[0, 0].numpy(), padded(a[None, ..., None])[0, ..., 0])
    np.testing.assert_array_equal(pairs.b[0, 0].numpy(), padded(b[None, ..., None])[0, ..., 0])
    with pytest.raises(DataError, match=r"p.png \(left half\): image is 28x28, larger than the resolution 24x24"):
        load_paired(tmp_path, resolution=24, resize="pad", layout="side-by-side")


def test_interpolate_load_images_pad(tmp_path):
    x = mnist_like(1)
    write_pngs(tmp_path, x)
    img = load_images([tmp_path / "000.png"], 32, 1, "pad")
    assert img.shape == (1, 1, 32, 32) and (img[0, 0, :2] == -1).all()
    with pytest.raises(DataError, match=r"000.png: image is 28x28"):
        load_images([tmp_path / "000.png"], 16, 1, "pad")
    with pytest.raises(ConfigError, match="unknown resize method"):
        load_images([tmp_path / "000.png"], 32, 1, "nope")


def test_digits_padded_to_16():
    raw = build_dataset("digits", split="test")
    ds = build_dataset("digits", split="test", resolution=16, resize="pad")
    np.testing.assert_array_equal(ds.get_batch_uint8(torch.arange(len(ds)))[0].numpy(),
                                  np.pad(raw.get_batch_uint8(torch.arange(len(raw)))[0].numpy(),
                                         ((0, 0), (0, 0), (4, 4), (4, 4))))


def test_cli_train_pad(tmp_path, capsys):
    """digits are 8x8: --resolution 16 pads 4 pixels on each side and the run records resize pad; images
    larger than --resolution stop the run with a one-line error (exit code 2)."""
    tiny = ["--g-width", "8", "--d-width", "8", "--z-dim", "8", "--batch-size", "8", "--no-progress",
            "--resize", "pad", "--steps", "1", "--resolution", "16"]
    run = tmp_path / "run"
    code, out, err = run_cli(["train", "dcgan", "--data", "digits", *tiny, "--out", run], capsys)
    assert code == 0, err
    import imagegen

    assert imagegen.load_run(run).checkpoint_meta["train_config"]["resize"] == "pad"
    big = tmp_path / "big"
    write_files(big, {"a.png": image_bytes(Image.fromarray(np.full((20, 20), 50, np.uint8)), "PNG")})
    code, out, err = run_cli(["train", "dcgan", "--data", big, *tiny, "--out", tmp_path / "run2"], capsys)
    assert code == 2 and "a.png: image is 20x20, larger than the resolution 16x16" in err
    assert len(err.strip().splitlines()) == 1, err


def test_auto_pads_only_near_the_resolution():
    from imagegen.data.transforms import resolve_resize

    assert resolve_resize("auto", 28, 28, 32) == "pad"  # MNIST at 32: 2 px per side
    assert resolve_resize("auto", 30, 29, 32) == "pad"
    assert resolve_resize("auto", 27, 28, 32) == "bicubic"  # 5 px: more than R/16 per side on average
    assert resolve_resize("auto", 28, 28, 64) == "bicubic"  # MNIST at 64
    assert resolve_resize("auto", 16, 16, 32) == "bicubic"  # USPS at 32
    assert resolve_resize("auto", 40, 40, 32) == "bicubic"  # larger: resized down
    assert resolve_resize("lanczos", 28, 28, 32) == "lanczos"  # explicit methods are kept
    assert "auto" in RESIZE_METHODS


def test_named_idx_dataset_auto_is_pad_at_32_and_bicubic_at_64(tmp_path):
    write_mnist_dir(tmp_path)
    for r, method in ((32, "pad"), (64, "bicubic")):
        auto = build_dataset("mnist", root=str(tmp_path), split="test", resolution=r, download=False)
        explicit = build_dataset("mnist", root=str(tmp_path), split="test", resolution=r, resize=method,
                                 download=False)
        assert torch.equal(auto.images, explicit.images), (r, method)


def test_folder_auto_decides_per_image(tmp_path):
    x = mnist_like(2)
    write_pngs(tmp_path, x)
    ds = build_dataset(str(tmp_path), resolution=32, channels=1)
    np.testing.assert_array_equal(ds.images.permute(0, 2, 3, 1).numpy(), padded(x))


def test_real_images_for_a_run_are_framed_as_its_training_data(tmp_path, capsys, monkeypatch):
    """reconstruct/interpolate/evaluate default to the run's own --resize (here pad), not bicubic;
    models built in code (no recorded option) fall back to bicubic."""
    import imagegen
    import imagegen.cli.interpolate as cli_interpolate
    from imagegen.models.vae import VAE, VAEConfig
    from imagegen.sampling.api import run_resize

    run = tmp_path / "vae"
    code, _, err = run_cli(["train", "vae", "--data", "digits", "--resolution", "16", "--resize", "pad",
                            "--z-dim", "4", "--width", "8", "--hidden", "16", "--steps", "1", "--batch-size", "8",
                            "--no-progress", "--out", run], capsys)
    assert code == 0, err
    assert run_resize(imagegen.load_run(run)) == "pad"
    assert run_resize(VAE(VAEConfig(resolution=16, channels=1, z_dim=4, width=8, hidden=16))) == "bicubic"
    seen = []
    real_build = cli_interpolate.build_dataset
    monkeypatch.setattr(cli_interpolate, "build_dataset", lambda *a, **kw: seen.append(kw["resize"]) or real_build(*a, **kw))
    code, _, err = run_cli(["reconstruct", run, "--data", "digits", "--num", "2", "--out", tmp_path / "r.png"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["reconstruct", run, "--data", "digits", "--num", "2", "--resize", "bicubic",
                            "--out", tmp_path / "b.png"], capsys)
    assert code == 0, err
    assert seen == ["pad", "bicubic"]
