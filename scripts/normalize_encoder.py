"""Normalise a VGG-19 encoder file as Gatys et al. (2016, §2) normalised theirs: every filter rescaled so that
its mean ReLU activation over a set of images is 1, the next convolution compensating
(:func:`imagegen.nn.vgg.normalize_filters_`). The official AdaIN encoder (``vgg_normalised``) is the
ImageNet VGG-19 normalised this way; torchvision's ImageNet file is not, so the style losses weight its
channels by whatever scale each happens to have. (This toolkit's self-trained encoder is nearly normalised
already: batch norm, folded in, leaves every channel's mean activation at 0.27–0.47 on its training images,
so for it this is an almost uniform rescale; see docs/style_transfer.md.)

``imagegen train-encoder --normalize-filters`` does the same at the end of training; this script applies it
to a file that exists (the self-trained one, or the ImageNet one), over a seeded random subset of
``--images`` images of ``--data`` loaded at ``--resolution``, with the encoder's own zero padding and max
pooling. It writes ``OUT`` in torchvision's layout (``--encoder OUT`` reads it) and ``OUT.json`` with the
source file, its SHA-256 and the channel means before the normalisation.

Usage::

    python scripts/normalize_encoder.py --encoder ~/.cache/imagegen/weights/vgg19-selftrained.pth \\
        --data cifar10-jpg --data-root DIR --out ~/.cache/imagegen/weights/vgg19-selftrained-normalized.pth

Exit code 2 with a one-line message for a missing or wrong-layout file, unreadable data, or an ``OUT`` that
exists (``--force`` replaces it).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from imagegen.errors import ImagegenError
from imagegen.style.encoder_training import NORMALIZE_IMAGES


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--encoder", required=True,
                    help="VGG-19 weights: a torchvision-layout file, or imagenet (the model-zoo file, found locally)")
    ap.add_argument("--data", required=True, help="images to measure the activations on (dataset name or folder/zip)")
    ap.add_argument("--data-root", default=None, help="directory holding the dataset's files")
    ap.add_argument("--split", default="train")
    ap.add_argument("--resolution", type=int, default=32, help="image size (32: the self-trained encoder's own)")
    ap.add_argument("--images", type=int, default=NORMALIZE_IMAGES, help="how many images (a seeded random subset)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True, help="weights file to write (and OUT.json)")
    ap.add_argument("--force", action="store_true", help="replace OUT if it exists")
    args = ap.parse_args(argv)
    try:
        from imagegen.data import build_dataset
        from imagegen.nn.vgg import load_vgg19
        from imagegen.style.encoder_training import normalize_on_dataset, save_vgg_encoder
        from imagegen.weights import weights_sha256

        if args.out.exists() and not args.force:  # before the work, not after it
            raise ImagegenError(f"{args.out} exists; choose another --out or pass --force to replace it")
        encoder = load_vgg19(args.encoder)
        data = build_dataset(args.data, root=args.data_root, split=args.split, resolution=args.resolution, channels=3)
        record = normalize_on_dataset(encoder, data, images=args.images, seed=args.seed)
        source = encoder.weights_path
        info = {"normalized_filters": {**record, "data": args.data, "split": args.split,
                                       "resolution": args.resolution},
                "source": str(source) if source else args.encoder,
                "source_sha256": weights_sha256(source) if source else None, "widths": list(encoder.widths)}
        path = save_vgg_encoder(encoder, args.out, info, force=args.force)
    except ImagegenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    spread = record["channel_means_before"]["relu4_1"]
    print(f"wrote {path} ({record['images']} images; relu4_1 channel means before: min {spread['mean_min']:.3g}, "
          f"median {spread['mean_median']:.3g}, max {spread['mean_max']:.3g}, {spread['dead']} dead); "
          f"use with --encoder {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
