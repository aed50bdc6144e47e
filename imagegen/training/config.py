"""The trainer's configuration (everything that is not the model's)."""
from __future__ import annotations

import dataclasses
from typing import Literal, Optional

from ..config import help_field
from ..errors import ConfigError


@dataclasses.dataclass
class TrainConfig:
    data: str = help_field("digits", "dataset name (digits, mnist, fashion-mnist, cifar10, cifar10-jpg) or "
                                     "the path of an image folder or .zip")
    data_root: Optional[str] = help_field(None, "directory holding the dataset files (default: $IMAGEGEN_DATA/<name>)")
    split: str = help_field("train", "dataset split to train on")
    resize: str = help_field("bicubic", "resampling filter used to resize images to the model resolution")
    strict: bool = help_field(False, "fail on the first corrupt image instead of skipping it")
    epochs: Optional[int] = help_field(None, "training length in passes over the data")
    steps: Optional[int] = help_field(None, "training length in steps (one step = one update of every phase)")
    batch_size: int = help_field(64, "images per step across all processes")
    seed: int = help_field(0, "random seed (runs are reproducible on the same machine)")
    device: Literal["auto", "cpu", "cuda"] = help_field("auto", "auto = cuda if available, else cpu")
    threads: int = help_field(0, "CPU threads per process (0 = cores / processes on this host)")
    log_every: int = help_field(50, "log scalars every N steps")
    sample_every: int = help_field(500, "write a sample grid from a fixed latent batch every N steps")
    ckpt_every: int = help_field(1000, "write a checkpoint every N steps")
    keep_ckpts: int = help_field(2, "number of step checkpoints to keep")
    grid_size: int = help_field(64, "images in each sample grid")
    eval_every: int = help_field(0, "evaluate FID/KID every N steps (0 = off) and keep a best checkpoint")
    eval_samples: int = help_field(5000, "generated samples per evaluation during training")
    eval_metrics: str = help_field("fid,kid", "metrics computed during training (comma-separated)")
    flip: bool = help_field(False, "augmentation: random horizontal flips")
    crop_pad: int = help_field(0, "augmentation: reflect-pad by N pixels and random-crop back (0 = off)")
    rotate_deg: float = help_field(0.0, "augmentation: random rotation up to ± this many degrees (0 = off)")
    channels_last: bool = help_field(True, "use the channels-last memory format for convolutions")
    progress: bool = help_field(True, "show a progress bar")

    def __post_init__(self) -> None:
        if self.epochs is not None and self.steps is not None:
            raise ConfigError("give either --epochs or --steps, not both")
        for name in ("batch_size", "log_every", "sample_every", "ckpt_every", "keep_ckpts", "grid_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')}={getattr(self, name)}: must be ≥ 1")
        for name in ("epochs", "steps"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"--{name}={v}: must be ≥ 1")


#: options that may differ when a run is resumed (everything else must match the saved run)
RESUMABLE_OVERRIDES = frozenset({
    "epochs", "steps", "device", "threads", "log_every", "sample_every", "ckpt_every", "keep_ckpts",
    "eval_every", "progress", "data_root"})
