"""Kernel Inception Distance (KID).

Bińkowski et al. 2018, "Demystifying MMD GANs", Sec. 3 / App. D: the squared maximum mean discrepancy
between the real and generated feature distributions with the cubic polynomial kernel

    k(x, y) = (x . y / d + 1)^3        (d = feature dimension),

estimated with the unbiased U-statistic (Gretton et al. 2012, Lemma 6)

    MMD^2_u = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(m(m-1)) sum_{i != j} k(y_i, y_j)
              - 2/m^2 sum_{i, j} k(x_i, y_j),

averaged over random subsets of size m (default 100 subsets of 1,000, as in the paper's code).
Unlike FID it is unbiased, so its expectation is 0 when both sets come from the same distribution
(it can be slightly negative).

Written here in torch rather than taken from torchmetrics: torchmetrics has KID only as a stateful
``Metric`` bound to its own Inception network, with unseeded ``torch.randperm`` subsets; its
module-level estimator is not public API. The tests check this estimator against
``torchmetrics.image.kid.poly_mmd`` on the same subsets.
"""
from __future__ import annotations

import torch

from ..errors import ImagegenError


def polynomial_kernel_sums(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, float]:
    """Sums of the cubic polynomial kernel needed by :func:`mmd2_unbiased`.

    Args:
        x: [m, d] float features; y: [n, d] float features.

    Returns:
        ``(sum_{i!=j} k(x_i, x_j), sum_{i!=j} k(y_i, y_j), sum_{i,j} k(x_i, y_j))`` as Python floats.
        Gram matrices are computed in float32 (relative error ~1e-7 per entry, averaged out over the
        m^2 entries), the kernel and the sums in float64.
    """
    d = x.shape[1]
    xf, yf = x.float(), y.float()

    def k(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (torch.mm(a, b.T).double() / d + 1.0).pow_(3)

    kxx, kyy, kxy = k(xf, xf), k(yf, yf), k(xf, yf)
    sxx = float(kxx.sum() - kxx.diagonal().sum())
    syy = float(kyy.sum() - kyy.diagonal().sum())
    return sxx, syy, float(kxy.sum())


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel (Bińkowski et al. 2018, Eq. 2 with App. D's kernel).

    Args:
        x: [m, d] float features (m >= 2); y: [n, d] float features (n >= 2).

    Returns:
        The unbiased estimate of MMD^2 (float; may be slightly negative).
    """
    m, n = x.shape[0], y.shape[0]
    sxx, syy, sxy = polynomial_kernel_sums(x, y)
    return sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2.0 * sxy / (m * n)


def kernel_inception_distance(real: torch.Tensor, fake: torch.Tensor, *, subset_size: int = 1000,
                              num_subsets: int = 100, seed: int = 0) -> tuple[float, float, int]:
    """KID: mean and standard deviation of the unbiased MMD^2 over random subsets.

    Args:
        real: [N_real, D] float features of real images.
        fake: [N_fake, D] float features of generated images.
        subset_size: samples per subset (per set); reduced to ``min(N_real, N_fake)`` when larger.
        num_subsets: number of subsets averaged.
        seed: seed of the subset draws (subsets are drawn without replacement within a subset,
            independently across subsets), so results are reproducible.

    Returns:
        ``(kid_mean, kid_std, m)``: mean and (population) standard deviation of MMD^2 over the
        subsets, and the subset size m actually used. Values are in squared feature units; papers
        often quote KID x 1e3.

    Raises:
        ImagegenError: if either set has fewer than 2 samples or the feature dimensions differ.
    """
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ImagegenError(f"KID needs feature sets [N, D] of equal D, got {tuple(real.shape)} and "
                            f"{tuple(fake.shape)}")
    m = min(subset_size, real.shape[0], fake.shape[0])
    if m < 2:
        raise ImagegenError(f"KID needs at least 2 samples per set, got {real.shape[0]} real and "
                            f"{fake.shape[0]} generated")
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(num_subsets):
        ir = torch.randperm(real.shape[0], generator=gen)[:m]
        jf = torch.randperm(fake.shape[0], generator=gen)[:m]
        values.append(mmd2_unbiased(real[ir], fake[jf]))
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std(unbiased=False)) if len(values) > 1 else 0.0, m
