"""scripts/grid_timeline.py: training-time sample grids of several runs side by side."""
from __future__ import annotations

import json

import numpy as np
import pytest
from _scripts import load_script
from PIL import Image

timeline = load_script("scripts/grid_timeline.py")


def _run(root, name, model="dcgan", steps=(10, 20, 30, 40), res=4, model_config=None):
    """A run directory with 3×3 sample grids whose tile (r, c) at step s is filled with s + 10r + c."""
    run = root / name
    (run / "samples").mkdir(parents=True)
    cfg = {"model": model, "model_config": {"resolution": res, **(model_config or {})},
           "train_config": {"batch_size": 100}}
    (run / "config.json").write_text(json.dumps(cfg))
    for s in steps:
        grid = np.zeros((2 + 3 * (res + 2), 2 + 3 * (res + 2), 3), np.uint8)
        for r in range(3):
            for c in range(3):
                grid[2 + r * (res + 2):2 + r * (res + 2) + res, 2 + c * (res + 2):2 + c * (res + 2) + res] = s + 10 * r + c
        Image.fromarray(grid).save(run / "samples" / f"step-{s:07d}.png")
    return run


def test_columns_spread_evenly_and_keep_first_and_last(tmp_path):
    """The columns are imagegen.report.sample_grids' choice (the run report's grids)."""
    from imagegen.report import sample_grids

    steps = lambda run, n: [s for s, _ in sample_grids(run, n)]  # noqa: E731
    assert steps(_run(tmp_path, "a", steps=(1, 2, 3, 4, 5, 6, 7)), 3) == [1, 4, 7]
    assert steps(_run(tmp_path, "b", steps=(1, 2)), 5) == [1, 2]
    assert steps(_run(tmp_path, "c", steps=(1, 2, 3)), 1) == [3]
    assert steps(tmp_path / "c", None) == [1, 2, 3]


def test_crop_tiles_keeps_the_top_left_samples(tmp_path):
    run = _run(tmp_path, "a")
    grid = np.asarray(Image.open(run / "samples" / "step-0000020.png"))
    crop = timeline.crop_tiles(grid, 4, 2, 1)
    assert crop.shape[:2] == (2 + 2 * 6, 2 + 6)
    assert crop[2, 2, 0] == 20 and crop[2 + 6, 2, 0] == 30  # tiles (0, 0) and (1, 0)


def test_progan_headers_name_the_resolution_and_fade(tmp_path):
    cfg = {"model": "progan", "train_config": {"batch_size": 100},
           "model_config": {"resolution": 32, "start_resolution": 4, "fade_kimg": 10, "stable_kimg": 10}}
    assert timeline.header(cfg, 50) == "50: 5k img 4px"
    assert timeline.header(cfg, 150) == "150: 15k img 8px fade 0.5"


def test_table_of_two_runs_and_bad_input(tmp_path, capsys):
    a, b = _run(tmp_path, "a"), _run(tmp_path, "b", steps=(10, 40))
    out = tmp_path / "t.png"
    assert timeline.main([f"{a}:A", f"{b}:B", "--columns", "3", "--tiles", "2,2", "--cell", "20", "--out", str(out)]) == 0
    assert "columns at steps 10, 30, 40" in capsys.readouterr().out
    assert Image.open(out).size == (3 * 24 + 4, 18 + 2 * 24 + 4)
    (tmp_path / "empty").mkdir()
    assert timeline.main([str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert timeline.main([str(a), "--steps", "99", "--out", str(out)]) == 2
    assert timeline.main([str(a), "--steps", "ten", "--out", str(out)]) == 2
    assert timeline.main([str(a), "--tiles", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no sample grids" in err and "none of the runs has a sample grid at steps 99" in err
    assert "use comma-separated integers" in err and "use R,C" in err


def test_last_column_takes_each_runs_own_last_grid(tmp_path, capsys):
    a, b = _run(tmp_path, "a", steps=(10, 40)), _run(tmp_path, "b", steps=(10, 30))
    out = tmp_path / "t.png"
    assert timeline.main([str(a), str(b), "--steps", "10,last", "--tiles", "1,1", "--cell", "8", "--out", str(out)]) == 0
    assert "columns at steps 10, last" in capsys.readouterr().out
    pic = np.asarray(Image.open(out))
    # 8×8 crops (one 4×4 tile and its padding) in cells of 8, 4 px apart, under an 18 px header: the last
    # column holds step 40 of run a (first row) and step 30 of run b (second row)
    assert pic[18 + 4 + 3, 4 + 12 + 3, 0] == 40 and pic[18 + 16 + 3, 4 + 12 + 3, 0] == 30
    assert pic[18 + 4 + 3, 4 + 3, 0] == 10
