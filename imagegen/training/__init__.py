"""The shared training loop, checkpoints, logging and distributed setup."""
from .config import TrainConfig
from .trainer import Trainer, TrainResult, resolve_device

__all__ = ["Trainer", "TrainConfig", "TrainResult", "resolve_device"]
