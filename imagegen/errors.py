"""User-facing errors.

Every problem caused by bad input (missing or corrupt files, wrong shapes, incompatible checkpoints,
bad options) is raised as :class:`ImagegenError` (or a subclass) with a one-line message that names
the problem and the fix. The CLI prints the message and exits with code 2; library users catch it
as a ``ValueError``.
"""
from __future__ import annotations


class ImagegenError(ValueError):
    """A problem with the user's input; the message names the problem and the fix."""


class DataError(ImagegenError):
    """A dataset is missing, empty, corrupt or inconsistent."""


class CheckpointError(ImagegenError):
    """A run directory or checkpoint is missing, incomplete or incompatible."""


class WeightsError(CheckpointError):
    """A pretrained weights file is missing, cannot be downloaded, or fails its checksum
    (see :mod:`imagegen.weights`)."""


class ConfigError(ImagegenError):
    """An option or configuration value is invalid."""


class TrainingDiverged(ImagegenError):
    """A loss became NaN or infinite; the message names the last checkpoint written before it (no
    checkpoint is written after a non-finite loss)."""
