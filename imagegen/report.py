"""``imagegen report RUN_DIR``: PNG plots of a run and an HTML page with the plots and sample grids.

Reads only files of the run directory: ``logs/scalars.jsonl`` (training scalars), ``metrics.jsonl``
(evaluations by the trainer and by ``imagegen evaluate``) and ``samples/step-*.png`` (sample grids).
Plots use matplotlib's Agg backend through :class:`matplotlib.figure.Figure` (no pyplot global state,
no display needed). Metric values are plotted against thousands of images seen (kimg), one series per
evaluation protocol (extractor, reference set, number of generated samples), so values that are not
comparable are never joined by a line.
"""
from __future__ import annotations

import html
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Optional

from .errors import CheckpointError, ImagegenError

#: groups of metric result keys drawn in one plot each
METRIC_PLOTS = (("fid", "FID", ("fid",)), ("kid", "KID", ("kid",)), ("is", "Inception Score", ("is",)),
                ("precision_recall", "Precision and recall", ("precision", "recall")),
                ("density_coverage", "Density and coverage", ("density", "coverage")),
                ("acc", "Class-conditional accuracy", ("acc",)),
                ("class_entropy", "Class entropy / log K (mode collapse below 0.8)", ("class_entropy",)))
_STEP_PNG = re.compile(r"^step-(\d+)\.png$")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Objects of a JSON-lines file (missing file: []; malformed lines, e.g. a line cut by a crash, skipped)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            rows.append(obj)
    return rows


def _figure(title: str, ylabel: str, xlabel: str = "kimg"):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _smooth(values: list[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average with TensorBoard's debiasing (so the start is not pulled to the first value)."""
    out, acc = [], 0.0
    for i, v in enumerate(values, start=1):
        acc = weight * acc + (1 - weight) * v
        out.append(acc / (1 - weight ** i))
    return out


def _x(rows: list[dict[str, Any]]) -> tuple[list[float], str]:
    if rows and all(isinstance(r.get("kimg"), (int, float)) for r in rows):
        return [float(r["kimg"]) for r in rows], "kimg (thousands of real images shown)"
    return [float(r.get("step", i)) for i, r in enumerate(rows)], "step"


def plot_scalars(rows: list[dict[str, Any]], keys: list[str], title: str, ylabel: str, path: Path,
                 log_y: bool = False) -> Optional[Path]:
    """Plot training scalars ``keys`` against kimg (raw, faint, and exponentially smoothed)."""
    keys = [k for k in keys if any(isinstance(r.get(k), (int, float)) for r in rows)]
    if not keys:
        return None
    fig, ax = _figure(title, ylabel)
    for i, k in enumerate(keys):
        sel = [r for r in rows if isinstance(r.get(k), (int, float)) and math.isfinite(r[k])]
        x, xlabel = _x(sel)
        y = [float(r[k]) for r in sel]
        color = f"C{i % 10}"
        ax.plot(x, y, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(x, _smooth(y), color=color, label=k, linewidth=1.5)
        ax.set_xlabel(xlabel)
    if log_y and all(r[k] > 0 for k in keys for r in rows if isinstance(r.get(k), (int, float))):
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _protocol_label(row: dict[str, Any]) -> str:
    p = row.get("protocol") or {}
    ext = (p.get("extractor") or {}).get("name", "?")
    ref = p.get("reference") or {}
    split = ref.get("split") or ""
    where = "training eval" if (p.get("fake") or {}).get("during_training") else "evaluate"
    dataset = os.path.basename(str(ref.get("dataset", "?")))
    return f"{where}: {ext}, {dataset}{':' + split if split and split != 'training set' else ''}, " \
           f"{p.get('num_fake', '?')} samples"


def plot_metrics(rows: list[dict[str, Any]], keys: tuple[str, ...], title: str, path: Path) -> Optional[Path]:
    """Plot evaluation results ``keys`` against kimg, one series per protocol (``*_std`` as error bars)."""
    rows = [r for r in rows if any(isinstance(r.get(k), (int, float)) for k in keys)]
    if not rows:
        return None
    fig, ax = _figure(title, ", ".join(keys))
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(_protocol_label(r), []).append(r)
    i = 0
    for label, sel in groups.items():
        for k in keys:
            pts = sorted(((r.get("kimg") if isinstance(r.get("kimg"), (int, float)) else r.get("step", 0), r[k],
                           r.get(f"{k}_std")) for r in sel if isinstance(r.get(k), (int, float))),
                         key=lambda t: t[0])
            if not pts:
                continue
            x, y = [p[0] for p in pts], [p[1] for p in pts]
            err = [p[2] or 0.0 for p in pts]
            name = f"{k} ({label})" if len(keys) > 1 or len(groups) > 1 else label
            ax.errorbar(x, y, yerr=err if any(err) else None, marker="o", markersize=3, capsize=2,
                        color=f"C{i % 10}", label=name)
            i += 1
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    return path


def sample_grids(run_dir: Path, max_grids: Optional[int] = 12) -> list[tuple[int, Path]]:
    """(step, path) of the run's sample grids (``samples/step-N.png``) in step order: at most
    ``max_grids`` evenly spaced ones, the first and the last included (one: the last; None: all)."""
    d = run_dir / "samples"
    if not d.is_dir():
        return []
    grids = sorted((int(m.group(1)), p) for p in d.iterdir() if (m := _STEP_PNG.match(p.name)))
    if max_grids is None or len(grids) <= max_grids:
        return grids
    if max_grids <= 1:
        return grids[-1:]
    idx = sorted({round(i * (len(grids) - 1) / (max_grids - 1)) for i in range(max_grids)})
    return [grids[i] for i in idx]


def write_report(run_dir: str | os.PathLike, out: Optional[str | os.PathLike] = None) -> Path:
    """Write the plots and ``index.html`` of a run.

    Args:
        run_dir: the run directory (``--out`` of ``imagegen train``).
        out: output directory (default ``RUN_DIR/report``), created.

    Returns:
        The path of ``index.html``.

    Plots written (each only if there is data): ``losses.png`` (every ``*/loss``), ``grad_norms.png``
    (every ``*grad_norm*``, log scale), ``discriminator.png`` (D outputs and accuracies on real/fake),
    ``throughput.png`` (images/s), and one ``metric_<name>.png`` per metric group (FID, KID, IS,
    precision/recall, density/coverage, acc, class entropy) against kimg.

    Raises:
        CheckpointError: ``run_dir`` does not exist.
        ImagegenError: the run has no scalars, metrics or sample grids yet.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise CheckpointError(f"{run} is not a directory; pass the --out directory of a training run")
    scalars = read_jsonl(run / "logs" / "scalars.jsonl")
    metrics = read_jsonl(run / "metrics.jsonl")
    grids = sample_grids(run)
    if not scalars and not metrics and not grids:
        raise ImagegenError(f"{run} has no logs/scalars.jsonl, metrics.jsonl or samples/ yet; nothing to report")
    out_dir = Path(out) if out else run / "report"
    out_dir.mkdir(parents=True, exist_ok=True)

    keys = sorted({k for r in scalars for k, v in r.items() if isinstance(v, (int, float))
                   and k not in ("step", "kimg") and not k.startswith("eval/")})
    plots: list[tuple[str, Optional[Path]]] = [
        ("Losses", plot_scalars(scalars, [k for k in keys if k.endswith("/loss") or k == "loss"], "Losses", "loss",
                                out_dir / "losses.png")),
        ("Gradient norms", plot_scalars(scalars, [k for k in keys if "grad_norm" in k], "Gradient norms",
                                        "L2 norm", out_dir / "grad_norms.png", log_y=True)),
        ("Discriminator on real and fake", plot_scalars(
            scalars, [k for k in keys if re.search(r"(^|/)(d_real|d_fake|acc_real|acc_fake)$", k)],
            "Discriminator outputs and accuracy", "value", out_dir / "discriminator.png")),
        ("Throughput", plot_scalars(scalars, [k for k in keys if k in ("images_per_sec", "img/s")], "Throughput",
                                    "images / s", out_dir / "throughput.png")),
    ]
    for name, title, group in METRIC_PLOTS:
        plots.append((title, plot_metrics(metrics, group, title, out_dir / f"metric_{name}.png")))
    page = out_dir / "index.html"
    page.write_text(_html(run, out_dir, [(t, p) for t, p in plots if p is not None], metrics, grids))
    return page


def _rel(path: Path, start: Path) -> str:
    return html.escape(Path(os.path.relpath(path, start)).as_posix())


def _html(run: Path, out_dir: Path, plots: list[tuple[str, Path]], metrics: list[dict[str, Any]],
          grids: list[tuple[int, Path]]) -> str:
    config = {}
    try:
        config = json.loads((run / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        pass
    ds = config.get("dataset") or {}
    head = (f"{html.escape(str(config.get('model', '?')))} on {html.escape(str(ds.get('name', '?')))} "
            f"({ds.get('channels', '?')}x{ds.get('resolution', '?')}x{ds.get('resolution', '?')})")
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             f"<title>imagegen report: {html.escape(run.name)}</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}img{max-width:100%}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;font-size:90%}"
             ".plots img{width:580px}.grids figure{display:inline-block;margin:6px}"
             ".grids img{width:260px;image-rendering:pixelated}</style></head><body>",
             f"<h1>Run {html.escape(str(run))}</h1><p>{head}</p>"]
    if metrics:
        keys = [k for k in dict.fromkeys(k for r in metrics for k, v in r.items()
                                         if isinstance(v, (int, float)) and k not in ("step", "kimg"))]
        parts.append("<h2>Evaluations</h2><table><tr><th>step</th><th>kimg</th><th>protocol</th>"
                     + "".join(f"<th>{html.escape(k)}</th>" for k in keys) + "</tr>")
        for r in metrics[-20:]:
            cells = "".join(f"<td>{r[k]:.5g}</td>" if isinstance(r.get(k), (int, float)) else "<td></td>"
                            for k in keys)
            parts.append(f"<tr><td>{r.get('step', '')}</td><td>{r.get('kimg', '')}</td>"
                         f"<td>{html.escape(_protocol_label(r))}</td>{cells}</tr>")
        parts.append("</table>")
    parts.append("<h2>Plots</h2><div class='plots'>")
    for title, p in plots:
        parts.append(f"<figure><img src='{_rel(p, out_dir)}' alt='{html.escape(title)}'>"
                     f"<figcaption>{html.escape(title)}</figcaption></figure>")
    parts.append("</div><h2>Samples over time</h2><div class='grids'>")
    for step, p in grids:
        parts.append(f"<figure><img src='{_rel(p, out_dir)}' alt='step {step}'><figcaption>step {step:,}"
                     "</figcaption></figure>")
    if not grids:
        parts.append("<p>No sample grids yet.</p>")
    parts.append("</div></body></html>")
    return "\n".join(parts)
