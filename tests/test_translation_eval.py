"""scripts/translation_eval.py: held-out scores of a translator beside the identity and real-image rows."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from _scripts import load_script

from imagegen import checkpoint as ckpt
from imagegen.models.cyclegan import CycleGAN, CycleGANConfig

from _metrics_fixtures import digits_splits, install_tiny_classifier

evaluation = load_script("scripts/translation_eval.py")
pytestmark = pytest.mark.usefixtures("one_thread")


def write_domain(folder, n: int, level: int, seed: int) -> None:
    """``n`` 12×12 RGB images around grey ``level`` (domains differ in brightness)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = np.clip(level + rng.integers(-30, 30, (12, 12, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"{seed}_{i}.png")


def test_scores_rows_grids_and_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMAGEGEN_CACHE", str(tmp_path / "cache"))
    for part, n in (("train", 30), ("test", 6)):
        write_domain(tmp_path / part / "dark", n, 60, seed=1 if part == "train" else 2)
        write_domain(tmp_path / part / "light", n, 190, seed=3 if part == "train" else 4)
    torch.manual_seed(0)
    model = CycleGAN(CycleGANConfig(resolution=16, channels=3, g_width=4, g_blocks=1, d_width=4, d_layers=2))
    run = tmp_path / "run"
    ckpt.save_checkpoint(run, "step-0000003", model, ckpt.checkpoint_meta("cyclegan", model.config, step=3), {})
    out = tmp_path / "scores.json"
    args = ["--runs", str(run), "--held-out", str(tmp_path / "test"), "--classifier-data", str(tmp_path / "train"),
            "--domains", "dark,light", "--resolution", "12", "--classifier-size", "12", "--classifier-steps", "30",
            "--out-json", str(out), "--grid-dir", str(tmp_path / "grids"), "--grid-num", "3"]
    assert evaluation.main(args) == 0
    result = json.loads(out.read_text())
    rows = {(r["direction"], r["method"]): r for r in result["rows"]}
    assert len(rows) == 6 and result["protocol"]["num_held_out"] == {"dark": 6, "light": 6}
    identity, floor = rows[("dark→light", "identity (untranslated)")], rows[("dark→light", "real training images (floor)")]
    # the classifier separates the domains: real target images are the target, untranslated sources are not
    assert floor["rate"] > 0.8 and identity["rate"] < 0.2
    assert floor["fid"] < identity["fid"] and floor["kid"] < identity["kid"]
    translated = rows[("light→dark", str(run))]
    assert translated["num"] == 6 and translated["step"] == 3 and 0 <= translated["rate"] <= 1
    assert translated["translated_at"] == 16  # the run's size, resized to --resolution 12 for scoring
    grid = np.asarray(Image.open(translated["grid"]))
    assert grid.shape[:2] == (2 + 2 * (12 + 2), 2 + 4 * (12 + 2))  # 3 pairs = 6 tiles, 4 per row
    assert "| dark→light | identity (untranslated) |" in capsys.readouterr().out
    # a second feature space: a named dataset's classifier scores the same rows
    install_tiny_classifier(tmp_path / "cache")  # what load_or_train_classifier("digits") finds
    assert evaluation.main([*args, "--feature-data", "digits"]) == 0
    result = json.loads(out.read_text())
    assert "digits: its dataset classifier" in result["protocol"]["second_feature_extractor"]
    again = {(r["direction"], r["method"]): r for r in result["rows"]}
    for key, row in again.items():
        assert row["fid"] == pytest.approx(rows[key]["fid"])  # the first feature space is unchanged
        assert np.isfinite(row["fid_x"]) and row["kid_x_std"] >= 0
    floor_x = again[("dark→light", "real training images (floor)")]["fid_x"]
    assert floor_x < again[("dark→light", "identity (untranslated)")]["fid_x"]
    assert "FID_x ↓" in capsys.readouterr().out
    # bad domains: one line, exit 2
    assert evaluation.main([*args[:7], "dark,zebra", *args[8:]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "zebra" in err


def test_labelled_datasets_are_scored_by_accuracy_under_the_target_classifier(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMAGEGEN_CACHE", str(tmp_path / "cache"))
    clf = install_tiny_classifier(tmp_path / "cache")  # what load_or_train_classifier("digits") finds
    torch.manual_seed(0)
    model = CycleGAN(CycleGANConfig(resolution=16, channels=1, g_width=4, g_blocks=1, d_width=4, d_layers=2))
    run = tmp_path / "run"
    ckpt.save_checkpoint(run, "step-0000002", model, ckpt.checkpoint_meta("cyclegan", model.config, step=2), {})
    out = tmp_path / "digits.json"
    assert evaluation.main(["--runs", str(run), "--data-a", "digits", "--data-b", "digits",
                            "--out-json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["protocol"]["mode"] == "datasets" and result["protocol"]["scoring_size"]["digits"] == [8, 8]
    rows = {(r["direction"], r["method"]): r for r in result["rows"]}
    identity = rows[("digits→digits", "identity (untranslated)")]
    _, test = digits_splits()
    with torch.no_grad():  # the untranslated test digits: the classifier's own test accuracy
        pred = clf(test.get_batch(torch.arange(len(test)))[0])[1].argmax(1)
    assert identity["rate"] == pytest.approx(float((pred == torch.as_tensor(test.labels)).float().mean()))
    assert identity["fid"] < 1e-3 and rows[("digits→digits", "real training images (floor)")]["rate"] is None
    # the untranslated inputs as the run loads them (8 → 16 → 8 bicubic): close to the identity row
    as_run = rows[("digits→digits", f"{run} (untranslated, loaded as the run loads it)")]
    assert as_run["num"] == len(test) and abs(as_run["rate"] - identity["rate"]) < 0.2
    translated = rows[("digits→digits", str(run))]
    assert translated["translated_at"] == 16 and translated["num"] == len(test) and 0 <= translated["rate"] <= 1
    assert "| accuracy |" in capsys.readouterr().out
    # a half-given pair of datasets, or both kinds at once: one line, exit 2
    for bad in (["--data-a", "digits"], ["--data-a", "digits", "--data-b", "digits", "--held-out", str(tmp_path)]):
        assert evaluation.main(["--runs", str(run), *bad, "--out-json", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
