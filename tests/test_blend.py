"""Image fusion (imagegen.sampling.blend, ``imagegen blend``): Laplacian-pyramid, Poisson and latent blending."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_DCGAN, TINY_SG2, run_cli
from imagegen.errors import ConfigError, DataError
from imagegen.sampling.blend import (collapse, laplacian_blend, laplacian_pyramid, latent_blend, load_blend_inputs,
                                     poisson_blend, to_model_input)

pytestmark = pytest.mark.usefixtures("one_thread")


def images(h=37, w=45, c=3, seed=0):
    """Two random textured images float32 [C, H, W] in [-1, 1] (odd sizes on purpose)."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(c, h, w, generator=g) * 2 - 1, torch.rand(c, h, w, generator=g) * 2 - 1


def write(path, arr):
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 1-step vae, a 1-step dcgan and a 2-step stylegan2 on the bundled digits (tiny, ~seconds)."""
    from imagegen.cli import main

    root = tmp_path_factory.mktemp("runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        main(["train", "vae", "--data", "digits", "--resolution", "8", "--z-dim", "4", "--width", "8", "--hidden",
              "16", "--steps", "1", "--batch-size", "8", "--no-progress", "--out", str(root / "vae")])
        main(["train", "dcgan", *TINY_DCGAN, "--steps", "1", "--threads", "1", "--out", str(root / "dcgan")])
        main(["train", "stylegan2", *TINY_SG2, "--steps", "2", "--out", str(root / "sg2")])
    finally:
        torch.set_num_threads(threads)
    return root


@pytest.fixture
def files(tmp_path):
    """A (RGB 20×16), B (grey 20×16), a left-half mask (20×16) and a mask of another size, as PNGs."""
    rng = np.random.default_rng(0)
    a = write(tmp_path / "a.png", rng.integers(0, 256, (16, 20, 3), dtype=np.uint8))
    b = write(tmp_path / "b.png", rng.integers(0, 256, (16, 20), dtype=np.uint8))
    m = np.zeros((16, 20), np.uint8)
    m[:, :10] = 255
    mask = write(tmp_path / "m.png", m)
    small = write(tmp_path / "small.png", np.zeros((8, 10), np.uint8))
    return a, b, mask, small


# ---- Laplacian ---------------------------------------------------------------------------------------------
def test_laplacian_pyramid_collapses_to_its_image():
    a, _ = images()
    x = a.permute(1, 2, 0).numpy().copy()
    pyr = laplacian_pyramid(x, 4)
    assert [p.shape[:2] for p in pyr] == [(37, 45), (19, 23), (10, 12), (5, 6)]
    np.testing.assert_allclose(collapse(pyr), x, atol=1e-5)


@pytest.mark.parametrize("c", [1, 3])
def test_laplacian_all_ones_mask_returns_a_and_all_zeros_returns_b(c):
    a, b = images(c=c)
    ones = torch.ones(a.shape[1:])
    torch.testing.assert_close(laplacian_blend(a, b, ones), a, atol=1e-5, rtol=0)
    torch.testing.assert_close(laplacian_blend(a, b, torch.zeros_like(ones)), b, atol=1e-5, rtol=0)


def test_laplacian_blend_far_from_the_seam_is_the_source_and_more_levels_widen_the_transition():
    """A step mask: far from the seam A on the left and B on the right; the seam becomes a monotone ramp
    whose width grows with the pyramid's depth (each band is joined over a zone of its own scale)."""
    a = torch.full((1, 64, 64), 0.8)
    b = torch.full((1, 64, 64), -0.8)
    mask = torch.zeros(64, 64)
    mask[:, :32] = 1
    jumps = []
    for levels in (1, 3, 5):
        row = laplacian_blend(a, b, mask, levels=levels)[0, 32]
        assert (row[1:] <= row[:-1] + 1e-5).all()  # monotone from A down to B: no ringing
        jumps.append(float(row[31] - row[32]))
        if levels <= 3:
            assert torch.allclose(row[:16], a[0, 0, :16], atol=1e-4)
            assert torch.allclose(row[-16:], b[0, 0, -16:], atol=1e-4)
    assert jumps[0] == pytest.approx(1.6) and jumps[0] > jumps[1] > jumps[2]  # 1 level: the hard paste


def test_laplacian_rejects_bad_levels_and_masks():
    a, b = images(16, 16)
    with pytest.raises(ConfigError, match="pyramid levels"):
        laplacian_blend(a, b, torch.ones(16, 16), levels=9)
    with pytest.raises(DataError, match="mask"):
        laplacian_blend(a, b, torch.ones(8, 16))
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        laplacian_blend(a, b, torch.full((16, 16), 255.0))


# ---- Poisson -----------------------------------------------------------------------------------------------
def u8(x):
    return torch.from_numpy(np.asarray(x, np.float32) / 127.5 - 1)


def test_poisson_reproduces_the_source_up_to_a_constant_offset_and_keeps_b_outside():
    """A = texture + 150 (texture 0 near the mask's border), B = 80 everywhere: inside, the Poisson
    solution with B on the border is the texture + 80, i.e. A shifted by B − A's border offset (Pérez
    et al. 2003 Eq. 4 with v = ∇A); outside, B is untouched."""
    H, W = 40, 50
    yy, xx = np.mgrid[:H, :W]
    tex = np.zeros((H, W))
    tex[12:28, 15:33] = (30 * np.sin(xx / 3.0) * np.cos(yy / 4.0))[12:28, 15:33]
    a = u8(np.round(tex + 150))[None].repeat(3, 1, 1)
    b = u8(np.full((H, W), 80.0))[None].repeat(3, 1, 1)
    mask = torch.zeros(H, W)
    mask[7:33, 9:40] = 1
    out = poisson_blend(a, b, mask)
    assert out.shape == a.shape
    torch.testing.assert_close(out[:, mask == 0], b[:, mask == 0])  # B outside, exactly
    diff = ((out - a) * 127.5)[:, 12:28, 15:33]  # in 8-bit units
    assert abs(float(diff.mean()) - (80 - 150)) < 2.0 and float(diff.std()) < 1.5
    # a grayscale pair stays grayscale; the same result
    out1 = poisson_blend(a[:1], b[:1], mask)
    assert out1.shape == (1, H, W)
    torch.testing.assert_close(out1, out[:1])


def test_poisson_constant_offset_source_returns_b_and_empty_mask_returns_b():
    _, b = images(30, 30)
    b8 = (b * 0.5).mul(127.5).round().div(127.5)  # on the 8-bit grid, away from the clamp
    a8 = b8 + 40 / 127.5
    mask = torch.zeros(30, 30)
    mask[5:25, 6:22] = 1
    torch.testing.assert_close(poisson_blend(a8, b8, mask), b8, atol=2.5 / 127.5, rtol=0)
    torch.testing.assert_close(poisson_blend(a8, b8, torch.zeros(30, 30)), b8)
    assert poisson_blend(a8, b8, mask, mode="mixed").shape == b8.shape


# ---- files -------------------------------------------------------------------------------------------------
def test_load_blend_inputs_common_channels_mask_range_and_sizes(files):
    a, b, mask, small = files
    img_a, img_b, m = load_blend_inputs(a, b, mask)
    assert img_a.shape == img_b.shape == (3, 16, 20) and img_a.dtype == torch.float32
    assert torch.equal(img_b[0], img_b[1])  # grey B repeated to RGB
    assert m.shape == (16, 20) and float(m.min()) == 0.0 and float(m.max()) == 1.0
    with pytest.raises(ConfigError, match="--resize"):
        load_blend_inputs(a, b, small)
    _, _, m2 = load_blend_inputs(a, b, small, resize="nearest")
    assert m2.shape == (16, 20)
    with pytest.raises(DataError, match="no such file"):
        load_blend_inputs(a, b.with_name("nope.png"), mask)


# ---- latent ------------------------------------------------------------------------------------------------
def test_latent_blend_with_an_encoder_run_is_a_per_pixel_path_between_the_reconstructions(runs):
    from imagegen.sampling import load_run

    model = load_run(runs / "vae")
    a, b = images(16, 16, c=1)
    mask = torch.zeros(16, 16)
    mask[:, :8] = 1
    res = latent_blend(model, a, b, mask, feather=0.0)
    assert res.image.shape == (1, 8, 8) and res.mask.shape == (8, 8)
    hard = res.mask
    assert torch.equal(hard, hard.round()) and hard[:, :4].all()  # 16 → 8 keeps the half mask hard
    torch.testing.assert_close(res.image, hard * res.recon_a + (1 - hard) * res.recon_b)  # a paste
    soft = latent_blend(model, a, b, mask, feather=1.5)
    assert not torch.equal(soft.mask, soft.mask.round()) and not torch.allclose(soft.image, res.image)
    # an all-ones mask gives A's reconstruction, all zeros B's
    torch.testing.assert_close(latent_blend(model, a, b, torch.ones(16, 16)).image, res.recon_a, atol=1e-5, rtol=0)
    torch.testing.assert_close(latent_blend(model, a, b, torch.zeros(16, 16)).image, res.recon_b, atol=1e-5, rtol=0)
    # a uniform grey mask at 0.5 is the decoded half-way latent, not a pixel cross-fade
    half = latent_blend(model, a, b, torch.full((16, 16), 0.5), decode_levels=3).image
    za, zb = model.encode(torch.stack([res.a, res.b]))
    torch.testing.assert_close(half, model.decode(((za + zb) / 2)[None])[0].clamp(-1, 1), atol=1e-5, rtol=0)
    with pytest.raises(ConfigError, match="alpha"):
        latent_blend(model, a, b, mask, alpha=1.5)
    with pytest.raises(ConfigError, match="--layers"):
        latent_blend(model, a, b, mask, layers=[0])


def test_to_model_input_crops_the_centre_square_and_converts_channels():
    x = torch.zeros(3, 10, 20)
    x[:, :, 5:15] = 1  # the centre 10×10 square is white
    y = to_model_input(x, 5, 1)
    assert y.shape == (1, 5, 5) and torch.allclose(y, torch.ones_like(y), atol=1e-5)
    assert to_model_input(torch.ones(10, 20) * 0.5, 5).shape == (5, 5)


# ---- CLI ---------------------------------------------------------------------------------------------------
def test_cli_laplacian_and_poisson_write_the_output_and_respect_force(files, tmp_path, capsys):
    a, b, mask, _ = files
    out = tmp_path / "out.png"
    code, stdout, err = run_cli(["blend", "--a", a, "--b", b, "--mask", mask, "--out", out], capsys)
    assert code == 0, err
    assert "laplacian" in stdout and Image.open(out).size == (20, 16)
    code, _, err = run_cli(["blend", "--a", a, "--b", b, "--mask", mask, "--method", "poisson", "--out", out], capsys)
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["blend", "--a", a, "--b", b, "--mask", mask, "--method", "poisson", "--out", out,
                            "--force"], capsys)
    assert code == 0, err


def test_cli_mask_of_another_size_is_one_line_exit_2_and_resize_fixes_it(files, tmp_path, capsys):
    a, b, _, small = files
    out = tmp_path / "o.png"
    code, _, err = run_cli(["blend", "--a", a, "--b", b, "--mask", small, "--out", out], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("Error: --mask") and "10x8" in err and "20x16" in err and "--resize" in err
    assert not out.exists()
    code, _, err = run_cli(["blend", "--a", a, "--b", b, "--mask", small, "--resize", "nearest", "--out", out], capsys)
    assert code == 0, err
    # a B of another size: the same one-line refusal naming both sizes and the fix
    out2 = tmp_path / "o2.png"
    code, _, err = run_cli(["blend", "--a", a, "--b", small, "--mask", small, "--out", out2], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("Error: --b") and "10x8" in err and "20x16" in err and "--resize" in err
    assert not out2.exists()
    code, _, err = run_cli(["blend", "--a", a, "--b", small, "--mask", small, "--resize", "bilinear", "--out", out2],
                           capsys)
    assert code == 0, err
    assert Image.open(out2).size == (20, 16)


def test_cli_missing_or_corrupt_file_is_one_line_exit_2(files, tmp_path, capsys):
    a, b, mask, _ = files
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    for args in (["--a", tmp_path / "none.png", "--b", b], ["--a", a, "--b", bad]):
        code, _, err = run_cli(["blend", *args, "--mask", mask, "--out", tmp_path / "o.png"], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("Error: --"), err


def test_cli_latent_needs_a_run_that_encodes_or_projects(files, runs, tmp_path, capsys):
    a, b, mask, _ = files
    base = ["blend", "--a", a, "--b", b, "--mask", mask, "--method", "latent", "--out", tmp_path / "o.png"]
    code, _, err = run_cli([*base, "--run", runs / "dcgan"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "dcgan can do neither" in err
    code, _, err = run_cli(base, capsys)
    assert code == 2 and "--run" in err
    code, _, err = run_cli(["blend", "--a", a, "--b", b, "--mask", mask, "--alpha", "0.5", "--out",
                            tmp_path / "o.png"], capsys)
    assert code == 2 and "--alpha is for --method latent" in err


def test_cli_latent_smoke_vae_and_stylegan2(files, runs, tmp_path, capsys):
    a, b, mask, _ = files
    base = ["blend", "--a", a, "--b", b, "--mask", mask, "--method", "latent"]
    code, stdout, err = run_cli([*base, "--run", runs / "vae", "--alpha", "0.7", "--out", tmp_path / "v.png"], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "v.png").size == (8, 8) and "vae encoder" in stdout
    code, stdout, err = run_cli([*base, "--run", runs / "sg2", "--steps", "3", "--features", "pixels", "--layers",
                                 "0-1", "--no-progress", "--out", tmp_path / "s.png"], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "s.png").size == (8, 8) and "w+ (projection, 3 steps" in stdout
