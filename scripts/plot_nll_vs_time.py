"""Plot test NLL against training time for several runs on one figure (docs/models.md's likelihood plots).

Training time at step s is the sum, over the run's log windows up to s, of the window's images divided
by its logged images/s (``logs/scalars.jsonl``): the time spent in training steps, without the
evaluations and checkpoints in between. NLL values are the ``nll`` records of ``metrics.jsonl``
(``--eval-metrics nll`` during training, ``imagegen evaluate --metrics nll`` after it); records of
one curve all score the same images (``--images``, default the first 1,000 test images that
``--eval-metrics nll`` uses during training).

Usage::

    python scripts/plot_nll_vs_time.py runs/mnist-pixelcnn:pixelcnn runs/mnist-pixelrnn:"pixelrnn (Row LSTM)" \
        --point "vae (docs/models.md)=706,85.87" --ref "Diagonal BiLSTM, 7 layers (paper)=79.20" \
        --out docs/images/nll-vs-time-mnist.png
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def training_seconds(run: Path) -> dict[int, float]:
    """Cumulative training seconds at each logged step of ``run``."""
    cfg = json.loads((run / "config.json").read_text())
    batch = cfg["train_config"]["batch_size"]
    out, total, prev = {0: 0.0}, 0.0, 0
    for row in read_jsonl(run / "logs" / "scalars.jsonl"):
        step, ips = row.get("step"), row.get("images_per_sec")
        if step is None or not ips or step <= prev:
            continue
        total += (step - prev) * batch / ips
        out[step], prev = total, step
    return out


def nll_points(run: Path, images: int) -> list[tuple[float, float, int]]:
    """(training seconds, nll in nats, step) for every NLL record of ``run`` on ``images`` test images
    (one set of images for the whole curve: the first 1,000 of the test split during training)."""
    secs = training_seconds(run)
    steps = sorted(secs)
    best: dict[int, tuple[int, float]] = {}
    for rec in read_jsonl(run / "metrics.jsonl"):
        nll, step = rec.get("nll", rec.get("results", {}).get("nll")), rec.get("step")
        if nll is None or step is None:
            continue
        count = int(str(rec.get("protocol", {}).get("images", "first 0")).split()[1].replace(",", "") or 0)
        if count == images:
            best[step] = (count, float(nll))
    pts = []
    for step, (_, nll) in sorted(best.items()):
        at = max((s for s in steps if s <= step), default=0)
        pts.append((secs[at], nll, step))
    return pts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="RUN_DIR[:label]")
    ap.add_argument("--ref", action="append", default=[], help="a horizontal reference line, 'label=value'")
    ap.add_argument("--point", action="append", default=[],
                    help="a single result from elsewhere, 'label=seconds,value' (e.g. a documented run)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--title", default="Test NLL (nats) against training time")
    ap.add_argument("--images", type=int, default=1000, help="plot the NLL records on this many test images")
    args = ap.parse_args()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2), dpi=110)
    ax = fig.add_subplot()
    for spec in args.runs:
        path, _, label = spec.partition(":")
        pts = nll_points(Path(path), args.images)
        if not pts:
            print(f"no nll records in {path}", file=sys.stderr)
            continue
        ax.plot([p[0] / 60 for p in pts], [p[1] for p in pts], marker="o", markersize=3, label=label or path)
    for point in args.point:
        label, _, xy = point.rpartition("=")
        sec, value = (float(v) for v in xy.split(","))
        ax.plot([sec / 60], [value], marker="s", linestyle="none", label=label)
    for ref in args.ref:
        label, _, value = ref.rpartition("=")
        ax.axhline(float(value), linestyle="--", linewidth=0.9, color="grey")
        ax.annotate(label, (0, float(value)), xycoords=("axes fraction", "data"), fontsize=7, va="bottom",
                    color="dimgrey")
    ax.set_xlabel("training time (minutes, 2-core CPU)")
    ax.set_ylabel(f"test NLL (nats per image, first {args.images:,} test images)")
    ax.set_title(args.title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
