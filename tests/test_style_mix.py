"""Style mixing (StyleGAN §3.1, Fig. 3) and w-space interpolation (§4.2): library and CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_DCGAN, TINY_SG2, run_cli, tiny_stylegan2
from imagegen.errors import ConfigError
from imagegen.sampling import load_run
from imagegen.sampling.interpolate import latents_for_seeds, tween, tween_projections
from imagegen.sampling.project import load_projected_latent, noise_inputs, noise_loaded
from imagegen.sampling.style_mix import parse_layers, style_mix_grid

pytestmark = pytest.mark.usefixtures("one_thread")



@pytest.fixture(scope="module")
def model():
    return tiny_stylegan2()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-step stylegan2 run and a 1-step dcgan run on the bundled digits."""
    from imagegen.cli import main

    root = tmp_path_factory.mktemp("runs")
    main(["train", "stylegan2", *TINY_SG2, "--steps", "2", "--out", str(root / "sg2")])
    main(["train", "dcgan", *TINY_DCGAN, "--steps", "1", "--threads", "1", "--out", str(root / "dcgan")])
    return root


# ---- parse_layers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, expected", [("0-3", [0, 1, 2, 3]), ("4-7", [4, 5, 6, 7]), ("8-", [8, 9]),
                                            ("0,1,5", [0, 1, 5]), ("5", [5]), (" 0-1, 8- ", [0, 1, 8, 9]),
                                            ("2,2,1", [1, 2]), ("9-9", [9])])
def test_parse_layers(spec, expected):
    assert parse_layers(spec, num_ws=10) == expected


@pytest.mark.parametrize("spec, message", [("", "give a range like 0-3"), ("a-b", "give a range like 0-3"),
                                           ("0,,2", "give a range like 0-3"), ("-3", "give a range like 0-3"),
                                           ("1.5", "give a range like 0-3"), ("3-1", "reversed"),
                                           ("0-10", "use indices 0..9"), ("10-", "use indices 0..9"),
                                           ("99", "use indices 0..9")])
def test_parse_layers_errors(spec, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")) as e:
        parse_layers(spec, num_ws=10)
    assert "\n" not in str(e.value)


# ---- style_mix_grid ----------------------------------------------------------------------------------------
def test_grid_layout_and_sources(model):
    rows, cols = [1, 2, 3], [4, 5]
    img, nrow = style_mix_grid(model, rows, cols, [0, 1])
    assert nrow == 3 and img.shape == (4 * 3, 1, 8, 8) and img.dtype == torch.float32
    assert img.min() >= -1 and img.max() <= 1
    assert (img[0] == -1).all()  # the black corner
    grid = img.view(4, 3, 1, 8, 8)
    # the first row shows the column images, the first column the row images, as `sample --seed s` draws them
    ws = model.mapping(latents_for_seeds(model, rows + cols))  # [5, num_ws, w_dim]
    plain = model.synthesize(ws)
    torch.testing.assert_close(grid[0, 1:], plain[3:])
    torch.testing.assert_close(grid[1:, 0], plain[:3])
    torch.testing.assert_close(grid[0, 1], model.generate(latents_for_seeds(model, [4]), noise_mode="const")[0])


def test_partial_layers_mix_both_sources_and_all_layers_give_the_column_image(model):
    rows, cols = [1, 2], [3, 4]
    part = style_mix_grid(model, rows, cols, [0, 1])[0].view(3, 3, 1, 8, 8)
    full = style_mix_grid(model, rows, cols, list(range(model.num_ws)))[0].view(3, 3, 1, 8, 8)
    for i in range(1, 3):
        for j in range(1, 3):
            torch.testing.assert_close(full[i, j], full[0, j])  # every layer from the column: the column image
            assert (part[i, j] - part[0, j]).abs().max() > 1e-3  # differs from the column image ...
            assert (part[i, j] - part[i, 0]).abs().max() > 1e-3  # ... and from the row image
    # the mixed cell is the synthesis of the row's ws with the column's coarse ws
    ws = model.mapping(latents_for_seeds(model, [2, 4]))
    ws_mix = torch.cat([ws[1:, :2], ws[:1, 2:]], 1)
    torch.testing.assert_close(part[2, 2], model.synthesize(ws_mix)[0])


def test_grid_truncation_and_errors(model):
    # psi = 0: every w is w_avg, so every cell equals every other
    img, _ = style_mix_grid(model, [1], [2], [0], truncation_psi=0.0)
    torch.testing.assert_close(img[1:], img[1:2].expand(3, -1, -1, -1))
    for kwargs, message in (({"row_seeds": []}, "at least one row seed"), ({"layers": []}, "no style layers"),
                            ({"layers": [4]}, r"use indices 0\.\.3"), ({"labels": 3}, "unconditional")):
        args = {"row_seeds": [1], "col_seeds": [2], "layers": [0], **kwargs}
        with pytest.raises(ConfigError, match=message):
            style_mix_grid(model, **args)


def test_tween_in_w_is_linear_in_w(model):
    keys = latents_for_seeds(model, [1, 2])
    frames = tween(model, keys, steps=3, space="w")
    ws = model.mapping(keys)
    assert frames.shape == (3, 1, 8, 8)
    torch.testing.assert_close(frames[1], model.synthesize(ws.mean(0, keepdim=True))[0], rtol=0, atol=1e-4)
    torch.testing.assert_close(frames[0], model.synthesize(ws[:1])[0])
    with pytest.raises(ConfigError, match="w is not Gaussian"):
        tween(model, keys, steps=3, space="w", method="slerp")


# ---- CLI -------------------------------------------------------------------------------------------------
def test_cli_style_mix_writes_the_grid(runs, tmp_path, capsys):
    out = tmp_path / "mix.png"
    code, stdout, err = run_cli(["style-mix", runs / "sg2", "--rows", "1,2,3", "--cols", "4,5", "--layers", "0-1",
                                 "--truncation-psi", "0.7", "--out", out], capsys)
    assert code == 0, err
    assert "4 × 3 style-mixing grid" in stdout
    with Image.open(out) as im:  # 3 cells across, 4 down, 8 px each with 2 px padding
        assert im.size == (3 * 10 + 2, 4 * 10 + 2)
    code, _, err = run_cli(["style-mix", runs / "sg2", "--rows", "1", "--cols", "2", "--layers", "2-",
                            "--out", out], capsys)
    assert code == 2 and "already exists; pass --force" in err
    code, _, err = run_cli(["style-mix", runs / "sg2", "--rows", "1", "--cols", "2", "--layers", "2-",
                            "--noise-mode", "random", "--out", out, "--force"], capsys)
    assert code == 0, err


@pytest.mark.parametrize("run, extra, message", [
    ("dcgan", [], "dcgan has no mapping network; style-mix needs a style-based model"),
    ("sg2", ["--layers", "99"], "use indices 0..3"),
    ("sg2", ["--layers", "0-x"], "give a range like 0-3"),
    ("sg2", ["--rows", ""], "--rows '': give comma-separated seeds or .npz files of `imagegen project`"),
    ("sg2", ["--cols", "1,b"], "--cols '1,b': give comma-separated seeds or .npz files"),
    ("sg2", ["--cols", "1,gone.npz"], "gone.npz does not exist; give the .npz written by `imagegen project`"),
    ("sg2", ["--class", "3"], "stylegan2 is unconditional; drop --class"),
    ("sg2", ["--truncation-psi", "2"], "use a value in [0, 1]"),
])
def test_cli_style_mix_bad_input_exits_2_with_one_line(runs, tmp_path, capsys, run, extra, message):
    args = {"--rows": "1,2", "--cols": "3", "--layers": "0-1"}
    for flag, value in zip(extra[::2], extra[1::2]):
        args[flag] = value
    code, _, err = run_cli(["style-mix", runs / run, *[a for kv in args.items() for a in kv],
                            "--out", tmp_path / "bad.png"], capsys)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "bad.png").exists()


def test_cli_interpolate_in_w(runs, tmp_path, capsys):
    out = tmp_path / "w.png"
    code, stdout, err = run_cli(["interpolate", runs / "sg2", "--seeds", "1,2", "--steps", "4", "--space", "w",
                                 "--scale", "1", "--out", out], capsys)
    assert code == 0, err
    assert "(lerp in w)" in stdout
    with Image.open(out) as im:
        assert im.size == (4 * 10 + 2, 10 + 2)
    code, _, err = run_cli(["interpolate", runs / "dcgan", "--space", "w", "--out", tmp_path / "d.png"], capsys)
    assert code == 2 and "--space w needs a style-based model" in err and len(err.strip().splitlines()) == 1, err


# ---- projected real images (imagegen project) as rows, columns and keyframes ------------------------------
@pytest.fixture(scope="module")
def projections(runs, tmp_path_factory):
    """Two w+ projections (5 steps, pixel distance) of images the tiny run draws, made by the CLI (seeded
    apart: their initial noise maps differ, and 5 steps at the run's ~0 noise strengths hardly change them)."""
    from imagegen.cli import main

    root = tmp_path_factory.mktemp("proj")
    model = load_run(runs / "sg2")
    paths = []
    for seed in (5, 6):
        z = model.sample_latents(1, torch.Generator().manual_seed(seed))
        arr = ((model.synthesize(model.mapping(z))[0, 0] + 1) * 127.5).round().byte().numpy()  # [8, 8]
        Image.fromarray(arr).save(root / f"t{seed}.png")
        main(["project", str(runs / "sg2"), "--image", str(root / f"t{seed}.png"), "--out", str(root / f"p{seed}.npz"),
              "--steps", "5", "--space", "w+", "--features", "pixels", "--seed", str(seed), "--no-progress"])
        paths.append(root / f"p{seed}.npz")
    return paths


def test_projections_mix_and_tween_with_their_own_noise(runs, projections):
    model = load_run(runs / "sg2")
    for m in noise_inputs(model).values():  # make the noise matter (a 2-step run's strengths are ~0)
        m.strength.data.fill_(0.5)
    before = {k: m.noise_const.clone() for k, m in noise_inputs(model).items()}
    a, b = (load_projected_latent(model, p) for p in projections)

    def drawn(ws, noise):
        with noise_loaded(model, noise):
            return model.synthesize(ws, noise_mode="const")[0]

    img, nrow = style_mix_grid(model, [a, 1], [b, 2], [0, 1])
    grid = img.view(3, 3, *img.shape[1:])
    torch.testing.assert_close(grid[0, 1], drawn(b.ws, b.noise))  # a projected column image is its projection
    torch.testing.assert_close(grid[1, 0], drawn(a.ws, a.noise))  # and so is a projected row image
    mixed = a.ws.clone()
    mixed[:, :2] = b.ws[:, :2]
    torch.testing.assert_close(grid[1, 1], drawn(mixed, a.noise))  # b's coarse styles, a's other styles and noise
    assert not torch.allclose(grid[1, 1], drawn(mixed, b.noise))
    seeds_only, _ = style_mix_grid(model, [1], [2], [0, 1])  # seeds are drawn as without projections
    seeds_only = seeds_only.view(2, 2, *img.shape[1:])
    for (i, j), (k, m) in {(0, 2): (0, 1), (2, 0): (1, 0), (2, 2): (1, 1)}.items():
        torch.testing.assert_close(grid[i, j], seeds_only[k, m])
    torch.testing.assert_close(grid[2, 1], drawn(torch.cat([b.ws[:, :2], model.mapping(
        latents_for_seeds(model, [1]))[:, 2:]], 1), None))  # a seed row with a projection's column: const noise

    frames = tween_projections(model, [a, b, a], steps=3)
    assert frames.shape == (5, 1, 8, 8)
    torch.testing.assert_close(frames[0], drawn(a.ws, a.noise))
    torch.testing.assert_close(frames[2], drawn(b.ws, b.noise))
    torch.testing.assert_close(frames[4], frames[0])
    half = {k: (a.noise[k] + b.noise[k]) / 2 for k in a.noise}
    torch.testing.assert_close(frames[1], drawn((a.ws + b.ws) / 2, half))
    assert all(torch.equal(before[k], m.noise_const) for k, m in noise_inputs(model).items())  # restored


def test_cli_style_mix_and_interpolate_take_projections(runs, projections, tmp_path, capsys):
    a, b = projections
    out = tmp_path / "mix.png"
    code, stdout, err = run_cli(["style-mix", runs / "sg2", "--rows", f"1,{a}", "--cols", f"{b},2", "--layers", "0-1",
                                 "--out", out], capsys)
    assert code == 0, err
    assert "3 × 3 style-mixing grid" in stdout
    strip = tmp_path / "tween.png"
    code, stdout, err = run_cli(["interpolate", runs / "sg2", "--projections", f"{a},{b}", "--steps", "3",
                                 "--scale", "1", "--out", strip], capsys)
    assert code == 0, err
    assert "wrote 3 frames (lerp in w)" in stdout
    cells = np.asarray(Image.open(strip).convert("L"))
    with np.load(a) as da, np.load(b) as db:  # the end frames are the projections `imagegen project` saved
        assert np.abs(cells[2:10, 2:10].astype(int) - da["projection"][..., 0]).max() <= 1
        assert np.abs(cells[2:10, 22:30].astype(int) - db["projection"][..., 0]).max() <= 1


def test_cli_projection_bad_input_exits_2_with_one_line(runs, projections, tmp_path, capsys):
    a, b = projections
    alien = tmp_path / "alien.npz"  # a projection of another model: 6 style layers of 16
    np.savez(alien, w=np.zeros((1, 6, 16), np.float32), meta=json.dumps({"format": "imagegen-projection"}))
    with np.load(a) as d:  # a's w with other noise maps, and a's w from another kind of model
        w, meta = d["w"], json.loads(str(d["meta"]))
    np.savez(tmp_path / "noise.npz", w=w, meta=json.dumps(meta), **{"noise/other": np.zeros((1, 1, 4, 4), np.float32)})
    np.savez(tmp_path / "kind.npz", w=w, meta=json.dumps({**meta, "model": "stylegan"}))
    cases = [
        (["interpolate", runs / "sg2", "--projections", f"{a}"], "give at least two .npz files"),
        (["interpolate", runs / "sg2", "--projections", f"{a},{b}", "--space", "z"], "drop --space z"),
        (["interpolate", runs / "sg2", "--projections", f"{a},{b}", "--seeds", "1,2"], "give the keyframes one way"),
        (["interpolate", runs / "sg2", "--projections", f"{a},{b}", "--class", "1"], "drop --class"),
        (["interpolate", runs / "dcgan", "--projections", f"{a},{b}"], "--projections needs a style-based run"),
        (["interpolate", runs / "sg2", "--projections", f"{a},{alien}"], "projected with another model"),
        (["style-mix", runs / "sg2", "--rows", f"1,{alien}", "--cols", "2", "--layers", "0"],
         "its w is [1, 6, 16], this stylegan2 run's is [1, 4, 8]"),
        (["style-mix", runs / "sg2", "--rows", f"{tmp_path / 'noise.npz'}", "--cols", "2", "--layers", "0"],
         "its noise maps do not fit this stylegan2 run's noise inputs"),
        (["style-mix", runs / "sg2", "--rows", f"{tmp_path / 'kind.npz'}", "--cols", "2", "--layers", "0"],
         "was projected with a stylegan run, not this stylegan2 one"),
        (["style-mix", runs / "sg2", "--rows", f"{a}", "--cols", f"{b}", "--layers", "0", "--class", "1"],
         "stylegan2 is unconditional; drop --class"),
        (["style-mix", runs / "sg2", "--rows", "1,2,", "--cols", "1,²", "--layers", "0"],
         "--cols '1,²': give comma-separated seeds or .npz files"),
    ]
    for args, message in cases:
        out = tmp_path / "bad.png"
        code, _, err = run_cli([*args, "--out", out], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (args, err)
        assert not out.exists()
