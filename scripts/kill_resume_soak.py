#!/usr/bin/env python
"""Kill-and-resume soak test: SIGKILL one training run at random moments, resume it each time, and
check that no checkpoint is ever corrupt and that the finished run equals an uninterrupted one.

    python scripts/kill_resume_soak.py --kills 20 --out /tmp/soak

What it does:

1. trains a tiny DCGAN on the bundled digits without interruption (the reference), unless
   ``--reference RUN`` names one trained with the same options (:func:`train_args`);
2. starts the same run with ``--ckpt-every 1`` (so most of a step's time is spent writing a
   checkpoint, and kills often land inside ``save_checkpoint``: the temporary directory, the rename,
   ``latest``, or the deletion of old checkpoints), waits until the process has written a checkpoint,
   sleeps a random time and sends SIGKILL; then restarts it with ``--resume``; ``--kills`` times;
3. after every kill, checks every ``step-*`` directory: it must be complete (all three files; a
   write in progress or a deletion cut short may only leave dot-named temporary entries, which the
   next ``--resume`` removes), load (``imagegen.load_run`` and
   ``imagegen.checkpoint.load_trainer_state``) and hold its own step; ``latest`` must name one;
4. lets the last resume finish and compares its final weights, counters and logged scalars with the
   reference (exact equality is reported; the check passes within rtol 1e-4, atol 1e-5).

Prints one line per kill and a final ``PASS`` or ``FAIL``; exit code 0 or 1. The test suite runs
:func:`soak` with three kills (tests/test_interrupt.py).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

#: the tiny DCGAN of tests/conftest.py (16×16 digits, narrow networks)
TINY_DCGAN = ["--data", "digits", "--resolution", "16", "--g-width", "8", "--d-width", "8", "--z-dim", "16",
              "--batch-size", "16", "--no-progress"]
CKPT_FILES = ("config.json", "model.safetensors", "trainer_state.pt")
_STEP_DIR = re.compile(r"^step-(\d+)$")


class SoakFailure(AssertionError):
    """A check of the soak failed (the message says which)."""


def train_args(steps: int, seed: int = 3, ckpt_every: int = 1, log_every: int = 1,
               base: Optional[list[str]] = None) -> list[str]:
    """``imagegen`` arguments of the soak's run (without ``--out``): ``base`` (default
    :data:`TINY_DCGAN`) with EMA and flips (so EMA weights and the augmentation RNG must resume too),
    one CPU thread (reproducible), no sample grids before the end. Logged scalars are means over the
    steps since the previous log line (restarted by a resume), so they match an uninterrupted run's
    only with ``log_every`` 1."""
    return ["train", "dcgan", *(TINY_DCGAN if base is None else base), "--steps", str(steps), "--seed", str(seed),
            "--ema-decay", "0.9", "--flip", "--threads", "1", "--log-every", str(log_every),
            "--sample-every", "1000000", "--ckpt-every", str(ckpt_every)]


def _check(cond: Any, msg: str) -> None:
    if not cond:
        raise SoakFailure(msg)


def _popen(args: list[str], log_stem: Path) -> tuple[subprocess.Popen, Any, Any]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out = open(log_stem.with_suffix(".out"), "w")
    err = open(log_stem.with_suffix(".err"), "w")
    proc = subprocess.Popen([sys.executable, "-m", "imagegen", *map(str, args)], stdout=out, stderr=err, env=env)
    return proc, out, err


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_text()[-n:]
    except OSError:
        return ""


def latest_step(run: Path) -> int:
    """The step named by ``RUN/checkpoints/latest`` (-1 if there is none yet)."""
    try:
        m = _STEP_DIR.match((run / "checkpoints" / "latest").read_text().strip())
    except OSError:
        return -1
    return int(m.group(1)) if m else -1


def inspect_checkpoints(run: Path) -> dict[str, Any]:
    """Check every checkpoint of ``run`` (see the module docstring); returns what was found:
    ``latest`` (step), ``complete`` and ``incomplete`` (step-* names), ``stale`` (dot entries left by
    an interrupted write)."""
    import imagegen
    from imagegen import checkpoint as ckpt

    root = run / "checkpoints"
    found: dict[str, Any] = {"latest": None, "complete": [], "incomplete": [], "stale": []}
    if not root.is_dir():
        return found
    entries = sorted(root.iterdir(), key=lambda p: p.name)
    found["stale"] = [p.name for p in entries if p.name.startswith(".")]
    for d in entries:
        m = _STEP_DIR.match(d.name)
        if not m:
            continue
        if not all((d / f).is_file() for f in CKPT_FILES):
            found["incomplete"].append(d.name)
            continue
        step = int(m.group(1))
        try:
            model = imagegen.load_run(d)
            state = ckpt.load_trainer_state(d)
        except Exception as e:  # noqa: BLE001 - any failure to load is what we look for
            raise SoakFailure(f"{d} is corrupt: {type(e).__name__}: {e}") from None
        _check(state["step"] == step, f"{d}: trainer_state step {state['step']} != {step}")
        _check(model.checkpoint_meta.get("step") == step, f"{d}: config.json step {model.checkpoint_meta.get('step')}")
        found["complete"].append(d.name)
    latest = root / "latest"
    if latest.exists():
        name = latest.read_text().strip()
        _check(name in found["complete"], f"latest names {name!r}, which is not a complete checkpoint "
                                          f"(complete: {found['complete']})")
        found["latest"] = int(name.split("-")[1])
        _check(not found["incomplete"], f"incomplete step checkpoint(s) {found['incomplete']} (latest: {name}); "
                                        "a write or deletion cut short must leave only dot-named temporary entries")
    else:
        _check(not found["complete"] and not found["incomplete"], f"{root} has step checkpoints but no latest")
    return found


def _where(found: dict[str, Any]) -> str:
    """Where a kill landed, judged by what it left behind."""
    what = []
    for name in found["stale"]:
        if ".tmp-" in name:
            what.append("writing latest" if name.startswith(".latest.") else "writing the checkpoint")
        elif ".old-" in name:
            what.append("replacing a checkpoint")
        elif ".del-" in name:
            what.append("deleting an old checkpoint")
        else:
            what.append(f"? ({name})")
    if found["incomplete"]:
        what.append("deleting an old checkpoint")
    if found["latest"] is not None and any(int(n.split("-")[1]) > found["latest"] for n in found["complete"]):
        what.append("between renaming a checkpoint into place and updating latest")
    return ", ".join(sorted(set(what))) or "training (no write in progress)"


def compare_runs(ref: Path, run: Path) -> dict[str, Any]:
    """Final weights, counters and logged scalars of ``run`` against ``ref``; raises SoakFailure on a
    mismatch beyond rtol 1e-4, atol 1e-5. Returns ``exact`` (bitwise equal weights) and ``max_abs_diff``."""
    import torch

    import imagegen
    from imagegen import checkpoint as ckpt

    wa, wb = imagegen.load_run(ref).state_dict(), imagegen.load_run(run).state_dict()
    _check(sorted(wa) == sorted(wb), "the runs' weights have different tensors")
    exact, worst = True, 0.0
    for k in wa:
        a, b = wa[k], wb[k]
        if torch.equal(a, b):
            continue
        exact = False
        if a.is_floating_point():
            worst = max(worst, float((a.double() - b.double()).abs().max()))
        _check(a.is_floating_point() and torch.allclose(b.double(), a.double(), rtol=1e-4, atol=1e-5),
               f"final weight {k} differs from the uninterrupted run (max |diff| {worst:.3g})")
    sa = ckpt.load_trainer_state(ckpt.resolve_checkpoint(ref))
    sb = ckpt.load_trainer_state(ckpt.resolve_checkpoint(run))
    _check((sa["step"], sa["images_seen"]) == (sb["step"], sb["images_seen"]),
           f"counters differ: {sa['step'], sa['images_seen']} vs {sb['step'], sb['images_seen']}")

    def scalars(r: Path) -> dict[int, dict]:
        rows = [json.loads(line) for line in (r / "logs" / "scalars.jsonl").read_text().splitlines() if line.strip()]
        steps = [row["step"] for row in rows]
        _check(len(steps) == len(set(steps)), f"{r}: logged steps repeat ({len(steps) - len(set(steps))} "
                                              "duplicates): the resume did not discard the lost steps' lines")
        return {row["step"]: row for row in rows}

    la, lb = scalars(ref), scalars(run)
    _check(sorted(la) == sorted(lb), f"logged steps differ: {sorted(set(la) ^ set(lb))[:10]}")
    for step, row in la.items():
        for key, value in row.items():
            if key in ("images_per_sec",):
                continue
            other = lb[step].get(key)
            _check(other is not None and abs(other - value) <= 1e-5 + 1e-4 * abs(value),
                   f"logged {key} at step {step}: {other} vs {value} in the uninterrupted run")
    return {"exact": exact, "max_abs_diff": worst}


def _run_to_end(args: list[str], log_stem: Path, timeout: float) -> None:
    proc, out, err = _popen(args, log_stem)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise SoakFailure(f"`imagegen {' '.join(map(str, args))}` did not finish in {timeout:.0f} s") from None
    finally:
        out.close()
        err.close()
    _check(rc == 0, f"`imagegen {' '.join(map(str, args))}` exited {rc}:\n{_tail(log_stem.with_suffix('.err'))}")


def soak(out: Path, kills: int = 20, steps: int = 400, seed: int = 3, ckpt_every: int = 1,
         max_delay: float = 0.5, rng_seed: Optional[int] = None, reference: Optional[Path] = None,
         base: Optional[list[str]] = None, run_final: Optional[Callable[[list[str]], None]] = None,
         final_options: tuple[str, ...] = (), timeout: float = 300.0, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the soak in ``out`` (created; must not hold an earlier soak's ``run``).

    Args:
        kills: SIGKILLs, each into a fresh process of the same run (the first trains from scratch,
            the others resume).
        steps, seed, ckpt_every, base: the run (:func:`train_args`).
        max_delay: each kill comes a uniform random 0..max_delay seconds after the process wrote its
            first checkpoint.
        rng_seed: seed of the kill times (default: random, printed).
        reference: an uninterrupted run trained with ``train_args(steps, seed, ..., base=base)`` (any
            ``--ckpt-every``/``--log-every`` as long as ``log_every`` matches); trained here if None.
        run_final: called with the arguments of the last, uninterrupted resume instead of running it
            in a subprocess (the test suite runs it in-process to save a start-up).
        final_options: extra options of the last resume (e.g. a larger ``--ckpt-every``, to finish
            faster; any option that may change on resume and leaves the training unchanged).
        timeout: seconds any one process may take.

    Returns:
        ``passed`` (bool), ``error`` (the failed check, or None), ``kills`` (one record per kill),
        ``exact`` and ``max_abs_diff`` (final weights against the reference), ``seconds``.
    """
    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    run = out / "run"
    rng_seed = random.randrange(2**31) if rng_seed is None else rng_seed
    rng = random.Random(rng_seed)
    args = train_args(steps, seed, ckpt_every, base=base)
    result: dict[str, Any] = {"passed": False, "error": None, "kills": [], "exact": None, "max_abs_diff": None,
                              "rng_seed": rng_seed, "seconds": 0.0}
    echo(f"soak: {kills} kills, {steps} steps, --ckpt-every {ckpt_every}, kill delay 0-{max_delay:g} s after "
         f"the first checkpoint of each process, rng seed {rng_seed}, out {out}")
    try:
        _check(not run.exists(), f"{run} exists; give an empty --out")
        if reference is None:
            reference = out / "reference"
            t0 = time.perf_counter()
            _run_to_end([*args, "--out", reference], out / "logs" / "reference", timeout)
            echo(f"reference run: {steps} steps in {time.perf_counter() - t0:.1f} s")
        for i in range(kills):
            before = latest_step(run)
            cmd = [*args, "--out", run] if i == 0 else ["train", "dcgan", "--resume", run, "--no-progress"]
            stem = out / "logs" / f"life-{i:02d}"
            proc, fo, fe = _popen(cmd, stem)
            try:
                deadline = time.monotonic() + timeout
                while proc.poll() is None and latest_step(run) <= before:
                    _check(time.monotonic() < deadline, f"kill {i + 1}: no checkpoint after {timeout:.0f} s")
                    time.sleep(0.005)
                _check(proc.poll() is None, f"kill {i + 1}: the process exited ({proc.returncode}) before it "
                                            f"could be killed:\n{_tail(stem.with_suffix('.err'))}")
                delay = rng.uniform(0.0, max_delay)
                time.sleep(delay)
                _check(proc.poll() is None, f"kill {i + 1}: the run finished before it was killed; give more --steps "
                                            "(or fewer --kills / a shorter --max-delay)")
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                fo.close()
                fe.close()
            found = inspect_checkpoints(run)
            rec = {"kill": i + 1, "resumed_from": max(before, 0), "delay": delay, "latest": found["latest"],
                   "where": _where(found), "stale": found["stale"], "incomplete": found["incomplete"]}
            result["kills"].append(rec)
            echo(f"kill {i + 1:2d}/{kills}: {delay:.3f} s after the first checkpoint; resumed from step "
                 f"{rec['resumed_from']}, killed at step {found['latest']} (latest), while {rec['where']}; "
                 f"{len(found['complete'])} complete checkpoint(s) load"
                 + (f"; left behind {found['stale'] + found['incomplete']}" if found["stale"] or found["incomplete"]
                    else ""))
        final = ["train", "dcgan", "--resume", run, "--no-progress", *final_options]
        start = max(0, latest_step(run))
        t0 = time.perf_counter()
        if run_final is not None:
            run_final(final)
        else:
            _run_to_end(final, out / "logs" / "final", timeout)
        found = inspect_checkpoints(run)
        _check(found["latest"] == steps, f"the final resume stopped at step {found['latest']}, not {steps}")
        _check(not found["stale"] and not found["incomplete"],
               f"left behind after the final resume: {found['stale'] + found['incomplete']}")
        echo(f"final resume: step {start} -> {steps} in {time.perf_counter() - t0:.1f} s")
        cmp = compare_runs(reference, run)
        result.update(cmp)
        echo(f"final weights vs the uninterrupted run: {'bitwise equal' if cmp['exact'] else 'max |diff| %.3g' % cmp['max_abs_diff']}; "
             "counters and logged scalars agree")
        result["passed"] = True
    except SoakFailure as e:
        result["error"] = str(e)
    result["seconds"] = time.perf_counter() - t_start
    landed = sum(1 for k in result["kills"] if not k["where"].startswith("training"))
    echo(f"{'PASS' if result['passed'] else 'FAIL: ' + str(result['error'])} "
         f"({len(result['kills'])} kills, {landed} during checkpoint writes or deletions, "
         f"{result['seconds']:.1f} s)")
    return result


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=20, help="number of SIGKILLs (default: %(default)s)")
    p.add_argument("--out", type=Path, required=True, help="working directory (the run, the reference, logs)")
    p.add_argument("--steps", type=int, default=400, help="training steps of the run (default: %(default)s)")
    p.add_argument("--ckpt-every", type=int, default=1, help="checkpoint every N steps (default: %(default)s)")
    p.add_argument("--max-delay", type=float, default=0.5,
                   help="kill a uniform random 0..this many seconds after a process's first checkpoint "
                        "(default: %(default)s)")
    p.add_argument("--seed", type=int, default=3, help="training seed (default: %(default)s)")
    p.add_argument("--rng-seed", type=int, default=None, help="seed of the kill times (default: random)")
    p.add_argument("--reference", type=Path, default=None,
                   help="an uninterrupted run with the same options (default: train one)")
    a = p.parse_args(argv)
    r = soak(a.out, kills=a.kills, steps=a.steps, seed=a.seed, ckpt_every=a.ckpt_every, max_delay=a.max_delay,
             rng_seed=a.rng_seed, reference=a.reference)
    return 0 if r["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
