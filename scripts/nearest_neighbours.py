"""Nearest training images of generated samples: a picture and numbers for the memorisation check.

Each row shows one generated sample, then its ``--k`` nearest training images, with the distance to the
sample as a multiple of the training set's median leave-one-out nearest-neighbour distance (so 1.0 is
"as close as two typical training images are to each other"; a copy shows as about 0). Rows are the
``--closest`` samples nearest to any training image (the candidates for copies), then ``--random``
samples drawn with ``--seed``. Distances are in pixel space (flattened RGB in [-1, 1]) or in the dataset
classifier's feature space (``--space classifier``, the extractor the FID numbers use). The numbers
(``nn_ratio``, ``nn_copies``: :mod:`imagegen.metrics.nearest`) go to ``--json``.

Usage::

    imagegen sample runs/zebra-none --num 5000 --out zebra-samples.npz
    python scripts/nearest_neighbours.py --fake zebra-samples.npz --real horse2zebra_trainB.zip \\
        --resolution 64 --space pixel --closest 6 --random 2 --k 4 --out nn-pixel.png --json nn-pixel.json
    python scripts/nearest_neighbours.py --fake zebra-samples.npz --real horse2zebra_trainB.zip \\
        --resolution 64 --space classifier --classifier-data cifar10-jpg --out nn-clf.png

Bad input (a missing file, images of another size than the reference) is a one-line error, exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

import torch
from PIL import Image, ImageDraw


def add_sample_options(ap: argparse.ArgumentParser) -> None:
    """``--fake``, ``--real``, ``--data-root``, ``--split``, ``--resolution`` (also used by
    scripts/extractor_spread.py and scripts/colour_stats.py)."""
    ap.add_argument("--fake", required=True, help=".npz of samples (imagegen sample --out X.npz) or an image folder/zip")
    ap.add_argument("--real", required=True, help="the reference (training) images: dataset name, folder or zip")
    ap.add_argument("--data-root", default=None, help="directory of a named dataset's files")
    ap.add_argument("--split", default="train", help="split of a named dataset (the training split: default)")
    ap.add_argument("--resolution", type=int, default=None, help="load the reference images at RxR (bicubic)")


def load_samples_and_reference(args: argparse.Namespace) -> tuple[torch.Tensor, object]:
    """The samples (uint8 [N, C, H, W]) and the reference dataset, loaded with the samples' channels.

    Raises:
        ImagegenError: unreadable files, or samples of another size than the reference images.
    """
    from imagegen.cli.evaluate import load_fake_images
    from imagegen.data import build_dataset
    from imagegen.errors import ImagegenError

    fake, _ = load_fake_images(args.fake)
    ds = build_dataset(args.real, root=args.data_root, split=args.split, resolution=args.resolution,
                       channels=int(fake.shape[1]))
    if tuple(fake.shape[1:]) != tuple(ds.images.shape[1:]):
        raise ImagegenError(f"samples are {list(fake.shape[1:])} (CxHxW) but the reference images "
                            f"{list(ds.images.shape[1:])}; pass --resolution {fake.shape[-1]}")
    return fake, ds


def flat_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, H, W] -> float32 [N, C*H*W] in [-1, 1]."""
    return images.reshape(len(images), -1).float().div_(127.5).sub_(1.0)


def features(images: torch.Tensor, space: str, classifier: Optional[object]) -> torch.Tensor:
    """float32 [N, D] vectors of uint8 [N, C, H, W] images in the chosen space."""
    if space == "pixel":
        return flat_pixels(images)
    from imagegen.metrics.extractors import compute_features

    return compute_features(classifier, images).features


def pick_rows(d: torch.Tensor, closest: int, random: int, seed: int) -> list[int]:
    """Indices of the ``closest`` samples with the smallest distance ``d`` [M], then ``random`` others
    drawn with ``seed`` (no repeats)."""
    order = d.argsort().tolist()
    rows = order[:closest]
    taken = set(rows)
    rest = [i for i in range(len(d)) if i not in taken]
    g = torch.Generator().manual_seed(seed)
    rows += [rest[i] for i in torch.randperm(len(rest), generator=g)[:random].tolist()]
    return rows


def render(fake: torch.Tensor, real: torch.Tensor, rows: list[int], nn_idx: torch.Tensor, nn_rel: torch.Tensor,
           labels: list[str], cell: int) -> Image.Image:
    """The grid: one row per sample (sample, then its neighbours), each cell ``cell`` px, captions below."""
    k = nn_idx.shape[1]
    cap, pad = 14, 4
    w, h = (k + 1) * (cell + pad) + pad, len(rows) * (cell + cap + pad) + pad
    out = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(out)

    def tile(img: torch.Tensor) -> Image.Image:
        arr = img.permute(1, 2, 0).numpy()
        pil = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).convert("RGB")
        return pil.resize((cell, cell), Image.NEAREST)

    for r, i in enumerate(rows):
        y = pad + r * (cell + cap + pad)
        out.paste(tile(fake[i]), (pad, y))
        draw.text((pad, y + cell + 1), labels[r], fill="black")
        for j in range(k):
            x = pad + (j + 1) * (cell + pad)
            out.paste(tile(real[int(nn_idx[i, j])]), (x, y))
            draw.text((x, y + cell + 1), f"{float(nn_rel[i, j]):.2f}", fill="black")
    return out


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_sample_options(ap)
    ap.add_argument("--space", choices=["pixel", "classifier"], default="pixel")
    ap.add_argument("--classifier-data", default=None, help="--space classifier: dataset whose classifier to use")
    ap.add_argument("--classifier-data-root", default=None,
                    help="directory of --classifier-data's files (default: $IMAGEGEN_DATA)")
    ap.add_argument("--closest", type=int, default=6, help="rows: samples nearest to any training image")
    ap.add_argument("--random", type=int, default=2, help="rows: random samples (drawn with --seed)")
    ap.add_argument("--k", type=int, default=4, help="neighbours shown per sample")
    ap.add_argument("--cell", type=int, default=96, help="pixels per image in the picture")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True, help="picture (.png/.jpg)")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = ap.parse_args(argv)

    from imagegen.errors import ImagegenError
    from imagegen.metrics.nearest import COPY_QUANTILE, copy_statistics, nearest_neighbours

    try:
        if args.k < 1 or args.closest < 0 or args.random < 0 or args.closest + args.random < 1:
            raise ImagegenError("--k must be at least 1 and --closest + --random at least 1")
        fake, ds = load_samples_and_reference(args)
        real = ds.images
        classifier = None
        if args.space == "classifier":
            from imagegen.metrics.classifier import load_or_train_classifier

            name = args.classifier_data or args.real
            root = args.classifier_data_root if args.classifier_data else args.data_root
            classifier = load_or_train_classifier(name, data_root=root,
                                                  log=lambda m: print(m, file=sys.stderr))
        fr, ff = features(real, args.space, classifier), features(fake, args.space, classifier)
        d, idx = nearest_neighbours(ff, fr, k=args.k)
        stats = copy_statistics(fr, ff, fake_dists=d[:, 0])
    except ImagegenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rel = d / stats["nn_median_real"]
    rows = pick_rows(d[:, 0], args.closest, args.random, args.seed)
    labels = [f"closest #{r + 1}" for r in range(min(args.closest, len(rows)))]
    labels += ["random"] * (len(rows) - len(labels))
    render(fake, real, rows, idx, rel, labels, args.cell).save(args.out)
    record = {"fake": args.fake, "real": args.real, "resolution": int(real.shape[-1]), "space": args.space,
              "num_fake": len(fake), "num_real": len(real), "copy_quantile": COPY_QUANTILE, **stats,
              "min_relative_distance": float(rel[:, 0].min()),
              "rows": [{"sample": i, "neighbours": idx[i].tolist(), "relative_distance": [round(float(v), 4)
                                                                                           for v in rel[i]]}
                       for i in rows]}
    if classifier is not None:
        record["classifier"] = classifier.protocol()
    print(json.dumps({k: v for k, v in record.items() if k not in ("rows", "classifier")}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
