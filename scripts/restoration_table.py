"""PSNR/SSIM of trained restoration runs beside the classic library baselines, on held-out images.

For each run (``dncnn``, ``srresnet``, ``context-encoder``) the run's degradation is applied to
``--num`` evenly spaced images of ``--data``'s ``--split`` (indices i·L//N, so that a class-ordered
split is represented by every class; the image at index i with a generator seeded
``item_seed(--seed, i)``, exactly as ``imagegen evaluate RUN`` and ``imagegen degrade --seed`` do), the
model and every baseline of the task (:data:`imagegen.metrics.baselines.BASELINES`) restore them, and
PSNR/SSIM are computed by :func:`imagegen.metrics.paired.paired_scores` (torchmetrics, 8-bit [0, 1]).
A blind denoiser (trained on a σ range) is scored at each ``--sigmas`` level inside its range.

Writes ``--out-json`` (every number and the protocol) and, with ``--grid-dir``, one grid per
(run, level): rows of degraded (nearest-upsampled for super-resolution) | best baseline | model |
clean. Prints a markdown table.

Usage::

    python scripts/restoration_table.py --runs runs/dncnn-blind,runs/sr2 --data cifar10-jpg \\
        --data-root ../shared/data/cifar10_jpg --num 1000 --bm3d-num 100 \\
        --out-json docs/results/restoration-cifar10.json --grid-dir docs/images
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from imagegen.data import build_dataset
from imagegen.data.degradations import Degradation
from imagegen.metrics.baselines import BASELINES, evaluate_baseline, make_baseline
from imagegen.metrics.paired import degraded_batches, evaluate_restorer
from imagegen.sampling import load_run
from imagegen.sampling.images import save_grid


def levels(model, sigmas: list[float]) -> list[Degradation]:
    """The degradations to score a run at: its own, or each σ of ``sigmas`` in a blind denoiser's range."""
    d = model.config.degradation
    if d.task == "denoise" and d.blind:
        inside = [s for s in sigmas if d.sigma <= s <= d.sigma_max]
        return [Degradation.denoise(s, quantize=d.quantize) for s in inside]
    return [d]


def grid(model, baseline: str, dataset, degradation: Degradation, seed: int, n: int, path: Path) -> None:
    clean, degraded = next(degraded_batches(dataset, degradation, n, n, seed))
    shown = degraded.image
    if shown.shape[-1] != clean.shape[-1]:
        shown = F.interpolate(shown, size=clean.shape[-2:], mode="nearest")
    base = make_baseline(baseline, degradation)(degraded)
    with torch.no_grad():
        out = model.restore(degraded.image.to(model.device), None if degraded.mask is None
                            else degraded.mask.to(model.device)).cpu()
    rows = torch.stack([shown, base, out, clean], 1).flatten(0, 1)  # [n·4, C, H, W]
    save_grid(rows, path, nrow=4)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", required=True, help="comma-separated run directories of restoration models")
    ap.add_argument("--data", default="cifar10-jpg")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--split", default="test")
    ap.add_argument("--num", type=int, default=1000, help="held-out images scored")
    ap.add_argument("--bm3d-num", type=int, default=100, help="images for BM3D (≈4 s each here); 0 = skip")
    ap.add_argument("--sigmas", default="25,50", help="σ levels (0-255) for blind denoisers")
    ap.add_argument("--seed", type=int, default=0, help="degradation seed")
    ap.add_argument("--out-json", type=Path, required=True)
    ap.add_argument("--grid-dir", type=Path, default=None)
    ap.add_argument("--grid-num", type=int, default=8)
    args = ap.parse_args(argv)
    sigmas = [float(s) for s in args.sigmas.split(",")]
    results = []
    for run in args.runs.split(","):
        model = load_run(run, device="cpu")
        ds = build_dataset(args.data, root=args.data_root, split=args.split, resolution=model.config.resolution,
                           channels=model.config.channels, download=False)
        for deg in levels(model, sigmas):
            rows = []
            t0 = time.perf_counter()
            res = evaluate_restorer(lambda d: model.restore(d.image, d.mask), ds, deg, num_images=args.num,
                                    seed=args.seed)
            rows.append({"method": f"{model.model_name} (this run)", "num_images": res["num_images"],
                         "seconds": time.perf_counter() - t0, **{k: res[k] for k in ("psnr", "psnr_sem", "ssim",
                                                                                      "ssim_sem")}})
            for name in BASELINES[deg.task]:
                num = args.num if name != "bm3d" else min(args.num, args.bm3d_num)
                if num < 1:
                    continue
                t0 = time.perf_counter()
                try:
                    b = evaluate_baseline(name, ds, deg, num_images=num, seed=args.seed)
                except Exception as e:  # noqa: BLE001 - an optional package missing: say so in the table
                    print(f"  {name}: skipped ({e})", file=sys.stderr)
                    continue
                rows.append({"method": name, "num_images": b["num_images"], "seconds": time.perf_counter() - t0,
                             **{k: b[k] for k in ("psnr", "psnr_sem", "ssim", "ssim_sem")}})
            results.append({"run": run, "model": model.model_name, "degradation": deg.describe(),
                            "data": f"{args.data}:{args.split}", "seed": args.seed, "rows": rows,
                            "protocol": res["protocol"]})
            print(f"\n{model.model_name} — {deg.describe()} — {args.data}:{args.split}\n")
            print("| method | images | PSNR (dB) | SSIM | seconds |\n|---|---|---|---|---|")
            for r in rows:
                print(f"| {r['method']} | {r['num_images']} | {r['psnr']:.2f} ± {r['psnr_sem']:.2f} | "
                      f"{r['ssim']:.3f} ± {r['ssim_sem']:.3f} | {r['seconds']:.0f} |", flush=True)
            if args.grid_dir is not None:
                best = max((r for r in rows[1:] if r["method"] != "input"), key=lambda r: r["psnr"])["method"]
                tag = (f"sigma{deg.sigma:g}" if deg.task == "denoise" else f"x{deg.scale}"
                       if deg.task == "super-resolution" else f"{deg.mask}{deg.mask_fraction:g}")
                tag = f"{Path(run).name}-{tag}"
                path = args.grid_dir / f"restore-{tag}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                grid(model, best if best != "bm3d" else "nl-means", ds, deg, args.seed, args.grid_num, path)
                results[-1]["grid"] = {"path": str(path), "columns": ["degraded", best, model.model_name, "clean"]}
    args.out_json.parent.mkdir(parents=True, exist_ok=True)
    args.out_json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
