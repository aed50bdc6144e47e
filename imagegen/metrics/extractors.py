"""Feature extractors and their registry.

An extractor maps images float32 [N, C, H, W] in [-1, 1] (any C in {1, 3}, any H, W) to

- ``features``: float32 [N, D] embeddings, used by FID, KID, precision/recall and density/coverage;
- ``logits``: float32 [N, K] class scores, used by IS (and by the ``acc`` metric of the dataset
  classifier), or None.

Each extractor describes itself in :meth:`FeatureExtractor.protocol` (name, weights hash, input size,
resize method), which every metric result records. Two are registered:

- ``inception``: the FID Inception-v3 of pytorch-fid (:mod:`imagegen.metrics.inception`), the standard
  for comparing with published numbers; needs a weights file.
- ``classifier``: a small CNN trained on the dataset itself (:mod:`imagegen.metrics.classifier`),
  trained offline in about a minute; numbers are only comparable with other numbers from the same
  classifier (same weights hash).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Optional

import torch
from torch import nn

from ..errors import ConfigError, ImagegenError


class FeatureExtractor(nn.Module):
    """Base class of feature extractors (always used in eval mode, without gradients).

    Attributes:
        name: registry name (``inception``, ``classifier``).
        feature_dim: D, the width of ``features``.
        num_logits: K, the width of ``logits`` (0 if the extractor has none).
    """

    name: str = ""
    feature_dim: int = 0
    num_logits: int = 0

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Map images float32 [N, C, H, W] in [-1, 1] to (features [N, D], logits [N, K] or None)."""
        raise NotImplementedError

    def protocol(self) -> dict[str, Any]:
        """JSON-serialisable description recorded with every result: ``name``, ``weights_sha256``,
        ``feature_dim``, ``input_size`` and ``resize`` at least."""
        raise NotImplementedError

    @property
    def weights_hash(self) -> str:
        """SHA-256 hex digest identifying the weights (part of every cache key)."""
        return str(self.protocol()["weights_sha256"])


@dataclasses.dataclass
class Features:
    """Features of one image set.

    Attributes:
        features: float32 [N, D] (CPU).
        logits: float32 [N, K] (CPU) or None.
    """

    features: torch.Tensor
    logits: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return int(self.features.shape[0])


def _as_float_batch(batch: torch.Tensor) -> torch.Tensor:
    if batch.dtype == torch.uint8:  # edge: uint8 [0, 255] -> float32 [-1, 1]
        return batch.to(torch.float32).mul_(2.0 / 255.0).sub_(1.0)
    return batch.to(torch.float32)


@torch.inference_mode()
def compute_features(extractor: FeatureExtractor, images: torch.Tensor | Iterable[torch.Tensor], *,
                     batch_size: int = 250, device: str | torch.device = "cpu") -> Features:
    """Run ``extractor`` over a set of images in batches.

    Args:
        extractor: the feature extractor (switched to eval mode here).
        images: either one tensor [N, C, H, W] (uint8 in [0, 255] or float in [-1, 1]) or an iterable
            of such batches (e.g. batches generated on the fly).
        batch_size: images per forward pass when ``images`` is a tensor. Extractors work per image
            (eval-mode batch norm), so the result does not depend on it beyond float rounding.
        device: where the extractor runs; results are returned on the CPU.

    Returns:
        :class:`Features` with float32 features [N, D] and logits [N, K] (or None).
    """
    extractor.eval().to(device)
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise ImagegenError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
        batches: Iterable[torch.Tensor] = images.split(batch_size)
    else:
        batches = images
    feats, logits = [], []
    for batch in batches:
        f, lg = extractor(_as_float_batch(batch).to(device))
        feats.append(f.float().cpu())
        if lg is not None:
            logits.append(lg.float().cpu())
    if not feats:
        raise ImagegenError("no images to extract features from")
    return Features(torch.cat(feats), torch.cat(logits) if logits else None)


# ---- registry --------------------------------------------------------------------------------
_EXTRACTORS: dict[str, Callable[..., FeatureExtractor]] = {}


def register_extractor(name: str) -> Callable[[Callable[..., FeatureExtractor]], Callable[..., FeatureExtractor]]:
    """Register a factory ``fn(**options) -> FeatureExtractor`` under ``name``."""

    def deco(fn: Callable[..., FeatureExtractor]) -> Callable[..., FeatureExtractor]:
        _EXTRACTORS[name] = fn
        return fn

    return deco


def _ensure_loaded() -> None:
    from . import classifier, inception  # noqa: F401  (register on import)


def build_extractor(name: str, **options: Any) -> FeatureExtractor:
    """Build the extractor registered as ``name`` (``inception`` or ``classifier``).

    Args:
        name: registry name.
        **options: passed to the factory; see :func:`imagegen.metrics.inception.build_inception` and
            :func:`imagegen.metrics.classifier.build_classifier`.

    Raises:
        ConfigError: unknown name.
        ImagegenError: the factory's errors (missing weights, unlabelled data, ...).
    """
    _ensure_loaded()
    if name not in _EXTRACTORS:
        raise ConfigError(f"unknown feature extractor {name!r}; available: {', '.join(sorted(_EXTRACTORS))}")
    return _EXTRACTORS[name](**options)


def list_extractors() -> list[str]:
    """Names of the registered extractors."""
    _ensure_loaded()
    return sorted(_EXTRACTORS)
