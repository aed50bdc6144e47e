"""The shared training loop: per-source data streams, logging, interruption and distributed setup
(checkpoint files are read and written by :mod:`imagegen.checkpoint`, below this package)."""
from .config import TrainConfig
from .trainer import Trainer, TrainResult, resolve_device

__all__ = ["Trainer", "TrainConfig", "TrainResult", "resolve_device"]
