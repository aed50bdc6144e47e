"""Class-conditional layers: conditional batch norm and the projection discriminator head.

* :class:`ConditionalBatchNorm2d` — batch norm whose affine scale and shift are looked up per class
  (conditional instance norm of Dumoulin et al. 2017, "A Learned Representation for Artistic Style",
  Eq. 5; conditional batch norm of de Vries et al. 2017, "Modulating early visual processing by
  language"), as used in the generator of Miyato & Koyama 2018, "cGANs with Projection
  Discriminator", §4.
* :class:`ProjectionHead` — the output layer of the projection discriminator (Miyato & Koyama 2018,
  Eq. 3): ``D(x, y) = ψ(φ(x)) + embed(y)ᵀ φ(x)``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm without its own affine transform, followed by a class-specific one:
    ``y = γ_c · BN(x) + β_c`` with γ_c, β_c rows of two embedding tables (γ initialised to 1, β to 0,
    so the layer starts as plain batch norm).

    Args:
        num_features: channels C.
        num_classes: number of classes K.
        eps, momentum: as in :class:`torch.nn.BatchNorm2d`.

    Shapes: x float32 [N, C, H, W], labels int64 [N] in [0, K) → [N, C, H, W].
    """

    def __init__(self, num_features: int, num_classes: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False)
        self.gamma = nn.Embedding(num_classes, num_features)
        self.beta = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.bn(x)
        return h * self.gamma(labels)[:, :, None, None] + self.beta(labels)[:, :, None, None]


class ProjectionHead(nn.Module):
    """Output layer of a projection discriminator (Miyato & Koyama 2018, Eq. 3):

    ``logit(x, y) = ψ(φ(x)) + ⟨V[y], φ(x)⟩``, where φ(x) [N, F] are D's pooled features, ψ a linear
    layer to one unconditional logit and V [K, F] a class embedding ("inner product with the
    embedded label"). Both are spectrally normalised (Miyato et al. 2018) when ``sn`` is True, as in
    the authors' code.

    Args:
        features: F, the width of φ(x).
        num_classes: K; 0 builds an unconditional head (ψ only).
        sn: apply spectral normalisation to ψ and V.

    Shapes: features float32 [N, F], labels int64 [N] in [0, K) (ignored if K = 0) → logits [N].
    """

    def __init__(self, features: int, num_classes: int, sn: bool = True) -> None:
        super().__init__()
        wrap = spectral_norm if sn else (lambda m: m)
        self.psi = wrap(nn.Linear(features, 1))
        self.embed = wrap(nn.Embedding(num_classes, features)) if num_classes else None

    def forward(self, phi: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        out = self.psi(phi).squeeze(1)  # [N]
        if self.embed is not None:
            if labels is None:
                raise ValueError("a projection discriminator needs labels")
            out = out + (self.embed(labels) * phi).sum(1)  # ⟨V[y], φ(x)⟩, [N]
        return out
