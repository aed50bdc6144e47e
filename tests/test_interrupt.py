"""Stopping and resuming training: SIGTERM / SIGINT stop after a checkpoint (exit 143 / 130), a second
SIGINT leaves at once with the previous checkpoint intact, ``--minutes`` budgets, ``--ckpt-minutes``
time-based checkpoints, and SIGKILL at random moments (also during checkpoint writes) never corrupts a
checkpoint and the resumed run equals an uninterrupted one (scripts/kill_resume_soak.py, here with
three kills).

Processes that receive signals run as ``python -m imagegen`` subprocesses; uninterrupted runs and
resumes run in-process (same numerics with ``--threads 1``, without a process start-up)."""
from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from _scripts import load_script
from conftest import REPO, TINY_DCGAN

import imagegen
from imagegen import checkpoint as ckpt

soak_script = load_script("scripts/kill_resume_soak.py", "kill_resume_soak")

STEPS, SEED = 100, 3
#: the uninterrupted run every exact-resume check compares with (no checkpoints before the end)
REF_ARGS = soak_script.train_args(STEPS, SEED, ckpt_every=100_000, base=TINY_DCGAN)


def train_here(args: list) -> tuple[int, str, str]:
    """Run ``imagegen ARGS`` in this process; (exit code, stdout, stderr)."""
    from imagegen.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            code = int(e.code or 0)
    return code, out.getvalue(), err.getvalue()


def start(args: list) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "imagegen", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_for_checkpoint(proc: subprocess.Popen, run: Path, after: int, timeout: float = 120) -> int:
    """Wait until ``run``'s latest checkpoint is past step ``after`` (the process is training)."""
    deadline = time.monotonic() + timeout
    while (step := soak_script.latest_step(run)) <= after:
        if proc.poll() is not None:
            pytest.fail(f"the process exited ({proc.returncode}) early:\n{proc.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no checkpoint past step {after} after {timeout} s")
        time.sleep(0.005)
    return step


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the process did not exit within {timeout} s:\n{err[-3000:]}")
    return proc.returncode, out, err


def assert_same_weights(ref: Path, run: Path) -> None:
    """Bitwise equal (one thread on the same machine is deterministic; a resume replays exactly)."""
    wa, wb = imagegen.load_run(ref).state_dict(), imagegen.load_run(run).state_dict()
    assert sorted(wa) == sorted(wb)
    for k in wa:
        assert torch.equal(wa[k], wb[k]), (k, float((wa[k].double() - wb[k].double()).abs().max()))


def checkpoint_names(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.startswith("step-"))


@pytest.fixture(scope="module", autouse=True)
def _restore_threads():
    """In-process runs here use one thread (``--threads 1`` sets it for the whole process)."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("interrupt") / "reference"
    code, out, err = train_here([*REF_ARGS, "--out", run])
    assert code == 0, err
    return run


def _stopped(err: str, name: str, run: Path) -> int:
    """The step of a clean stop by signal ``name``, checking the CLI's message and the checkpoint."""
    m = re.search(rf"Interrupted: {name}: stopped at step (\d+) after writing (\S+); continue with "
                  r"`imagegen train dcgan --resume (\S+)`", err)
    assert m, err
    step = int(m.group(1))
    assert Path(m.group(3)) == run
    # the stop wrote a checkpoint at that very step (between the --ckpt-every ones)
    assert Path(m.group(2)) == run / "checkpoints" / f"step-{step:07d}"
    assert (run / "checkpoints" / "latest").read_text().strip() == f"step-{step:07d}"
    assert ckpt.load_trainer_state(ckpt.resolve_checkpoint(run))["step"] == step
    assert imagegen.load_run(run).checkpoint_meta["step"] == step
    return step


def test_sigterm_then_sigint_stop_with_checkpoint_and_resume_exactly(tmp_path, reference):
    """SIGTERM (exit 143), then SIGINT once in the resumed process (exit 130): each finishes its step
    and writes a checkpoint at it; a last resume ends with the uninterrupted run's weights."""
    run = tmp_path / "run"
    proc = start([*soak_script.train_args(STEPS, SEED, ckpt_every=10, base=TINY_DCGAN), "--out", run])
    wait_for_checkpoint(proc, run, after=19)
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc)
    assert code == 143, err
    first = _stopped(err, "SIGTERM", run)
    assert 20 <= first < STEPS

    proc = start(["train", "dcgan", "--resume", run, "--no-progress"])
    wait_for_checkpoint(proc, run, after=first)
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 130, err
    assert f"resuming at step {first} of {STEPS} steps" in out
    second = _stopped(err, "SIGINT", run)
    assert first < second < STEPS

    code, out, err = train_here(["train", "dcgan", "--resume", run, "--no-progress"])
    assert code == 0, err
    assert f"resuming at step {second} of {STEPS} steps" in out
    assert soak_script.latest_step(run) == STEPS
    assert_same_weights(reference, run)


def test_second_sigint_leaves_at_once_with_previous_checkpoint_intact(tmp_path):
    """Two SIGINTs: the second raises KeyboardInterrupt at once (possibly in the middle of a
    checkpoint write), exit 130; the newest complete checkpoint loads and the run resumes. Big
    batches make a step long enough (~70 ms) that the second signal, 25 ms after the first, lands
    before the first one's clean stop is done."""
    run = tmp_path / "run"
    args = ["train", "dcgan", *TINY_DCGAN, "--batch-size", "256", "--steps", "1000", "--ckpt-every", "5",
            "--log-every", "5", "--threads", "1", "--out", run]
    for attempt in range(3):
        before = soak_script.latest_step(run)
        proc = start(args if attempt == 0 else ["train", "dcgan", "--resume", run, "--no-progress"])
        wait_for_checkpoint(proc, run, after=before)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.025)
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        code, out, err = finish(proc)
        elapsed = time.monotonic() - t0
        assert code == 130, err
        print(f"attempt {attempt + 1}: exit {code} {elapsed:.2f} s after the second SIGINT: {err.strip()!r}")
        if "stopped at step" not in err:
            break
        # both signals arrived before Python ran the first handler (the kernel merges a pending
        # signal with a new one): that is one SIGINT, a clean stop; try again
    else:
        pytest.fail("the two SIGINTs were merged into one three times")
    assert "Interrupted; the last checkpoint is intact" in err, err
    assert "Traceback" not in err, err
    assert elapsed < 10, elapsed  # no waiting for the end of the run (1000 steps)
    found = soak_script.inspect_checkpoints(run)  # every complete checkpoint loads; latest is complete
    last = found["latest"]
    assert last > before
    imagegen.load_run(run)
    assert ckpt.load_trainer_state(ckpt.resolve_checkpoint(run))["step"] == last
    code, out, err = train_here(["train", "dcgan", "--resume", run, "--steps", last + 2, "--no-progress"])
    assert code == 0, err
    assert f"resuming at step {last} of {last + 2} steps" in out
    assert soak_script.latest_step(run) == last + 2
    assert not [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]  # stale temps removed


def test_minutes_budget_stops_and_resume_continues(tmp_path):
    run = tmp_path / "run"
    common = ["--log-every", "1000", "--sample-every", "100000", "--ckpt-every", "100000", "--threads", "1"]
    t0 = time.perf_counter()
    code, out, err = train_here(["train", "dcgan", *TINY_DCGAN, *common, "--steps", "100000", "--minutes", "0.02",
                                 "--out", run])
    elapsed = time.perf_counter() - t0
    assert code == 0, err
    assert 1.2 <= elapsed < 12, elapsed  # 0.02 min = 1.2 s of training, plus set-up
    m = re.search(r"stopped by --minutes 0.02 at step (\d+) of 100000; continue with "
                  r"`imagegen train dcgan --resume (\S+)`", out)
    assert m and Path(m.group(2)) == run, out
    first = int(m.group(1))
    assert 0 < first < 100000
    assert soak_script.latest_step(run) == first
    assert ckpt.load_trainer_state(ckpt.resolve_checkpoint(run))["step"] == first

    code, out, err = train_here(["train", "dcgan", "--resume", run, "--minutes", "0.02", "--no-progress"])
    assert code == 0, err
    assert f"resuming at step {first} of 100000 steps, budget 0.02 min" in out
    m = re.search(r"stopped by --minutes 0.02 at step (\d+) of 100000", out)
    assert m, out
    second = int(m.group(1))
    assert second > first
    assert soak_script.latest_step(run) == second
    state = ckpt.load_trainer_state(ckpt.resolve_checkpoint(run))
    assert state["step"] == second and state["images_seen"] == second * 16


def test_ckpt_minutes_writes_checkpoints_by_time(tmp_path):
    """An open-ended run (--minutes only) of 3 s with a checkpoint every 0.3 s and none by steps."""
    run = tmp_path / "run"
    code, out, err = train_here(["train", "dcgan", *TINY_DCGAN, "--minutes", "0.05", "--ckpt-minutes", "0.005",
                                 "--ckpt-every", "100000", "--keep-ckpts", "10", "--log-every", "1000",
                                 "--sample-every", "100000", "--threads", "1", "--out", run])
    assert code == 0, err
    assert "until the time budget" in out and "stopped by --minutes 0.05 at step" in out
    names = checkpoint_names(run)
    assert len(names) >= 3, names  # about ten by time, and the one at the stop
    states = [ckpt.load_trainer_state(run / "checkpoints" / n) for n in names]
    assert [s["step"] for s in states] == [int(n.split("-")[1]) for n in names]
    seconds = [s["seconds"] for s in states]
    gaps = [b - a for a, b in zip(seconds, seconds[1:])]
    assert all(g >= 0.3 for g in gaps[:-1]), gaps  # by time (the last one is the stop's)
    for n in names:
        imagegen.load_run(run / "checkpoints" / n)


def _finish_in_process(args: list) -> None:
    code, out, err = train_here(args)
    if code:
        raise soak_script.SoakFailure(f"the final resume exited {code}: {err[-2000:]}")


def test_kill9_at_random_moments_never_corrupts_and_resumes_exactly(tmp_path, reference):
    result = soak_script.soak(tmp_path / "soak", kills=3, steps=STEPS, seed=SEED, ckpt_every=1, max_delay=0.3,
                              reference=reference, base=TINY_DCGAN, run_final=_finish_in_process,
                              final_options=("--ckpt-every", "1000"), echo=print)
    assert result["passed"], result["error"]
    assert len(result["kills"]) == 3
    assert result["exact"], result["max_abs_diff"]


def test_clean_stale_removes_what_a_killed_write_left(tmp_path):
    """Temporary checkpoint and ``latest`` files, and old checkpoints renamed for deletion, go; a
    checkpoint moved aside for re-saving (``best``) comes back."""
    root = tmp_path / "checkpoints"
    for name in (".step-0000002.tmp-99", ".step-0000001.del-99", ".best.old-99"):
        (root / name).mkdir(parents=True)
        (root / name / "model.safetensors").write_bytes(b"partial")
    (root / ".latest.tmp-99").write_text("step-0000002\n")
    ckpt.clean_stale(tmp_path)
    assert sorted(p.name for p in root.iterdir()) == ["best"]
