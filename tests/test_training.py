"""End-to-end: the CLI trains, samples, resumes exactly (also after a kill), runs under torchrun,
and rejects bad input with exit code 2."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_DCGAN, run_cli, run_subprocess

import imagegen
from imagegen import checkpoint as ckpt


def read_scalars(run: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (run / "logs" / "scalars.jsonl").read_text().splitlines()]
    return {r["step"]: r for r in rows}


def test_train_sample_resume_cli(tmp_path, capsys):
    run = tmp_path / "run"
    code, out, err = run_cli(["train", "dcgan", *TINY_DCGAN, "--steps", "12", "--log-every", "4",
                              "--sample-every", "6", "--ckpt-every", "6", "--out", run], capsys)
    assert code == 0, err
    assert "parameters G:" in out and "samples:" in out and "checkpoint:" in out
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-0000006.png", "step-0000012.png"]
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-0000012"
    for f in ("config.json", "model.safetensors", "trainer_state.pt"):
        assert (run / "checkpoints" / "step-0000012" / f).is_file()
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "logs").iterdir())
    rows = read_scalars(run)
    assert sorted(rows) == [4, 8, 12]
    for key in ("D/loss", "G/loss", "D/d_real", "D/d_fake", "D/grad_norm", "G/grad_norm", "images_per_sec"):
        assert np.isfinite(rows[12][key]), key

    # sample: npz and grid
    code, out, err = run_cli(["sample", run, "--num", "10", "--seed", "0", "--out", tmp_path / "s.npz"], capsys)
    assert code == 0, err
    arr = np.load(tmp_path / "s.npz")["images"]
    assert arr.shape == (10, 16, 16, 1) and arr.dtype == np.uint8
    code, _, err = run_cli(["sample", run, "--num", "9", "--out", tmp_path / "g.png"], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "g.png").size == (3 * 18 + 2, 3 * 18 + 2)
    # same seed, same samples; the Python API agrees with the CLI
    model = imagegen.load_run(run)
    img = imagegen.generate(model, 10, seed=0)
    assert img.dtype == imagegen.generate(model, 1).dtype and img.shape == (10, 1, 16, 16)
    assert float(img.min()) >= -1 and float(img.max()) <= 1
    np.testing.assert_array_equal(((img.permute(0, 2, 3, 1) + 1) * 127.5).round().byte().numpy(), arr)

    # resume to a longer run continues from step 12
    code, out, err = run_cli(["train", "dcgan", "--resume", run, "--steps", "18", "--no-progress"], capsys)
    assert code == 0, err
    assert "resuming at step 12" in out
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-0000018"
    assert sorted(read_scalars(run)) == [4, 8, 12, 16, 18]


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    """A run killed (SIGKILL) mid-way and resumed follows the uninterrupted run's loss trajectory."""
    common = ["train", "dcgan", *TINY_DCGAN, "--steps", "400", "--log-every", "1", "--ckpt-every", "10",
              "--sample-every", "1000", "--seed", "3", "--ema-decay", "0.9", "--flip", "--threads", "1"]
    ref = tmp_path / "ref"
    r = run_subprocess([*common, "--out", ref])
    assert r.returncode == 0, r.stderr

    run = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "imagegen", *map(str, common), "--out", str(run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    latest = run / "checkpoints" / "latest"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if latest.exists() and latest.read_text().strip() >= "step-0000050":
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed_at = int(ckpt.resolve_checkpoint(run).name.split("-")[1])
    assert 50 <= resumed_at < 400

    r = run_subprocess(["train", "dcgan", "--resume", run, "--no-progress"])
    assert r.returncode == 0, r.stderr
    a, b = read_scalars(ref), read_scalars(run)
    assert sorted(a) == sorted(b) == list(range(1, 401))
    keys = [k for k in a[1] if k not in ("images_per_sec",)]
    for step in range(1, 401):
        for k in keys:
            assert b[step][k] == pytest.approx(a[step][k], rel=1e-4, abs=1e-5), (step, k)
    # and the final weights agree
    wa = imagegen.load_run(ref).state_dict()
    wb = imagegen.load_run(run).state_dict()
    for k in wa:
        np.testing.assert_allclose(wb[k].float().numpy(), wa[k].float().numpy(), rtol=1e-4, atol=1e-5)


def torchrun_patched(tmp_path: Path, patch: str, args: list) -> subprocess.CompletedProcess:
    """``imagegen ARGS`` on two processes under torchrun, each first running ``patch`` (Python source with
    ``os``, ``sys`` and ``torch`` imported) to change the code under test on some rank."""
    launcher = tmp_path / "launch.py"
    launcher.write_text("import os, sys, torch\n" + patch + "from imagegen.cli import main\nmain(sys.argv[1:])\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(launcher), *args], capture_output=True, text=True, timeout=300, env=env)


def test_torchrun_two_processes(tmp_path):
    run = tmp_path / "ddp"
    r = torchrun_patched(tmp_path, "", ["train", "dcgan", *TINY_DCGAN, "--steps", "8", "--log-every", "2",
                                        "--ckpt-every", "4", "--out", str(run)])
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("parameters G:") == 1  # only rank 0 talks
    assert "2 process(es)" in r.stdout
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-0000008"
    state = ckpt.load_trainer_state(run / "checkpoints" / "step-0000008")
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    assert state["images_seen"] == 8 * 16  # global batch 16 = 2 ranks × 8
    assert sorted(read_scalars(run)) == [2, 4, 6, 8]
    # the trainer checks at the end that both replicas hold the same weights (it raises otherwise)
    model = imagegen.load_run(run)
    assert imagegen.generate(model, 4).shape == (4, 1, 16, 16)


def test_torchrun_ada_keeps_one_p_on_every_process(tmp_path):
    """Issue 9: ADA's p is steered by r_t summed over all processes (all_reduce). Rank 0's D is made to
    call every real fake (r_t = -1) and rank 1's every real real (r_t = +1): alone, rank 0 would lower p
    (target -0.5) and rank 1 raise it; together r_t = 0 > -0.5, so both raise it by the same steps."""
    run = tmp_path / "ddp-ada"
    r = torchrun_patched(
        tmp_path,
        "from imagegen.models.d_augment import DAugment\n"
        "original = DAugment.observe_real_logits\n"
        "sign = -1.0 if os.environ['RANK'] == '0' else 1.0\n"
        "def forced(self, real_logits, threshold=0.0):\n"
        "    return original(self, torch.full_like(real_logits, threshold + sign), threshold)\n"
        "DAugment.observe_real_logits = forced\n",
        ["train", "dcgan", *TINY_DCGAN, "--steps", "8", "--log-every", "2", "--augment", "ada", "--ada-interval", "1",
         "--ada-kimg", "0.05", "--ada-target", "-0.5", "--ckpt-every", "4", "--out", str(run)])
    assert r.returncode == 0, r.stderr[-3000:]
    for step in (4, 8):
        state = ckpt.load_trainer_state(run / "checkpoints" / f"step-{step:07d}")
        ranks = [s["ada"] for s in state["model_state"]]
        assert len(ranks) == 2 and ranks[0]["p"] == ranks[1]["p"], ranks
        assert ranks[0]["p"] > 0.0 and ranks[0]["rt"] == 0.0  # the global r_t, not either rank's own
        # each rank keeps its own augmentation generator (different draws on different data)
        assert not torch.equal(state["model_state"][0]["augment_rng"], state["model_state"][1]["augment_rng"])


def test_torchrun_nan_on_one_rank_stops_every_rank_with_the_message(tmp_path):
    """A G loss that becomes NaN on rank 1 only in the last step before a checkpoint (rank 0's loss of that
    step is still finite; the NaN gradients reach both replicas) is seen by the pre-checkpoint check, which
    reads each rank's own window: the ranks agree on it, so rank 0 (the only one that talks) prints the
    one-line message, names the last good checkpoint and does not save the NaN weights."""
    run = tmp_path / "ddp"
    r = torchrun_patched(
        tmp_path,
        "from imagegen.models.dcgan import DCGAN\n"
        "original, calls = DCGAN.training_step, {'n': 0}\n"
        "def poisoned(self, phase, batch):\n"
        "    out = original(self, phase, batch)\n"
        "    calls['n'] += 1\n"
        "    if os.environ['RANK'] == '1' and calls['n'] == 12:  # G phase of step 6, rank 1 only\n"
        "        out = {**out, 'loss': out['loss'] * torch.tensor(float('nan'))}\n"
        "    return out\n"
        "DCGAN.training_step = poisoned\n",
        ["train", "dcgan", *TINY_DCGAN, "--steps", "12", "--log-every", "8", "--ckpt-every", "3", "--out", str(run)])
    assert r.returncode != 0
    assert ("a loss of another process became non-finite by step 6: training diverged; the last good checkpoint "
            "is") in r.stderr, r.stderr[-3000:]
    assert "step-0000003" in r.stderr
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.startswith("step-")) == ["step-0000003"]


def test_interrupted_checkpoint_write_keeps_previous(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    code, _, err = run_cli(["train", "dcgan", *TINY_DCGAN, "--steps", "4", "--ckpt-every", "4", "--out", run],
                           capsys)
    assert code == 0, err
    import safetensors.torch

    def crash(state, path, metadata=None):
        Path(path).write_bytes(b"partial")
        raise KeyboardInterrupt  # the process dies during the write

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    model = imagegen.load_run(run)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(run, "step-0000008", model, {}, {})
    assert ckpt.resolve_checkpoint(run).name == "step-0000004"
    imagegen.load_run(run)  # still loads


# ---------------------------------------------------------------- bad input: one line, exit code 2
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from imagegen.cli import main

    run = tmp_path_factory.mktemp("bad") / "run"
    try:
        main(["train", "dcgan", *TINY_DCGAN, "--steps", "2", "--out", str(run)])
    except SystemExit as e:
        assert not e.code
    return run


def _expect_error(capsys, args, pattern):
    code, out, err = run_cli(args, capsys)
    assert code == 2, (code, out, err)
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert lines and any(pattern in l for l in lines), err
    return err


def test_bad_input_errors(tmp_path, capsys, trained):
    _expect_error(capsys, ["train", "dcgan", *TINY_DCGAN, "--steps", "2", "--out", trained], "already exists")
    _expect_error(capsys, ["train", "dcgan", "--data", "mnist", "--data-root", tmp_path / "nope", "--steps", "1",
                           "--out", tmp_path / "r1"], "nope")
    _expect_error(capsys, ["train", "dcgan", "--data", tmp_path / "missing_folder", "--steps", "1",
                           "--out", tmp_path / "r2"], "missing_folder")
    _expect_error(capsys, ["train", "dcgan", *TINY_DCGAN, "--out", tmp_path / "r3"], "--epochs N or --steps N")
    _expect_error(capsys, ["train", "dcgan", *TINY_DCGAN, "--steps", "1", "--batch-size", "0",
                           "--out", tmp_path / "r4"], "batch-size")
    _expect_error(capsys, ["train", "dcgan", *TINY_DCGAN, "--steps", "1", "--loss", "bogus",
                           "--out", tmp_path / "r5"], "bogus")
    _expect_error(capsys, ["train", "dcgan", *TINY_DCGAN, "--steps", "1", "--resolution", "20",
                           "--out", tmp_path / "r6"], "power of two")
    _expect_error(capsys, ["train", "dcgan", "--resume", trained, "--z-dim", "7", "--no-progress"], "z-dim")
    _expect_error(capsys, ["train", "dcgan", "--resume", trained, "--batch-size", "8", "--no-progress"],
                  "cannot change --batch-size")
    _expect_error(capsys, ["train", "dcgan", "--resume", tmp_path / "none", "--no-progress"], "does not exist")
    _expect_error(capsys, ["train", "nomodel"], "nomodel")
    _expect_error(capsys, ["sample", tmp_path, "--out", tmp_path / "x.png"], "no complete imagegen checkpoint")
    _expect_error(capsys, ["sample", trained, "--out", tmp_path / "x.gif"], "unsupported extension")
    _expect_error(capsys, ["sample", trained, "--out", tmp_path / "no" / "x.png"], "does not exist")
    _expect_error(capsys, ["sample", trained, "--class", "3", "--out", tmp_path / "x.png"], "unconditional")
    (tmp_path / "exists.png").write_bytes(b"")
    _expect_error(capsys, ["sample", trained, "--out", tmp_path / "exists.png"], "--force")
    assert (tmp_path / "exists.png").read_bytes() == b""  # never overwritten without being asked


def test_corrupt_and_incompatible_checkpoints(tmp_path, capsys, trained):
    bad = tmp_path / "corrupt"
    shutil.copytree(trained, bad)
    ck = ckpt.resolve_checkpoint(bad)
    data = (ck / "model.safetensors").read_bytes()
    (ck / "model.safetensors").write_bytes(data[: len(data) // 2])
    _expect_error(capsys, ["sample", bad, "--out", tmp_path / "a.png"], "corrupt")

    other = tmp_path / "other"
    shutil.copytree(trained, other)
    ck = ckpt.resolve_checkpoint(other)
    meta = json.loads((ck / "config.json").read_text())
    meta["model_config"]["g_width"] = 16
    (ck / "config.json").write_text(json.dumps(meta))
    _expect_error(capsys, ["sample", other, "--out", tmp_path / "b.png"], "different configuration")

    meta["model"] = "unknown-model"
    (ck / "config.json").write_text(json.dumps(meta))
    _expect_error(capsys, ["sample", other, "--out", tmp_path / "c.png"], "unknown model")

    (ck / "trainer_state.pt").write_bytes(b"garbage")
    meta["model"] = "dcgan"
    meta["model_config"]["g_width"] = 8
    (ck / "config.json").write_text(json.dumps(meta))
    _expect_error(capsys, ["train", "dcgan", "--resume", other, "--steps", "4", "--no-progress"], "corrupt")


def test_force_overwrites_and_checkpoints_load_without_pickles(tmp_path, capsys, trained):
    import torch

    ck = ckpt.resolve_checkpoint(trained)
    state = torch.load(ck / "trainer_state.pt", weights_only=True)  # plain data only
    assert state["step"] == 2 and set(state["optimizers"]) == {"D", "G"}
    run = tmp_path / "f"
    shutil.copytree(trained, run)
    code, _, err = run_cli(["train", "dcgan", *TINY_DCGAN, "--steps", "1", "--out", run, "--force"], capsys)
    assert code == 0, err
    assert ckpt.resolve_checkpoint(run).name == "step-0000001"


def test_nan_loss_stops_with_the_last_good_checkpoint_and_writes_no_bad_one(tmp_path, capsys, monkeypatch):
    """A loss that becomes NaN at step 6 (between the checkpoints of steps 4 and 8, inside a log window)
    stops the run with a one-line message naming step 4's checkpoint; no later checkpoint is written."""
    import torch

    from imagegen.models.dcgan import DCGAN

    original, calls = DCGAN.training_step, {"n": 0}

    def poisoned(self, phase, batch):
        out = original(self, phase, batch)
        calls["n"] += 1
        if calls["n"] >= 11:  # two phases per step: the D phase of step 6
            out = {**out, "loss": out["loss"] * torch.tensor(float("nan"))}
        return out

    monkeypatch.setattr(DCGAN, "training_step", poisoned)
    run = tmp_path / "run"
    code, _, err = run_cli(["train", "dcgan", *TINY_DCGAN, "--steps", "20", "--log-every", "3", "--ckpt-every", "4",
                            "--out", run], capsys)
    assert code == 2, err
    assert "D/loss became nan by step 6: training diverged; the last good checkpoint is" in err
    assert "step-0000004" in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.startswith("step-")) == ["step-0000004"]
