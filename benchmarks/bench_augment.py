"""Gaussian smoothing and colour jitter (issue 12, "Classic transforms"): imagegen's batched torch ops
against kornia's functions for the same operations, in images/s on the same batches, with the largest
difference between their outputs.

* **Blur**: :func:`imagegen.data.augment.gaussian_blur` (separable, depthwise, reflection at the
  borders, one σ per image) against ``kornia.filters.gaussian_blur2d`` with the same odd kernel size
  (2·⌈3 σ_max⌉ + 1), ``border_type="reflect"`` and the same per-image σ ([B, 2]); σ uniform in
  [0.1, ``--max-sigma``] per image (kornia's kernel is undefined at σ = 0, where imagegen returns the
  image itself).
* **Colour jitter**: :func:`imagegen.data.augment.color_jitter` (brightness, contrast, saturation in
  that order, torchvision's semantics) against kornia's torchvision-matching functions
  ``adjust_brightness_accumulative``, ``adjust_contrast_with_mean_subtraction`` and
  ``adjust_saturation_with_gray_subtraction`` on the same [0, 1] intensities, factors uniform in
  [1 − s, 1 + s] per image.

kornia is not a dependency of imagegen; install it to run this (``pip install kornia``). Forward
only (what the data pipeline runs), median of ``--repeats`` timed calls after 3 warm-up calls.

Usage (run alone)::

    python benchmarks/bench_augment.py --json docs/results/bench-augment.json
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).parent))
from machine import add_thread_and_json_options, start  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from imagegen.data.augment import color_jitter, gaussian_blur  # noqa: E402


def median_seconds(fn: Callable[[], torch.Tensor], repeats: int) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` calls after 3 warm-up calls."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="64x32,32x64,8x128",
                    help="comma-separated BATCHxSIZE of RGB batches (square images)")
    ap.add_argument("--max-sigma", type=float, default=2.0, help="largest blur σ in pixels")
    ap.add_argument("--strength", type=float, default=0.4, help="jitter strength of all three factors")
    ap.add_argument("--repeats", type=int, default=30)
    add_thread_and_json_options(ap)
    args = ap.parse_args()
    try:
        import kornia
    except ImportError:
        print("error: kornia is not installed (pip install kornia); it is only needed for this comparison",
              file=sys.stderr)
        return 2
    peak = start(args)
    gen = torch.Generator().manual_seed(0)
    rows = []
    print(f"kornia {kornia.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| batch | op | imagegen img/s | kornia img/s | kornia / imagegen time | max abs difference |")
    print("|---|---|---|---|---|---|")
    for spec in args.shapes.split(","):
        b, r = (int(v) for v in spec.lower().split("x"))
        img = torch.rand(b, 3, r, r, generator=gen) * 2 - 1
        sigma = 0.1 + (args.max_sigma - 0.1) * torch.rand(b, generator=gen)
        k = 2 * min(int(math.ceil(3 * float(sigma.max()))), r - 1) + 1
        s2 = torch.stack([sigma, sigma], 1)
        ours_blur = lambda: gaussian_blur(img, sigma)  # noqa: E731
        kornia_blur = lambda: kornia.filters.gaussian_blur2d(img, (k, k), s2, border_type="reflect")  # noqa: E731
        lo, hi = 1 - args.strength, 1 + args.strength
        bf, cf, sf = (lo + (hi - lo) * torch.rand(b, generator=gen) for _ in range(3))

        def ours_jitter() -> torch.Tensor:
            return color_jitter(img, bf, cf, sf)

        def kornia_jitter() -> torch.Tensor:
            v = kornia.enhance.adjust_brightness_accumulative((img + 1) * 0.5, bf).clamp(0, 1)
            v = kornia.enhance.adjust_contrast_with_mean_subtraction(v, cf)
            return kornia.enhance.adjust_saturation_with_gray_subtraction(v, sf) * 2 - 1

        for op, ours, theirs in (("blur", ours_blur, kornia_blur), ("colour jitter", ours_jitter, kornia_jitter)):
            diff = float((ours() - theirs()).abs().max())
            t_ours, t_kornia = median_seconds(ours, args.repeats), median_seconds(theirs, args.repeats)
            row = {"batch": b, "resolution": r, "op": op, "imagegen_img_s": b / t_ours, "kornia_img_s": b / t_kornia,
                   "kornia_time_ratio": t_kornia / t_ours, "max_abs_difference": diff}
            if op == "blur":
                row.update(kernel_size=k, max_sigma=args.max_sigma)
            rows.append(row)
            print(f"| {b}×3×{r}×{r} | {op} | {row['imagegen_img_s']:.0f} | {row['kornia_img_s']:.0f} | "
                  f"{row['kornia_time_ratio']:.2f} | {diff:.1e} |")
    if args.json:
        args.json.write_text(json.dumps({"machine_peak_gflops": peak, "threads": torch.get_num_threads(),
                                         "kornia": kornia.__version__, "torch": torch.__version__,
                                         "repeats": args.repeats, "strength": args.strength, "rows": rows},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
