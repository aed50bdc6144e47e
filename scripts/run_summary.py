"""Summarise training runs as one JSON file for docs/results: their evaluations and training-scalar means.

For each ``RUN[:NAME]``:

- ``last``: step, thousands of images seen (``kimg``) and training seconds of the run's newest step
  checkpoint (``seconds`` of its trainer state: the wall-clock time of the training invocations up to
  that step, samples and checkpoints included, summed over resumed pieces);
- ``evaluations``: the ``metrics.jsonl`` records (``imagegen evaluate``, ``--eval-every``) with ``step``,
  ``kimg``, every numeric result (FID, KID, precision, ...) and, where the evaluated step's checkpoint
  still exists, its ``train_seconds``; records scored with another number of samples than the first,
  against another reference or with truncation are left out (as ``scripts/plot_metric_vs_time.py``
  does) and counted in ``skipped``; of two records at one step the later wins;
- ``scalar_means``: for each ``--scalar KEY`` (a ``logs/scalars.jsonl`` key such as ``D/acc_real`` or
  ``D/ada_p``), the mean of its logged values in consecutive windows of ``--per-kimg`` thousand images.

Usage::

    python scripts/run_summary.py runs/zebra-none:none runs/zebra-ada:ADA --scalar D/acc_real --scalar D/ada_p \
        --per-kimg 10 --what "stylegan2 on zebras, ..." --out docs/results/stylegan2/zebras.json

Bad input (a missing run directory or config, an unreadable log) is a one-line error, exit code 2.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).parent))
from plot_metric_vs_time import one_protocol, read_jsonl  # noqa: E402


def checkpoint_progress(ckpt: Path) -> dict[str, Any]:
    """``{"kimg", "train_seconds"}`` of checkpoint directory ``ckpt`` from its trainer state (images seen /
    1000 and ``seconds``), read with :func:`imagegen.checkpoint.load_trainer_state` (``weights_only``, no
    code unpickled); empty where the state is absent."""
    if not (ckpt / "trainer_state.pt").is_file():
        return {}
    from imagegen.checkpoint import load_trainer_state

    state = load_trainer_state(ckpt)
    out = {}
    if state.get("images_seen") is not None:
        out["kimg"] = round(float(state["images_seen"]) / 1000, 3)
    if state.get("seconds") is not None:
        out["train_seconds"] = round(float(state["seconds"]), 1)
    return out


def checkpoint_dirs(run: Path) -> dict[int, Path]:
    """Step → directory of the run's ``checkpoints/step-NNNNNNN`` checkpoints."""
    out = {}
    for d in (run / "checkpoints").glob("step-*"):
        tail = d.name[len("step-"):]
        if d.is_dir() and tail.isdigit():
            out[int(tail)] = d
    return out


def evaluations(run: Path) -> tuple[list[dict[str, Any]], int]:
    """(records, skipped): one record per evaluated step of ``run``, of one protocol (the first record's
    sample count and reference, no truncation: :func:`plot_metric_vs_time.one_protocol`), with its numeric
    results; of two records at one step the later wins."""
    records = [rec for rec in read_jsonl(run / "metrics.jsonl")
               if rec.get("step") is not None and isinstance(rec.get("protocol") or {}, dict)]
    for rec in records:
        rec["protocol"] = rec.get("protocol") or {}
    kept, skipped = one_protocol(records)
    by_step: dict[int, dict[str, Any]] = {}
    for rec in kept:
        row: dict[str, Any] = {"step": int(rec["step"])}
        for k, v in rec.items():
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                row[k] = v
        by_step[row["step"]] = row
    return [by_step[s] for s in sorted(by_step)], skipped


def scalar_means(run: Path, key: str, per_kimg: float) -> list[dict[str, Any]]:
    """Means of training scalar ``key`` (also found as ``train/<key>``) per window of ``per_kimg`` thousand
    images: ``[{"kimg": [from, to], "mean": m, "n": rows}]`` for the windows with logged values."""
    sums: dict[int, list[float]] = {}
    for row in read_jsonl(run / "logs" / "scalars.jsonl"):
        value, kimg = row.get(key, row.get(f"train/{key}")), row.get("kimg")
        if value is None or kimg is None:
            continue
        i = max(math.ceil(float(kimg) / per_kimg) - 1, 0)  # windows (from, to]: the row at 10.0 is in (0, 10]
        acc = sums.setdefault(i, [0.0, 0])
        acc[0] += float(value)
        acc[1] += 1
    return [{"kimg": [round(i * per_kimg, 3), round((i + 1) * per_kimg, 3)], "mean": round(s / n, 4), "n": n}
            for i, (s, n) in sorted(sums.items())]


def summarise(run: Path, scalars: list[str], per_kimg: float) -> dict[str, Any]:
    """The summary of one run (see the module docstring).

    Raises:
        ImagegenError: ``run`` has no ``config.json``.
    """
    from imagegen.errors import ImagegenError

    if not (run / "config.json").is_file():
        raise ImagegenError(f"{run} is not a run directory (no config.json): give the --out directory of "
                            f"imagegen train")
    cfg = json.loads((run / "config.json").read_text())
    ckpts = checkpoint_dirs(run)
    evals, skipped = evaluations(run)
    # the trainer states needed, each read once: the evaluated steps' and the newest checkpoint's
    needed = {row["step"] for row in evals if row["step"] in ckpts} | ({max(ckpts)} if ckpts else set())
    progress = {step: checkpoint_progress(ckpts[step]) for step in needed}
    out: dict[str, Any] = {"run": str(run), "model": cfg.get("model")}
    if ckpts:
        out["last"] = {"step": max(ckpts), **progress[max(ckpts)]}
    for row in evals:
        if row["step"] in progress:
            row["train_seconds"] = progress[row["step"]].get("train_seconds")
    out["evaluations"] = evals
    if skipped:
        out["skipped"] = skipped
    out["scalar_means"] = {key: scalar_means(run, key, per_kimg) for key in scalars}
    return out


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="RUN or RUN:NAME (the name keys the run in the JSON)")
    ap.add_argument("--scalar", action="append", default=[], help="a logs/scalars.jsonl key to average "
                    "per --per-kimg window (repeatable)")
    ap.add_argument("--per-kimg", type=float, default=10.0, help="window of --scalar means, thousands of images")
    ap.add_argument("--what", default="", help="what the runs are: data, budget, machine, date")
    ap.add_argument("--out", type=Path, default=None, help="write the JSON here (else stdout only)")
    args = ap.parse_args(argv)

    from imagegen.errors import ImagegenError

    if not args.per_kimg > 0:
        print(f"error: --per-kimg {args.per_kimg}: must be > 0", file=sys.stderr)
        return 2
    summary: dict[str, Any] = {"what": args.what, "runs": {}}
    try:
        for spec in args.runs:
            path, _, name = spec.partition(":")
            summary["runs"][name or Path(path).name] = summarise(Path(path), args.scalar, args.per_kimg)
    except (ImagegenError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
