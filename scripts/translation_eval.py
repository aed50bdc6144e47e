"""Score unpaired translators (cyclegan runs) on held-out images of both domains.

For each run and direction (A→B, B→A) the held-out images of the source domain are loaded at the
run's training resolution as training loads them (the run's ``--resize``; no random jitter),
translated, brought to the target domain's scoring size, and compared with held-out real images of
the target domain in the feature space of an offline classifier. No ImageNet Inception weights are
used, so the values are comparable only with values from the same classifier, not with published FIDs.
Two kinds of domains:

* **Image folders** (``--held-out DIR --classifier-data DIR --domains A,B``; e.g. ``OUT/test`` and
  ``OUT/train`` of ``scripts/holdout_split.py``): scored at ``--resolution`` (translations resized
  bicubic if the run's size differs) under a **domain classifier**, the toolkit's dataset classifier
  (:func:`imagegen.metrics.classifier.classifier_for_dataset`, cached) trained on the labelled images
  of ``--classifier-data`` (classes = the domains' sub-folders), resized to ``--classifier-size``.
  ``rate`` is the share of translations it assigns to the target domain.
* **Labelled datasets with the same classes** (``--data-a usps --data-b mnist``, their ``--split``,
  default test; e.g. digits): scored at the target dataset's native size (a translation of a run
  trained on zero-padded images is cropped, otherwise resized bicubic) under the **target dataset's
  own classifier** (:func:`imagegen.metrics.classifier.load_or_train_classifier`, the one ``imagegen
  evaluate`` uses). ``rate`` is the classification accuracy of the translated images against their
  source labels — the pixel-level adaptation measure of CyCADA (Hoffman et al. 2018, Table 1).

``--feature-data NAME`` (e.g. ``cifar10-jpg``) also reports ``fid_x``/``kid_x`` in the feature space
of that dataset's classifier: a network of many natural-image classes, which a 2-class domain
classifier is not (its features mostly say *which domain*, and a colour cast can satisfy them).

Per direction: ``fid`` (:func:`imagegen.metrics.fid.fid_from_features`; with a hundred-odd images it
is strongly biased upward, Bińkowski et al. 2018 §3, so compare rows of one table only), ``kid``
(:func:`imagegen.metrics.kid.kernel_inception_distance`, unbiased, subsets of min(N_fake, N_real)
up to 1,000), ``rate``; and two reference rows that give the numbers a scale: ``identity`` (the
untranslated source images, resized bicubic to the scoring size: the domain gap a translator has to
close) and ``real`` (as many real *training* images of the target domain: the floor of the statistics);
and, for labelled datasets, per run the untranslated inputs as that run loads them (e.g. with
``--resize pad``: USPS digits zero-padded instead of enlarged), brought to the target's size the same
way as its translations: the gap that run's translator actually has to close.

Writes ``--out-json`` (numbers and protocol), prints a markdown table, and with ``--grid-dir`` one grid
per run and direction: ``--grid-num`` held-out inputs beside their translations (4 pairs per row).

Usage::

    python scripts/translation_eval.py --runs runs/h2z --held-out h2z/test --classifier-data h2z/train \\
        --domains horse,zebra --resolution 128 --out-json docs/results/cyclegan-h2z.json --grid-dir docs/images
    python scripts/translation_eval.py --runs runs/usps2mnist --data-a usps --data-b mnist \\
        --data-root-a DIR/usps --data-root-b DIR/mnist --out-json usps-mnist.json

Exit code 2 with a one-line message for bad options or data (as ``imagegen``'s errors).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

from imagegen.data import build_dataset
from imagegen.data.transforms import PAD, crop_padding, resolve_resize
from imagegen.errors import ImagegenError
from imagegen.metrics.classifier import (ClassifierConfig, TrainRecipe, classifier_for_dataset,
                                         load_or_train_classifier)
from imagegen.metrics.extractors import compute_features
from imagegen.metrics.fid import fid_from_features
from imagegen.metrics.kid import kernel_inception_distance
from imagegen.sampling import load_run
from imagegen.sampling.api import run_resize
from imagegen.sampling.images import save_grid


def as_float(ds) -> torch.Tensor:
    """All images of an in-memory dataset, float32 [N, C, H, W] in [-1, 1]."""
    return ds.get_batch(torch.arange(len(ds)))[0]


def resize(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """float32 [N, C, H, W] in [-1, 1] → [N, C, *size], bicubic with antialiasing, clamped to [-1, 1]."""
    if tuple(img.shape[-2:]) == size:
        return img
    return F.interpolate(img, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(-1, 1)


@dataclasses.dataclass
class Domain:
    """One domain as source (``load`` at a run's size, ``identity_to`` another's size, ``labels``) and
    as target (``held`` at its scoring size, its classifier ``clf``, ``feats``, ``floor``)."""

    name: str
    held: torch.Tensor  # held-out images at the scoring size, float32 [N, C, H, W] in [-1, 1]
    labels: Optional[torch.Tensor]  # class labels of held (labelled datasets) or None
    load: Callable[[int, str, int], torch.Tensor]  # (size, resize, channels) → held-out images
    clf: Any = None
    feats: Any = None
    floor: Optional[torch.Tensor] = None  # real training images, as many as held
    target_label: Optional[int] = None  # index of this domain under clf (folder mode)
    extra_clf: Any = None  # a second feature network (--feature-data), or None
    extra_feats: Any = None  # its features of held

    def to_score(self, fake: torch.Tensor, run_size: int, resize_method: str) -> torch.Tensor:
        """Translations into this domain at a run's size → this domain's scoring size and channels."""
        h, w = self.held.shape[-2:]
        if fake.shape[1] != self.held.shape[1]:
            fake = fake.mean(1, keepdim=True) if self.held.shape[1] == 1 else fake.expand(-1, 3, -1, -1)
        if resolve_resize(resize_method, h, w, run_size) == PAD:
            return crop_padding(fake, h, w)
        return resize(fake, (h, w))


def folder_domains(args, names: list[str], gen: torch.Generator) -> tuple[list[Domain], str]:
    r = args.resolution
    train = build_dataset(str(args.classifier_data), resolution=r, channels=3)
    if train.class_names is None or not set(names) <= set(train.class_names):
        raise ImagegenError(f"--classifier-data {args.classifier_data} must have sub-folders {names}")
    config = ClassifierConfig(channels=3, num_classes=train.num_classes, input_size=args.classifier_size)
    recipe = TrainRecipe(min_steps=args.classifier_steps)
    clf = classifier_for_dataset(train, config=config, recipe=recipe, log=lambda s: print(s, file=sys.stderr))
    domains = []
    for n in names:
        def load(size: int, method: str, channels: int, n: str = n) -> torch.Tensor:
            return as_float(build_dataset(str(args.held_out / n), resolution=size, resize=method, channels=channels))

        label = train.class_names.index(n)
        pool = torch.nonzero(torch.as_tensor(train.labels) == label).flatten()
        held = load(r, "bicubic", 3)
        floor = train.get_batch(pool[torch.randperm(len(pool), generator=gen)[:len(held)]])[0]
        domains.append(Domain(n, held, None, load, clf, compute_features(clf, held), floor, label))
    note = (f"domain classifier of {args.classifier_data} ({len(train)} images at {r}x{r}, resized to "
            f"{args.classifier_size}; {recipe.min_steps}+ steps; weights {clf.weights_hash[:12]}; accuracy "
            f"{clf.test_accuracy:.4f} on 10% held out of its training images)")
    return domains, note


def dataset_domains(args, gen: torch.Generator) -> tuple[list[Domain], str]:
    domains, notes = [], []
    for name, root in ((args.data_a, args.data_root_a), (args.data_b, args.data_root_b)):
        test = build_dataset(name, root=root, split=args.split, download=False)
        if test.labels is None:
            raise ImagegenError(f"--data {name} has no class labels; labelled datasets are scored by accuracy")

        def load(size: int, method: str, channels: int, name: str = name, root: Optional[str] = root) -> torch.Tensor:
            return as_float(build_dataset(name, root=root, split=args.split, resolution=size, resize=method,
                                          channels=channels, download=False))

        clf = load_or_train_classifier(name, data_root=root, log=lambda s: print(s, file=sys.stderr))
        train = build_dataset(name, root=root, split="train", download=False)
        held = as_float(test)
        floor = train.get_batch(torch.randperm(len(train), generator=gen)[:len(held)])[0]
        domains.append(Domain(name, held, torch.as_tensor(test.labels), load, clf, compute_features(clf, held), floor))
        notes.append(f"{name}: its dataset classifier (weights {clf.weights_hash[:12]}, test accuracy "
                     f"{clf.test_accuracy:.4f})")
    if domains[0].clf.num_logits != domains[1].clf.num_logits:
        raise ImagegenError(f"{args.data_a} and {args.data_b} have different classes; accuracy needs the same classes")
    return domains, "; ".join(notes)


@torch.no_grad()
def translate_all(model, img: torch.Tensor, direction: str, batch_size: int) -> torch.Tensor:
    """``model.translate`` over float32 [N, C, H, W] in [-1, 1] (H, W multiples of its ``size_multiple``) in
    batches of ``batch_size``: float32 [N, C', H, W] in [-1, 1] on the CPU. Raises ConfigError for a bad direction."""
    return torch.cat([model.translate(b.to(model.device), direction).float().cpu()
                      for b in img.split(batch_size)])


def distances(real: torch.Tensor, fake: torch.Tensor, seed: int, suffix: str = "") -> dict[str, float]:
    """FID and KID (with its std and subset size) between features float32 [N, D] of real and fake images,
    keys suffixed by ``suffix`` (``_x`` for the second feature space)."""
    kid, kid_std, m = kernel_inception_distance(real, fake, subset_size=1000, seed=seed)
    return {f"fid{suffix}": float(fid_from_features(real.numpy(), fake.numpy())), f"kid{suffix}": float(kid),
            f"kid{suffix}_std": float(kid_std), f"kid{suffix}_subset": int(m)}


def scores(target: Domain, fake: torch.Tensor, labels: Optional[torch.Tensor], seed: int) -> dict[str, float]:
    """FID, KID and rate of ``fake`` (at ``target``'s scoring size) against ``target``'s held-out images."""
    f = compute_features(target.clf, fake)
    pred = f.logits.argmax(1)
    if labels is not None:  # accuracy against the source labels
        rate: Optional[float] = float((pred == labels).float().mean())
    elif target.target_label is not None:  # share assigned to the target domain
        rate = float((pred == target.target_label).float().mean())
    else:  # real target images of a labelled dataset: their accuracy is the classifier's own
        rate = None
    out = {**distances(target.feats.features, f.features, seed), "rate": rate, "num": int(len(fake))}
    if target.extra_clf is not None:  # the same statistics in the second feature space
        out.update(distances(target.extra_feats.features, compute_features(target.extra_clf, fake).features, seed,
                             "_x"))
    return out


def add_feature_space(domains: list[Domain], name: str, root: Optional[str]) -> str:
    """Give every domain a second feature network: the dataset classifier of ``name`` (trained and
    cached if needed); returns its description for the protocol."""
    clf = load_or_train_classifier(name, data_root=root, log=lambda s: print(s, file=sys.stderr))
    for d in domains:
        d.extra_clf, d.extra_feats = clf, compute_features(clf, d.held)
    return (f"{name}: its dataset classifier ({clf.num_logits} classes, input {clf.config.input_size}x"
            f"{clf.config.input_size}, weights {clf.weights_hash[:12]}, test accuracy {clf.test_accuracy:.4f})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", required=True, help="comma-separated cyclegan run directories (or checkpoints)")
    ap.add_argument("--held-out", type=Path, default=None, help="folders: one sub-folder of held-out images per domain")
    ap.add_argument("--classifier-data", type=Path, default=None,
                    help="folders: labelled training images (one sub-folder per domain) for the domain classifier")
    ap.add_argument("--domains", default="horse,zebra", help="folders: sub-folder names of domains A and B")
    ap.add_argument("--resolution", type=int, default=128,
                    help="folders: scoring size; references and the classifier's images are loaded at it")
    ap.add_argument("--classifier-size", type=int, default=64, help="folders: the domain classifier's input size")
    ap.add_argument("--classifier-steps", type=int, default=TrainRecipe.min_steps,
                    help="folders: minimum training steps of the domain classifier (batch 128)")
    ap.add_argument("--feature-data", default=None,
                    help="also report FID/KID (fid_x, kid_x) in the feature space of this dataset's classifier, "
                         "e.g. cifar10-jpg: features of many classes instead of only the two domains'")
    ap.add_argument("--feature-root", default=None, help="directory holding --feature-data's files")
    ap.add_argument("--data-a", default=None, help="labelled dataset of domain A (e.g. usps), instead of folders")
    ap.add_argument("--data-b", default=None, help="labelled dataset of domain B (e.g. mnist)")
    ap.add_argument("--data-root-a", default=None)
    ap.add_argument("--data-root-b", default=None)
    ap.add_argument("--split", default="test", help="datasets: the held-out split")
    ap.add_argument("--seed", type=int, default=0, help="seed of KID subsets and of the floor's images")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out-json", type=Path, required=True)
    ap.add_argument("--grid-dir", type=Path, default=None)
    ap.add_argument("--grid-num", type=int, default=8)
    args = ap.parse_args(argv)
    try:
        gen = torch.Generator().manual_seed(args.seed)
        if (args.data_a is None) != (args.data_b is None) or (args.data_a is None) == (args.held_out is None):
            raise ImagegenError("give either --held-out and --classifier-data (folders) or --data-a and --data-b")
        if args.data_a is None:
            if args.classifier_data is None:
                raise ImagegenError("--held-out needs --classifier-data (labelled training images of the domains)")
            names = args.domains.split(",")
            if len(names) != 2:
                raise ImagegenError(f"--domains {args.domains!r}: give two sub-folder names, A,B")
            domains, extractor = folder_domains(args, names, gen)
        else:
            domains, extractor = dataset_domains(args, gen)
        extra = None if args.feature_data is None else add_feature_space(domains, args.feature_data, args.feature_root)
        if args.grid_dir is not None:
            args.grid_dir.mkdir(parents=True, exist_ok=True)
        rows: list[dict] = []
        for src, dst, direction in ((domains[0], domains[1], "AB"), (domains[1], domains[0], "BA")):
            base = {"direction": f"{src.name}→{dst.name}"}
            h, w = dst.held.shape[-2:]
            identity = src.load(h, "bicubic", dst.held.shape[1])
            rows.append({**base, "method": "identity (untranslated)", **scores(dst, identity, src.labels, args.seed)})
            rows.append({**base, "method": "real training images (floor)", **scores(dst, dst.floor, None, args.seed)})
            for run in args.runs.split(","):
                model = load_run(run, device="cpu")
                size, method = model.config.resolution, run_resize(model)
                inputs = src.load(size, method, model.config.channels or src.held.shape[1])
                if src.labels is not None:  # digits: untranslated, framed as the run sees them
                    as_run = dst.to_score(inputs, size, method)
                    rows.append({**base, "method": f"{run} (untranslated, loaded as the run loads it)",
                                 **scores(dst, as_run, src.labels, args.seed)})
                t0 = time.perf_counter()
                fake = translate_all(model, inputs, direction, args.batch_size)
                seconds = time.perf_counter() - t0
                fake = dst.to_score(fake, size, method)
                rows.append({**base, "method": run, "step": model.checkpoint_meta.get("step"), "translated_at": size,
                             "translate_s": round(seconds, 2), **scores(dst, fake, src.labels, args.seed)})
                if args.grid_dir is not None:
                    k = min(args.grid_num, len(fake))
                    path = args.grid_dir / f"{Path(run).name}-{src.name}2{dst.name}.png"  # inputs as scored: identity
                    save_grid(torch.stack([identity[:k], fake[:k]], 1).flatten(0, 1), path, nrow=4)
                    rows[-1]["grid"] = str(path)
    except ImagegenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    mode = "folders" if args.data_a is None else "datasets"
    protocol = {"mode": mode, "feature_extractor": extractor, "second_feature_extractor": extra, "seed": args.seed,
                "scoring_size": {d.name: list(d.held.shape[-2:]) for d in domains},
                "num_held_out": {d.name: len(d.held) for d in domains},
                "rate": ("share classified as the target domain" if mode == "folders"
                         else "accuracy of the translations against their source labels"),
                "kid": "unbiased MMD^2, cubic polynomial kernel, 100 subsets of min(N_fake, N_real, 1000)",
                "held_out": str(args.held_out) if mode == "folders" else f"{args.data_a}, {args.data_b}: {args.split}"}
    args.out_json.parent.mkdir(parents=True, exist_ok=True)
    args.out_json.write_text(json.dumps({"protocol": protocol, "rows": rows}, indent=1))
    print(f"feature extractor: {extractor}" + (f"; second (FID_x, KID_x): {extra}" if extra else ""))
    rate = "classified as target" if mode == "folders" else "accuracy"
    x_head = " FID_x ↓ | KID_x ×10³ ↓ |" if extra else ""
    print(f"| direction | method | FID ↓ | KID ×10³ ↓ | {rate} |{x_head}")
    print("|---|---|---|---|---|" + ("---|---|" if extra else ""))
    for row in rows:
        shown = "—" if row["rate"] is None else f"{100 * row['rate']:.1f} %"
        x_cols = f" {row['fid_x']:.2f} | {1e3 * row['kid_x']:.1f} ± {1e3 * row['kid_x_std']:.1f} |" if extra else ""
        print(f"| {row['direction']} | {row['method']} | {row['fid']:.2f} | {1e3 * row['kid']:.1f} ± "
              f"{1e3 * row['kid_std']:.1f} | {shown} |{x_cols}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
