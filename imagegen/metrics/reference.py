"""Reference statistics of a real image set, cached on disk.

The features (and logits) of the reference images, their mean and covariance (float64) and the k-NN
radii used by precision/recall and density/coverage are computed once and stored in
``<cache>/reference/<dataset>-<split>-<key>.npz`` (plain arrays; loaded with ``allow_pickle=False``).
The key is the SHA-256 of

- the dataset's content hash (every pixel and label, at the resolution and channel count used),
- the extractor's weights hash and its full protocol (input size, resize method),
- the reference protocol: number of images, subset seed, resolution, channels,
- a format version,

so the entry is invalidated whenever the data, the extractor or the protocol changes.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..checkpoint import write_npz_atomic
from ..errors import ImagegenError
from .cache import cache_dir, dataset_hash, json_hash, safe_name
from .extractors import FeatureExtractor, compute_features
from .fid import feature_statistics
from .prdc import knn_radii

FORMAT_VERSION = 1


@dataclasses.dataclass
class ReferenceStats:
    """Everything the metrics need from the real set.

    Attributes:
        features: float32 [N, D] features of the reference images.
        logits: float32 [N, K] logits, or None.
        mu: float64 [D] feature mean; sigma: float64 [D, D] feature covariance.
        protocol: JSON-serialisable description (dataset, split, content hash, number of images,
            subset seed, resolution, channels, extractor protocol, cache key).
        radii: squared k-NN radii float32 [N] by k, filled lazily (see :meth:`radii_for`).
    """

    features: torch.Tensor
    logits: Optional[torch.Tensor]
    mu: np.ndarray
    sigma: np.ndarray
    protocol: dict[str, Any]
    radii: dict[int, torch.Tensor] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def radii_for(self, k: int) -> torch.Tensor:
        """Squared k-NN radii of the reference features (centred on their mean), computed once."""
        if k not in self.radii:
            f = self.features.double()
            self.radii[k] = knn_radii((f - f.mean(dim=0)).float(), k)
        return self.radii[k]


def reference_key(data_sha256: str, extractor: FeatureExtractor, protocol: dict[str, Any]) -> str:
    """The cache key (64 hex digits) of a reference set; see the module docstring."""
    return json_hash({"data": data_sha256, "extractor": extractor.weights_hash,
                      "extractor_protocol": extractor.protocol(), "protocol": protocol,
                      "version": FORMAT_VERSION})


def seeded_subset(n: int, num: Optional[int], seed: int) -> Optional[torch.Tensor]:
    """Sorted indices of a random subset of ``num`` of ``n`` items drawn with ``seed`` (int64 [num]), or
    None when ``num`` is None or not smaller than ``n`` (use them all).

    Raises:
        ImagegenError: ``num`` < 1.
    """
    if num is None or num >= n:
        return None
    if num < 1:
        raise ImagegenError(f"the number of reference images must be >= 1, got {num}")
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:num].sort().values


def reference_statistics(dataset: Any, extractor: FeatureExtractor, *, split: str = "", num_images: Optional[int] = None,
                         seed: int = 0, radii_k: tuple[int, ...] = (), cache: Optional[str | os.PathLike] | bool = None,
                         batch_size: int = 250, device: str | torch.device = "cpu") -> ReferenceStats:
    """Features and statistics of a reference dataset, from the cache when possible.

    Args:
        dataset: :class:`imagegen.data.ImageDataset` (uint8 images [N, C, H, W] in memory).
        extractor: the feature extractor.
        split: split name, recorded in the protocol (``train``, ``test``, or "" for folders).
        num_images: use a seeded random subset of this many images (None: all of them).
        seed: seed of that subset.
        radii_k: k values whose k-NN radii are precomputed and cached (e.g. (3, 5) for PR and DC).
        cache: cache root; None for the default, False to disable caching.
        batch_size: images per forward pass of the extractor.
        device: where the extractor runs.

    Returns:
        :class:`ReferenceStats`; ``protocol["cache"]`` says whether it was loaded (``hit``),
        computed and stored (``miss``) or not cached (``off``).
    """
    data_sha = dataset_hash(dataset)
    idx = seeded_subset(len(dataset), num_images, seed)
    protocol: dict[str, Any] = {
        "dataset": dataset.name, "split": split, "data_sha256": data_sha,
        "num_images": len(dataset) if idx is None else len(idx),
        "subset_seed": None if idx is None else seed,
        "resolution": [int(dataset.images.shape[2]), int(dataset.images.shape[3])],
        "channels": int(dataset.images.shape[1])}
    key = reference_key(data_sha, extractor, protocol)
    path = None
    if cache is not False:
        path = (cache_dir(cache if isinstance(cache, (str, os.PathLike)) else None) / "reference"
                / f"{safe_name(dataset.name)}-{safe_name(split or 'all')}-{key[:24]}.npz")
        loaded = _load(path, key)
        if loaded is not None:
            missing = [k for k in radii_k if k not in loaded.radii]
            for k in missing:
                loaded.radii_for(k)
            if missing:
                _save(path, loaded)
            loaded.protocol["cache"] = "hit"
            return loaded
    images = dataset.images if idx is None else dataset.images[idx]
    feats = compute_features(extractor, images, batch_size=batch_size, device=device)
    mu, sigma = feature_statistics(feats.features.numpy())
    stats = ReferenceStats(feats.features, feats.logits, mu, sigma, {**protocol, "key": key})
    for k in radii_k:
        stats.radii_for(k)
    if path is not None:
        _save(path, stats)
        stats.protocol["cache"] = "miss"
    else:
        stats.protocol["cache"] = "off"
    return stats


def _save(path: Path, stats: ReferenceStats) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    protocol = {k: v for k, v in stats.protocol.items() if k != "cache"}
    arrays: dict[str, np.ndarray] = {"features": stats.features.numpy(), "mu": stats.mu, "sigma": stats.sigma,
                                     "protocol_json": np.array(json.dumps(protocol))}
    if stats.logits is not None:
        arrays["logits"] = stats.logits.numpy()
    for k, r in stats.radii.items():
        arrays[f"radii_k{k}"] = r.numpy()
    write_npz_atomic(path, arrays)


def _load(path: Path, key: str) -> Optional[ReferenceStats]:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            protocol = json.loads(str(z["protocol_json"]))
            if protocol.get("key") != key:
                return None
            radii = {int(n[len("radii_k"):]): torch.from_numpy(z[n].copy()) for n in z.files
                     if n.startswith("radii_k")}
            return ReferenceStats(torch.from_numpy(z["features"].copy()),
                                  torch.from_numpy(z["logits"].copy()) if "logits" in z.files else None,
                                  z["mu"].copy(), z["sigma"].copy(), protocol, radii)
    except (OSError, ValueError, KeyError):  # corrupt entry: recompute and overwrite
        return None
