"""Rebuild a trained model from its run directory and draw samples."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import torch

from ..config import from_saved
from ..errors import CheckpointError, ConfigError
from ..models.base import GenerativeModel
from ..registry import get_model_class
from .. import checkpoint as ckpt
from ..device import resolve_device

#: Images per forward pass when sampling, unless a caller says otherwise. Latents (and the per-pixel
#: noise of style-based models) are drawn batch by batch from one seeded generator, so which images a
#: seed gives depends on the batch size, though their statistics do not: ``imagegen sample``,
#: ``imagegen evaluate`` and in-training evaluation share this default, so that for an unconditional run
#: ``sample --seed S --num N`` writes exactly the N images ``evaluate --seed S --num-samples N`` scores
#: (for a conditional one evaluate gives balanced labels, sample random ones).
SAMPLE_BATCH = 250


def load_run(path: str | os.PathLike, device: str | torch.device = "cpu") -> GenerativeModel:
    """Load a trained model from a run directory (its latest checkpoint) or a checkpoint directory.

    Everything is rebuilt from the directory alone: ``config.json`` names the model and its config,
    ``model.safetensors`` holds the weights (no code is unpickled).

    Args:
        path: ``RUN`` (the ``--out`` of ``imagegen train``), ``RUN/checkpoints/step-0001000`` or
            ``RUN/checkpoints/best``.
        device: ``cpu``, ``cuda``, ``auto`` or a torch.device.

    Returns:
        The model in eval mode on ``device``; ``model.config`` is its config dataclass and
        ``model.checkpoint_meta`` the checkpoint's ``config.json`` (dataset facts, step, train config).

    Raises:
        CheckpointError: missing, corrupt or incompatible checkpoint.
    """
    ckpt_dir = ckpt.resolve_checkpoint(path)
    meta = ckpt.read_meta(ckpt_dir)
    try:
        cls = get_model_class(meta["model"])
    except ConfigError as e:
        raise CheckpointError(f"{ckpt_dir}: {e}; is this checkpoint from a newer imagegen?") from None
    try:
        config = from_saved(cls.Config, meta["model_config"], what=f"{meta['model']} config")
    except ConfigError as e:
        raise CheckpointError(f"{ckpt_dir / 'config.json'}: {e}") from None
    model: GenerativeModel = cls(config)
    ckpt.load_weights(model, ckpt_dir)
    dev = resolve_device(device)
    model = model.to(dev).eval()
    model.checkpoint_meta = {**meta, "checkpoint": str(ckpt_dir)}  # type: ignore[attr-defined]
    return model


def run_train_config(model: Any) -> dict[str, Any]:
    """The trainer options a model loaded by :func:`load_run` was trained with (``data``, ``data_root``,
    ``resize``, ...; ``{}`` for a model built in code)."""
    return (getattr(model, "checkpoint_meta", None) or {}).get("train_config") or {}


def run_resize(model: Any) -> str:
    """How the run's training images were brought to its resolution (``--resize``), so that real images
    given to the model later (encoders, evaluation) are framed the same way. Runs from before
    the option was recorded, and models built in code, resized bicubically."""
    return run_train_config(model).get("resize", "bicubic")


def run_dir_of(model: GenerativeModel) -> Path:
    """The run directory ``RUN`` of a model loaded by :func:`load_run` (its checkpoint is
    ``RUN/checkpoints/NAME``), where evaluations are recorded in ``metrics.jsonl``.

    Raises:
        AttributeError: the model was built in code, not loaded by :func:`load_run`.
    """
    return Path(model.checkpoint_meta["checkpoint"]).parent.parent  # type: ignore[attr-defined]


@torch.no_grad()
def generate(model: GenerativeModel, num: int, seed: int = 0, batch_size: int = SAMPLE_BATCH,
             labels: Optional[torch.Tensor] = None, **options: Any) -> torch.Tensor:
    """Draw ``num`` samples reproducibly.

    Args:
        model: a trained model (e.g. from :func:`load_run`).
        num: number of images (≥ 1).
        seed: seed of the torch.Generator that draws latents (and labels, if not given).
        batch_size: images per forward pass. Latents are drawn batch by batch from one generator, so
            the same ``seed`` gives the same images only with the same ``batch_size`` (the statistics
            of many samples do not depend on it); default :data:`SAMPLE_BATCH`.
        labels: int64 [num] class labels for conditional models; None draws them uniformly.
        options: passed to ``model.sample`` (e.g. ``temperature``, ``method`` and ``progress`` of the
            autoregressive models).

    Returns:
        float32 [num, C, H, W] in [-1, 1], on the CPU.

    Raises:
        ConfigError: ``num`` < 1, or labels given to an unconditional model / out of range.
    """
    if num < 1:
        raise ConfigError(f"--num {num}: must be ≥ 1")
    k = model.num_classes
    gen = torch.Generator(device=model.device).manual_seed(seed)
    if labels is not None:
        labels = torch.as_tensor(labels, dtype=torch.int64)
        if not k:
            raise ConfigError(f"{model.model_name} is unconditional; drop the class labels")
        if len(labels) != num or labels.min() < 0 or labels.max() >= k:
            raise ConfigError(f"labels must be {num} class indices in [0, {k - 1}]")
    elif k:
        labels = torch.randint(0, k, (num,), generator=gen, device=model.device)
    out = []
    for start in range(0, num, batch_size):
        n = min(batch_size, num - start)
        lab = None if labels is None else labels[start:start + n].to(model.device)
        out.append(model.sample(n, generator=gen, labels=lab, **options).float().cpu())
    return torch.cat(out)
