"""Exponential moving average of network weights (e.g. ``G_ema``; Karras et al. 2018, §A.1;
Yazıcı et al. 2019), with batch-norm statistics that fit the averaged weights."""
from __future__ import annotations

import math
from typing import Any, Optional

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def has_batchnorm(module: nn.Module) -> bool:
    """Whether ``module`` contains a batch-norm layer (whose running statistics depend on its weights)."""
    return any(isinstance(m, _BatchNorm) for m in module.modules())


def ramped_ema_decay(batch: float, images_seen: int, half_life_images: float, rampup: Optional[float]) -> float:
    """The EMA decay of one step of ``batch`` images for a half-life of ``half_life_images`` images,
    with the half-life limited to ``rampup`` × ``images_seen`` while training is young (so that
    ``G_ema`` does not lag behind ``G`` for its first tens of thousands of images): ``0.5 **
    (batch / min(half_life_images, rampup · images_seen))`` (stylegan2-ada-pytorch
    ``training_loop.py``, ``ema_kimg`` / ``ema_rampup``; ``rampup=None``: the plain half-life).

    Returns:
        a decay in [0, 1).
    """
    half_life = half_life_images if rampup is None else min(half_life_images, images_seen * rampup)
    return 0.5 ** (batch / max(half_life, 1e-8))


def half_life_images(decay: float, batch: float) -> float:
    """The half-life in images of a per-step EMA ``decay`` at ``batch`` images per step: 0.999 at batch
    64 is 44,339 images."""
    return batch * math.log(0.5) / math.log(decay) if 0.0 < decay < 1.0 else 0.0


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float, *, copy_norm_stats: bool = True) -> None:
    """``ema ← decay·ema + (1 − decay)·model`` for parameters; buffers are copied.

    Batch-norm running statistics measured on ``model``'s activations do not fit the averaged
    weights (a DCGAN ``G_ema`` sampled with them in eval mode gives noise); with
    ``copy_norm_stats=False`` they are left alone, to be tracked by :func:`track_norm_stats`.

    Args:
        ema: the averaged copy (usually ``copy.deepcopy(model).eval().requires_grad_(False)``).
        model: the trained network; the same architecture as ``ema``.
        decay: in [0, 1); 0.999 averages over roughly the last 1,000 steps.
        copy_norm_stats: also copy batch-norm ``running_mean``/``running_var``/``num_batches_tracked``.
    """
    ema_params = list(ema.parameters())
    params = list(model.parameters())
    torch._foreach_lerp_(ema_params, [p.detach() for p in params], 1.0 - decay)
    for m_ema, m in zip(ema.modules(), model.modules()):
        if copy_norm_stats or not isinstance(m_ema, _BatchNorm):
            for b_ema, b in zip(m_ema.buffers(recurse=False), m.buffers(recurse=False)):
                b_ema.copy_(b)


@torch.no_grad()
def track_norm_stats(ema: nn.Module, *inputs: Any) -> None:
    """One forward pass of ``ema`` on ``inputs`` in train mode without grad, so that its batch-norm
    running statistics follow its own averaged weights (an exponential average over recent steps
    with each layer's ``momentum``; cf. the "standing statistics" of Brock et al. 2019, BigGAN,
    which recompute them before sampling). ``ema`` is left in eval mode.

    Args:
        ema: the averaged network, e.g. a DCGAN ``G_ema``.
        inputs: what its forward takes, e.g. z float32 [N, z_dim] ~ N(0, I) (and labels int64 [N]).
    """
    ema.train()
    try:
        ema(*inputs)
    finally:
        ema.eval()
