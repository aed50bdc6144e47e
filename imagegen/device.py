"""Device selection shared by training, sampling and evaluation."""
from __future__ import annotations

from typing import Optional

import torch

from .errors import ConfigError


def resolve_device(name: str | torch.device, local_rank: Optional[int] = None) -> torch.device:
    """``auto`` → CUDA if available else CPU; ``cuda`` means ``cuda:<local_rank>`` (0 outside torchrun).

    Args:
        name: ``auto``, ``cpu``, ``cuda`` or a torch.device (returned as is).
        local_rank: this process's index on its host under torchrun.

    Raises:
        ConfigError: ``cuda`` requested on a machine without CUDA, or an unknown name.
    """
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA device is available; use --device cpu or auto")
        return torch.device("cuda", local_rank or 0)
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"--device {name}: use auto, cpu or cuda")
