"""Optimiser construction shared by the models."""
from __future__ import annotations

from typing import Iterable

import torch


def adam(params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999),
         **kwargs: float) -> torch.optim.Adam:
    """Adam (Kingma & Ba 2015) using PyTorch's fused kernel where the device has one (CPU and CUDA),
    which avoids a Python loop over parameters on every step. Create it after the model has been
    moved to its device."""
    params = list(params)
    fused = bool(params) and all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused, **kwargs)
