"""How much the offline metrics move with the dataset classifier's weights: one set of samples scored
under dataset classifiers trained with different seeds (same architecture, recipe and data).

Without Inception weights, ``imagegen evaluate`` extracts features with a classifier trained on the
spot (:mod:`imagegen.metrics.classifier`), and a fresh machine trains its own: its weights differ from
another machine's (other float kernels, or another seed), so FID, KID and precision/recall from two
machines are not strictly comparable. This script measures that spread on the images at hand: train
(or find cached) the classifier with each ``--seeds`` value, score the same ``--fake`` images against
the same reference under each, and print (and ``--json``) one row per seed and the range.

Usage::

    imagegen sample runs/zebra-none --num 5000 --out zebra-samples.npz
    python scripts/extractor_spread.py --fake zebra-samples.npz --real horse2zebra_trainB.zip \\
        --resolution 64 --classifier-data cifar10-jpg --seeds 0,1,2 --json spread.json

Each new seed trains a classifier once (CIFAR-10: about 2 minutes on 2 CPU cores), cached like the
default one. Bad input (missing files, a dataset without labels for the classifier) is a one-line error,
exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).parent))
from nearest_neighbours import add_sample_options, load_samples_and_reference  # noqa: E402


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_sample_options(ap)
    ap.add_argument("--classifier-data", required=True, help="labelled dataset the classifiers are trained on")
    ap.add_argument("--classifier-data-root", "--classifier-root", dest="classifier_root", default=None,
                    help="directory of that dataset's files (default: $IMAGEGEN_DATA)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated classifier training seeds")
    ap.add_argument("--metrics", default="fid,kid,pr", help="sample metrics to compute under each classifier")
    ap.add_argument("--cache-dir", default=None, help="classifier cache (default $IMAGEGEN_CACHE or ~/.cache/imagegen)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)

    from imagegen.errors import ImagegenError
    from imagegen.metrics.classifier import TrainRecipe, load_or_train_classifier
    from imagegen.metrics.evaluate import EvalOptions, evaluate_images, parse_metrics

    rows = []
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        if not seeds:
            raise ImagegenError("--seeds: give at least one seed, e.g. 0,1,2")
        metrics = parse_metrics(args.metrics)
        fake, ref = load_samples_and_reference(args)
        for seed in seeds:
            clf = load_or_train_classifier(args.classifier_data, data_root=args.classifier_root, cache=args.cache_dir,
                                           recipe=TrainRecipe(seed=seed), log=lambda m: print(m, file=sys.stderr))
            res = evaluate_images(fake, ref, extractor=clf, metrics=metrics, options=EvalOptions(), cache=args.cache_dir,
                                  fake_source={"file": args.fake})
            rows.append({"classifier_seed": seed, "weights_sha256": clf.weights_hash,
                         "test_accuracy": clf.test_accuracy, **res.metrics})
            print(f"seed {seed} (weights {clf.weights_hash[:12]}, test accuracy {100 * (clf.test_accuracy or 0):.2f} %): "
                  + ", ".join(f"{k} {v:.4g}" for k, v in res.metrics.items()))
    except (ImagegenError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    spread = {k: [min(r[k] for r in rows), max(r[k] for r in rows)] for k in rows[0]
              if k not in ("classifier_seed", "weights_sha256", "test_accuracy")}
    print("range over seeds: " + ", ".join(f"{k} {lo:.4g}–{hi:.4g}" for k, (lo, hi) in spread.items()))
    if args.json:
        args.json.write_text(json.dumps({"fake": args.fake, "real": args.real, "classifier_data": args.classifier_data,
                                         "num_fake": len(fake), "num_real": len(ref), "rows": rows, "range": spread},
                                        indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
