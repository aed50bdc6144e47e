"""Plot one metric (test NLL, FID, KID, ...) against training time for several runs on one figure.

Training time at step s is the sum, over the run's log windows up to s, of the window's images divided
by its logged images/s (``logs/scalars.jsonl``): the time spent in training steps, without the
evaluations and checkpoints in between. Values are the ``--metric`` records of ``metrics.jsonl``
(``--eval-every`` during training, ``imagegen evaluate`` after it). Records of one curve must share a
protocol: for ``nll`` (nats per image) and ``nll_bpd`` (bits/dim) the same number of test images
(``--images``, default the 1,000 that ``--eval-metrics nll`` uses during training); for the sample
metrics the same number of generated samples (``--num-fake``, default the first record's) and the same
reference images as the run's first record — other records are skipped and counted on stderr.
``--scalar KEY`` plots a training scalar of ``logs/scalars.jsonl`` instead (e.g. ``D/ada_p``, ADA's
augmentation probability), ``--x kimg`` puts thousands of images seen on the horizontal axis, and
``--max-x`` leaves out the points beyond a value of that axis. ``--point 'label=x,value'`` adds one result
from elsewhere, x in seconds of training on the minutes axis and in kimg on the kimg axis.
``--summary 'FILE.json:RUN[:label]'`` adds the curve of a run kept only as a ``scripts/run_summary.py``
JSON (its ``evaluations``, at their ``kimg`` or ``train_seconds``), e.g. a documented run whose directory
is gone; with ``--scalar KEY`` and ``--x kimg`` it plots the JSON's ``scalar_means`` of that key instead
(one point per window, at the window's middle). Curves are drawn in the order run directories, then
``--summary`` curves: summarise every run to draw them in an order of your choice.

Usage::

    python scripts/plot_metric_vs_time.py runs/mnist-pixelcnn:pixelcnn runs/mnist-pixelrnn:"pixelrnn (Row LSTM)" \
        --point "vae (docs/models.md)=706,85.87" --ref "Diagonal BiLSTM, 7 layers (paper)=79.20" \
        --out docs/images/nll-vs-time-mnist.png
    python scripts/plot_metric_vs_time.py runs/mnist-stylegan2:stylegan2 runs/mnist-dcgan:dcgan \
        --metric fid --log-y --out docs/images/fid-vs-time-mnist.png
    python scripts/plot_metric_vs_time.py runs/zebra-ada:ADA --scalar D/ada_p --x kimg --out p.png
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def batch_size(run: Path) -> int:
    """Images per training step of ``run`` (its ``config.json``)."""
    return json.loads((run / "config.json").read_text())["train_config"]["batch_size"]


def training_seconds(run: Path) -> dict[int, float]:
    """Cumulative training seconds at each logged step of ``run``."""
    batch = batch_size(run)
    out, total, prev = {0: 0.0}, 0.0, 0
    for row in read_jsonl(run / "logs" / "scalars.jsonl"):
        step, ips = row.get("step"), row.get("images_per_sec")
        if step is None or not ips or step <= prev:
            continue
        total += (step - prev) * batch / ips
        out[step], prev = total, step
    return out


#: the likelihood metrics: nats per image, bits per dimension
NLL_METRICS = ("nll", "nll_bpd")


def images_count(text: str) -> int:
    """The number of images in a protocol's ``images`` text ("first 1000 of mnist (test)", "1000 evenly
    spaced of ..."): its first integer, 0 if none."""
    for word in text.replace(",", "").split():
        if word.isdigit():
            return int(word)
    return 0


def nll_points(run: Path, images: int, metric: str = "nll") -> list[tuple[float, float, int]]:
    """(training seconds, value, step) for every ``metric`` record (``nll`` in nats or ``nll_bpd`` in
    bits/dim) of ``run`` on ``images`` test images (one set of images for the whole curve: the first
    1,000 of the test split during training)."""
    best: dict[int, float] = {}
    for rec in read_jsonl(run / "metrics.jsonl"):
        nll, step = rec.get(metric, rec.get("results", {}).get(metric)), rec.get("step")
        if nll is None or step is None:
            continue
        count = images_count(str(rec.get("protocol", {}).get("images", "")))
        if count == images:
            best[step] = float(nll)
    return at_training_seconds(run, best)


def one_protocol(records: list[dict], num_fake: Optional[int] = None) -> tuple[list[dict], int]:
    """(kept, skipped) of sample-metric ``records`` (each with a dict ``protocol``): kept are those scored
    with ``num_fake`` generated samples (default: the first record's) against the same reference images
    as the first record, without truncation (style-based runs: a truncated sweep is another
    distribution); the others are counted in ``skipped``. Order is kept."""
    kept, first_ref, skipped = [], None, 0
    for rec in records:
        protocol = rec["protocol"]
        n, ref = protocol.get("num_fake"), (protocol.get("reference") or {}).get("key")
        psi = (protocol.get("fake") or {}).get("truncation_psi", 1.0)
        if num_fake is None:
            num_fake = n
        if first_ref is None:
            first_ref = ref
        if n != num_fake or ref != first_ref or psi != 1.0:
            skipped += 1
            continue
        kept.append(rec)
    return kept, skipped


def sample_metric_points(run: Path, metric: str, num_fake: Optional[int]) -> list[tuple[float, float, int]]:
    """(training seconds, value, step) for every ``metric`` record of ``run`` (fid, kid, precision, ...)
    of one protocol (:func:`one_protocol`); the later of two records at one step wins."""
    records = [rec for rec in read_jsonl(run / "metrics.jsonl")
               if rec.get(metric) is not None and rec.get("step") is not None
               and isinstance(rec.get("protocol") or {}, dict)]
    for rec in records:
        rec["protocol"] = rec.get("protocol") or {}
    kept, skipped = one_protocol(records, num_fake)
    if skipped:
        print(f"{run}: skipped {skipped} {metric} record(s) with another sample count or reference", file=sys.stderr)
    return at_training_seconds(run, {rec["step"]: float(rec[metric]) for rec in kept})


def scalar_points(run: Path, key: str) -> list[tuple[float, float, int]]:
    """(training seconds, value, step) of every ``logs/scalars.jsonl`` row that logged ``key`` (also
    found as ``train/<key>``)."""
    values: dict[int, float] = {}
    for row in read_jsonl(run / "logs" / "scalars.jsonl"):
        value = row.get(key, row.get(f"train/{key}"))
        if value is not None and row.get("step") is not None:
            values[int(row["step"])] = float(value)
    return at_training_seconds(run, values)


def seconds_at(secs: dict[int, float], step: int) -> float:
    """Training seconds at ``step``: linear between the logged steps around it (a log window's steps all
    ran at its logged images/s), at the last window's rate after the last logged step."""
    steps = sorted(secs)
    after = [s for s in steps if s >= step]
    if after and after[0] == step:
        return secs[step]
    before = [s for s in steps if s < step]
    s0 = before[-1] if before else 0
    if after:
        s1 = after[0]
    elif len(before) >= 2:
        s0, s1 = before[-2], before[-1]  # extrapolate with the last window's rate
    else:
        return secs.get(s0, 0.0)
    t0 = secs.get(s0, 0.0)
    return t0 + (step - s0) * (secs[s1] - t0) / (s1 - s0)


def at_training_seconds(run: Path, values: dict[int, float]) -> list[tuple[float, float, int]]:
    """Attach to each (step → value) the training seconds at that step (:func:`seconds_at`)."""
    secs = training_seconds(run)
    return [(seconds_at(secs, step), value, step) for step, value in sorted(values.items())]


def curve(run: Path, pts: list[tuple[float, float, int]], x: str = "minutes",
          max_x: Optional[float] = None) -> tuple[list[float], list[float]]:
    """(xs, ys) of ``pts`` ((training seconds, value, step) as above) on the horizontal axis ``x``:
    training minutes, or thousands of images seen (``kimg``: step × the run's batch size / 1000); points
    with x > ``max_x`` are left out."""
    if x == "kimg":
        batch = batch_size(run)
        xs = [p[2] * batch / 1000 for p in pts]
    else:
        xs = [p[0] / 60 for p in pts]
    keep = [i for i, v in enumerate(xs) if max_x is None or v <= max_x]
    return [xs[i] for i in keep], [pts[i][1] for i in keep]


def point_xy(spec: str, x_axis: str) -> tuple[str, float, float]:
    """``'label=x,value'`` -> (label, x on the ``x_axis`` in its unit, value). x is seconds of training on
    the minutes axis (as documented results state them) and thousands of images on the kimg axis.
    Raises ValueError naming the expected form."""
    label, _, xy = spec.rpartition("=")
    try:
        x, value = (float(v) for v in xy.split(","))
    except ValueError:
        raise ValueError(f"--point {spec!r}: use 'label=x,value' with x in "
                         f"{'seconds' if x_axis == 'minutes' else 'kimg'}") from None
    return label, (x / 60 if x_axis == "minutes" else x), value


def summary_curve(spec: str, metric: str, x_axis: str, max_x: Optional[float] = None,
                  scalar: Optional[str] = None) -> tuple[str, list[float], list[float]]:
    """``'FILE.json:RUN[:label]'`` -> (label, xs, ys): the ``metric`` of every evaluation of run ``RUN`` in a
    :mod:`run_summary` JSON, at its kimg (``x_axis`` kimg) or training minutes; with ``scalar``, the
    JSON's ``scalar_means`` of that training scalar instead, at the middle of each kimg window (``x_axis``
    must be kimg). Raises ValueError naming the problem (a missing file or run, no such metric or scalar)."""
    path, _, rest = spec.partition(".json:")
    name, _, label = rest.partition(":")
    if not name:
        raise ValueError(f"--summary {spec!r}: use 'FILE.json:RUN[:label]'")
    try:
        runs = json.loads(Path(path + ".json").read_text())["runs"]
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"--summary {spec!r}: cannot read a run_summary.py JSON from {path}.json ({e})") from None
    if name not in runs:
        raise ValueError(f"--summary {spec!r}: no run {name!r} in {path}.json (it has {', '.join(runs)})")
    if scalar:
        if x_axis != "kimg":
            raise ValueError(f"--summary {spec!r} with --scalar: use --x kimg (run_summary.py keeps training "
                             "scalars as means per kimg window)")
        windows = runs[name].get("scalar_means", {}).get(scalar)
        if not windows:
            raise ValueError(f"--summary {spec!r}: no scalar_means of {scalar!r} for run {name!r}; write the "
                             f"JSON with run_summary.py --scalar {scalar}")
        xs = [(w["kimg"][0] + w["kimg"][1]) / 2 for w in windows]
        ys = [w["mean"] for w in windows]
    else:
        key = "kimg" if x_axis == "kimg" else "train_seconds"
        evals = [e for e in runs[name].get("evaluations", []) if metric in e and key in e]
        if not evals:
            raise ValueError(f"--summary {spec!r}: no evaluation of run {name!r} has both {metric} and {key}")
        xs = [e[key] if x_axis == "kimg" else e[key] / 60 for e in evals]
        ys = [e[metric] for e in evals]
    keep = [i for i, v in enumerate(xs) if max_x is None or v <= max_x]
    return label or name, [xs[i] for i in keep], [ys[i] for i in keep]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="*", help="RUN_DIR[:label]")
    ap.add_argument("--summary", action="append", default=[],
                    help="the curve of a run kept as a run_summary.py JSON, 'FILE.json:RUN[:label]' (sample "
                         "metrics, x from its evaluations' kimg or train_seconds; or --scalar KEY with --x kimg, "
                         "from its scalar_means)")
    ap.add_argument("--ref", action="append", default=[], help="a horizontal reference line, 'label=value'")
    ap.add_argument("--point", action="append", default=[],
                    help="a single result from elsewhere, 'label=x,value' (e.g. a documented run): x in seconds "
                         "of training with --x minutes, in kimg with --x kimg")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--metric", default="nll", help="nll (nats), nll_bpd (bits/dim), or a sample metric of "
                                                    "metrics.jsonl: fid, kid, is, precision, recall, confident, ...")
    ap.add_argument("--title", default=None, help="default: '<metric> against training time'")
    ap.add_argument("--images", type=int, default=1000, help="nll: plot the records on this many test images")
    ap.add_argument("--num-fake", type=int, default=None,
                    help="sample metrics: plot the records with this many samples (default: each run's first)")
    ap.add_argument("--log-y", action="store_true", help="logarithmic value axis (FID falls over decades)")
    ap.add_argument("--scalar", default=None, help="plot this training scalar of logs/scalars.jsonl instead "
                                                   "of --metric (e.g. D/ada_p)")
    ap.add_argument("--x", choices=("minutes", "kimg"), default="minutes",
                    help="horizontal axis: training minutes or thousands of images seen")
    ap.add_argument("--max-x", type=float, default=None,
                    help="leave out points beyond this value of the horizontal axis (its unit), e.g. to compare "
                         "a long run's first 100 k images with shorter runs")
    args = ap.parse_args()
    if args.max_x is not None and args.max_x <= 0:
        print(f"error: --max-x {args.max_x}: use a positive value in the horizontal axis' unit", file=sys.stderr)
        return 2
    if not args.runs and not args.summary:
        print("error: give at least one RUN_DIR or --summary FILE.json:RUN", file=sys.stderr)
        return 2
    if args.summary and not args.scalar and args.metric in NLL_METRICS:
        print("error: --summary curves are sample metrics (e.g. --metric fid) or --scalar KEY, not nll",
              file=sys.stderr)
        return 2
    try:
        points = [point_xy(spec, args.x) for spec in args.point]
        summaries = [summary_curve(spec, args.metric, args.x, args.max_x, args.scalar) for spec in args.summary]
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2), dpi=110)
    ax = fig.add_subplot()
    for spec in args.runs:
        path, _, label = spec.partition(":")
        run = Path(path)
        pts = (scalar_points(run, args.scalar) if args.scalar
               else nll_points(run, args.images, args.metric) if args.metric in NLL_METRICS
               else sample_metric_points(run, args.metric, args.num_fake))
        if not pts:
            print(f"no {args.scalar or args.metric} records in {path}", file=sys.stderr)
            continue
        xs, ys = curve(run, pts, args.x, args.max_x)
        ax.plot(xs, ys, marker="o" if len(xs) < 60 else None, markersize=3, label=label or path)
    for label, xs, ys in summaries:
        ax.plot(xs, ys, marker="o", markersize=3, label=label)
    for label, x, value in points:
        if args.max_x is None or x <= args.max_x:
            ax.plot([x], [value], marker="s", linestyle="none", label=label)
    for ref in args.ref:
        label, _, value = ref.rpartition("=")
        ax.axhline(float(value), linestyle="--", linewidth=0.9, color="grey")
        ax.annotate(label, (0, float(value)), xycoords=("axes fraction", "data"), fontsize=7, va="bottom",
                    color="dimgrey")
    ax.set_xlabel("training time (minutes, 2-core CPU)" if args.x == "minutes" else "thousands of images seen (kimg)")
    unit = "nats per image" if args.metric == "nll" else "bits/dim"
    against = "training time" if args.x == "minutes" else "images seen"
    if args.scalar:
        ax.set_ylabel(args.scalar)
        default_title = f"{args.scalar} against {against}"
    elif args.metric in NLL_METRICS:
        ax.set_ylabel(f"test NLL ({unit}, {args.images:,} test images)")
        default_title = f"Test NLL ({unit}) against {against}"
    else:
        ax.set_ylabel(args.metric.upper() if args.metric in ("fid", "kid", "is") else args.metric)
        default_title = f"{args.metric.upper()} against {against}"
    if args.log_y:
        ax.set_yscale("log")
    ax.set_title(args.title or default_title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
