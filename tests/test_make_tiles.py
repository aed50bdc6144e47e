"""scripts/make_tiles.py: seeded square tiles at a chosen scale, readable as a training folder."""
from __future__ import annotations

import json
import zipfile

import numpy as np
from PIL import Image

from _scripts import load_script

tiles = load_script("scripts/make_tiles.py")


def test_tiles_count_size_scale_seed_and_refusals(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(src / "wide.png")
    Image.fromarray(rng.integers(0, 255, (30, 30), dtype=np.uint8)).save(src / "grey.png")  # L mode → RGB
    Image.fromarray(rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)).save(src / "small.png")  # < tile: skipped
    zpath = tmp_path / "more.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.write(src / "wide.png", "x/wide.png")  # same base name as in the folder: kept apart
    args = ["--src", str(src), "--src", str(zpath), "--tile", "16", "--per-image", "3", "--seed", "1"]
    assert tiles.main(args + ["--out", str(tmp_path / "a")]) == 0
    out = sorted(p.name for p in (tmp_path / "a").glob("*.png"))
    assert len(out) == 9 and "wide-0.png" in out and "wide_-0.png" in out and not any(n.startswith("small") for n in out)
    for p in (tmp_path / "a").glob("*.png"):
        with Image.open(p) as im:
            assert im.size == (16, 16) and im.mode == "RGB"
    record = json.loads((tmp_path / "a" / "tiles.json").read_text())
    assert record["tiles"] == 9 and record["skipped_images"] == 1
    assert tiles.main(args + ["--out", str(tmp_path / "b")]) == 0  # same seed, same tiles
    for name in out:
        assert np.array_equal(np.asarray(Image.open(tmp_path / "a" / name)), np.asarray(Image.open(tmp_path / "b" / name)))
    # --short-side rescales first: a 40x60 image at short side 20 is 20x30, so a 20-pixel tile is all of its height
    img = Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    cut = tiles.tiles_of(img, 20, 20, 2, np.random.default_rng(0))
    assert [t.size for t in cut] == [(20, 20)] * 2
    assert tiles.tiles_of(img, 10, 20, 2, np.random.default_rng(0)) == []
    capsys.readouterr()
    assert tiles.main(args + ["--out", str(tmp_path / "a")]) == 2  # holds files
    assert "--force" in capsys.readouterr().err
    assert tiles.main(["--src", str(tmp_path / "empty_dir_missing"), "--out", str(tmp_path / "c")]) == 2
    assert tiles.main(["--src", str(src), "--tile", "0", "--out", str(tmp_path / "d")]) == 2
