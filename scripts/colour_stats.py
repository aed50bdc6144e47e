"""Colour statistics of generated samples beside their training images: has a model's palette drifted?

For each set (uint8 RGB images): the mean of each channel in [0, 1], the mean HSV saturation
(max - min) / max per pixel (0 where max = 0), and the share of green-dominant pixels (G above both R
and B). A colour shift of the generator (for instance an augmentation leaking into it, Karras et al.
2020, "Training GANs with Limited Data", §2.2) shows as a gap between the samples' numbers and the
training images'; a grid of a few fixed latents can look tinted without one.

Usage::

    imagegen sample runs/zebra-ada --num 5000 --out samples.npz
    python scripts/colour_stats.py --fake samples.npz --real horse2zebra_trainB.zip --resolution 64 --json c.json

Bad input (missing files, samples of another size than the reference, grey images) is a one-line error,
exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

import torch

sys.path.insert(0, str(Path(__file__).parent))
from nearest_neighbours import add_sample_options, load_samples_and_reference  # noqa: E402


def colour_stats(images: torch.Tensor) -> dict[str, object]:
    """``{"mean_rgb": [r, g, b], "saturation": s, "green_dominant": g}`` of uint8 [N, 3, H, W] images
    (all in [0, 1])."""
    x = images.double().div(255.0)
    mx, mn = x.amax(dim=1), x.amin(dim=1)
    sat = torch.where(mx > 0, (mx - mn) / mx.clamp_min(1e-12), torch.zeros_like(mx))
    green = (x[:, 1] > x[:, 0]) & (x[:, 1] > x[:, 2])
    return {"mean_rgb": [round(float(v), 4) for v in x.mean(dim=(0, 2, 3))],
            "saturation": round(float(sat.mean()), 4), "green_dominant": round(float(green.double().mean()), 4)}


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_sample_options(ap)
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = ap.parse_args(argv)

    from imagegen.errors import ImagegenError

    try:
        fake, ds = load_samples_and_reference(args)
        if fake.shape[1] != 3:
            raise ImagegenError(f"colour statistics need RGB images; {args.fake} has {fake.shape[1]} channel(s)")
    except ImagegenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    record = {"fake": args.fake, "real": args.real, "resolution": int(fake.shape[-1]), "num_fake": len(fake),
              "num_real": len(ds.images), "samples": colour_stats(fake), "reference": colour_stats(ds.images)}
    text = json.dumps(record, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
