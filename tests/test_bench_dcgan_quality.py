"""benchmarks/bench_dcgan_quality.py --combine: merged tables, and no mixing of classifier feature spaces."""
from __future__ import annotations

import json

from _scripts import load_script

bench = load_script("benchmarks/bench_dcgan_quality.py")


def write_runs(path, model: str, seeds, weights: str, fid: float):
    runs = [{"model": model, "seed": s, "steps": 10, "confident": 0.7, "classes_covered": 10.0, "class_entropy": 0.99,
             "fid": fid + s, "kid": 0.04, "precision": 0.75, "recall": 0.85, "train_seconds": 5.0,
             "protocol": {"extractor": {"weights_sha256": weights * 16}}} for s in seeds]
    path.write_text(json.dumps({"settings": {}, "summary": {}, "runs": runs}))
    return path


def test_combine_merges_seeds_and_refuses_runs_scored_by_different_classifiers(tmp_path, capsys):
    a = write_runs(tmp_path / "a.json", "default", [0, 1], "a3d7", 3.0)
    b = write_runs(tmp_path / "b.json", "plain", [0], "a3d7", 4.0)
    out = tmp_path / "summary.json"
    assert bench.combine([a, b], out) == 0
    summary = json.loads(out.read_text())["summary"]
    assert summary["default"]["fid"]["mean"] == 3.5 and summary["plain"]["fid"]["std"] is None
    c = write_runs(tmp_path / "c.json", "plain", [1], "60a7", 4.0)
    capsys.readouterr()
    assert bench.combine([a, c], None) == 2
    err = capsys.readouterr().err
    assert "different classifier weights" in err and "60a7" in err and err.count("\n") == 1
    assert bench.combine([a, a], None) == 2  # the same run twice
