"""Fréchet Inception Distance (FID).

Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", Sec. 4 / Eq. (6): the features of the real and the generated images are modelled as
Gaussians N(mu_r, Sigma_r) and N(mu_g, Sigma_g) and

    FID = ||mu_r - mu_g||^2 + Tr(Sigma_r + Sigma_g - 2 (Sigma_r Sigma_g)^(1/2)).

All statistics are computed in float64 (numpy), whatever the dtype of the features.
"""
from __future__ import annotations

import numpy as np

from ..errors import ImagegenError


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a feature set, in float64.

    Args:
        features: [N, D] float (any float dtype; converted to float64 first), N >= 2.

    Returns:
        ``(mu, sigma)``: mu float64 [D], sigma float64 [D, D] (unbiased, divided by N - 1, as
        ``numpy.cov`` in the reference implementations).

    Raises:
        ImagegenError: if ``features`` is not 2-D or has fewer than 2 rows.
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ImagegenError(f"features must be [N, D], got shape {f.shape}")
    if f.shape[0] < 2:
        raise ImagegenError(f"FID needs at least 2 samples per set to estimate a covariance, got {f.shape[0]}")
    mu = f.mean(axis=0)
    centred = f - mu
    sigma = centred.T @ centred / (f.shape[0] - 1)  # [D, D]
    return mu, sigma


def _sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative eigenvalues from
    rounding are clipped to 0)."""
    w, v = np.linalg.eigh(sigma)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017, Eq. 6).

    The trace term Tr((Sigma1 Sigma2)^(1/2)) is computed as the sum of the square roots of the
    eigenvalues of the symmetric PSD matrix S = Sigma1^(1/2) Sigma2 Sigma1^(1/2), which is similar to
    Sigma1 Sigma2 and therefore has the same eigenvalues. This is written here in numpy instead of
    calling ``scipy.linalg.sqrtm(sigma1 @ sigma2)`` (as pytorch-fid does) because it works on symmetric
    matrices only: it never produces the spurious imaginary parts or the non-finite results on
    singular covariances that pytorch-fid patches with an ``eps * I`` offset, and two symmetric
    eigendecompositions are faster than a Schur-based ``sqrtm``. The tests check it against ``sqrtm``.

    Args:
        mu1, mu2: float [D] means.
        sigma1, sigma2: float [D, D] symmetric PSD covariances.

    Returns:
        The FID, a float >= 0 (in squared feature units).

    Raises:
        ImagegenError: if the shapes do not match.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ImagegenError(f"statistics of different feature dimensions: mu {mu1.shape} vs {mu2.shape}, "
                            f"sigma {sigma1.shape} vs {sigma2.shape}")
    root1 = _sqrt_psd(sigma1)
    s = root1 @ sigma2 @ root1
    eig = np.linalg.eigvalsh((s + s.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = mu1 - mu2
    fid = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)
    return max(fid, 0.0)


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between two feature sets.

    Args:
        real: [N_real, D] float features of real images, N_real >= 2.
        fake: [N_fake, D] float features of generated images, N_fake >= 2.

    Returns:
        The FID (float >= 0). It is biased upward for small N (Bińkowski et al. 2018, Sec. 3 and
        App. D), so only compare values computed with the same numbers of samples.

    Raises:
        ImagegenError: on fewer than 2 samples in a set or mismatched feature dimensions.
    """
    return frechet_distance(*feature_statistics(real), *feature_statistics(fake))
