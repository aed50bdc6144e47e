"""Two checks of a trained autoregressive run (``pixelcnn``, ``pixelrnn``) for when its samples look wrong.

1. **Causality of the trained network**: for a few positions (i, j), the gradient of the body's
   features at (i, j) with respect to a random input image must be zero at every pixel at or after
   (i, j) in raster order (all channels). Prints how many later pixels it depends on (must be 0) and
   how many earlier ones it sees (the receptive field). A leak here would make the likelihood look
   good while sampling, which cannot see later pixels, fails.
2. **Samples against data under the model**: bits/dim of ``--num`` of the model's own samples and of
   ``--num`` evenly spaced test images. Samples from an exact sampler have, on average, the model's
   entropy; much higher bits/dim for the samples than for the data means that the samples drift away
   from where the model was trained (typical of under-trained models), not that the sampler is wrong.

Usage::

    python scripts/check_autoregressive_run.py runs/cifar-pixelcnn --data cifar10-jpg \\
        --data-root ../shared/data/cifar10_jpg --num 16
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

from imagegen.data import build_dataset
from imagegen.nn import likelihoods
from imagegen.sampling import load_run
from imagegen.sampling.api import run_resize


def future_dependencies(model, positions: list[tuple[int, int]], seed: int = 0) -> list[dict]:
    """For each (i, j): how many pixels at or after (i, j) (must be 0) and before it the body's features
    at (i, j) depend on, by the gradient with respect to a random image [1, C, R, R]."""
    c, r = model.config.channels or 1, model.config.resolution
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(1, c, r, r, generator=g) * 2 - 1).requires_grad_(True)
    order = torch.arange(r * r).view(r, r)
    out = []
    for i, j in positions:
        h = model.body(x, None)
        (grad,) = torch.autograd.grad(h[0, :, i, j].sum(), x)
        dep = grad[0].abs().sum(0) > 0  # [R, R]
        out.append({"pixel": [i, j], "later_pixels_seen": int((dep & (order >= i * r + j)).sum()),
                    "earlier_pixels_seen": int((dep & (order < i * r + j)).sum())})
    return out


def bits_per_dim(model, x: torch.Tensor) -> list[float]:
    """Exact bits/dim of each image of likelihood targets x [N, C, R, R] float32 (``model.likelihood_targets``;
    unconditional models): −log p(x) in nats / (C·R·R · ln 2)."""
    with torch.no_grad():
        return likelihoods.bits_per_dim(-model.log_prob(x), x[0].numel()).tolist()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run")
    ap.add_argument("--data", required=True, help="dataset of the test images (e.g. mnist, cifar10-jpg)")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--split", default="test")
    ap.add_argument("--num", type=int, default=16, help="samples and test images to score")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    model = load_run(args.run).eval()
    if getattr(model, "num_classes", 0):
        print("class-conditional runs are not supported by this check", file=sys.stderr)
        return 2
    r = model.config.resolution
    positions = [(0, 0), (r // 4, r // 4 + 1), (r // 2, 0), (r // 2, r - 1), (r - 1, r - 1)]
    causal = future_dependencies(model, positions, args.seed)
    g = torch.Generator().manual_seed(args.seed)
    samples = model.likelihood_targets(model.sample(args.num, g), torch.Generator().manual_seed(args.seed))
    ds = build_dataset(args.data, root=args.data_root, split=args.split, resolution=r,
                       channels=model.config.channels or 1, resize=run_resize(model))
    idx = torch.linspace(0, len(ds) - 1, args.num).round().long()
    real, _ = ds.get_batch(idx)  # float32 [N, C, R, R] in [-1, 1]
    real = model.likelihood_targets(real, torch.Generator().manual_seed(args.seed))
    res = {"run": args.run, "causality": causal, "samples_bpd": bits_per_dim(model, samples),
           "test_bpd": bits_per_dim(model, real), "test_images": f"{args.num} evenly spaced of {args.data} "
                                                                   f"({args.split})"}
    for row in causal:
        print(f"features at {tuple(row['pixel'])}: {row['later_pixels_seen']} later pixels seen (must be 0), "
              f"{row['earlier_pixels_seen']} earlier")
    for name in ("samples_bpd", "test_bpd"):
        v = res[name]
        print(f"{name}: mean {sum(v) / len(v):.3f}, range {min(v):.2f}–{max(v):.2f}")
    print(json.dumps(res))
    return 0 if all(row["later_pixels_seen"] == 0 for row in causal) else 1


if __name__ == "__main__":
    sys.exit(main())
