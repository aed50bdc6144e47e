"""Exponential moving average of network weights (e.g. ``G_ema``; Karras et al. 2018, §A.1;
Yazıcı et al. 2019)."""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema ← decay·ema + (1 − decay)·model`` for parameters; buffers (e.g. batch-norm running
    statistics) are copied. Both modules must have the same architecture.

    Args:
        ema: the averaged copy (usually ``copy.deepcopy(model).eval().requires_grad_(False)``).
        model: the trained network.
        decay: in [0, 1); 0.999 averages over roughly the last 1,000 steps.
    """
    ema_params = list(ema.parameters())
    params = list(model.parameters())
    torch._foreach_lerp_(ema_params, [p.detach() for p in params], 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)
