"""Metric registry and the evaluation pipeline: images -> features -> metrics, with their protocol.

Metrics (names for ``--metrics``; each produces the listed result keys):

======  ==========================  =================================================================
name    result keys                 definition
======  ==========================  =================================================================
fid     fid                         Fréchet distance of feature Gaussians (Heusel et al. 2017, Eq. 6)
kid     kid, kid_std                unbiased MMD^2, cubic kernel, over subsets (Bińkowski et al. 2018)
is      is, is_std                  Inception Score over splits (Salimans et al. 2016, Sec. 4)
pr      precision, recall           k-NN manifolds, k=3 (Kynkäänniemi et al. 2019, Eq. 1-2)
dc      density, coverage           k-NN balls of real samples, k=5 (Naeem et al. 2020, Eq. 3-4)
acc     acc                         accuracy of class-conditional samples under the dataset classifier
modes   confident, classes_covered, confident top-class fraction, classes present, and normalised
        class_entropy               entropy of the predicted-class histogram (mode collapse)
cas     cas                         Classification Accuracy Score: real test accuracy of a classifier
                                    trained on class-conditional samples only (Ravuri & Vinyals 2019,
                                    §3; :mod:`imagegen.metrics.cas`, a model metric)
nn      nn_ratio, nn_copies         memorisation check against the training set: median nearest-real
                                    distance of samples over the training set's own leave-one-out
                                    median, and the share of samples closer than its 1 % quantile
                                    (:mod:`imagegen.metrics.nearest`; use the training split)
======  ==========================  =================================================================

Generated images are quantised to uint8 levels before feature extraction (exactly as if saved to PNG
and read back), so evaluating a run directly and evaluating its saved samples give the same numbers.
"""
from __future__ import annotations

import dataclasses
import datetime
import math
from typing import Any, Callable, Optional, Sequence

import torch

from .. import __version__
from ..errors import ConfigError, ImagegenError
from .extractors import FeatureExtractor, Features, compute_features
from .fid import feature_statistics, frechet_distance
from .inception_score import inception_score
from .kid import kernel_inception_distance
from .nearest import COPY_QUANTILE, copy_statistics
from .prdc import density_coverage, precision_recall
from .reference import ReferenceStats, reference_statistics


@dataclasses.dataclass(frozen=True)
class EvalOptions:
    """Metric parameters (recorded in the protocol).

    Attributes:
        kid_subset_size: KID subset size m (reduced to the smaller set size if larger).
        kid_subsets: number of KID subsets.
        is_splits: IS splits.
        pr_k: k of precision/recall.
        dc_k: k of density/coverage.
        seed: seed of sample generation and of the KID subsets.
    """

    kid_subset_size: int = 1000
    kid_subsets: int = 100
    is_splits: int = 10
    pr_k: int = 3
    dc_k: int = 5
    seed: int = 0


@dataclasses.dataclass
class MetricInputs:
    """What a metric function receives.

    Attributes:
        real: reference statistics.
        fake: features (and logits) of the generated images.
        options: metric parameters.
        fake_labels: int64 [N_fake] class labels the samples were generated with, or None.
        class_logits: float32 [N_fake, K] dataset-classifier logits of the samples (for ``acc``), or None.
    """

    real: ReferenceStats
    fake: Features
    options: EvalOptions
    fake_labels: Optional[torch.Tensor] = None
    class_logits: Optional[torch.Tensor] = None


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """A registered metric: its result keys and what it needs."""

    name: str
    keys: tuple[str, ...]
    fn: Callable[[MetricInputs], dict[str, float]]
    needs_logits: bool = False
    needs_labels: bool = False


_METRICS: dict[str, MetricSpec] = {}


def register_metric(name: str, keys: tuple[str, ...], *, needs_logits: bool = False, needs_labels: bool = False
                    ) -> Callable[[Callable[[MetricInputs], dict[str, float]]], Callable[[MetricInputs], dict[str, float]]]:
    """Register ``fn(inputs: MetricInputs) -> {key: value}`` as metric ``name``."""

    def deco(fn: Callable[[MetricInputs], dict[str, float]]) -> Callable[[MetricInputs], dict[str, float]]:
        _METRICS[name] = MetricSpec(name, keys, fn, needs_logits, needs_labels)
        return fn

    return deco


#: metrics computed from a model and the reference images rather than from generated samples'
#: features (see :mod:`imagegen.metrics.nll`); they apply to models whose ``evaluation`` has the kind
MODEL_METRICS: dict[str, str] = {"nll": "likelihood", "psnr": "paired", "ssim": "paired",
                                 "ppl": "distribution",  # ppl: imagegen.metrics.ppl
                                 "cas": "conditional"}  # cas: imagegen.metrics.cas (class-conditional models)


def list_metrics() -> list[str]:
    """Names of the registered metrics (sample metrics and model metrics such as ``nll``)."""
    return sorted([*_METRICS, *MODEL_METRICS])


def parse_metrics(spec: str | Sequence[str]) -> list[str]:
    """Parse ``"fid,kid,is"`` (or a list) into registered metric names, in order, without duplicates.

    Raises:
        ConfigError: an unknown name or an empty list (the message lists the known names).
    """
    names = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    names = list(dict.fromkeys(n for n in names if n))
    unknown = [n for n in names if n not in _METRICS and n not in MODEL_METRICS]
    if unknown or not names:
        what = f"unknown metric(s) {', '.join(map(repr, unknown))}" if unknown else "no metrics given"
        raise ConfigError(f"{what}; available: {', '.join(list_metrics())}")
    return names


def class_histogram_entropy(logits: torch.Tensor, num_classes: int) -> tuple[float, torch.Tensor]:
    """Normalised entropy of the predicted-class histogram.

    Args:
        logits: float [N, K] classifier logits of generated samples.
        num_classes: K (>= 2).

    Returns:
        ``(H / log K in [0, 1], counts int64 [K])``.
    """
    counts = torch.bincount(logits.argmax(dim=1), minlength=num_classes)
    p = counts.double() / max(1, int(counts.sum()))
    h = float(-(p[p > 0] * p[p > 0].log()).sum())
    return h / math.log(num_classes), counts


@register_metric("modes", ("confident", "classes_covered", "class_entropy"), needs_logits=True)
def _modes(x: MetricInputs) -> dict[str, float]:
    """Mode coverage under the extractor's classifier (meaningful with the dataset classifier):
    ``confident`` = fraction of samples whose top softmax probability is ≥ 0.9; ``classes_covered`` =
    classes predicted for at least a tenth of their uniform share (N / 10K samples); ``class_entropy`` =
    normalised entropy of the predicted-class histogram (1 = all classes equally frequent)."""
    assert x.fake.logits is not None
    logits = x.fake.logits.double()
    k = logits.shape[1]
    entropy, counts = class_histogram_entropy(logits, k)
    confident = float((logits.softmax(dim=1).amax(dim=1) >= 0.9).double().mean())
    covered = int((counts.double() >= 0.1 * len(logits) / k).sum())
    return {"confident": confident, "classes_covered": float(covered), "class_entropy": entropy}


@register_metric("fid", ("fid",))
def _fid(x: MetricInputs) -> dict[str, float]:
    mu, sigma = feature_statistics(x.fake.features.numpy())
    return {"fid": frechet_distance(x.real.mu, x.real.sigma, mu, sigma)}


@register_metric("kid", ("kid", "kid_std"))
def _kid(x: MetricInputs) -> dict[str, float]:
    mean, std, _ = kernel_inception_distance(x.real.features, x.fake.features, subset_size=x.options.kid_subset_size,
                                             num_subsets=x.options.kid_subsets, seed=x.options.seed)
    return {"kid": mean, "kid_std": std}


@register_metric("is", ("is", "is_std"), needs_logits=True)
def _is(x: MetricInputs) -> dict[str, float]:
    assert x.fake.logits is not None
    mean, std = inception_score(x.fake.logits, splits=x.options.is_splits)
    return {"is": mean, "is_std": std}


@register_metric("pr", ("precision", "recall"))
def _pr(x: MetricInputs) -> dict[str, float]:
    k = x.options.pr_k
    p, r = precision_recall(x.real.features, x.fake.features, k=k, real_radii=x.real.radii_for(k))
    return {"precision": p, "recall": r}


@register_metric("dc", ("density", "coverage"))
def _dc(x: MetricInputs) -> dict[str, float]:
    k = x.options.dc_k
    d, c = density_coverage(x.real.features, x.fake.features, k=k, real_radii=x.real.radii_for(k))
    return {"density": d, "coverage": c}


@register_metric("nn", ("nn_ratio", "nn_copies"))
def _nn(x: MetricInputs) -> dict[str, float]:
    stats = copy_statistics(x.real.features, x.fake.features, copy_quantile=COPY_QUANTILE,
                            real_radii=x.real.radii_for(1))
    return {"nn_ratio": stats["nn_ratio"], "nn_copies": stats["nn_copies"]}


@register_metric("acc", ("acc",), needs_labels=True)
def _acc(x: MetricInputs) -> dict[str, float]:
    assert x.class_logits is not None and x.fake_labels is not None
    return {"acc": float((x.class_logits.argmax(dim=1) == x.fake_labels).double().mean())}


def check_sample_counts(metrics: Sequence[str], num_real: int, num_fake: int, feature_dim: int,
                        options: EvalOptions = EvalOptions(), *, allow_few_samples: bool = False) -> list[str]:
    """Check that there are enough samples for each metric.

    Returns:
        Warnings (strings) for counts that work but bias a metric (only with ``allow_few_samples``).

    Raises:
        ImagegenError: a count below what a metric needs (one line naming the metric, the minimum
            and the fix). FID with fewer samples than the feature dimension D is an error unless
            ``allow_few_samples`` (the covariance is then rank-deficient and FID strongly biased).
    """
    warnings: list[str] = []
    both = min(num_real, num_fake)
    # metric -> (minimum, number of samples that must reach it)
    needs = {"fid": (2, both), "kid": (2, both), "pr": (options.pr_k + 1, both),
             "dc": (options.dc_k + 1, num_real if num_fake >= 1 else 0),
             "nn": (2, num_real if num_fake >= 1 else 0),
             "is": (2 * options.is_splits, num_fake), "acc": (1, num_fake), "modes": (1, num_fake)}
    for m in metrics:
        need, have = needs.get(m, (1, num_fake))
        if have < need:
            raise ImagegenError(f"metric {m} needs at least {need} samples per set, got {num_real} real and "
                                f"{num_fake} generated; use more samples (--num-samples)")
        if m == "fid" and both < feature_dim:
            msg = (f"FID from {both} samples with {feature_dim}-d features: the covariance is rank-deficient and "
                   f"FID is biased upward; use at least {feature_dim} samples per set")
            if not allow_few_samples:
                raise ImagegenError(msg + " (or --allow-few-samples to accept it)")
            warnings.append(msg)
    return warnings


def knn_ks(metrics: Sequence[str], options: EvalOptions) -> tuple[int, ...]:
    """The k values whose k-NN radii of the reference features the metrics need (``pr_k`` for
    ``pr``, ``dc_k`` for ``dc``, 1 for ``nn``), to compute and cache them with the reference statistics."""
    return tuple(k for m, k in (("pr", options.pr_k), ("dc", options.dc_k), ("nn", 1)) if m in metrics)


def classifier_logits(classifier: FeatureExtractor, extractor: FeatureExtractor, features: Features,
                      images: torch.Tensor, *, batch_size: int = 250,
                      device: str | torch.device = "cpu") -> Optional[torch.Tensor]:
    """Dataset-classifier logits float32 [N, K] of ``images``: the logits already in ``features``
    when the classifier is the feature extractor, else from a second pass of ``classifier``."""
    if classifier is extractor:
        return features.logits
    return compute_features(classifier, images, batch_size=batch_size, device=device).logits


def compute_metrics(real: ReferenceStats, fake: Features, metrics: Sequence[str], *,
                    options: EvalOptions = EvalOptions(), fake_labels: Optional[torch.Tensor] = None,
                    class_logits: Optional[torch.Tensor] = None) -> dict[str, float]:
    """Compute the named metrics from reference statistics and generated features.

    Args:
        real: reference statistics (:func:`~imagegen.metrics.reference.reference_statistics`).
        fake: features of the generated images (same extractor).
        metrics: names from :func:`parse_metrics`.
        options: metric parameters.
        fake_labels: int64 [N_fake] labels the samples were conditioned on (``acc``).
        class_logits: float32 [N_fake, K] dataset-classifier logits of the samples (``acc``).

    Returns:
        ``{result key: value}`` for every requested metric, in order.

    Raises:
        ImagegenError: a metric's input is missing (logits, labels) or shapes do not match.
    """
    if real.features.shape[1] != fake.features.shape[1]:
        raise ImagegenError(f"real and generated features differ in dimension ({real.features.shape[1]} vs "
                            f"{fake.features.shape[1]}); use the same extractor for both")
    x = MetricInputs(real, fake, options, fake_labels, class_logits)
    out: dict[str, float] = {}
    for name in parse_metrics(list(metrics)):
        spec = _METRICS[name]
        if spec.needs_logits and fake.logits is None:
            raise ImagegenError(f"metric {name} needs class logits, which this feature extractor does not give")
        if spec.needs_labels and (fake_labels is None or class_logits is None):
            raise ImagegenError(f"metric {name} needs a class-conditional model (samples generated with labels) "
                                "and the dataset classifier")
        out.update(spec.fn(x))
    return out


@dataclasses.dataclass
class EvalResult:
    """Result of one evaluation.

    Attributes:
        metrics: ``{result key: value}`` (e.g. ``fid``, ``kid``, ``kid_std``, ``precision``).
        protocol: how the numbers were obtained: extractor (name, weights hash, input size, resize),
            reference (dataset, split, content hash, number of images), numbers of real and generated
            samples, image resolution and channels, seed, metric parameters, imagegen version.
        warnings: human-readable caveats (e.g. too few samples for an unbiased FID).
    """

    metrics: dict[str, float]
    protocol: dict[str, Any]
    warnings: list[str] = dataclasses.field(default_factory=list)

    def record(self, **extra: Any) -> dict[str, Any]:
        """One JSON-serialisable object: ``extra`` (e.g. step, kimg), the metrics, then the protocol."""
        return {**extra, **self.metrics, "protocol": self.protocol}


def quantize(img: torch.Tensor) -> torch.Tensor:
    """float [N, C, H, W] in [-1, 1] -> uint8 [N, C, H, W] (round to nearest, clamp), as when saving PNGs."""
    return ((img.detach().float().clamp(-1, 1) + 1) * 127.5).round_().to(torch.uint8)


def evaluate_images(fake: torch.Tensor, reference: Any, *, extractor: FeatureExtractor, metrics: Sequence[str],
                    split: str = "", num_real: Optional[int] = None, options: EvalOptions = EvalOptions(),
                    fake_labels: Optional[torch.Tensor] = None, classifier: Optional[FeatureExtractor] = None,
                    fake_source: Optional[dict[str, Any]] = None, cache: Any = None, batch_size: int = 250,
                    device: str | torch.device = "cpu", allow_few_samples: bool = False) -> EvalResult:
    """Evaluate a set of generated images against a reference dataset.

    Args:
        fake: generated images, uint8 [N, C, H, W] in [0, 255], or float [N, C, H, W] in [-1, 1]
            (quantised to uint8 levels first).
        reference: :class:`imagegen.data.ImageDataset` of real images, same C, H, W as ``fake``.
        extractor: feature extractor (:func:`~imagegen.metrics.extractors.build_extractor`).
        metrics: metric names (see the module docstring).
        split: the reference split name, for the protocol.
        num_real: use a seeded subset of this many reference images (None: all).
        options: metric parameters and seed.
        fake_labels: int64 [N] labels the samples were generated with (needed by ``acc``).
        classifier: the dataset classifier, for ``acc`` when ``extractor`` is not it.
        fake_source: description of the generated images for the protocol (e.g. run dir, step, file).
        cache: reference-statistics cache root (None: default, False: off).
        batch_size: images per extractor forward pass (does not change the results).
        device: where the extractor runs.
        allow_few_samples: accept FID with fewer samples than feature dimensions (with a warning).

    Returns:
        :class:`EvalResult`.

    Raises:
        ImagegenError: image sizes or channels differ from the reference's, too few samples, unknown
            metric, or a metric's requirement is not met.
    """
    names = parse_metrics(list(metrics))
    if fake.ndim != 4:
        raise ImagegenError(f"generated images must be [N, C, H, W], got shape {tuple(fake.shape)}")
    real_shape = tuple(reference.images.shape[1:])
    if tuple(fake.shape[1:]) != real_shape:
        c, h, w = fake.shape[1:]
        rc, rh, rw = real_shape
        raise ImagegenError(f"generated images are {c}x{h}x{w} (CxHxW) but the reference {reference.name} images "
                            f"are {rc}x{rh}x{rw}; compare images of the same size and channel count "
                            "(--resize-real loads the reference at the generated size)")
    if fake.dtype != torch.uint8:
        fake = quantize(fake)
    labelled = fake_labels is not None
    if "acc" in names:
        if not labelled:
            raise ImagegenError("metric acc needs a class-conditional model (samples generated with labels)")
        clf = classifier if classifier is not None else extractor
        if clf.name != "classifier":
            raise ImagegenError("metric acc needs the dataset classifier")
    n_real = len(reference) if num_real is None else min(num_real, len(reference))
    warnings = check_sample_counts(names, n_real, len(fake), extractor.feature_dim, options,
                                   allow_few_samples=allow_few_samples)
    real = reference_statistics(reference, extractor, split=split, num_images=num_real, seed=options.seed,
                                radii_k=knn_ks(names, options), cache=cache, batch_size=batch_size, device=device)
    fake_feats = compute_features(extractor, fake, batch_size=batch_size, device=device)
    class_logits = None
    if "acc" in names:
        class_logits = classifier_logits(classifier if classifier is not None else extractor, extractor, fake_feats,
                                         fake, batch_size=batch_size, device=device)
    values = compute_metrics(real, fake_feats, names, options=options, fake_labels=fake_labels,
                             class_logits=class_logits)
    protocol = build_protocol(extractor, real, len(fake_feats), options, names, fake_source=fake_source,
                              classifier=classifier if "acc" in names else None)
    return EvalResult(values, protocol, warnings)


def build_protocol(extractor: FeatureExtractor, real: ReferenceStats, num_fake: int, options: EvalOptions,
                   metrics: Sequence[str], *, fake_source: Optional[dict[str, Any]] = None,
                   classifier: Optional[FeatureExtractor] = None) -> dict[str, Any]:
    """The protocol record of an evaluation (see :class:`EvalResult`)."""
    ext = extractor.protocol()
    used = {"fid": {}, "kid": {"kid_subset_size": min(options.kid_subset_size, len(real), num_fake),
                               "kid_subsets": options.kid_subsets},
            "is": {"is_splits": options.is_splits}, "pr": {"pr_k": options.pr_k}, "dc": {"dc_k": options.dc_k},
            "modes": {"modes_confidence": 0.9}, "nn": {"nn_copy_quantile": COPY_QUANTILE}}
    params: dict[str, Any] = {}
    for m in metrics:
        params.update(used.get(m, {}))
    protocol = {
        "metrics": list(metrics),
        "extractor": ext,
        "reference": {k: v for k, v in real.protocol.items() if k != "cache"},
        "num_real": len(real), "num_fake": num_fake,
        "resolution": real.protocol.get("resolution"), "channels": real.protocol.get("channels"),
        "resize": ext.get("resize"),
        "seed": options.seed,
        "fake": {"quantized_to_uint8": True, **(fake_source or {})},
        "parameters": params,
        "imagegen_version": __version__,
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if classifier is not None and classifier is not extractor:
        protocol["acc_classifier"] = classifier.protocol()
    return protocol
