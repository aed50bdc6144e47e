"""Improved precision and recall, density and coverage: k-nearest-neighbour estimates of the manifolds
of real and generated features.

- Precision/recall: Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
  Generative Models", Sec. 2, Eq. (1)-(2). Each feature vector's neighbourhood is the ball whose radius
  is the distance to its k-th nearest neighbour in its own set (k = 3). Precision is the fraction of
  generated samples inside at least one real ball; recall the fraction of real samples inside at least
  one generated ball.
- Density/coverage: Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative
  Models", Sec. 3, Eq. (3)-(4) (k = 5). Density = (1 / (k M)) sum_j sum_i 1[Y_j in B(X_i, NND_k(X_i))]
  counts how many real balls contain each generated sample (about 1 for identical distributions, can
  exceed 1); coverage is the fraction of real balls that contain at least one generated sample.

The k-th neighbour excludes the point itself (the reference implementations take the (k+1)-th
smallest distance including the zero self-distance). Written in torch instead of using the reference
``prdc`` package or scikit-learn: those materialise full N x M distance matrices (10,000^2 float64 =
800 MB); here distances are computed in row chunks, so memory stays bounded and the result does not
depend on the chunk size. Squared Euclidean distances are compared (same order as distances),
computed in float32 as ||a||^2 + ||b||^2 - 2 a.b on features centred on the real mean.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..errors import ImagegenError

_CHUNK = 2048


def _sq_dists_shifted(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    """``||b_j||^2 - 2 a_i . b_j`` [len(a), len(b)], i.e. the squared distance minus ``||a_i||^2``
    (one fused ``addmm``; adding the per-row constant is left to the caller, where it is cheaper)."""
    return torch.addmm(b_sq[None, :], a, b.T, alpha=-2.0)


def knn_radii(features: torch.Tensor, k: int, *, chunk: int = _CHUNK) -> torch.Tensor:
    """Squared distance of each point to its k-th nearest neighbour in the same set (itself excluded).

    Args:
        features: [N, D] float features, N > k.
        k: neighbourhood size (k >= 1).
        chunk: rows per distance block (memory only; does not change the result).

    Returns:
        float32 [N] squared radii.

    Raises:
        ImagegenError: if N <= k.
    """
    n = features.shape[0]
    if n <= k:
        raise ImagegenError(f"k-NN radii with k={k} need more than {k} samples, got {n}")
    f = features.float()
    f_sq = (f * f).sum(dim=1)
    out = torch.empty(n, dtype=torch.float32)
    for s in range(0, n, chunk):
        d = _sq_dists_shifted(f[s:s + chunk], f, f_sq)  # [c, N]
        # the k+1 smallest include the point itself (distance ~0)
        kth = d.topk(k + 1, dim=1, largest=False).values[:, k]
        out[s:s + chunk] = (kth + f_sq[s:s + chunk]).clamp_min_(0.0)
    return out


def _ball_counts(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, *, chunk: int = _CHUNK
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query, the number of balls B(centre_i, radius_i) containing it, and for each centre
    whether any query falls in its ball.

    Returns:
        (int64 [len(queries)] counts, bool [len(centres)] covered).
    """
    c_sq = (centres * centres).sum(dim=1)
    counts = torch.empty(queries.shape[0], dtype=torch.int64)
    covered = torch.zeros(centres.shape[0], dtype=torch.bool)
    for s in range(0, queries.shape[0], chunk):
        q = queries[s:s + chunk]
        # ||q||^2 + ||c||^2 - 2 q.c <= r  <=>  ||c||^2 - 2 q.c <= r - ||q||^2
        inside = _sq_dists_shifted(q, centres, c_sq) <= radii[None, :] - (q * q).sum(dim=1, keepdim=True)
        counts[s:s + chunk] = inside.sum(dim=1)
        covered |= inside.any(dim=0)
    return counts, covered


def _centre(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ImagegenError(f"feature sets must be [N, D] with equal D, got {tuple(real.shape)} and "
                            f"{tuple(fake.shape)}")
    mean = real.double().mean(dim=0)
    return (real.double() - mean).float(), (fake.double() - mean).float()


def precision_recall(real: torch.Tensor, fake: torch.Tensor, *, k: int = 3,
                     real_radii: Optional[torch.Tensor] = None) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019, Eq. 1-2).

    Args:
        real: [N, D] float features of real images (N > k).
        fake: [M, D] float features of generated images (M > k).
        k: neighbourhood size (paper: 3).
        real_radii: optional precomputed ``knn_radii(real - real.mean(0), k)`` (e.g. from a cache).

    Returns:
        ``(precision, recall)``, each in [0, 1].

    Raises:
        ImagegenError: on too few samples or mismatched feature dimensions.
    """
    r, g = _centre(real, fake)
    r_radii = knn_radii(r, k) if real_radii is None else real_radii
    g_radii = knn_radii(g, k)
    in_real, _ = _ball_counts(g, r, r_radii)
    in_fake, _ = _ball_counts(r, g, g_radii)
    return float((in_real > 0).double().mean()), float((in_fake > 0).double().mean())


def density_coverage(real: torch.Tensor, fake: torch.Tensor, *, k: int = 5,
                     real_radii: Optional[torch.Tensor] = None) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020, Eq. 3-4).

    Args:
        real: [N, D] float features of real images (N > k).
        fake: [M, D] float features of generated images.
        k: neighbourhood size (paper: 5).
        real_radii: optional precomputed ``knn_radii(real - real.mean(0), k)``.

    Returns:
        ``(density, coverage)``: density >= 0 (about 1 when the distributions match, unbounded
        above), coverage in [0, 1].

    Raises:
        ImagegenError: on too few samples or mismatched feature dimensions.
    """
    r, g = _centre(real, fake)
    r_radii = knn_radii(r, k) if real_radii is None else real_radii
    counts, covered = _ball_counts(g, r, r_radii)
    return float(counts.double().sum() / (k * g.shape[0])), float(covered.double().mean())
