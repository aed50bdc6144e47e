"""The trainer's configuration (everything that is not the model's)."""
from __future__ import annotations

import dataclasses
from typing import Any, Literal, Optional

from ..config import help_field
from ..errors import ConfigError


@dataclasses.dataclass
class TrainConfig:
    data: str = help_field("digits", "dataset name (digits, mnist, fashion-mnist, cifar10, cifar10-jpg, usps) or "
                                     "the path of an image folder or .zip")
    data_root: Optional[str] = help_field(None, "directory holding the dataset files (default: $IMAGEGEN_DATA/<name>)")
    split: str = help_field("train", "dataset split to train on")
    sources: dict[str, Any] = help_field(
        None, "data of a model's named sources: {name: {data, data_root, split}} (the CLI fills it from "
              "--data-NAME, --data-root-NAME, --split-NAME)", cli=False)
    paired_layout: Literal["auto", "folders", "side-by-side"] = help_field(
        "auto", "paired data: A/ and B/ subfolders with matching names, or side-by-side A|B images "
                "(split in half before resizing); auto = folders if A/ and B/ exist")
    resize: str = help_field(
        "auto", "how images are brought to the model resolution: auto (pad images within R/16 px per side of "
                "RxR, e.g. MNIST 28x28 at 32; bicubic otherwise), a resampling filter (bicubic, bilinear, "
                "lanczos, box, nearest; short side resized, then centre crop), or pad: no resampling, "
                "images of at most RxR zero-padded (black) to RxR, centred, an odd difference's extra "
                "pixel on the bottom/right (MNIST 28x28 -> 32x32: 2 px each side); larger images are an "
                "error")
    strict: bool = help_field(False, "fail on the first corrupt image instead of skipping it")
    storage: Literal["auto", "memory", "stream"] = help_field(
        "auto", "folders/zips: decode everything into memory, or stream from disk (auto: stream when the "
                "decoded images would take 2 GiB or more)")
    workers: int = help_field(0, "worker processes decoding streamed images per training process (0 = in-process)")
    epochs: Optional[int] = help_field(None, "training length in passes over the data")
    steps: Optional[int] = help_field(None, "training length in steps (one step = one update of every phase)")
    minutes: Optional[float] = help_field(None, "wall-clock budget of this invocation in minutes: then write a "
                                                "checkpoint and stop (--resume continues the run)")
    batch_size: int = help_field(64, "images per step across all processes")
    seed: int = help_field(0, "random seed (runs are reproducible on the same machine)")
    device: Literal["auto", "cpu", "cuda"] = help_field("auto", "auto = cuda if available, else cpu")
    threads: int = help_field(0, "CPU threads per process (0 = cores / processes on this host)")
    log_every: int = help_field(50, "log scalars every N steps")
    sample_every: int = help_field(500, "write a sample grid from a fixed latent batch every N steps")
    ckpt_every: int = help_field(1000, "write a checkpoint every N steps")
    ckpt_minutes: float = help_field(10.0, "also write a checkpoint when this many minutes passed since the last "
                                           "one (0 = off)")
    keep_ckpts: int = help_field(2, "number of step checkpoints to keep")
    grid_size: int = help_field(64, "images in each sample grid")
    eval_every: int = help_field(0, "evaluate FID/KID every N steps (0 = off) and keep a best checkpoint")
    eval_samples: int = help_field(5000, "generated samples per evaluation during training")
    eval_metrics: str = help_field("fid,kid", "metrics computed during training (comma-separated; nll for "
                                              "likelihood models)")
    eval_nll_k: int = help_field(100, "metric nll during training: importance samples per image (latent models)")
    flip: bool = help_field(False, "augmentation: random horizontal flips")
    crop_pad: int = help_field(0, "augmentation: reflect-pad by N pixels and random-crop back (0 = off)")
    rotate_deg: float = help_field(0.0, "augmentation: random rotation up to ± this many degrees (0 = off)")
    blur_sigma: float = help_field(0.0, "augmentation: Gaussian smoothing, each image with sigma uniform in "
                                        "[0, S] pixels (0 = off)")
    blur_p: float = help_field(1.0, "augmentation: probability that an image is smoothed (with --blur-sigma)")
    color_jitter: tuple[float, ...] = help_field(
        (0.0, 0.0, 0.0), "augmentation: colour jitter strengths B,C,S (brightness, contrast, saturation; "
                         "factors uniform in [1-x, 1+x], as torchvision's ColorJitter; one value = all three; "
                         "0 = off)")
    channels_last: bool = help_field(True, "use the channels-last memory format for convolutions")
    progress: bool = help_field(True, "show a progress bar")

    def __post_init__(self) -> None:
        if self.epochs is not None and self.steps is not None:
            raise ConfigError("give either --epochs or --steps, not both")
        if self.sources is None:
            self.sources = {}
        if self.minutes is not None and not self.minutes > 0:
            raise ConfigError(f"--minutes {self.minutes}: must be > 0")
        if self.workers < 0:
            raise ConfigError(f"--workers {self.workers}: must be ≥ 0")
        if self.ckpt_minutes < 0:
            raise ConfigError(f"--ckpt-minutes {self.ckpt_minutes}: must be ≥ 0 (0 = off)")
        for name in ("batch_size", "log_every", "sample_every", "ckpt_every", "keep_ckpts", "grid_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')}={getattr(self, name)}: must be ≥ 1")
        for name in ("epochs", "steps"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"--{name}={v}: must be ≥ 1")
        jitter = tuple(self.color_jitter)
        self.color_jitter = jitter * 3 if len(jitter) == 1 else jitter
        self.augment_config()  # validates the augmentation options

    def augment_config(self) -> Any:
        """The training augmentations as an :class:`~imagegen.data.augment.AugmentConfig`, or None when
        all are off.

        Raises:
            ConfigError: an augmentation option out of range.
        """
        from ..data.augment import AugmentConfig

        cfg = AugmentConfig(flip=self.flip, crop_pad=self.crop_pad, rotate_deg=self.rotate_deg,
                            blur_sigma=self.blur_sigma, blur_p=self.blur_p, color_jitter=self.color_jitter)
        return cfg if cfg.enabled else None


#: options that may differ when a run is resumed (everything else must match the saved run)
RESUMABLE_OVERRIDES = frozenset({
    "epochs", "steps", "minutes", "device", "threads", "log_every", "sample_every", "ckpt_every", "ckpt_minutes",
    "keep_ckpts", "eval_every", "progress", "data_root", "sources", "workers", "storage"})
