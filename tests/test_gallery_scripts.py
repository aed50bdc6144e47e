"""scripts/style_gallery.py and scripts/blend_gallery.py: the pictures and timing records of the style
transfer and blending docs, on tiny inputs (narrow random encoders, 8×8 digits, a 1-step VAE)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from _scripts import load_script
from imagegen.sampling.images import mosaic

gallery = load_script("scripts/style_gallery.py")
blends = load_script("scripts/blend_gallery.py")
pytestmark = pytest.mark.usefixtures("one_thread")


def _photo(path, h, w, seed):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (max(2, h // 4), max(2, w // 4), 3), dtype=np.uint8)
    Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR).save(path)
    return path


def test_mosaic_letterboxes_cells_of_any_size():
    tall, wide = np.full((40, 10, 3), 255, np.uint8), np.zeros((5, 30, 1), np.uint8)
    im = mosaic([[tall, None], [wide, tall]], cell=20, padding=2, header=["a", "b"])
    assert im.size == (2 * 22 + 2, 18 + 2 * 22 + 2) and im.mode == "RGB"
    arr = np.asarray(im)
    assert arr[18 + 2 + 10, 2 + 10].tolist() == [255, 255, 255]  # the tall white image, centred
    assert arr[18 + 24 + 10, 2 + 10].tolist() == [0, 0, 0]  # the wide black one, fitted to the width
    # a title longer than its cell wraps onto more lines instead of being cut: the header grows by 12 px a line
    long = mosaic([[tall, tall]], cell=60, padding=2, header=["self-trained, wide decoder", "b"], wrap_header=True)
    assert long.size[1] == 6 + 12 * 3 + 62 + 2
    ink = np.asarray(long.convert("L"))[: 6 + 12 * 3, :62] < 128
    assert ink[3 + 24:3 + 36].any()  # the third line ("decoder") is drawn
    assert mosaic([[tall, tall]], cell=60, padding=2, header=["self-trained, wide decoder", "b"]).size[1] == 18 + 62 + 2


def test_style_gallery_gatys_two_encoders(tmp_path, capsys):
    c = _photo(tmp_path / "c.png", 24, 32, 0)
    s1, s2 = _photo(tmp_path / "s1.png", 32, 32, 1), _photo(tmp_path / "s2.png", 20, 36, 2)
    out = tmp_path / "out"
    assert gallery.main(["gatys", "--content", str(c), "--style", str(s1), str(s2), "--encoder", "random:4,8,8,8,8",
                         "--encoder", "b=random:8,8,8,8,8", "--size", "32", "--steps", "2", "--cell", "32",
                         "--out-dir", str(out)]) == 0
    rec = json.loads((out / "timings.json").read_text())
    assert set(rec["results"]) == {"random-4-8-8-8-8", "b"} and len(rec["results"]["b"]) == 2
    assert rec["encoders"]["b"]["widths"] == [8] * 5
    assert (out / "b" / "c--s2.png").is_file() and (out / "gallery-b.jpg").is_file()
    # two (content, style) rows under a header whose longest title, "random-4-8-8-8-8" in 5 characters a
    # line, wraps onto the most lines, 3 of 12 pixels
    assert Image.open(out / "compare.jpg").size[1] == 6 + 12 * 3 + 2 * 36 + 4
    before = (out / "timings.json").read_text()
    assert gallery.main(["layout", "--content", str(c), "--style", str(s1), str(s2), "--cell", "16",
                         "--out-dir", str(out)]) == 0  # redrawn from the saved images
    assert Image.open(out / "compare.jpg").size[1] == 6 + 12 * 3 + 2 * 20 + 4
    assert (out / "timings.json").read_text() == before
    assert gallery.main(["gatys", "--content", str(tmp_path / "nope.png"), "--style", str(s1),
                         "--out-dir", str(out)]) == 2
    assert "nope.png" in capsys.readouterr().err


def test_blend_gallery_digits_with_a_vae(tmp_path, capsys):
    from imagegen.cli import main

    main(["train", "vae", "--data", "digits", "--resolution", "8", "--z-dim", "4", "--width", "8", "--hidden", "16",
          "--steps", "1", "--batch-size", "8", "--no-progress", "--out", str(tmp_path / "vae")])
    out, rec = tmp_path / "b" / "digits.png", tmp_path / "b.json"
    assert blends.main(["--digits", "digits:test:0,1,2,3", "--run", str(tmp_path / "vae"), "--cell", "16",
                        "--out", str(out), "--json", str(rec)]) == 0
    record = json.loads(rec.read_text())
    assert len(record["rows"]) == 2 and set(record["rows"][0]["seconds"]) == {"laplacian", "poisson", "latent"}
    assert "vae" in record["rows"][0]["latent"]
    assert Image.open(out).size == (8 * 20 + 4, 18 + 2 * 20 + 4)  # A, B, mask, 3 methods, 2 reconstructions
    mask = np.asarray(Image.open(tmp_path / "b" / "blend-inputs" / "mask-top-8x8.png"))
    assert mask[:4].min() == 255 and mask[4:].max() == 0
    assert blends.main(["--digits", "digits:test:0", "--out", str(out)]) == 2  # an unpaired index
    assert blends.main(["--digits", "digits:test:0,1", "--methods", "latent", "--out", str(out)]) == 2  # no run
    err = capsys.readouterr().err
    assert "in pairs" in err and "needs --run" in err


def test_style_gallery_adain_and_controls(tmp_path):
    from imagegen.cli import main

    for name, seed in (("content", 0), ("style", 1)):
        (tmp_path / name).mkdir()
        for i in range(2):
            _photo(tmp_path / name / f"{i}.png", 16, 16, seed + 10 * i)
    run = tmp_path / "run"
    try:
        main(["train", "adain", "--data-content", str(tmp_path / "content"), "--data-style", str(tmp_path / "style"),
              "--resolution", "16", "--encoder", "random", "--encoder-widths", "4,8,8,8,8", "--steps", "1",
              "--batch-size", "2", "--out", str(run), "--no-progress"])
    except SystemExit as e:
        assert not e.code
    c, s, t = (_photo(tmp_path / f"{n}.png", 24, 32, k) for k, n in enumerate("cst"))
    out = tmp_path / "out"
    assert gallery.main(["adain", "--run", str(run), "--content", str(c), "--style", str(s), str(t), "--size", "24",
                         "--cell", "16", "--out-dir", str(out)]) == 0
    assert len(json.loads((out / "timings.json").read_text())["results"]["adain"]) == 2
    assert gallery.main(["controls", "--run", str(run), "--content", str(c), "--style", str(s), str(t),
                         "--size", "24", "--cell", "16", "--out-dir", str(out)]) == 0
    rec = json.loads((out / "controls.json").read_text())
    assert len(rec["seconds"]) == 5 + 5 + 3 + 1 and Image.open(out / "controls.jpg").size == (5 * 20 + 4, 4 * 20 + 4)
    assert gallery.main(["controls", "--run", str(run), "--content", str(c), "--style", str(s),
                         "--out-dir", str(out)]) == 2  # needs two styles
    # two runs side by side: one column each in compare.jpg (rows: the 2 pairs; columns content, style, a, b)
    two = ["adain", "--run", f"a={run}", "--run", f"b={run}", "--content", str(c), "--style", str(s), str(t),
           "--size", "24", "--cell", "16"]
    assert gallery.main([*two, "--out-dir", str(tmp_path / "two")]) == 0
    rec = json.loads((tmp_path / "two" / "timings.json").read_text())
    assert set(rec["results"]) == {"a", "b"} and rec["runs"]["a"]["run"] == str(run)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "two" / "a" / "c--s.png")),
                          np.asarray(Image.open(tmp_path / "two" / "b" / "c--s.png")))  # the same run: same pixels
    assert Image.open(tmp_path / "two" / "compare.jpg").size[1] > 2 * 16
    assert gallery.main(["adain", "--run", f"a={run}", "--run", f"a={run}", "--content", str(c), "--style", str(s),
                         "--out-dir", str(tmp_path / "dup")]) == 2  # labels must differ
    # α = 0: each output scored against its photo (the decoder's inversion), per photo and the mean
    assert gallery.main(["adain", "--run", str(run), "--alpha", "0", "--content", str(c), str(s), "--style", str(t),
                         "--size", "24", "--out-dir", str(tmp_path / "a0")]) == 0
    recon = json.loads((tmp_path / "a0" / "timings.json").read_text())["reconstruction"]["adain"]
    assert set(recon) == {"c", "s", "mean"} and 0 < recon["mean"]["psnr"] < 60 and -1 <= recon["c"]["ssim"] <= 1
    assert recon["mean"]["psnr"] == pytest.approx((recon["c"]["psnr"] + recon["s"]["psnr"]) / 2)
    assert "reconstruction" not in json.loads((out / "timings.json").read_text())  # only at α = 0


def test_style_gallery_score_judges_every_output_with_every_encoder(tmp_path, capsys):
    c = _photo(tmp_path / "c.png", 32, 32, 0)
    s1 = _photo(tmp_path / "s1.png", 32, 32, 1)
    out = tmp_path / "out"
    args = ["--content", str(c), "--style", str(s1), "--encoder", "a=random:4,8,8,8,8", "--encoder",
            "b=random:8,8,8,8,8", "--size", "32", "--out-dir", str(out)]
    assert gallery.main(["gatys", *args, "--steps", "5"]) == 0
    assert gallery.main(["score", *args]) == 0
    summary = json.loads((out / "score.json").read_text())["summary"]
    assert set(summary) == {"a", "b"} and set(summary["a"]) == {"a", "b"}
    # each optimisation lowers its own encoder's style loss below the unstylised photo's
    assert summary["a"]["a"]["style_loss_vs_photo"] < 1 and summary["b"]["b"]["style_loss_vs_photo"] < 1
    assert "| made with" in capsys.readouterr().out


def test_style_gallery_invert_scores_every_encoder_and_layer(tmp_path):
    """``invert``: one column per encoder × layer; relu1_1 (one convolution of a random encoder) is
    inverted from noise far better than the noise itself matches the photo."""
    c1, c2 = _photo(tmp_path / "c1.png", 16, 16, 0), _photo(tmp_path / "c2.png", 16, 24, 1)
    out = tmp_path / "inv"
    assert gallery.main(["invert", "--content", str(c1), str(c2), "--style", str(c1), "--encoder", "r=random:8,8,8,8,8",
                         "--layers", "relu1_1,relu2_1", "--size", "16", "--steps", "20", "--cell", "16",
                         "--out-dir", str(out)]) == 0
    rec = json.loads((out / "invert.json").read_text())
    assert list(rec["scores"]) == ["r relu1_1", "r relu2_1"] and rec["encoders"]["r"]["widths"] == [8] * 5
    assert set(rec["scores"]["r relu1_1"]) == {"c1", "c2", "mean"}
    assert rec["scores"]["r relu1_1"]["mean"]["psnr"] > 20  # uniform noise in [-1, 1] scores about 5 dB
    assert Image.open(out / "invert.jpg").size[0] == 3 * 20 + 4  # photo + 2 columns, padding 4
