"""Evaluation speed: FID + KID + precision/recall on 10,000 MNIST-sized samples with the dataset classifier,
sample generation included (issue 3's budget: under a minute on 2 CPU cores).

What is timed, phase by phase, with ``time.perf_counter`` (wall clock):

1. ``generate``: 10,000 samples from a DCGAN at 32x32x1 (the default MNIST configuration: z 100,
   g_width 64; weights from ``--run`` or freshly initialised, which costs the same) and quantisation;
2. ``fake features``: the dataset classifier on those samples;
3. ``reference (cold)``: features and statistics of the 10,000 MNIST test images, computed (cache
   disabled) -- paid once per dataset/extractor/protocol, then read from the cache;
   ``reference (warm)``: the same read from the cache;
4. ``fid``, ``kid`` (100 subsets of 1,000), ``pr`` (k = 3): the maths on the features.

``total (warm)`` = generate + fake features + reference (warm) + fid + kid + pr: the cost of one
``imagegen evaluate RUN --metrics fid,kid,pr --num-samples 10000`` once the cache is filled.
The classifier itself is trained once (``imagegen train-classifier --data mnist``) and is not timed
here (its training time is printed if it had to be trained).

Usage (run alone: another busy process on 2 cores makes both several times slower)::

    python benchmarks/bench_metrics.py --data-root MNIST_DIR     # the four MNIST IDX files
    python benchmarks/bench_metrics.py --data-root DIR --run runs/mnist-dcgan --repeats 3 --json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", default=None, help="MNIST directory (IDX files)")
    ap.add_argument("--run", default=None, help="a trained DCGAN run (default: an untrained DCGAN, same cost)")
    ap.add_argument("--num", type=int, default=10000, help="generated samples")
    ap.add_argument("--batch-size", type=int, default=250)
    ap.add_argument("--repeats", type=int, default=3, help="timed repetitions (the median is reported)")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args()

    from imagegen.data import build_dataset
    from imagegen.metrics.classifier import load_or_train_classifier
    from imagegen.metrics.evaluate import EvalOptions, compute_metrics, quantize
    from imagegen.metrics.extractors import compute_features
    from imagegen.metrics.reference import reference_statistics
    from imagegen.sampling import generate, load_run

    t0 = time.perf_counter()
    clf = load_or_train_classifier("mnist", data_root=args.data_root, log=lambda s: print(s, file=sys.stderr))
    clf_seconds = time.perf_counter() - t0
    real = build_dataset("mnist", root=args.data_root, split="test", resolution=32, channels=1)
    if args.run:
        model = load_run(args.run)
    else:
        from imagegen.models.dcgan import DCGAN, DCGANConfig

        torch.manual_seed(0)
        model = DCGAN(DCGANConfig(resolution=32, channels=1)).eval()

    options = EvalOptions()
    runs: list[dict[str, float]] = []
    metrics_out: dict[str, float] = {}
    ref_warm = reference_statistics(real, clf, split="test", radii_k=(3,))  # fill the cache once
    for _ in range(args.repeats):
        t: dict[str, float] = {}
        s = time.perf_counter()
        img = quantize(generate(model, args.num, seed=0, batch_size=args.batch_size))
        t["generate"] = time.perf_counter() - s
        s = time.perf_counter()
        fake = compute_features(clf, img, batch_size=args.batch_size)
        t["fake features"] = time.perf_counter() - s
        s = time.perf_counter()
        reference_statistics(real, clf, split="test", radii_k=(3,), cache=False)
        t["reference (cold)"] = time.perf_counter() - s
        s = time.perf_counter()
        ref_warm = reference_statistics(real, clf, split="test", radii_k=(3,))
        t["reference (warm)"] = time.perf_counter() - s
        for name in ("fid", "kid", "pr"):
            s = time.perf_counter()
            metrics_out.update(compute_metrics(ref_warm, fake, [name], options=options))
            t[name] = time.perf_counter() - s
        t["total (warm)"] = sum(t[k] for k in ("generate", "fake features", "reference (warm)", "fid", "kid", "pr"))
        t["total (cold)"] = t["total (warm)"] - t["reference (warm)"] + t["reference (cold)"]
        runs.append(t)

    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    result = {"num_samples": args.num, "num_real": len(real), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "classifier_test_accuracy": clf.test_accuracy,
              "classifier_seconds_to_load_or_train": round(clf_seconds, 2),
              "seconds_median": {k: round(v, 3) for k, v in median.items()},
              "seconds_all": [{k: round(v, 3) for k, v in r.items()} for r in runs],
              "metrics": metrics_out}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.num:,} generated (DCGAN 32x32x1) vs {len(real):,} MNIST test images, dataset classifier "
          f"(test accuracy {100 * (clf.test_accuracy or 0):.2f}%), {torch.get_num_threads()} threads, "
          f"median of {args.repeats}")
    for k, v in median.items():
        print(f"  {k:<18}{v:8.2f} s")
    print("  metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics_out.items()))


if __name__ == "__main__":
    main()
