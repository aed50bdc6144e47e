"""Inception Score (IS).

Salimans et al. 2016, "Improved Techniques for Training GANs", Sec. 4:

    IS = exp( E_x KL( p(y|x) || p(y) ) ),

computed on each of ``splits`` equal, consecutive parts of the sample set (p(y) is the mean of
p(y|x) over that part), reported as mean and standard deviation over the parts, as in the authors'
code (10 splits). With the dataset classifier the maximum is the number of classes K.

Written here rather than taken from torchmetrics: ``torchmetrics.image.InceptionScore`` takes images
and shuffles them with an unseeded permutation; here it is a pure function of the class
probabilities of whichever extractor is used.
"""
from __future__ import annotations

import torch

from ..errors import ImagegenError


def inception_score(logits: torch.Tensor, *, splits: int = 10) -> tuple[float, float]:
    """Inception Score from classifier logits.

    Args:
        logits: [N, K] float unnormalised log-probabilities (softmax is applied here, in float64).
        splits: number of consecutive parts; the last ``N % splits`` samples are dropped so that all
            parts are equal.

    Returns:
        ``(is_mean, is_std)``: mean and (population) standard deviation of the score over the parts,
        each in [1, K].

    Raises:
        ImagegenError: if there are fewer than 2 samples per split.
    """
    n = logits.shape[0]
    if logits.ndim != 2 or n < 2 * splits:
        raise ImagegenError(f"IS with {splits} splits needs at least {2 * splits} samples, got {n}")
    logp = torch.log_softmax(logits.double(), dim=1)  # [N, K]
    part = n // splits
    scores = []
    for s in range(splits):
        lp = logp[s * part:(s + 1) * part]  # [part, K]
        log_py = torch.logsumexp(lp, dim=0) - torch.log(torch.tensor(float(part), dtype=torch.float64))
        kl = (lp.exp() * (lp - log_py)).sum(dim=1)  # [part]
        scores.append(torch.exp(kl.mean()))
    t = torch.stack(scores)
    return float(t.mean()), float(t.std(unbiased=False))
