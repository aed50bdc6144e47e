"""scripts/run_summary.py: which evaluations and scalar means a docs/results JSON gets."""
from __future__ import annotations

import json

import pytest
import torch
from _scripts import load_script


@pytest.fixture(scope="module")
def summary():
    return load_script("scripts/run_summary.py")


def make_run(root):
    """A run of batch 10 with scalars logged every 5 steps (0.05 kimg), evaluations at steps 20 and 40 and
    a checkpoint at step 40 only (as when --keep-ckpts removed the older ones)."""
    run = root / "run"
    (run / "logs").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model": "stylegan2", "train_config": {"batch_size": 10}}))
    rows = [{"step": s, "kimg": s * 10 / 1000, "D/acc_real": 0.5 if s <= 20 else 0.9} for s in range(5, 45, 5)]
    rows[2]["D/acc_real"] = 0.7  # step 15 in the first window
    (run / "logs" / "scalars.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ref = {"key": "abc"}
    recs = [{"step": 20, "kimg": 0.2, "fid": 9.0, "kid": 0.1, "protocol": {"num_fake": 50, "reference": ref}},
            {"step": 40, "kimg": 0.4, "fid": 8.0, "protocol": {"num_fake": 50, "reference": ref}},
            {"step": 40, "kimg": 0.4, "fid": 30.0,  # a truncation sweep: another distribution
             "protocol": {"num_fake": 50, "reference": ref, "fake": {"truncation_psi": 0.5}}},
            {"step": 40, "kimg": 0.4, "fid": 7.0, "protocol": {"num_fake": 5000, "reference": ref}},  # another count
            {"step": 40, "kimg": 0.4, "fid": 7.5, "precision": 0.8, "protocol": {"num_fake": 50, "reference": ref}}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    ckpt = run / "checkpoints" / "step-0000040"
    ckpt.mkdir(parents=True)
    torch.save({"step": 40, "images_seen": 400, "seconds": 12.34}, ckpt / "trainer_state.pt")
    return run


def test_summary_keeps_one_protocol_and_attaches_checkpoint_time(summary, tmp_path):
    out = summary.summarise(make_run(tmp_path), ["D/acc_real"], per_kimg=0.2)
    assert out["last"] == {"step": 40, "kimg": 0.4, "train_seconds": 12.3}
    assert out["skipped"] == 2
    assert out["evaluations"] == [{"step": 20, "kimg": 0.2, "fid": 9.0, "kid": 0.1},
                                  {"step": 40, "kimg": 0.4, "fid": 7.5, "precision": 0.8, "train_seconds": 12.3}]
    # windows (0, 0.2] and (0.2, 0.4]: the row at exactly 0.2 kimg (step 20) is in the first
    assert out["scalar_means"]["D/acc_real"] == [{"kimg": [0.0, 0.2], "mean": pytest.approx(0.55), "n": 4},
                                                 {"kimg": [0.2, 0.4], "mean": pytest.approx(0.9), "n": 4}]


def test_cli_writes_json_and_refuses_a_non_run(summary, tmp_path, capsys):
    run = make_run(tmp_path)
    dest = tmp_path / "docs" / "s.json"
    assert summary.main([f"{run}:plain", "--scalar", "D/acc_real", "--what", "test", "--out", str(dest)]) == 0
    data = json.loads(dest.read_text())
    assert data["what"] == "test" and list(data["runs"]) == ["plain"]
    assert data["runs"]["plain"]["scalar_means"]["D/acc_real"][0]["n"] == 8  # one 10-kimg window
    assert summary.main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a run directory" in err[0]
