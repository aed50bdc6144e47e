"""Evaluation: FID, KID, IS, precision/recall, density/coverage; feature extractors; reference cache.

Typical use::

    from imagegen.data import build_dataset
    from imagegen.metrics import build_extractor, evaluate_images

    real = build_dataset("mnist", root="data/mnist", split="test")
    ext = build_extractor("classifier", dataset="mnist", data_root="data/mnist")
    result = evaluate_images(fake_uint8, real, extractor=ext, metrics=["fid", "kid", "pr"], split="test")
    result.metrics   # {"fid": ..., "kid": ..., "kid_std": ..., "precision": ..., "recall": ...}
    result.protocol  # extractor + weights hash, reference + content hash, sample counts, seed, ...

The maths works on features and lives in one file per metric (:mod:`.fid`, :mod:`.kid`,
:mod:`.inception_score`, :mod:`.prdc`); :mod:`.evaluate` holds the metric registry and pipeline.
"""
from .cache import cache_dir, dataset_hash
from .classifier import DatasetClassifier, load_or_train_classifier, train_classifier
from .evaluate import (EvalOptions, EvalResult, compute_metrics, evaluate_images, list_metrics, parse_metrics,
                       quantize, register_metric)
from .extractors import FeatureExtractor, Features, build_extractor, compute_features, list_extractors
from .fid import feature_statistics, fid_from_features, frechet_distance
from .inception import FIDInceptionV3, load_fid_inception
from .inception_score import inception_score
from .kid import kernel_inception_distance, mmd2_unbiased
from .prdc import density_coverage, knn_radii, precision_recall
from .reference import ReferenceStats, reference_statistics

__all__ = [
    "cache_dir", "dataset_hash", "DatasetClassifier", "load_or_train_classifier", "train_classifier",
    "EvalOptions", "EvalResult", "compute_metrics", "evaluate_images", "list_metrics", "parse_metrics", "quantize",
    "register_metric", "FeatureExtractor", "Features", "build_extractor", "compute_features", "list_extractors",
    "feature_statistics", "fid_from_features", "frechet_distance", "FIDInceptionV3", "load_fid_inception",
    "inception_score", "kernel_inception_distance", "mmd2_unbiased", "density_coverage", "knn_radii",
    "precision_recall", "ReferenceStats", "reference_statistics",
]
