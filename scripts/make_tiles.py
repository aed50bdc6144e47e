"""Cut images into square training tiles at the scale a fully convolutional model will be used at.

``imagegen train`` resizes every image to ``--resolution`` (short side, then centre crop), so a
512-pixel painting becomes a 128-pixel thumbnail: a style-transfer decoder (AdaIN) trained that way sees
brush strokes four times smaller than in the 512-pixel paintings it is later given. Huang & Belongie
(2017, §6) instead resize to 512 (short side) and train on random 256×256 crops. This script prepares
such crops as files that any ``--data`` folder option reads: each image is resized (Pillow, bicubic) so
that its short side is ``--short-side`` (0 = keep the size), then ``--per-image`` tiles of
``--tile``×``--tile`` are cut at positions drawn from ``numpy.random.default_rng(--seed)`` (an image
whose short side is smaller than the tile is skipped and counted). Tiles are written as PNG
(``OUT/NAME-K.png``, lossless) with ``OUT/tiles.json`` recording the sources and options.

Usage::

    python scripts/make_tiles.py --src PAINTINGS --short-side 512 --tile 128 --per-image 16 --out style-tiles
    python scripts/make_tiles.py --src trainA.zip --src trainB.zip --tile 128 --per-image 2 --out photo-tiles

Exit code 2 with a one-line message for a bad option, a missing/empty source, or an ``OUT`` that
already holds files (``--force`` writes into it anyway).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from imagegen.data.folder import ImageSource
from imagegen.errors import ImagegenError


def tiles_of(img: Image.Image, short_side: int, tile: int, per_image: int,
             rng: np.random.Generator) -> list[Image.Image]:
    """``per_image`` random ``tile``×``tile`` crops of ``img`` (RGB) after resizing its short side to
    ``short_side`` (0: as it is); [] when the (resized) image is smaller than a tile."""
    img = img.convert("RGB")
    if short_side:
        w, h = img.size
        s = short_side / min(w, h)
        img = img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BICUBIC)
    w, h = img.size
    if min(w, h) < tile:
        return []
    xs = rng.integers(0, w - tile + 1, per_image)
    ys = rng.integers(0, h - tile + 1, per_image)
    return [img.crop((int(x), int(y), int(x) + tile, int(y) + tile)) for x, y in zip(xs, ys)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--src", action="append", required=True, help="a folder (searched recursively) or .zip; repeatable")
    ap.add_argument("--short-side", type=int, default=0, help="resize each image's short side to this first (0 = keep)")
    ap.add_argument("--tile", type=int, default=128, help="tile side in pixels")
    ap.add_argument("--per-image", type=int, default=4, help="tiles cut from each image")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--force", action="store_true", help="write into an --out that already holds files")
    args = ap.parse_args(argv)
    try:
        if args.tile < 1 or args.per_image < 1 or args.short_side < 0:
            raise ValueError(f"--tile {args.tile}, --per-image {args.per_image}, --short-side {args.short_side}: "
                             "need tile ≥ 1, per-image ≥ 1 and short-side ≥ 0")
        if args.out.exists() and any(args.out.iterdir()) and not args.force:
            raise ValueError(f"{args.out} already holds files; pass --force or choose another --out")
        args.out.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(args.seed)
        written, skipped, used = 0, 0, set()
        for src in args.src:
            with ImageSource(src) as source:
                names = source.list_images()
                if not names:
                    raise ImagegenError(f"{src} holds no images (PNG/JPEG/WebP); check --src")
                for i, name in enumerate(names):
                    stem = PurePosixPath(name).stem
                    while stem in used:  # the same base name in two folders or sources
                        stem += "_"
                    used.add(stem)
                    with Image.open(source.open(name, i)) as img:
                        tiles = tiles_of(img, args.short_side, args.tile, args.per_image, rng)
                    skipped += not tiles
                    for k, t in enumerate(tiles):
                        t.save(args.out / f"{stem}-{k}.png")
                    written += len(tiles)
        record = {"sources": [str(Path(s).resolve()) for s in args.src], "short_side": args.short_side,
                  "tile": args.tile, "per_image": args.per_image, "seed": args.seed, "tiles": written,
                  "skipped_images": skipped}
        (args.out / "tiles.json").write_text(json.dumps(record, indent=1))
        print(f"{written} tiles of {args.tile}x{args.tile} in {args.out} ({skipped} images smaller than a tile skipped)")
    except (ValueError, ImagegenError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
