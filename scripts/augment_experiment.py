"""Does generated data help a classifier when labels are scarce? Real labels alone vs. classic augmentation
vs. real + class-conditional samples, at several label fractions.

For each fraction f of the training labels (a stratified subset: round(f · n_c) images of every class c,
at least one, drawn with ``--subset-seed``; the same subset for every arm and seed) the dataset
classifier's architecture (:class:`imagegen.metrics.classifier.DatasetClassifier`, Adam with a one-cycle
schedule, no augmentation unless stated) is trained for the same number of steps in three arms:

(a) ``real``: the labelled subset alone;
(b) ``real+aug``: the subset with the training augmentations of :mod:`imagegen.data.augment`
    (``--aug``, default a 2-pixel padded random crop, ±10° rotation and Gaussian smoothing σ ≤ 1);
(c) ``real+gen``: the subset together with ``--gen-per-class`` samples per class from a class-conditional
    run trained on that same subset (``--cgan-run F=RUN``; ``--export-subsets DIR`` writes the subsets as
    labelled zips to train it on: ``imagegen train cgan --data DIR/mnist-0.01.zip ...``), batches drawn
    uniformly from the union.

Every arm takes ``max(--epochs passes over the real subset, --min-steps)`` steps (the same budget for all
three, so generated data adds variety, not optimisation steps). Each arm is repeated for every seed of
``--seeds`` (classifier initialisation, batch order, augmentation); the test accuracy on the real test
split is reported as mean ± standard deviation (n - 1) over seeds. Arms without a run for a fraction are
skipped. Writes every number and the protocol to ``--out`` (JSON) and prints a markdown table.

Usage::

    python scripts/augment_experiment.py --export-subsets runs/subsets --data mnist --data-root DIR
    imagegen train cgan --data runs/subsets/mnist-0.01.zip --resolution 32 --steps 5000 --out runs/cgan-1pct
    python scripts/augment_experiment.py --data mnist --data-root DIR --seeds 0,1,2 \\
        --cgan-run 0.01=runs/cgan-1pct --cgan-run 0.1=runs/cgan-10pct --cgan-run 1=runs/mnist-cgan \\
        --out docs/results/augment-mnist.json

Smoke test (seconds; the bundled 8x8 digits)::

    python scripts/augment_experiment.py --data digits --fractions 0.1,1 --seeds 0,1 --min-steps 20 \\
        --epochs 0 --gen-per-class 5 --cgan-run 0.1=RUN --out /tmp/aug.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F

from imagegen.data import ImageDataset, build_dataset
from imagegen.data.augment import AugmentConfig, augment
from imagegen.data.transforms import PAD, crop_padding, resolve_resize
from imagegen.metrics.cas import generate_labelled
from imagegen.metrics.classifier import ClassifierConfig, TrainRecipe, train_classifier
from imagegen.sampling import load_run
from imagegen.sampling.api import run_resize


def stratified_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Sorted int64 indices of round(fraction · n_c) (at least 1) random items of every class c."""
    gen = torch.Generator().manual_seed(seed)
    picked = []
    for c in range(int(labels.max()) + 1):
        idx = (labels == c).nonzero().flatten()
        if len(idx) == 0:
            continue
        k = max(1, round(fraction * len(idx)))
        picked.append(idx[torch.randperm(len(idx), generator=gen)[:k]])
    return torch.cat(picked).sort().values


def subset_dataset(ds: ImageDataset, indices: torch.Tensor, name: str) -> ImageDataset:
    return ImageDataset(ds.images[indices].permute(0, 2, 3, 1).numpy(), ds.labels[indices].numpy(), name=name,
                        class_names=ds.class_names)


class AugmentedDataset:
    """A labelled dataset whose batches are augmented (what ``train_classifier`` reads: ``get_batch``,
    ``images``/``labels`` for the content hash, ``channels``, ``num_classes``, ``name``)."""

    def __init__(self, ds: ImageDataset, cfg: AugmentConfig, seed: int) -> None:
        self.ds, self.cfg = ds, cfg
        self.generator = torch.Generator().manual_seed(seed)
        self.images, self.labels, self.class_names = ds.images, ds.labels, ds.class_names
        self.name = ds.name + "+aug"

    channels = property(lambda self: self.ds.channels)
    num_classes = property(lambda self: self.ds.num_classes)

    def __len__(self) -> int:
        return len(self.ds)

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        img, label = self.ds.get_batch(indices)
        return augment(img, self.cfg, self.generator), label


def generated_images(run: str, per_class: int, real: ImageDataset, seed: int,
                     batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [K·n, C, H, W] samples of a conditional run at the real images' size (zero padding the run
    added is cropped; other sizes are resized bilinearly with antialiasing) and their labels."""
    model = load_run(run)
    if model.num_classes != real.num_classes:
        sys.exit(f"{run}: {model.num_classes} classes, but {real.name} has {real.num_classes}")
    img, labels = generate_labelled(model, per_class, seed=seed, batch_size=batch_size)
    h, w = real.images.shape[2:]
    if img.shape[2:] != (h, w):
        if resolve_resize(run_resize(model), h, w, img.shape[-1]) == PAD:
            img = crop_padding(img, h, w)
        else:
            x = F.interpolate(img.float(), size=(h, w), mode="bilinear", align_corners=False, antialias=True)
            img = x.round().clamp(0, 255).to(torch.uint8)
    if img.shape[1] != real.channels:
        sys.exit(f"{run}: {img.shape[1]}-channel samples, but {real.name} has {real.channels} channels")
    return img, labels


def union(real: ImageDataset, images: torch.Tensor, labels: torch.Tensor) -> ImageDataset:
    all_images = torch.cat([real.images, images]).permute(0, 2, 3, 1).numpy()
    return ImageDataset(all_images, torch.cat([real.labels, labels]).numpy(), name=real.name + "+gen",
                        class_names=real.class_names)


def parse_runs(specs: list[str]) -> dict[float, str]:
    runs = {}
    for spec in specs:
        frac, sep, path = spec.partition("=")
        if not sep:
            sys.exit(f"--cgan-run {spec}: use FRACTION=RUN_DIR, e.g. 0.01=runs/cgan-1pct")
        runs[float(frac)] = path
    return runs


def main(argv: Optional[list[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="mnist", help="labelled dataset name (mnist, cifar10, digits, ...)")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--fractions", default="0.01,0.1,1", help="label fractions, comma-separated")
    ap.add_argument("--subset-seed", type=int, default=0, help="seed of the stratified label subsets")
    ap.add_argument("--seeds", default="0,1,2", help="classifier seeds (init, batch order, augmentation)")
    ap.add_argument("--cgan-run", action="append", default=[], metavar="F=RUN",
                    help="class-conditional run trained on the fraction-F subset (repeatable)")
    ap.add_argument("--gen-per-class", type=int, default=1000, help="generated images per class in arm (c)")
    ap.add_argument("--gen-seed", type=int, default=0, help="sampling seed of the generated images")
    ap.add_argument("--aug", default="crop_pad=2,rotate_deg=10,blur_sigma=1,blur_p=0.5",
                    help="arm (b): AugmentConfig fields, e.g. flip=1,crop_pad=4,color_jitter=0.4:0.4:0.4")
    ap.add_argument("--epochs", type=int, default=2, help="passes over the real subset (the budget of every arm)")
    ap.add_argument("--min-steps", type=int, default=1000, help="at least this many steps per arm")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--widths", default="16,32,64,128", help="classifier stage widths (the dataset classifier's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--export-subsets", default=None, metavar="DIR",
                    help="write each subset as DIR/<data>-<fraction>.zip (labelled class folders) and exit")
    ap.add_argument("--out", default=None, help="JSON file for all numbers and the protocol")
    args = ap.parse_args(argv)

    fractions = [float(f) for f in args.fractions.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    train = build_dataset(args.data, root=args.data_root, split="train")
    test = build_dataset(args.data, root=args.data_root, split="test")
    if train.labels is None or test.labels is None:
        sys.exit(f"{args.data} has no labels")
    subsets = {f: subset_dataset(train, stratified_subset(train.labels, f, args.subset_seed), f"{args.data}-{f:g}")
               for f in fractions}

    if args.export_subsets:
        from imagegen.sampling.images import to_pil
        import io
        import zipfile

        out_dir = Path(args.export_subsets)
        out_dir.mkdir(parents=True, exist_ok=True)
        width = len(str(train.num_classes - 1))
        for f, ds in subsets.items():
            path = out_dir / f"{args.data}-{f:g}.zip"
            with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
                for i, (img, label) in enumerate(zip(ds.images.permute(0, 2, 3, 1).numpy(), ds.labels.tolist())):
                    buf = io.BytesIO()
                    to_pil(img).save(buf, format="PNG")
                    z.writestr(f"{label:0{width}d}/{i:06d}.png", buf.getvalue())
            print(f"wrote {path} ({len(ds)} images)")
        return

    fields = {f.name: f for f in dataclasses.fields(AugmentConfig)}
    aug_kwargs: dict[str, Any] = {}
    for item in filter(None, args.aug.split(",")):
        key, _, value = item.partition("=")
        if key not in fields:
            sys.exit(f"--aug {item}: unknown field; use {', '.join(fields)}")
        aug_kwargs[key] = (tuple(float(v) for v in value.split(":")) if key == "color_jitter" else
                           bool(int(value)) if key == "flip" else int(value) if key == "crop_pad" else float(value))
    aug = AugmentConfig(**aug_kwargs)
    runs = parse_runs(args.cgan_run)
    widths = tuple(int(w) for w in args.widths.split(","))
    config = ClassifierConfig(channels=train.channels, num_classes=train.num_classes, widths=widths)

    results: dict[str, Any] = {}
    for f in fractions:
        real = subsets[f]
        steps = max(args.epochs * math.ceil(len(real) / args.batch_size), args.min_steps)
        arms: dict[str, Any] = {"real": real, "real+aug": "aug"}
        gen_info = None
        run = runs.get(f)
        if run:
            img, lab = generated_images(run, args.gen_per_class, real, args.gen_seed, 250)
            arms["real+gen"] = union(real, img, lab)
            gen_info = {"run": run, "per_class": args.gen_per_class, "seed": args.gen_seed, "num": len(img)}
        row: dict[str, Any] = {"num_real": len(real), "steps": steps, "generated": gen_info}
        for arm, data in arms.items():
            accs, t0 = [], time.time()
            for seed in seeds:
                recipe = TrainRecipe(epochs=0, min_steps=steps, batch_size=args.batch_size, lr=args.lr, seed=seed)
                ds = AugmentedDataset(real, aug, seed) if data == "aug" else data
                _, acc = train_classifier(ds, test, config=config, recipe=recipe, device=args.device)
                accs.append(acc)
            row[arm] = {"mean": statistics.fmean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                        "accuracies": accs, "seconds": round(time.time() - t0, 1)}
            print(f"fraction {f:g} ({len(real)} labels), {arm}: {100 * row[arm]['mean']:.2f} ± "
                  f"{100 * row[arm]['std']:.2f}% over {len(seeds)} seeds", file=sys.stderr)
        results[f"{f:g}"] = row

    print(f"\n| labels | real | real + classic aug | real + generated |\n|---|---|---|---|")
    for f, row in results.items():
        cells = [f"{100 * row[a]['mean']:.2f} ± {100 * row[a]['std']:.2f}" if a in row else "—"
                 for a in ("real", "real+aug", "real+gen")]
        print(f"| {float(f) * 100:g}% ({row['num_real']}) | " + " | ".join(cells) + " |")
    record = {"protocol": {"data": args.data, "test_split": "test", "num_test": len(test),
                           "subset": f"stratified, round(f * n_c) >= 1 per class, seed {args.subset_seed}",
                           "classifier": dataclasses.asdict(config),
                           "recipe": {"optimizer": "Adam, one-cycle", "batch_size": args.batch_size, "lr": args.lr,
                                      "steps": f"max({args.epochs} epochs of the real subset, {args.min_steps})"},
                           "augmentation": dataclasses.asdict(aug), "seeds": seeds,
                           "std": "sample standard deviation over seeds (n - 1)"},
              "results": results}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=2))
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
