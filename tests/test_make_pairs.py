"""scripts/make_pairs.py: a colourisation pair set (grey A, colour B) that pix2pix reads, with its baseline."""
from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from imagegen.data.paired import load_paired

from _scripts import load_script

pairs = load_script("scripts/make_pairs.py")


def make_images(folder, n_colour: int, n_grey: int):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n_colour):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / f"c{i}.png")
    for i in range(n_grey):  # a grayscale photo stored as RGB, with small JPEG-like channel noise
        y = rng.integers(0, 250, (8, 8, 1), dtype=np.uint8)
        Image.fromarray(np.concatenate([y, y + 3, y + 5], -1)).save(folder / f"g{i}.png")
    return folder


def test_pairs_are_luma_and_colour_skip_grey_and_score_the_input(tmp_path, capsys):
    src = make_images(tmp_path / "src", 5, 2)
    out = tmp_path / "pairs"
    assert pairs.main(["--data", str(src), "--out", str(out)]) == 0
    record = json.loads((out / "pairs.json").read_text())
    assert record["pairs"] == 5 and record["skipped_grey"] == 2 and record["images"] == 7
    a_names = sorted(p.name for p in (out / "A").iterdir())
    assert a_names == sorted(p.name for p in (out / "B").iterdir()) and len(a_names) == 5
    # A is the BT.709 luma of B, repeated in three channels
    b = np.asarray(Image.open(out / "B" / a_names[0]))
    a = np.asarray(Image.open(out / "A" / a_names[0]))
    y = np.rint(b.astype(np.float64) @ np.array([0.2125, 0.7154, 0.0721])).clip(0, 255)
    assert a.shape == b.shape == (8, 8, 3) and (a[..., 0] == a[..., 2]).all()
    assert np.abs(a[..., 0].astype(int) - y.astype(int)).max() <= 1
    # the recorded baseline is the grey input scored against its target, and the set loads as pairs
    ds = load_paired(out)
    assert len(ds) == 5 and ds.channels == 3
    g = record["grey_input_as_output"]
    assert 5 < g["psnr"] < 40 and 0 < g["ssim"] < 1
    inp, target, _ = ds.get_batch(torch.arange(5))
    assert abs(pairs.paired_scores(inp, target)["psnr"].double().mean().item() - g["psnr"]) < 1e-3
    assert "5 pairs (2 grey images skipped)" in capsys.readouterr().out


def test_bad_input_exit_2(tmp_path, capsys):
    src = make_images(tmp_path / "src", 2, 0)
    out = tmp_path / "pairs"
    assert pairs.main(["--data", str(src), "--out", str(out)]) == 0
    assert pairs.main(["--data", str(src), "--out", str(out)]) == 2  # never overwrites without --force
    assert "--force" in capsys.readouterr().err
    assert pairs.main(["--data", str(src), "--out", str(out), "--force"]) == 0
    assert pairs.main(["--data", str(src), "--out", str(tmp_path / "one"), "--num", "1"]) == 0
    assert json.loads((tmp_path / "one" / "pairs.json").read_text())["chosen"] == "1 evenly spaced of 2"
    assert pairs.evenly_spaced(10, 3).tolist() == [0, 4, 9] and pairs.evenly_spaced(3, 5).tolist() == [0, 1, 2]
    grey = make_images(tmp_path / "grey", 0, 2)
    assert pairs.main(["--data", str(grey), "--out", str(tmp_path / "g")]) == 2
    assert "all 2 images are grey" in capsys.readouterr().err
    assert pairs.main(["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "m")]) == 2
