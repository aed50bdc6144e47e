"""Output distributions of autoregressive pixel models (PixelCNN, PixelRNN).

A network body gives causal features ``h`` [N, F, H, W]: ``h[:, :, i, j]`` depends only on the pixels
before (i, j) in raster order (all their channels). A head turns the features of a pixel into the
joint distribution of its C values, itself autoregressive over the channels in R → G → B order
(van den Oord et al. 2016a, "Pixel Recurrent Neural Networks", §2.1, Eq. 2):
p(x_i) = p(R | x_<i) · p(G | x_<i, R) · p(B | x_<i, R, G).

Instead of splitting every hidden layer of the body into R/G/B channel groups (the paper's masks of
type A and B over channel groups, §3.4), the dependence on the current pixel's earlier channels
enters only in the head, as PixelCNN++ does with its linear channel coefficients (Salimans et al.
2017, §2.2): the body sees strictly earlier pixels, and the head for channel c also sees the values
of channels < c at the same pixel. The factorisation, and so the likelihood, is the same exact
autoregressive one.

Targets (``x``) are what the likelihood scores: {0, 1} for ``bernoulli``, the 8-bit grid
``-1 + 2i/255`` in [-1, 1] for ``categorical`` and ``logistic_mixture``. All log-probabilities are in
nats per image.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, DataError
from .likelihoods import bernoulli_log_prob, discretized_logistic_log_prob

LEVELS = 256


def to_levels(x: torch.Tensor) -> torch.Tensor:
    """Grid values in [-1, 1] → int64 level indices 0..255."""
    return ((x + 1) * (LEVELS - 1) / 2).round().clamp(0, LEVELS - 1).long()


def from_levels(idx: torch.Tensor) -> torch.Tensor:
    """Level indices 0..255 → float32 grid values in [-1, 1]."""
    return idx.float() * (2.0 / (LEVELS - 1)) - 1.0


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round float values in [-1, 1] to the nearest of the 256 grid values (same dtype)."""
    return from_levels(to_levels(x)).to(x.dtype)


def check_temperature(temperature: float) -> float:
    """Return ``temperature`` as a float.

    Raises:
        ConfigError: temperature ≤ 0 or not finite.
    """
    t = float(temperature)
    if not (t > 0 and t < float("inf")):
        raise ConfigError(f"temperature {temperature}: must be a finite number > 0 (1 = the model's "
                          "distribution, < 1 sharper, > 1 flatter)")
    return t


class PixelHead(nn.Module):
    """Base of the per-pixel output distributions.

    Subclasses implement :meth:`log_prob` (training and evaluation, all pixels at once) and
    :meth:`sample_pixel` (one pixel of every image, channel by channel).
    """

    #: ``bernoulli``, ``categorical`` or ``logistic_mixture``
    kind: str = ""

    def __init__(self, features: int, channels: int) -> None:
        super().__init__()
        self.features = features
        self.channels = channels

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        """Targets → the network's input scale, float32 in [-1, 1] (binary {0, 1} → {-1, 1})."""
        return x

    def to_image(self, x: torch.Tensor) -> torch.Tensor:
        """Targets → images float32 in [-1, 1]."""
        return self.to_input(x)

    def check_targets(self, x: torch.Tensor) -> None:
        """Raise :class:`~imagegen.errors.DataError` if ``x`` is not what this head scores."""

    def log_prob(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x) per image in nats: h [N, F, H, W] causal features, x [N, C, H, W] targets → [N]."""
        raise NotImplementedError

    def sample_pixel(self, h: torch.Tensor, generator: Optional[torch.Generator] = None,
                     temperature: float = 1.0) -> torch.Tensor:
        """Draw one pixel of every image: h [N, F] features of that pixel → [N, C] targets."""
        raise NotImplementedError


class ChannelCategoricalHead(PixelHead):
    """A categorical distribution per sub-pixel over ``levels`` values (256-way softmax for 8-bit
    images, van den Oord et al. 2016a §3.4; ``levels=2`` is a Bernoulli with one logit, for
    binarised images), with channel c conditioned on channels < c of the same pixel.

    Per pixel and channel c: ``z_c = ReLU(A_c·ReLU(h) + U_c·x_<c)``, ``logits_c = O_c·z_c`` (1×1
    convolutions; U is masked so that block c sees only input channels < c).

    Args:
        features: F, channels of the body's features.
        channels: C (1 or 3).
        levels: 2 (Bernoulli) or 256 (categorical).
        hidden: hidden units per channel.
    """

    def __init__(self, features: int, channels: int, levels: int, hidden: int) -> None:
        super().__init__(features, channels)
        self.kind = "bernoulli" if levels == 2 else "categorical"
        self.levels = levels
        self.out_per = 1 if levels == 2 else levels
        c = channels
        self.h_proj = nn.Conv2d(features, c * hidden, 1)
        self.x_proj = nn.Conv2d(c, c * hidden, 1, bias=False)
        mask = torch.zeros(c * hidden, c, 1, 1)
        for k in range(c):
            mask[k * hidden:(k + 1) * hidden, :k] = 1  # channel k's block sees channels < k
        self.register_buffer("x_mask", mask, persistent=False)
        self.out = nn.Conv2d(c * hidden, c * self.out_per, 1, groups=c)

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 - 1 if self.levels == 2 else x

    def check_targets(self, x: torch.Tensor) -> None:
        if self.levels == 2 and not bool(((x == 0) | (x == 1)).all()):
            raise DataError("a bernoulli model scores binary images with values in {0, 1}; binarise "
                            "8-bit images first (model.likelihood_targets) or train with "
                            "--distribution categorical")

    def logits(self, h: torch.Tensor, x_in: torch.Tensor) -> torch.Tensor:
        """h [N, F, H, W], x_in [N, C, H, W] (network scale) → logits [N, C, out_per, H, W]."""
        z = F.relu(self.h_proj(F.relu(h)) + F.conv2d(x_in, self.x_proj.weight * self.x_mask))
        n, _, hh, ww = z.shape
        return self.out(z).view(n, self.channels, self.out_per, hh, ww)

    def log_prob(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        logits = self.logits(h, self.to_input(x))
        if self.levels == 2:
            lp = bernoulli_log_prob(x, logits[:, :, 0])
        else:
            lp = torch.log_softmax(logits, 2).gather(2, to_levels(x).unsqueeze(2)).squeeze(2)
        return lp.flatten(1).sum(1)

    def sample_pixel(self, h: torch.Tensor, generator: Optional[torch.Generator] = None,
                     temperature: float = 1.0) -> torch.Tensor:
        n = h.shape[0]
        h4 = h.view(n, -1, 1, 1)
        hp = self.h_proj(F.relu(h4))  # the feature part is the same for every channel
        x_in = torch.zeros(n, self.channels, 1, 1, device=h.device, dtype=h.dtype)
        out = torch.empty(n, self.channels, device=h.device, dtype=h.dtype)
        w = self.x_proj.weight * self.x_mask
        for c in range(self.channels):
            z = F.relu(hp + F.conv2d(x_in, w))
            logit = self.out(z).view(n, self.channels, self.out_per)[:, c] / temperature  # [N, out_per]
            if self.levels == 2:
                v = torch.bernoulli(torch.sigmoid(logit[:, 0]), generator=generator)
            else:
                idx = torch.multinomial(torch.softmax(logit, 1), 1, generator=generator)[:, 0]
                v = from_levels(idx).to(h.dtype)
            out[:, c] = v
            x_in[:, c, 0, 0] = self.to_input(v)
        return out


class LogisticMixtureHead(PixelHead):
    """The discretised mixture of logistics of PixelCNN++ (Salimans et al. 2017, §2.1, Eq. 2, and the
    linear channel dependence of §2.2) for 8-bit images.

    Per pixel: K mixture weights; for each component a logistic per channel with location μ_c and
    scale s_c, where the locations of later channels are shifted linearly by the earlier channels'
    values (μ_G + α·x_R, μ_B + β·x_R + γ·x_G; α, β, γ = tanh of network outputs). Each sub-pixel's
    probability is the logistic mass of its bin of width 2/255, the edge bins extended to ±∞, so the
    256³ probabilities of a colour pixel sum to one.

    Args:
        features: F.
        channels: C (1 or 3).
        num_mixtures: K.
        hidden: width of the hidden 1×1 layer.
    """

    kind = "logistic_mixture"

    def __init__(self, features: int, channels: int, num_mixtures: int, hidden: int) -> None:
        super().__init__(features, channels)
        c, k = channels, num_mixtures
        self.num_mixtures = k
        self.num_coeffs = c * (c - 1) // 2
        self.hidden = nn.Conv2d(features, hidden, 1)
        self.out = nn.Conv2d(hidden, k * (1 + 2 * c + self.num_coeffs), 1)

    def params(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """h [N, F, H, W] → (logit_pi [N, K, H, W], mean [N, C, K, H, W], log_scale [N, C, K, H, W]
        clamped at −7, coeffs [N, C(C−1)/2, K, H, W] in (−1, 1))."""
        p = self.out(F.relu(self.hidden(F.relu(h))))
        n, _, hh, ww = p.shape
        c, k = self.channels, self.num_mixtures
        logit_pi, mean, log_scale, coeffs = p.split([k, c * k, c * k, self.num_coeffs * k], 1)
        return (logit_pi, mean.view(n, c, k, hh, ww), log_scale.view(n, c, k, hh, ww).clamp(min=-7.0),
                torch.tanh(coeffs.view(n, self.num_coeffs, k, hh, ww)))

    def _shift(self, mean: torch.Tensor, coeffs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Locations with the linear channel dependence: mean [N, C, K, ...], x [N, C, ...]."""
        if self.channels == 1:
            return mean
        xk = x.unsqueeze(2)  # [N, C, 1, ...]
        m1 = mean[:, 1] + coeffs[:, 0] * xk[:, 0]
        m2 = mean[:, 2] + coeffs[:, 1] * xk[:, 0] + coeffs[:, 2] * xk[:, 1]
        return torch.stack([mean[:, 0], m1, m2], 1)

    def log_prob(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        logit_pi, mean, log_scale, coeffs = self.params(h)
        mean = self._shift(mean, coeffs, x)
        lp = discretized_logistic_log_prob(x.unsqueeze(2), mean, log_scale).sum(1)  # [N, K, H, W]
        lp = torch.logsumexp(lp + torch.log_softmax(logit_pi, 1), 1)  # [N, H, W]
        return lp.flatten(1).sum(1)

    def sample_pixel(self, h: torch.Tensor, generator: Optional[torch.Generator] = None,
                     temperature: float = 1.0) -> torch.Tensor:
        """Exact draw from the discretised mixture: a component k ~ softmax(logit_pi / T), then for
        each channel in order a logistic sample (scale × T) at the shifted location, rounded to the
        grid and clipped to [-1, 1] (which is the bin mass of Eq. 2, edges included); the rounded
        values of earlier channels shift the later locations, as in the likelihood."""
        n = h.shape[0]
        logit_pi, mean, log_scale, coeffs = (t.view(n, *t.shape[1:-2]) for t in self.params(h.view(n, -1, 1, 1)))
        comp = torch.multinomial(torch.softmax(logit_pi / temperature, 1), 1, generator=generator)  # [N, 1]
        pick = lambda t: t.gather(-1, comp.view(n, *([1] * (t.ndim - 2)), 1).expand(*t.shape[:-1], 1))[..., 0]  # noqa: E731
        mean, scale = pick(mean), pick(log_scale).exp() * temperature  # [N, C]
        coeffs = pick(coeffs) if self.num_coeffs else None
        out = torch.empty(n, self.channels, device=h.device, dtype=h.dtype)
        for c in range(self.channels):
            m = mean[:, c]
            if c == 1:
                m = m + coeffs[:, 0] * out[:, 0]
            elif c == 2:
                m = m + coeffs[:, 1] * out[:, 0] + coeffs[:, 2] * out[:, 1]
            u = torch.rand(n, generator=generator, device=h.device, dtype=h.dtype).clamp(1e-5, 1 - 1e-5)
            v = m + scale[:, c] * (torch.log(u) - torch.log1p(-u))
            out[:, c] = quantize(v.clamp(-1, 1))
        return out


def build_head(kind: str, features: int, channels: int, *, hidden: int, num_mixtures: int) -> PixelHead:
    """The head named ``kind``: ``bernoulli`` (binary images), ``categorical`` (256-way softmax per
    sub-pixel) or ``logistic_mixture`` (PixelCNN++'s discretised mixture of ``num_mixtures``
    logistics).

    Raises:
        ConfigError: an unknown kind.
    """
    if kind == "bernoulli":
        return ChannelCategoricalHead(features, channels, 2, hidden)
    if kind == "categorical":
        return ChannelCategoricalHead(features, channels, LEVELS, hidden)
    if kind == "logistic_mixture":
        return LogisticMixtureHead(features, channels, num_mixtures, hidden * channels)
    raise ConfigError(f"distribution {kind!r}: use bernoulli, categorical or logistic_mixture")
