"""Build a paired A → B dataset for ``imagegen train pix2pix`` from unpaired images: colourisation.

For each colour image among ``--num`` evenly spaced images of ``--data``'s ``--split`` (all by default;
evenly spaced because dataset files are often ordered by class) (a named dataset such as
``cifar10-jpg``, or a folder/zip of images), writes

    OUT/B/NNNNNN.png   the image as stored (RGB, 8 bits): the target
    OUT/A/NNNNNN.png   its luminance, 8 bits, repeated in the three channels: the input
    OUT/pairs.json     the source, the conversion, and the "no colourisation" baseline

Grey source images (channels nowhere more than 8 levels apart: grayscale photos stored as RGB, with
JPEG noise) are skipped and counted: their target is their input, which says nothing about
colourisation and gives an infinite PSNR. ``OUT`` is then a paired dataset in the ``A/`` + ``B/``
layout that :mod:`imagegen.data.paired` reads. The task is one of pix2pix's own experiments,
colourisation (Isola et al. 2017, on ImageNet there). Luminance is ``skimage.color.rgb2gray``
(Y = 0.2125 R + 0.7154 G + 0.0721 B, ITU-R BT.709 weights), rounded to the 8-bit grid; the colour
target has exactly this luminance up to rounding, so every method is judged on the colour it adds.

``pairs.json`` also records the PSNR/SSIM of the grey input itself against the colour target
(:func:`imagegen.metrics.paired.paired_scores`, the protocol ``imagegen evaluate RUN`` uses for
pix2pix): the floor a colouriser must beat.

Usage::

    python scripts/make_pairs.py --data cifar10-jpg --data-root ../shared/data/cifar10_jpg --split train \\
        --num 50000 --out pairs/cifar-colour/train
    python scripts/make_pairs.py --data cifar10-jpg --data-root ../shared/data/cifar10_jpg --split test \\
        --num 2000 --out pairs/cifar-colour/test

Exit code 2 with a one-line message for a bad option, missing data, grayscale source images, or an
``OUT`` that already holds ``A/`` or ``B/`` (``--force`` replaces them).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from imagegen.data import build_dataset
from imagegen.data.base import uint8_to_float
from imagegen.errors import ImagegenError
from imagegen.metrics.paired import PROTOCOL, paired_scores

#: channel spread (8-bit levels) up to which a source image counts as grey and is skipped
GREY_TOLERANCE = 8


def luminance_rgb(rgb: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, 3] colour images → uint8 [N, H, W, 3] grey images (BT.709 luma, rounded, repeated)."""
    from skimage.color import rgb2gray

    y = np.rint(rgb2gray(rgb) * 255.0).clip(0, 255).astype(np.uint8)  # [N, H, W], rgb2gray scales to [0, 1]
    return np.repeat(y[..., None], 3, axis=-1)


def is_grey(rgb: np.ndarray, tolerance: int = GREY_TOLERANCE) -> np.ndarray:
    """bool [N]: images (uint8 [N, H, W, 3]) whose channels nowhere differ by more than ``tolerance`` levels."""
    x = rgb.astype(np.int16)
    return (x.max(-1) - x.min(-1)).reshape(len(x), -1).max(1) <= tolerance


def evenly_spaced(n_total: int, num: int) -> torch.Tensor:
    """int64 [min(num, n_total)]: indices spread evenly over ``range(n_total)`` (all when num ≥ n_total)."""
    if num >= n_total:
        return torch.arange(n_total)
    return torch.from_numpy(np.linspace(0, n_total - 1, num).round().astype(np.int64))


def write_pairs(dataset, indices: torch.Tensor, out: Path, batch: int = 1000) -> dict[str, float]:
    """Write OUT/A and OUT/B for the colour images among ``indices`` (int64 [N]; grey ones skipped, see
    :func:`is_grey`), named by their index; return the grey input's mean PSNR/SSIM (and sems) and the counts."""
    psnr, ssim, skipped = [], [], 0
    for idx in indices.split(batch):
        img, _ = dataset.get_batch_uint8(idx)  # uint8 [B, 3, H, W]
        keep = torch.from_numpy(~is_grey(img.permute(0, 2, 3, 1).numpy()))
        skipped += int((~keep).sum())
        idx, img = idx[keep], img[keep]
        if len(idx) == 0:
            continue
        rgb = img.permute(0, 2, 3, 1).numpy()
        grey = luminance_rgb(rgb)
        for sub in ("A", "B"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        for i, a, b in zip(idx.tolist(), grey, rgb):
            Image.fromarray(a).save(out / "A" / f"{i:06d}.png")
            Image.fromarray(b).save(out / "B" / f"{i:06d}.png")
        s = paired_scores(uint8_to_float(torch.from_numpy(grey).permute(0, 3, 1, 2)), uint8_to_float(img))
        psnr.append(s["psnr"].double())
        ssim.append(s["ssim"].double())
    if not psnr:
        raise ValueError(f"all {len(indices)} images are grey; colourisation needs colour images")
    p, q = torch.cat(psnr), torch.cat(ssim)
    n = len(p)
    sem = (lambda v: float(v.std() / n ** 0.5)) if n > 1 else (lambda v: float("nan"))
    return {"pairs": n, "skipped_grey": skipped, "psnr": float(p.mean()), "psnr_sem": sem(p),
            "ssim": float(q.mean()), "ssim_sem": sem(q)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data", required=True, help="named dataset (cifar10-jpg, ...) or a folder/zip of colour images")
    ap.add_argument("--data-root", default=None, help="directory holding a named dataset's files")
    ap.add_argument("--split", default="train")
    ap.add_argument("--resolution", type=int, default=None, help="square size in pixels (default: as stored)")
    ap.add_argument("--num", type=int, default=None, help="N evenly spaced images (default: all)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--force", action="store_true", help="replace OUT/A, OUT/B and OUT/pairs.json")
    args = ap.parse_args(argv)
    try:
        if args.num is not None and args.num < 1:
            raise ValueError(f"--num {args.num}: use at least 1")
        targets = [args.out / "A", args.out / "B", args.out / "pairs.json"]
        if any(t.exists() for t in targets):
            if not args.force:
                raise ValueError(f"{args.out} already holds pairs; pass --force to replace them "
                                 "or choose another --out")
            for t in targets:
                shutil.rmtree(t) if t.is_dir() else t.unlink(missing_ok=True)
        ds = build_dataset(args.data, root=args.data_root, split=args.split, resolution=args.resolution,
                           download=False)
        if ds.channels != 3:
            raise ValueError(f"{args.data} has {ds.channels}-channel images; colourisation needs colour (RGB) images")
        indices = evenly_spaced(len(ds), len(ds) if args.num is None else args.num)
        num = len(indices)
        grey = write_pairs(ds, indices, args.out)
        pairs = grey.pop("pairs")
        record = {"task": "colourisation", "data": f"{args.data}:{args.split}", "images": num,
                  "chosen": "all" if num == len(ds) else f"{num} evenly spaced of {len(ds)}", "pairs": pairs,
                  "skipped_grey": grey.pop("skipped_grey"),
                  "grey_rule": f"channels nowhere differ by more than {GREY_TOLERANCE} levels",
                  "resolution": ds.resolution, "files": "NNNNNN.png = index in the source",
                  "input": "skimage.color.rgb2gray (BT.709 luma), 8-bit, repeated in 3 channels",
                  "grey_input_as_output": grey, "score_protocol": PROTOCOL}
        (args.out / "pairs.json").write_text(json.dumps(record, indent=1))
        print(f"{pairs} pairs ({num - pairs} grey images skipped) in {args.out} "
              f"({ds.resolution}x{ds.resolution}); grey input vs colour target: "
              f"PSNR {grey['psnr']:.2f} dB, SSIM {grey['ssim']:.3f}")
    except (ValueError, ImagegenError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
