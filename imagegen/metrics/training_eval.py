"""Evaluation during training (``imagegen train ... --eval-every N``) and the mode-collapse check.

The trainer builds one :class:`TrainingEvaluator` and calls it every N steps. Everything that does not
change during training is done once at construction: choosing and loading the feature extractor,
training or loading the dataset classifier, and computing (or loading from the cache) the reference
statistics of the training set. Each call then only generates ``num_samples`` images with a fixed
seed (so successive values differ because the model changed, not the noise), extracts their features
and computes the metrics.

Mode-collapse check (training health): the generated samples are classified by the dataset
classifier; with p the histogram of predicted classes over K classes, the normalised entropy
H(p) / log K is logged as ``class_entropy`` (1 = all classes equally frequent) and a warning is
returned when it falls below ``collapse_threshold`` = 0.8 by default. For K = 10 that is an effective
number of classes exp(H) below 10^0.8 = 6.3, e.g. when about 4 of the 10 classes have vanished or
half of the samples fall into one class. The check needs a labelled training set.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from ..errors import ConfigError
from ..sampling import SAMPLE_BATCH, generate
from .classifier import DatasetClassifier, classifier_for_dataset, load_or_train_classifier
from .evaluate import (EvalOptions, build_protocol, check_sample_counts, class_histogram_entropy, classifier_logits,
                       compute_metrics, knn_ks, parse_metrics, quantize)
from .extractors import FeatureExtractor, compute_features
from .inception import find_inception_weights, load_fid_inception
from .reference import reference_statistics

COLLAPSE_THRESHOLD = 0.8


def dataset_classifier(dataset: Any, data_root: Optional[str], *, cache: Any = None,
                       log: Optional[Callable[[str], None]] = None) -> DatasetClassifier:
    """The dataset classifier for a (training) dataset.

    For a named dataset (``mnist``, ...) or an existing folder/zip this is the classifier of its
    canonical training split at native resolution (the one ``imagegen train-classifier`` caches); for
    other in-memory datasets, one trained on ``dataset`` itself. Trained and cached when missing.

    Raises:
        DataError: the dataset has no labels.
    """
    from ..data import dataset_loaders

    if dataset.name in dataset_loaders() or (dataset.name and os.path.exists(dataset.name)):
        return load_or_train_classifier(dataset.name, data_root=data_root, cache=cache, log=log)
    return classifier_for_dataset(dataset, cache=cache, log=log)


class TrainingEvaluator:
    """Computes metrics of a model during training.

    Args:
        dataset: the training :class:`imagegen.data.ImageDataset` (the reference set).
        run_dir: the run directory (for messages; the trainer writes ``metrics.jsonl``).
        num_samples: generated images per evaluation.
        metrics: metric names (``fid``, ``kid``, ``is``, ``pr``, ``dc``, ``acc``).
        device: where generation and feature extraction run.
        data_root: the dataset's directory (to load its canonical training split for the classifier).
        num_real: reference images (a seeded subset of the training set if it is larger).
        seed: seed of generation and KID subsets (fixed across evaluations).
        batch_size: images per generation / extractor pass.
        cache: cache root (None: default).
        inception_weights: weights file of the FID Inception; None looks at
            ``$IMAGEGEN_INCEPTION_WEIGHTS`` and the cache, and uses the dataset classifier if there are none.
        collapse_threshold: warn when the normalised class entropy falls below this.
        log: messages (default: stderr).

    Attributes:
        best_metric: the metric the trainer keeps the ``best`` checkpoint by (lower is better):
            ``fid`` if computed, else ``kid``, else None.
        protocol: the protocol of the results (extractor, reference, numbers of samples, seed, ...).

    Raises:
        ConfigError: unknown metric, or neither Inception weights nor a labelled dataset.
        ImagegenError: too few samples for a metric.
    """

    def __init__(self, dataset: Any, run_dir: str | os.PathLike, num_samples: int, metrics: Sequence[str],
                 device: str | torch.device = "cpu", data_root: Optional[str] = None, *, num_real: int = 10000,
                 seed: int = 0, batch_size: int = SAMPLE_BATCH, cache: Any = None,
                 inception_weights: Optional[str] = None, collapse_threshold: float = COLLAPSE_THRESHOLD,
                 log: Optional[Callable[[str], None]] = None) -> None:
        self.log = log or (lambda s: print(s, file=sys.stderr))
        self.run_dir = Path(run_dir)
        self.metrics = parse_metrics(list(metrics))
        self.num_samples = int(num_samples)
        self.device = device
        self.batch_size = batch_size
        self.options = EvalOptions(seed=seed)
        self.collapse_threshold = collapse_threshold
        self.best_metric = "fid" if "fid" in self.metrics else ("kid" if "kid" in self.metrics else None)
        self._acc_warned = False

        labelled = dataset.labels is not None and dataset.num_classes >= 2
        self.classifier: Optional[DatasetClassifier] = None
        if labelled:
            self.classifier = dataset_classifier(dataset, data_root, cache=cache, log=self.log)
        weights = find_inception_weights(inception_weights, cache)
        if weights is not None:
            self.extractor: FeatureExtractor = load_fid_inception(weights)
        elif self.classifier is not None:
            self.extractor = self.classifier
        else:
            raise ConfigError(f"--eval-every needs Inception weights (--inception-weights or "
                              f"$IMAGEGEN_INCEPTION_WEIGHTS) or a labelled dataset for the dataset classifier; "
                              f"{dataset.name} has no labels")
        if "acc" in self.metrics and self.classifier is None:
            raise ConfigError("metric acc needs a labelled dataset (for the dataset classifier)")
        self.class_names = getattr(dataset, "class_names", None)
        n_real = min(num_real, len(dataset))
        for w in check_sample_counts(self.metrics, n_real, self.num_samples, self.extractor.feature_dim,
                                     self.options, allow_few_samples=True):
            self.log(f"warning: {w}")
        self.reference = reference_statistics(dataset, self.extractor, split="training set", num_images=num_real,
                                              seed=seed, radii_k=knn_ks(self.metrics, self.options), cache=cache,
                                              batch_size=batch_size, device=device)
        self.protocol = build_protocol(self.extractor, self.reference, self.num_samples, self.options, self.metrics,
                                       fake_source={"during_training": True},
                                       classifier=self.classifier if "acc" in self.metrics else None)
        self.protocol["mode_collapse"] = ({"class_entropy_threshold": collapse_threshold}
                                          if self.classifier is not None else None)

    @torch.no_grad()
    def __call__(self, model: Any, step: int) -> tuple[dict[str, float], list[str]]:
        """Evaluate ``model`` (anything :func:`imagegen.sampling.generate` accepts) at ``step``.

        Returns:
            ``(metrics, warnings)``: metric values by key (plus ``class_entropy`` when a classifier is
            available) and warning strings (mode collapse).
        """
        k = int(getattr(model, "num_classes", 0) or 0)
        labels = torch.arange(self.num_samples) % k if k else None
        img = quantize(generate(model, self.num_samples, seed=self.options.seed, batch_size=self.batch_size,
                                labels=labels))  # uint8 [N, C, H, W]
        feats = compute_features(self.extractor, img, batch_size=self.batch_size, device=self.device)
        class_logits = None
        if self.classifier is not None:
            class_logits = classifier_logits(self.classifier, self.extractor, feats, img, batch_size=self.batch_size,
                                             device=self.device)
        warnings: list[str] = []
        metrics = self.metrics
        if "acc" in metrics and labels is None:
            metrics = [m for m in metrics if m != "acc"]
            if not self._acc_warned:
                warnings.append("metric acc skipped: the model is unconditional (acc needs class labels)")
                self._acc_warned = True
        values = compute_metrics(self.reference, feats, metrics, options=self.options, fake_labels=labels,
                                 class_logits=class_logits)
        if class_logits is not None and self.classifier is not None:
            kc = self.classifier.num_logits
            entropy, counts = class_histogram_entropy(class_logits, kc)
            values["class_entropy"] = entropy
            if entropy < self.collapse_threshold:
                top = counts.argsort(descending=True)[:3].tolist()
                names = [self.class_names[i] if self.class_names and i < len(self.class_names) else str(i)
                         for i in top]
                share = float(counts[top].sum()) / max(1, int(counts.sum()))
                warnings.append(f"possible mode collapse: class entropy {entropy:.2f} x log {kc} (< "
                                f"{self.collapse_threshold}); {share:.0%} of samples are classes "
                                f"{', '.join(names)}")
        return values, warnings


class _Combined:
    """Several training-time evaluators run one after the other; results merged."""

    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts
        self.best_metric = next((p.best_metric for p in parts if p.best_metric), None)
        self.protocol = parts[0].protocol if len(parts) == 1 else [p.protocol for p in parts]

    def __call__(self, model: Any, step: int) -> tuple[dict[str, float], list[str]]:
        values: dict[str, float] = {}
        warnings: list[str] = []
        for p in self.parts:
            v, w = p(model, step)
            values.update(v)
            warnings += w
        return values, warnings


def build_training_evaluator(model: Any, dataset: Any, run_dir: str | os.PathLike, cfg: Any,
                             device: str | torch.device) -> Any:
    """The evaluator the trainer calls every ``--eval-every`` steps, for ``--eval-metrics``: sample
    metrics (FID, KID, ...) through :class:`TrainingEvaluator` for models that sample, and ``nll``
    through :class:`imagegen.metrics.nll.NLLEvaluator` for likelihood models (on
    ``min(--eval-samples, 1000)`` evenly spaced images of the test split where the dataset has one).

    Raises:
        ConfigError: unknown metrics, or metrics that do not apply to the model.
    """
    from .evaluate import MODEL_METRICS
    from .nll import NLLEvaluator

    names = parse_metrics([m for m in cfg.eval_metrics.split(",") if m])
    if "cas" in names:
        raise ConfigError("--eval-metrics cas trains a classifier, too slow for training-time evaluation; "
                          "run `imagegen evaluate RUN --metrics cas` on the finished run")
    sample_metrics = [m for m in names if m not in MODEL_METRICS]
    parts: list[Any] = []
    kinds = (f"is evaluated by {', '.join(model.evaluation)} metrics" if model.evaluation
             else "has no standard metric (drop --eval-every)")
    paired = [m for m in names if MODEL_METRICS.get(m) == "paired"]
    if paired:
        if "paired" not in model.evaluation:
            raise ConfigError(f"--eval-metrics {','.join(paired)} need a model evaluated against targets; "
                              f"{model.model_name} {kinds}")
        from .paired import PairedEvaluator, held_out_images, restoration_degradation

        degradation = restoration_degradation(model)  # restorers: held-out clean images, degraded
        reference, split = held_out_images(model, dataset, cfg) if degradation else (dataset, "training")
        parts.append(PairedEvaluator(reference, min(cfg.eval_samples, 1000), paired, split, degradation))
    if sample_metrics:
        if not model.can_sample:
            raise ConfigError(f"--eval-metrics {','.join(sample_metrics)} need a model that samples; "
                              f"{model.model_name} {kinds}")
        parts.append(TrainingEvaluator(dataset, run_dir, cfg.eval_samples, sample_metrics, device, cfg.data_root))
    if "nll" in names:
        if not model.has_likelihood:
            raise ConfigError(f"--eval-metrics nll needs a likelihood model; {model.model_name} has none")
        from ..data import build_dataset, dataset_loaders
        from ..errors import DataError

        reference, split = dataset, "training set"
        if dataset.name in dataset_loaders():
            try:
                reference = build_dataset(dataset.name, root=cfg.data_root, split="test",
                                          resolution=model.config.resolution, channels=model.config.channels,
                                          resize=getattr(cfg, "resize", "bicubic"))  # as the training data
                split = "test"
            except DataError:  # no test split: score training images, and say so
                pass
        parts.append(NLLEvaluator(reference, min(cfg.eval_samples, 1000), cfg.eval_nll_k, split=split))
    return _Combined(parts)
