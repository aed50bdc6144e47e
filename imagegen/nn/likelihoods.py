"""Per-pixel likelihoods shared by the likelihood models (VAE decoders, autoregressive heads) and
the units they are reported in.

All log-probabilities are in nats. Images on the 8-bit grid are float32 in [-1, 1] (value
``-1 + 2i/255`` for byte ``i``); binary images are float32 in {0, 1}.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

#: ln 2, for nats → bits
LOG_2 = math.log(2.0)


def binarize(img: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Dynamic binarisation: each pixel ~ Bernoulli((x + 1) / 2).

    Args:
        img: float32 [N, C, H, W] in [-1, 1].
        generator: optional torch.Generator for a reproducible draw.

    Returns:
        float32 [N, C, H, W] with values in {0, 1}.
    """
    p = ((img + 1) * 0.5).clamp(0, 1)
    return torch.bernoulli(p, generator=generator)


def bernoulli_log_prob(x01: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log Bernoulli(x | σ(logits)) per element, in nats; x01 in {0, 1} (same shape as logits)."""
    return -F.binary_cross_entropy_with_logits(logits, x01, reduction="none")


def discretized_logistic_log_prob(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor,
                                  levels: int = 256) -> torch.Tensor:
    """log P(x) per element, in nats, of a logistic(mean, s = exp(log_scale)) discretised to
    ``levels`` equally spaced values in [-1, 1] (Salimans et al. 2017, Eq. 2; one mixture component).

    P(x) = σ((x + δ − μ)/s) − σ((x − δ − μ)/s) with δ = 1/(levels − 1) (half the bin width), the
    lowest bin extended to −∞ and the highest to +∞. The difference of sigmoids is evaluated in log
    space as log σ(a) + log σ(−b) + log(1 − e^{b−a}), which is exact and stable for any scale.

    Args:
        x: float [...] on the grid {-1 + 2i/(levels − 1)} (8-bit data mapped to [-1, 1]).
        mean, log_scale: float [...] (broadcastable to x).
        levels: number of quantisation levels (256 for 8-bit images).

    Returns:
        float [...] ≤ 0; ``exp`` of it summed over the ``levels`` grid values is 1.
    """
    delta = 1.0 / (levels - 1)
    inv_s = torch.exp(-log_scale)
    a = (x - mean + delta) * inv_s  # upper bin edge, standardised
    b = (x - mean - delta) * inv_s  # lower bin edge
    mid = F.logsigmoid(a) + F.logsigmoid(-b) + torch.log(-torch.expm1(b - a).clamp(max=-1e-12))
    lo = F.logsigmoid(a)  # x = -1: P = σ(a)
    hi = F.logsigmoid(-b)  # x = +1: P = 1 − σ(b)
    edge = 1.0 - delta / 2
    return torch.where(x < -edge, lo, torch.where(x > edge, hi, mid))


def bits_per_dim(nll_nats: float | torch.Tensor, num_dims: int) -> float | torch.Tensor:
    """Convert a negative log-likelihood per image in nats to bits per dimension: nll / (D · ln 2).

    This is the code length of a *discrete* likelihood (Bernoulli, discretised logistic) per
    sub-pixel. A continuous density on [-1, 1] first needs the bin width accounted for
    (:func:`continuous_to_discrete_nll`).

    Args:
        nll_nats: −log p(x) per image in nats.
        num_dims: D = C·H·W.
    """
    return nll_nats / (num_dims * LOG_2)
