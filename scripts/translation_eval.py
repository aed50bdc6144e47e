"""Score unpaired translators (cyclegan runs) on held-out images of both domains.

For each run and direction (A→B, B→A) the held-out images of the source domain are translated at
the run's training resolution (loaded as training loads them, without the random jitter: short side
resized bicubic, centre crop), resized to ``--resolution`` (bicubic) if that differs, and compared with the held-out real images of the target domain in the feature
space of an offline **domain classifier**: the toolkit's dataset classifier
(:func:`imagegen.metrics.classifier.classifier_for_dataset`, cached) trained on the labelled
training images ``--classifier-data`` (e.g. ``OUT/train`` of ``scripts/holdout_split.py``, classes =
the domains' sub-folders), loaded at ``--resolution`` and resized to ``--classifier-size`` inside the
classifier. No ImageNet Inception weights are used, so the
values are comparable only with values from the same classifier, not with published FIDs.

Reported per direction:

* ``fid``: Fréchet distance (:func:`imagegen.metrics.fid.fid_from_features`) between translated and
  real target images. With a hundred-odd images per domain it is strongly biased upward (Bińkowski et
  al. 2018 §3); compare rows of the same table only;
* ``kid``: kernel inception distance (:func:`imagegen.metrics.kid.kernel_inception_distance`, unbiased,
  subsets of min(N_fake, N_real) images), the better-behaved statistic at these sizes;
* ``target_rate``: share of translated images the domain classifier assigns to the target domain.

and two reference rows that give the numbers a scale: ``identity`` (the untranslated source images
against the real target: the domain gap a translator has to close) and ``real`` (as many real
*training* images of the target domain against its held-out ones: the floor of the statistic).

Writes ``--out-json`` (numbers and protocol), prints a markdown table, and with ``--grid-dir`` one grid
per run and direction: ``--grid-num`` held-out inputs (columns 1, 3, ...) beside their translations.

Usage::

    python scripts/translation_eval.py --runs runs/h2z --held-out h2z/test --classifier-data h2z/train \\
        --domains horse,zebra --resolution 128 --out-json docs/results/cyclegan-h2z.json --grid-dir docs/images
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from imagegen.data import build_dataset
from imagegen.errors import ImagegenError
from imagegen.metrics.classifier import ClassifierConfig, TrainRecipe, classifier_for_dataset
from imagegen.metrics.extractors import compute_features
from imagegen.metrics.fid import fid_from_features
from imagegen.metrics.kid import kernel_inception_distance
from imagegen.sampling import load_run
from imagegen.sampling.images import save_grid


def as_float(ds) -> torch.Tensor:
    """All images of an in-memory dataset, float32 [N, C, H, W] in [-1, 1]."""
    return ds.get_batch(torch.arange(len(ds)))[0]


@torch.no_grad()
def translate_all(model, img: torch.Tensor, direction: str, batch_size: int) -> torch.Tensor:
    return torch.cat([model.translate(b.to(model.device), direction).float().cpu()
                      for b in img.split(batch_size)])


def scores(clf, fake: torch.Tensor, real_feats, target: int, seed: int) -> dict[str, float]:
    f = compute_features(clf, fake)
    kid, kid_std, m = kernel_inception_distance(real_feats.features, f.features, subset_size=len(fake), seed=seed)
    return {"fid": float(fid_from_features(real_feats.features.numpy(), f.features.numpy())),
            "kid": float(kid), "kid_std": float(kid_std), "kid_subset": int(m),
            "target_rate": float((f.logits.argmax(1) == target).float().mean()), "num": int(len(fake))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", required=True, help="comma-separated cyclegan run directories (or checkpoints)")
    ap.add_argument("--held-out", type=Path, required=True, help="folder with one sub-folder per domain")
    ap.add_argument("--classifier-data", type=Path, required=True,
                    help="labelled training images (one sub-folder per domain) for the domain classifier")
    ap.add_argument("--domains", default="horse,zebra", help="sub-folder names of domains A and B")
    ap.add_argument("--resolution", type=int, default=128,
                    help="evaluation size: references and the classifier's training images are loaded at it")
    ap.add_argument("--classifier-size", type=int, default=64,
                    help="input size of the domain classifier (images are resized to it, bilinear)")
    ap.add_argument("--classifier-steps", type=int, default=TrainRecipe.min_steps,
                    help="minimum training steps of the domain classifier (batch 128)")
    ap.add_argument("--seed", type=int, default=0, help="seed of KID subsets and of the floor's subset")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out-json", type=Path, required=True)
    ap.add_argument("--grid-dir", type=Path, default=None)
    ap.add_argument("--grid-num", type=int, default=8)
    args = ap.parse_args(argv)
    try:
        names = args.domains.split(",")
        if len(names) != 2:
            raise ImagegenError(f"--domains {args.domains!r}: give two sub-folder names, A,B")
        r = args.resolution
        train = build_dataset(str(args.classifier_data), resolution=r, channels=3)
        if train.class_names is None or not set(names) <= set(train.class_names):
            raise ImagegenError(f"--classifier-data {args.classifier_data} must have sub-folders {names}")
        config = ClassifierConfig(channels=3, num_classes=train.num_classes, input_size=args.classifier_size)
        recipe = TrainRecipe(min_steps=args.classifier_steps)
        clf = classifier_for_dataset(train, config=config, recipe=recipe, log=lambda s: print(s, file=sys.stderr))
        label = {n: train.class_names.index(n) for n in names}
        held = {n: as_float(build_dataset(str(args.held_out / n), resolution=r, channels=3)) for n in names}
        real_feats = {n: compute_features(clf, held[n]) for n in names}
        gen = torch.Generator().manual_seed(args.seed)
        rows: list[dict] = []
        if args.grid_dir is not None:
            args.grid_dir.mkdir(parents=True, exist_ok=True)
        for src, dst, direction in ((names[0], names[1], "AB"), (names[1], names[0], "BA")):
            base = {"direction": f"{src}→{dst}"}
            rows.append({**base, "method": "identity (untranslated)",
                         **scores(clf, held[src], real_feats[dst], label[dst], args.seed)})
            pool = np.flatnonzero(train.labels == label[dst])
            pick = torch.from_numpy(pool)[torch.randperm(len(pool), generator=gen)[:len(held[dst])]]
            rows.append({**base, "method": "real training images (floor)",
                         **scores(clf, train.get_batch(pick)[0], real_feats[dst], label[dst], args.seed)})
            for run in args.runs.split(","):
                model = load_run(run, device="cpu")
                size = model.config.resolution  # translate at the run's training size, score at r
                inputs = held[src] if size == r else as_float(
                    build_dataset(str(args.held_out / src), resolution=size, channels=3))
                t0 = time.perf_counter()
                fake = translate_all(model, inputs, direction, args.batch_size)
                seconds = time.perf_counter() - t0
                if size != r:
                    fake = F.interpolate(fake, size=(r, r), mode="bicubic", antialias=True,
                                         align_corners=False).clamp(-1, 1)
                meta = model.checkpoint_meta
                rows.append({**base, "method": run, "step": meta.get("step"), "translated_at": size,
                             "translate_s": round(seconds, 2), **scores(clf, fake, real_feats[dst], label[dst], args.seed)})
                if args.grid_dir is not None:
                    k = min(args.grid_num, len(fake))
                    pairs = torch.stack([held[src][:k], fake[:k]], 1).flatten(0, 1)
                    path = args.grid_dir / f"{Path(run).name}-{src}2{dst}.png"
                    save_grid(pairs, path, nrow=4)
                    rows[-1]["grid"] = str(path)
    except ImagegenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    protocol = {"resolution": r, "held_out": str(args.held_out), "num_held_out": {n: len(held[n]) for n in names},
                "feature_extractor": (
                    f"dataset classifier of {args.classifier_data} ({len(train)} images at {r}x{r}, resized to "
                    f"{args.classifier_size}; {recipe.min_steps}+ steps; weights {clf.weights_hash[:12]}; accuracy "
                    f"{clf.test_accuracy:.4f} on 10% held out of its training images)"),
                "kid": "unbiased MMD^2, cubic polynomial kernel, 100 subsets of min(N_fake, N_real)",
                "seed": args.seed}
    args.out_json.parent.mkdir(parents=True, exist_ok=True)
    args.out_json.write_text(json.dumps({"protocol": protocol, "rows": rows}, indent=1))
    print(f"domain classifier: {protocol['feature_extractor']}")
    print("| direction | method | FID ↓ | KID ×10³ ↓ | classified as target |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['direction']} | {row['method']} | {row['fid']:.2f} | {1e3 * row['kid']:.1f} ± "
              f"{1e3 * row['kid_std']:.1f} | {100 * row['target_rate']:.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
