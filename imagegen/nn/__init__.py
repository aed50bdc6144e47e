"""Shared layers and helpers for the models."""
from .ema import update_ema
from .init import dcgan_init
from .optim import adam

__all__ = ["update_ema", "dcgan_init", "adam"]
