"""Training-time sample grids of one or more runs in one table: a row per run, a column per moment.

Every run writes ``samples/step-NNNNNNN.png`` (the same fixed latents every ``--sample-every`` steps,
see ``imagegen train --help``); this script picks columns from those files and puts them side by side,
each headed with its step and thousands of images seen (and, for ``progan``, the resolution being
trained and the fade-in α at that point). ``--steps`` may name ``last``: each run's last grid (runs
with a wall-clock budget stop at different steps). With ``--tiles R,C`` only the top-left R×C samples
of each grid are shown (the grids' tiles are the model's resolution with 2 pixels of padding).

Usage::

    python scripts/grid_timeline.py runs/mnist-progan --columns 8 --tiles 3,3 --out growth.png
    python scripts/grid_timeline.py runs/zebra-none:none runs/zebra-diffaugment:DiffAugment \\
        runs/zebra-ada:ADA --steps 200,400,600,last --tiles 3,3 --cell 200 --out zebras.png

A run without sample grids, or a ``--steps`` value that none of the runs has, is a one-line error
(exit code 2).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

#: ``--steps last``: each run's last grid
LAST = -1
#: padding between tiles of the training-time grids (imagegen.sampling.images.save_grid's default)
PADDING = 2


def crop_tiles(grid: np.ndarray, tile: int, rows: int, cols: int) -> np.ndarray:
    """The top-left ``rows`` × ``cols`` tiles (side ``tile`` px, :data:`PADDING` between) of a grid."""
    return grid[: PADDING + rows * (tile + PADDING), : PADDING + cols * (tile + PADDING)]


def header(run_cfg: dict, step: int) -> str:
    """``step: kimg`` (and the resolution and fade-in α of a progressive run) at ``step``, short enough
    for a column title: "1300: 83k img 32px fade 0.9"."""
    kimg = step * run_cfg["train_config"]["batch_size"] / 1000
    text = f"{step}: {kimg:.3g}k img"
    if run_cfg["model"] == "progan":
        from imagegen.models.progan import growth_schedule

        mc = run_cfg["model_config"]
        res, alpha = growth_schedule(kimg, mc["start_resolution"], mc["resolution"], mc["fade_kimg"],
                                     mc["stable_kimg"])
        text += f" {res}px" + (f" fade {alpha:.1f}" if alpha < 1 else "")
    return text


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="RUN_DIR[:label]")
    ap.add_argument("--columns", type=int, default=6, help="moments, evenly spread over the first run's grids")
    ap.add_argument("--steps", default=None, help="comma-separated steps instead of --columns; 'last' = each "
                                                   "run's last grid")
    ap.add_argument("--tiles", default=None, help="R,C: show only the top-left R×C samples of each grid")
    ap.add_argument("--cell", type=int, default=240, help="pixels per table cell")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    from imagegen.report import sample_grids
    from imagegen.sampling.images import mosaic

    runs = []
    for spec in args.runs:
        path, _, label = spec.partition(":")
        run = Path(path)
        grids = dict(sample_grids(run, max_grids=None))
        if not grids or not (run / "config.json").exists():
            print(f"error: {run} has no sample grids (samples/step-*.png) or no config.json; "
                  f"pass a run directory written by `imagegen train`", file=sys.stderr)
            return 2
        runs.append((run, label or run.name, grids, json.loads((run / "config.json").read_text())))
    try:
        steps = [LAST if s.strip() == "last" else int(s) for s in args.steps.split(",")] if args.steps else []
        tiles = tuple(int(v) for v in args.tiles.split(",")) if args.tiles else None
    except ValueError:
        print(f"error: --steps {args.steps!r} / --tiles {args.tiles!r}: use comma-separated integers "
              f"(--steps may include 'last'), e.g. --steps 100,500,last --tiles 3,3", file=sys.stderr)
        return 2
    if tiles is not None and (len(tiles) != 2 or min(tiles) < 1):
        print(f"error: --tiles {args.tiles!r}: use R,C with R, C >= 1, e.g. --tiles 3,3", file=sys.stderr)
        return 2
    if args.steps:
        if not any(s == LAST or s in g for s in steps for _, _, g, _ in runs):
            print(f"error: none of the runs has a sample grid at steps {args.steps}; "
                  f"available in {runs[0][0]}: {sorted(runs[0][2])}", file=sys.stderr)
            return 2
    else:
        steps = [step for step, _ in sample_grids(runs[0][0], args.columns)]
    table, titles = [], []
    for run, label, grids, cfg in runs:
        row = []
        for step in steps:
            path = grids[max(grids)] if step == LAST else grids.get(step)
            if path is None:
                row.append(None)
                continue
            grid = np.asarray(Image.open(path))
            if tiles:
                grid = crop_tiles(grid, cfg["model_config"]["resolution"], *tiles)
            row.append(grid)
        table.append(row)
        titles.append(label)
    pic = mosaic(table, args.cell, header=["last grid" if s == LAST else header(runs[0][3], s)
                                           for s in steps])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pic.save(args.out)
    cols = ", ".join("last" if s == LAST else str(s) for s in steps)
    print(f"wrote {args.out}: rows {', '.join(titles)}; columns at steps {cols}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
