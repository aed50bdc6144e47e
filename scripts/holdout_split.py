"""Split image folders/zips into a training part and a held-out part, copying the files unchanged.

For data that comes as one split only (the developers' horse2zebra copy holds the train split), so
that results can be reported on images the model never saw. Each ``--domain LABEL=PATH`` (a folder,
searched recursively, or a ``.zip``) is listed in sorted order (:class:`imagegen.data.folder.ImageSource`);
a seeded permutation (``numpy.random.default_rng(seed)``, one per domain in the order given) picks
``round(fraction × N)`` images (at least 1) for the held-out part. Files are copied byte for byte
(no re-encoding), flattened to their base names, to::

    OUT/train/LABEL/NAME     # train on these (e.g. --data-a OUT/train/horse)
    OUT/test/LABEL/NAME      # report on these
    OUT/split.json           # the sources, seed, fraction and every file's part

``OUT/train`` is also a labelled dataset (labels from the LABEL subfolders), e.g. for the dataset
classifier that ``imagegen evaluate --classifier-data OUT/train`` uses as an offline feature extractor.

Usage::

    python scripts/holdout_split.py --domain horse=../shared/data/horse2zebra/horse2zebra_trainA.zip \\
        --domain zebra=../shared/data/horse2zebra/horse2zebra_trainB.zip --fraction 0.1 --seed 0 --out h2z

Exit code 2 with a one-line message for a bad option, a missing/empty source, duplicate base names
within a domain, or an ``OUT`` that already holds files (``--force`` replaces ``OUT/train``,
``OUT/test`` and ``OUT/split.json``).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path, PurePosixPath

import numpy as np

from imagegen.data.folder import ImageSource
from imagegen.errors import ImagegenError


def parse_domain(spec: str) -> tuple[str, str]:
    """``LABEL=PATH`` → (label, path). Raises ValueError (one line) for a malformed spec."""
    label, sep, path = spec.partition("=")
    if not sep or not label or not path or "/" in label or label in (".", ".."):
        raise ValueError(f"--domain {spec!r}: use LABEL=PATH, e.g. horse=trainA.zip")
    return label, path


def split_domain(label: str, path: str, fraction: float, rng: np.random.Generator,
                 out: Path) -> dict[str, list[str]]:
    """Copy one domain's images into OUT/train/LABEL and OUT/test/LABEL; return the names of each part."""
    with ImageSource(path) as source:
        names = source.list_images()
        if not names:
            raise ImagegenError(f"{path} holds no images (PNG/JPEG/WebP); check --domain {label}=PATH")
        base = [PurePosixPath(n).name for n in names]
        if len(set(base)) != len(base):
            raise ImagegenError(f"{path}: two images share a file name in different folders; "
                                "rename them or split the folders separately")
        n_test = max(1, round(fraction * len(names)))
        test = set(rng.permutation(len(names))[:n_test].tolist())
        parts: dict[str, list[str]] = {"train": [], "test": []}
        for i, (name, b) in enumerate(zip(names, base)):
            part = "test" if i in test else "train"
            dst = out / part / label / b
            dst.parent.mkdir(parents=True, exist_ok=True)
            src = source.open(name, i)
            if isinstance(src, Path):
                shutil.copyfile(src, dst)
            else:
                dst.write_bytes(src.getvalue())
            parts[part].append(b)
        return parts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--domain", action="append", required=True, metavar="LABEL=PATH",
                    help="a domain's images (folder or .zip); repeat for each domain")
    ap.add_argument("--fraction", type=float, default=0.1, help="share of each domain held out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--force", action="store_true", help="replace an existing split under --out")
    args = ap.parse_args(argv)
    try:
        if not 0 < args.fraction < 1:
            raise ValueError(f"--fraction {args.fraction}: use a value strictly between 0 and 1")
        domains = [parse_domain(d) for d in args.domain]
        if len({label for label, _ in domains}) != len(domains):
            raise ValueError("--domain labels must differ")
        targets = [args.out / "train", args.out / "test", args.out / "split.json"]
        if any(t.exists() for t in targets):
            if not args.force:
                raise ValueError(f"{args.out} already holds a split; pass --force to replace it or choose another --out")
            for t in targets:
                shutil.rmtree(t) if t.is_dir() else t.unlink(missing_ok=True)
        rng = np.random.default_rng(args.seed)
        record = {"fraction": args.fraction, "seed": args.seed, "domains": {}}
        for label, path in domains:
            parts = split_domain(label, path, args.fraction, rng, args.out)
            record["domains"][label] = {"source": str(Path(path).resolve()), **parts}
            print(f"{label}: {len(parts['train'])} train, {len(parts['test'])} held out ({path})")
        (args.out / "split.json").write_text(json.dumps(record, indent=1))
    except (ValueError, ImagegenError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
