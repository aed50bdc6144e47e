"""Shared layers and helpers for the models."""
from .ema import ramped_ema_decay, update_ema
from .init import dcgan_init
from .optim import adam

__all__ = ["update_ema", "ramped_ema_decay", "dcgan_init", "adam"]
