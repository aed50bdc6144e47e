"""Weight initialisation schemes."""
from __future__ import annotations

from torch import nn


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al. 2015, §4): conv weights ~ N(0, 0.02), batch-norm
    scale ~ N(1, 0.02), biases 0. Apply with ``model.apply(dcgan_init)``."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
        if module.weight is not None:
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)
