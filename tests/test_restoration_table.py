"""scripts/restoration_table.py: runs beside the classic baselines on held-out images, one row set per
degradation level, with grids written into a folder that does not exist yet."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from _scripts import load_script

from imagegen import checkpoint as ckpt
from imagegen.models.dncnn import DnCNN, DnCNNConfig
from imagegen.models.srnet import SRResNet, SRResNetConfig

table = load_script("scripts/restoration_table.py")
pytestmark = pytest.mark.usefixtures("one_thread")


def save_run(directory, model, name: str) -> str:
    ckpt.save_checkpoint(directory, "step-0000001", model, ckpt.checkpoint_meta(name, model.config, step=1), {})
    return str(directory)


def test_table_rows_levels_and_grids(tmp_path, capsys):
    torch.manual_seed(0)
    dn = save_run(tmp_path / "dn", DnCNN(DnCNNConfig(resolution=8, channels=1, depth=3, width=4, sigma=0.0,
                                                     sigma_max=55.0)), "dncnn")
    sr = save_run(tmp_path / "sr", SRResNet(SRResNetConfig(resolution=8, channels=1, scale=2, width=4,
                                                           num_blocks=1)), "srresnet")
    out, grids = tmp_path / "table.json", tmp_path / "new" / "grids"
    assert table.main(["--runs", f"{dn},{sr}", "--data", "digits", "--num", "12", "--bm3d-num", "0",
                       "--sigmas", "25,50,80", "--out-json", str(out), "--grid-dir", str(grids),
                       "--grid-num", "2"]) == 0
    results = json.loads(out.read_text())
    # the blind denoiser is scored at each level inside its range (80 is outside 0-55), SR at its own
    assert [r["model"] for r in results] == ["dncnn", "dncnn", "srresnet"]
    assert "sigma 25 " in results[0]["degradation"] and "sigma 50 " in results[1]["degradation"]
    assert results[2]["degradation"].startswith("x2 bicubic")
    methods = [[row["method"] for row in r["rows"]] for r in results]
    assert methods[0] == ["dncnn (this run)", "input", "nl-means", "wavelet", "tv"]  # bm3d skipped (--bm3d-num 0)
    assert methods[2] == ["srresnet (this run)", "bicubic"]
    for r in results:
        assert all(row["num_images"] == 12 and np.isfinite(row["psnr"]) and 0 < row["ssim"] <= 1 for row in r["rows"])
        grid = np.asarray(Image.open(r["grid"]["path"]))
        assert grid.shape[1] == 2 + 4 * (8 + 2) and r["grid"]["columns"][0] == "degraded"  # 4 columns
    # the noisier level is harder for the untrained model's input row
    assert results[0]["rows"][1]["psnr"] > results[1]["rows"][1]["psnr"]
    assert "| dncnn (this run) | 12 |" in capsys.readouterr().out
