"""Cost of ADA's augmentation (issue 9): images/s of ``ada_augment`` on one batch, forward alone and
forward + backward (what G's step pays), for the geometric resampling with and without the 2×
``sym6`` filter (``affine_warp(..., antialias=True|False)``), at several ``p``.

The pipeline is :func:`imagegen.nn.ada.ada_augment` with the groups given (default ``blit,geom,color``,
the trainer's default) on random images in [-1, 1]; the random stream is seeded per repetition, so
both resampling paths augment the same images the same way.

Usage (run alone)::

    python benchmarks/bench_ada.py --json bench_ada.json
    python benchmarks/bench_ada.py --resolution 64 --batch-size 32 --p 0.1,0.5,1 --seconds 3
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from machine import add_thread_and_json_options, start  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from imagegen.nn import ada  # noqa: E402


def images_per_second(x: torch.Tensor, p: float, groups: tuple[str, ...], antialias: bool, backward: bool,
                      seconds: float) -> float:
    """Augmented images per second (one warm-up call, then repeated calls for ``seconds``)."""
    def once(k: int) -> None:
        inp = x.detach().requires_grad_(backward)
        out = ada.ada_augment(inp, p, torch.Generator().manual_seed(k), groups=groups, antialias=antialias)
        if backward:
            out.sum().backward()

    once(0)
    k, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        k += 1
        once(k)
    return k * x.shape[0] / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--p", default="0.1,0.5,1", help="augmentation probabilities, comma-separated")
    ap.add_argument("--groups", default="blit,geom,color")
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    add_thread_and_json_options(ap)
    args = ap.parse_args()
    peak = start(args)
    groups = ada.check_groups(tuple(g for g in args.groups.split(",") if g))
    x = torch.rand(args.batch_size, 3, args.resolution, args.resolution, generator=torch.Generator().manual_seed(0)) * 2 - 1
    rows = []
    print("| p | resampling | forward img/s | forward + backward img/s |")
    print("|---|---|---|---|")
    for p in (float(v) for v in args.p.split(",")):
        for antialias in (True, False):
            fwd = images_per_second(x, p, groups, antialias, False, args.seconds)
            both = images_per_second(x, p, groups, antialias, True, args.seconds)
            name = "sym6 2x (default)" if antialias else "bilinear, unfiltered"
            rows.append({"p": p, "antialias": antialias, "forward_img_s": fwd, "forward_backward_img_s": both})
            print(f"| {p:g} | {name} | {fwd:.0f} | {both:.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"machine_peak_gflops": peak, "threads": torch.get_num_threads(),
                                         "resolution": args.resolution, "batch_size": args.batch_size,
                                         "groups": list(groups), "seconds": args.seconds, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
