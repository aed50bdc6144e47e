"""Image fusion side by side: Laplacian-pyramid, Poisson and latent blending of the same (A, B, mask)
triples, one row per triple, timed.

Each row: A, B, the mask (framed in grey), then the output of each method (``--methods``). ``latent`` needs ``--run`` (a
run that can encode or be projected, see ``imagegen blend``) and adds two cells: A's and B's
reconstructions by the model (how faithful the blend can be is bounded by them). Latent blending works
at the model's resolution, so every cell is shown at one size (``--cell``, letterboxed).

``--digits DATA:SPLIT:I,J,...`` writes test images of a labelled dataset as PNGs (pairs I,J and so on)
and uses them as A and B, with ``--mask-kind`` (``top``: A's top half; ``left``: A's left half; ``centre``:
a centred square of half the side) as the mask, so that a run on that dataset can be compared on its
own domain.

Usage::

    python scripts/blend_gallery.py --triple a.jpg b.jpg m.png --triple c.jpg d.jpg left \\
        --methods laplacian,poisson --out blend.jpg
    python scripts/blend_gallery.py --digits mnist:test:3,7,10,11 --data-root DIR --mask-kind top \\
        --run runs/mnist-vae --methods laplacian,poisson,latent --out digits.jpg --json digits.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image

from imagegen.errors import ConfigError, ImagegenError
from imagegen.sampling.blend import METHODS, laplacian_blend, latent_blend, load_blend_inputs, poisson_blend
from imagegen.sampling.images import mosaic, to_uint8_nhwc

MASK_KINDS = ("top", "left", "centre")


def hwc(x: torch.Tensor) -> np.ndarray:
    """[C, H, W] in [-1, 1] → uint8 [H, W, C]."""
    return to_uint8_nhwc(x[None].float())[0]


def make_mask(kind: str, h: int, w: int) -> np.ndarray:
    """uint8 [h, w] mask, 255 = take A."""
    m = np.zeros((h, w), np.uint8)
    if kind == "top":
        m[: h // 2] = 255
    elif kind == "left":
        m[:, : w // 2] = 255
    elif kind == "centre":
        m[h // 4: h - h // 4, w // 4: w - w // 4] = 255
    else:
        raise ConfigError(f"--mask-kind {kind}: use one of {', '.join(MASK_KINDS)}")
    return m


def kind_mask(mask: Path, a: Path, out_dir: Path) -> Path:
    """``mask`` itself, or for a mask kind (``top``, ``left``, ``centre``) a PNG of that mask at A's size."""
    if str(mask) not in MASK_KINDS:
        return mask
    if not a.is_file():
        raise ConfigError(f"--triple {a}: no such file")
    with Image.open(a) as im:
        w, h = im.size
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"mask-{mask}-{h}x{w}.png"
    Image.fromarray(make_mask(str(mask), h, w)).save(path)
    return path


def export_digits(spec: str, data_root: Optional[str], kind: str, out_dir: Path) -> list[tuple[Path, Path, Path]]:
    """``DATA:SPLIT:I,J,...`` → PNG triples (image I, image J, mask) under ``out_dir``."""
    from imagegen.data import build_dataset

    try:
        name, split, idx = spec.split(":")
        indices = [int(i) for i in idx.split(",")]
    except ValueError:
        raise ConfigError(f"--digits {spec}: use DATA:SPLIT:I,J[,I,J...], e.g. mnist:test:3,7") from None
    if len(indices) % 2:
        raise ConfigError(f"--digits {spec}: give indices in pairs (A, B)")
    ds = build_dataset(name, root=data_root, split=split)
    out_dir.mkdir(parents=True, exist_ok=True)
    img, _ = ds.get_batch_uint8(torch.tensor(indices))
    arr = img.permute(0, 2, 3, 1).numpy()
    triples = []
    for k in range(0, len(indices), 2):
        paths = [out_dir / f"{name}-{split}-{indices[k + j]}.png" for j in (0, 1)]
        for j, p in enumerate(paths):
            a = arr[k + j]
            Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a).save(p)
        mask = out_dir / f"mask-{kind}-{arr.shape[1]}x{arr.shape[2]}.png"
        Image.fromarray(make_mask(kind, arr.shape[1], arr.shape[2])).save(mask)
        triples.append((paths[0], paths[1], mask))
    return triples


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--triple", nargs=3, action="append", default=[], type=Path, metavar=("A", "B", "MASK"),
                    help="two images and a mask file, or a mask kind (top, left, centre) drawn at A's size")
    ap.add_argument("--digits", default=None, help="DATA:SPLIT:I,J,...: dataset images as A/B pairs")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--mask-kind", default="top", choices=MASK_KINDS, help="mask of --digits pairs")
    ap.add_argument("--methods", default="laplacian,poisson,latent")
    ap.add_argument("--run", default=None, help="latent: the trained run")
    ap.add_argument("--feather", type=float, default=None, help="latent: mask feather sigma (default: the method's)")
    ap.add_argument("--steps", type=int, default=1000, help="latent, style-based runs: projection steps")
    ap.add_argument("--cell", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, required=True, help="the comparison picture (.jpg/.png)")
    ap.add_argument("--json", type=Path, default=None, help="timings and settings")
    args = ap.parse_args(argv)
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        bad = [m for m in methods if m not in METHODS]
        if bad:
            raise ConfigError(f"--methods: unknown {', '.join(bad)}; use {', '.join(METHODS)}")
        triples = [(a, b, kind_mask(m, a, args.out.parent / "blend-inputs")) for a, b, m in args.triple]
        if args.digits:
            triples += export_digits(args.digits, args.data_root, args.mask_kind, args.out.parent / "blend-inputs")
        if not triples:
            raise ConfigError("give --triple A B MASK or --digits DATA:SPLIT:I,J")
        model = None
        if "latent" in methods:
            if args.run is None:
                raise ConfigError("--methods latent needs --run RUN (a vae, cvae, aae, stylegan or stylegan2 run)")
            from imagegen.sampling import load_run

            model = load_run(args.run)
        header = ["A", "B", "mask"] + methods + (["A recon", "B recon"] if model is not None else [])
        rows, record = [], {"methods": methods, "run": args.run, "rows": []}
        for a_path, b_path, m_path in triples:
            a, b, m = load_blend_inputs(a_path, b_path, m_path)
            shown = (m[..., None] * 255).round().to(torch.uint8).numpy().copy()
            shown[0], shown[-1], shown[:, 0], shown[:, -1] = 128, 128, 128, 128  # a grey frame: white shows on white
            row = [hwc(a), hwc(b), shown]
            entry: dict = {"a": str(a_path), "b": str(b_path), "mask": str(m_path), "seconds": {}}
            recon = []
            for method in methods:
                t0 = time.perf_counter()
                if method == "laplacian":
                    out = laplacian_blend(a, b, m)
                elif method == "poisson":
                    out = poisson_blend(a, b, m)
                else:
                    kw = {} if args.feather is None else {"feather": args.feather}
                    res = latent_blend(model, a, b, m, steps=args.steps, **kw)
                    out, recon = res.image, [hwc(res.recon_a), hwc(res.recon_b)]
                    entry["latent"] = res.latent
                entry["seconds"][method] = round(time.perf_counter() - t0, 3)
                row.append(hwc(out))
            rows.append(row + recon)
            record["rows"].append(entry)
            print(f"{a_path.name} + {b_path.name}: " + ", ".join(f"{k} {v:.2f} s" for k, v in entry["seconds"].items()),
                  flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        mosaic(rows, args.cell, header=header).save(args.out, quality=92)
        if args.json:
            args.json.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.out}")
        return 0
    except (ValueError, ImagegenError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
