"""The one training loop shared by every model.

The model declares its optimisers and phases (:mod:`imagegen.models.base`); the :class:`Trainer` owns
devices, seeds, data order, augmentation, progress, logging, sample grids, checkpoints, exact resume,
evaluation during training and DistributedDataParallel.
"""
from __future__ import annotations

import dataclasses
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from .. import __version__
from ..config import from_dict, to_dict
from ..data import ImageDataset, build_dataset
from ..errors import CheckpointError, ConfigError
from ..models.base import GenerativeModel, Phase, count_parameters
from ..registry import get_model_class
from ..sampling.images import save_grid
from . import checkpoint as ckpt
from .batches import BatchStream
from .config import RESUMABLE_OVERRIDES, TrainConfig
from .distributed import DistInfo, all_gather_object, barrier, broadcast_object, cleanup, init_distributed
from .logger import RunLogger, append_metrics
from .state import rng_state, seed_all, set_rng_state


def resolve_device(name: str, dist: Optional[DistInfo] = None) -> torch.device:
    """``auto`` → CUDA if available else CPU; ``cuda`` uses ``cuda:<local_rank>`` under torchrun.

    Raises:
        ConfigError: ``cuda`` requested on a machine without CUDA.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA device is available; use --device cpu or auto")
        return torch.device("cuda", dist.local_rank if dist else 0)
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"--device {name}: use auto, cpu or cuda")


def _fill_from_data(model_config: Any, dataset: ImageDataset) -> Any:
    """Fill ``channels`` and ``num_classes`` left as None from the dataset; check the rest."""
    updates: dict[str, Any] = {}
    fields = {f.name for f in dataclasses.fields(model_config)}
    if "channels" in fields and model_config.channels is None:
        updates["channels"] = dataset.channels
    if "num_classes" in fields and model_config.num_classes is None:
        if dataset.num_classes == 0:
            raise ConfigError(f"dataset {dataset.name} has no labels but the model is class-conditional; "
                              "use a labelled dataset (class subfolders for an image folder)")
        updates["num_classes"] = dataset.num_classes
    return dataclasses.replace(model_config, **updates) if updates else model_config


def _check_in_sync(dist: DistInfo, model: torch.nn.Module) -> None:
    """Raise if DistributedDataParallel let the replicas' weights drift apart (a bug, never bad input)."""
    with torch.no_grad():
        sums = [float(p.double().sum()) for p in model.parameters()]
    every = all_gather_object(dist, sums)
    for r, other in enumerate(every[1:], 1):
        if not np.allclose(other, every[0], rtol=1e-5, atol=1e-6):
            raise RuntimeError(f"rank {r}'s weights differ from rank 0's after training")


@dataclasses.dataclass
class _Session:
    """Everything one call of :meth:`Trainer.fit` works with (built by ``Trainer._setup``)."""

    dist: DistInfo
    device: torch.device
    cfg: TrainConfig
    dataset: ImageDataset
    model: GenerativeModel
    engine: torch.nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizers: dict[str, torch.optim.Optimizer]
    phases: list[Phase]
    stream: BatchStream
    total_steps: int
    meta: dict[str, Any]
    step: int = 0
    images_seen: int = 0
    best_value: Optional[float] = None
    seconds_before: float = 0.0
    t_start: float = dataclasses.field(default_factory=time.perf_counter)
    logger: Optional[RunLogger] = None
    evaluator: Any = None
    bar: Any = None
    last_grid: Optional[Path] = None
    last_ckpt: Optional[Path] = None

    def __post_init__(self) -> None:
        self.opt_params = {n: [p for g in o.param_groups for p in g["params"]] for n, o in self.optimizers.items()}
        self.trainable = [p for ps in self.opt_params.values() for p in ps]
        self.current_opt: Optional[str] = None

    @property
    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.t_start


class _Window:
    """Scalars accumulated between two log steps (tensors summed without host syncs)."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.extra: dict[str, float] = {}
        self.images = 0
        self.t0 = time.perf_counter()
        self.paused = 0.0  # seconds spent on samples, evaluation and checkpoints

    def add(self, prefix: str, out: dict[str, torch.Tensor]) -> None:
        for k, v in out.items():
            key = f"{prefix}/{k}"
            v = v.detach()
            self.sums[key] = self.sums[key] + v if key in self.sums else v
            self.counts[key] = self.counts.get(key, 0) + 1

    def values(self) -> dict[str, float]:
        out = {k: float(v) / self.counts[k] for k, v in self.sums.items()}
        out.update(self.extra)
        out["images_per_sec"] = self.images / max(1e-9, time.perf_counter() - self.t0 - self.paused)
        return out


@dataclasses.dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns (on every rank; paths are meaningful on rank 0)."""

    run_dir: Path
    checkpoint: Path
    sample_grid: Optional[Path]
    steps: int
    images_seen: int
    seconds: float


class Trainer:
    """Train a registered model on a dataset, writing everything to ``run_dir``.

    Args:
        model_name: registry name (``dcgan``, ...).
        model_config: the model's ``Config`` instance; ``channels`` / ``num_classes`` left as None are
            filled from the dataset. Ignored (taken from the run) when resuming.
        train_config: :class:`TrainConfig`. When resuming, only the fields in
            ``RESUMABLE_OVERRIDES`` named in ``overrides`` replace the saved ones.
        run_dir: output directory. It must not exist (or be empty) unless ``resume`` or ``force``.
        resume: continue the run in ``run_dir`` exactly where its latest checkpoint stopped
            (weights, EMA, optimisers, step and image counters, data order, RNG states).
        force: delete an existing ``run_dir`` and start afresh.
        overrides: names of train options the user set explicitly (used on resume).
        echo: where progress messages go (default: ``print``).
        dataset: an in-memory :class:`ImageDataset` to train on instead of loading ``train_config.data``
            (Python API; ``train_config.data`` is then only recorded as its name).

    Raises:
        ConfigError, DataError, CheckpointError: bad options, data or checkpoints.
    """

    def __init__(self, model_name: str, model_config: Any, train_config: TrainConfig,
                 run_dir: str | os.PathLike, *, resume: bool = False, force: bool = False,
                 overrides: Optional[set[str]] = None, echo: Callable[[str], None] = print,
                 dataset: Optional[ImageDataset] = None) -> None:
        self.model_name = model_name
        self.model_cls = get_model_class(model_name)
        self.model_config = model_config
        self.cfg = train_config
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.force = force
        self.overrides = overrides or set()
        self.echo = echo
        self.dataset = dataset

    # ------------------------------------------------------------------------------------------
    def _prepare_run_dir(self, dist: DistInfo) -> Optional[Path]:
        """Check (and for --force, clear) the run directory; return the checkpoint to resume."""
        if self.resume:
            if self.force:
                raise ConfigError("--resume and --force contradict each other; use one")
            resume_from = ckpt.resolve_checkpoint(self.run_dir)
            if resume_from.name == "best" or not (resume_from / "trainer_state.pt").is_file():
                raise CheckpointError(f"{resume_from} cannot be resumed; pass the run directory")
            return resume_from
        if self.run_dir.exists() and any(self.run_dir.iterdir()):
            if not self.force:
                raise ConfigError(f"run directory {self.run_dir} already exists and is not empty; pass "
                                  "--resume to continue it, --force to overwrite it, or choose another --out")
            barrier(dist)
            if dist.is_main:
                shutil.rmtree(self.run_dir)
            barrier(dist)
        return None

    def _load_resume_configs(self, resume_from: Path) -> None:
        meta = ckpt.read_meta(resume_from)
        if meta["model"] != self.model_name:
            raise CheckpointError(f"{self.run_dir} is a {meta['model']} run, not {self.model_name}; "
                                  f"use `imagegen train {meta['model']} --resume {self.run_dir}`")
        self.model_config = from_dict(self.model_cls.Config, meta["model_config"], what=f"{self.model_name} config")
        saved = from_dict(TrainConfig, meta["train_config"], what="train config")
        changed = {k for k in self.overrides if getattr(self.cfg, k) != getattr(saved, k)}
        bad = sorted(changed - RESUMABLE_OVERRIDES)
        if bad:
            raise ConfigError(f"cannot change {', '.join('--' + b.replace('_', '-') for b in bad)} when resuming; "
                              f"only {', '.join(sorted('--' + r.replace('_', '-') for r in RESUMABLE_OVERRIDES))} may differ")
        self.cfg = dataclasses.replace(saved, **{k: getattr(self.cfg, k) for k in changed})

    # ------------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Run training to the configured length; returns where the results are."""
        dist = init_distributed(resolve_device(self.cfg.device)) if os.environ.get("WORLD_SIZE", "1") != "1" \
            else DistInfo()
        try:
            s = self._setup(dist)
            try:
                self._loop(s)
            finally:
                if s.bar is not None:
                    s.bar.close()
                if s.logger is not None:
                    s.logger.close()
            return self._finish(s)
        finally:
            cleanup(dist)

    def _setup(self, dist: DistInfo) -> _Session:
        resume_from = self._prepare_run_dir(dist)
        if resume_from is not None:
            self._load_resume_configs(resume_from)
        cfg = self.cfg
        device = resolve_device(cfg.device, dist)
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world_size))
        torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // local_world))
        if device.type == "cpu":
            torch.set_flush_denormal(True)  # denormal gradients make CPU kernels many times slower
        if cfg.batch_size % dist.world_size:
            raise ConfigError(f"--batch-size {cfg.batch_size} is not divisible by the {dist.world_size} "
                              "processes; use a multiple of the process count")
        seed_all(cfg.seed + dist.rank)

        model_cfg = self.model_config
        dataset = self.dataset if self.dataset is not None else build_dataset(
            cfg.data, root=cfg.data_root, split=cfg.split, resolution=getattr(model_cfg, "resolution", None),
            channels=getattr(model_cfg, "channels", None), resize=cfg.resize, strict=cfg.strict)
        model_cfg = self.model_config = _fill_from_data(model_cfg, dataset)
        model: GenerativeModel = self.model_cls(model_cfg).to(device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizers = model.configure_optimizers()
        phases = model.phases()
        for ph in phases:
            if ph.optimizer_name not in optimizers:
                raise RuntimeError(f"{self.model_name}: phase {ph.name} uses unknown optimiser {ph.optimizer_name}")

        augment = None
        if cfg.flip or cfg.crop_pad or cfg.rotate_deg:
            from ..data.augment import AugmentConfig

            augment = AugmentConfig(flip=cfg.flip, crop_pad=cfg.crop_pad, rotate_deg=cfg.rotate_deg)
        stream = BatchStream(dataset, cfg.batch_size // dist.world_size, dist, cfg.seed, device,
                             cfg.channels_last, augment)
        if cfg.steps is not None:
            total_steps = cfg.steps
        elif cfg.epochs is not None:
            draws_per_step = sum(ph.needs_batch for ph in phases) or 1
            total_steps = math.ceil(cfg.epochs * stream.batches_per_epoch / draws_per_step)
        else:
            raise ConfigError("give the training length with --epochs N or --steps N")

        meta = ckpt.checkpoint_meta(
            self.model_name, model_cfg, train_config=to_dict(cfg),
            dataset={"name": dataset.name, "split": cfg.split, "num_images": len(dataset),
                     "resolution": dataset.resolution, "channels": dataset.channels,
                     "num_classes": dataset.num_classes, "class_names": dataset.class_names})
        engine: torch.nn.Module = model
        if dist.enabled:
            engine = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)
        s = _Session(dist, device, cfg, dataset, model, engine, optimizers, phases, stream, total_steps, meta)
        if resume_from is not None:
            self._restore(s, resume_from)

        if dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "samples").mkdir(exist_ok=True)
            ckpt.write_json_atomic(self.run_dir / "config.json", meta)
            s.logger = RunLogger(self.run_dir / "logs", resume_step=s.step if resume_from is not None else None)
            counts = ", ".join(f"{n}: {count_parameters(m):,}" for n, m in model.training_modules().items())
            self.echo(f"imagegen {__version__} | {self.model_name} | parameters {counts} | "
                      f"data {dataset.name} ({len(dataset):,} images, {dataset.channels}×{dataset.resolution}²) | "
                      f"device {device} × {dist.world_size} process(es), {torch.get_num_threads()} threads | "
                      f"{'resuming at step ' + str(s.step) + ' of ' if resume_from is not None else ''}"
                      f"{total_steps} steps")
            if cfg.eval_every > 0:
                from ..metrics.training_eval import TrainingEvaluator

                s.evaluator = TrainingEvaluator(dataset, self.run_dir, cfg.eval_samples,
                                                [m for m in cfg.eval_metrics.split(",") if m], device, cfg.data_root)
            if cfg.progress:
                from tqdm.auto import tqdm

                s.bar = tqdm(total=total_steps, initial=s.step, unit="step", dynamic_ncols=True, mininterval=1.0,
                             file=sys.stderr)
        return s

    def _restore(self, s: _Session, resume_from: Path) -> None:
        ckpt.load_weights(s.model, resume_from)
        state = ckpt.load_trainer_state(resume_from)
        for name, opt in s.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        s.step, s.images_seen = state["step"], state["images_seen"]
        s.best_value, s.seconds_before = state.get("best_value"), state.get("seconds", 0.0)
        s.last_ckpt = resume_from
        same_world = state["world_size"] == s.dist.world_size
        s.stream.load_state_dict(state["data"][s.dist.rank if same_world else 0], restore_rng=same_world)
        if same_world:
            set_rng_state(state["rng"][s.dist.rank])
        elif s.dist.is_main:
            self.echo(f"warning: resuming a {state['world_size']}-process run with {s.dist.world_size} "
                      "processes; RNG streams restart, so the run will not match an uninterrupted one")

    # ------------------------------------------------------------------------------------------
    def _loop(self, s: _Session) -> None:
        cfg = s.cfg
        window = _Window()
        s.model.train()
        while s.step < s.total_steps:
            log_now = (s.step + 1) % cfg.log_every == 0 or s.step + 1 == s.total_steps
            self._train_step(s, window, log_now)
            s.step += 1
            if log_now:
                self._log(s, window.values())
                window = _Window()
            if s.bar is not None:
                s.bar.update(1)

            t0 = time.perf_counter()
            last = s.step == s.total_steps
            if s.dist.is_main and (s.step % cfg.sample_every == 0 or last):
                s.last_grid = self._write_samples(s)
            if cfg.eval_every > 0 and (s.step % cfg.eval_every == 0 or last):
                self._evaluate(s)
            if s.step % cfg.ckpt_every == 0 or last:
                s.last_ckpt = self._save(s, f"step-{s.step:07d}")
            window.paused += time.perf_counter() - t0

    def _train_step(self, s: _Session, window: _Window, log_now: bool) -> None:
        """Run every phase of one step: enable only the phase optimiser's parameters, backpropagate the
        phase's loss, step the optimiser."""
        img = label = None
        for ph in s.phases:
            if s.step % ph.every:
                continue
            if ph.needs_batch or img is None:
                img, label = s.stream.next()
                n = img.shape[0] * s.dist.world_size
                window.images += n
                s.images_seen += n
            name = ph.optimizer_name
            if name != s.current_opt:
                for p in s.trainable:
                    p.requires_grad_(False)
                for p in s.opt_params[name]:
                    p.requires_grad_(True)
                s.current_opt = name
            opt = s.optimizers[name]
            opt.zero_grad(set_to_none=True)
            out = s.engine(ph.name, img, label)
            out["loss"].backward()
            if log_now:
                grads = [p.grad for p in s.opt_params[name] if p.grad is not None]
                window.extra[f"{ph.name}/grad_norm"] = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0
            opt.step()
            window.add(ph.name, out)
        s.model.after_step(s.step + 1)

    def _log(self, s: _Session, values: dict[str, float]) -> None:
        if s.logger is not None:
            s.logger.scalars(s.step, values, s.images_seen / 1000)
        if s.bar is not None:
            shown = {k: f"{v:.3g}" for k, v in values.items() if k.endswith("/loss")}
            s.bar.set_postfix(shown | {"img/s": f"{values['images_per_sec']:.0f}"}, refresh=False)

    def _write_samples(self, s: _Session) -> Path:
        """A grid from the same latents (and labels: class i in column i) at every call."""
        k, n = s.model.num_classes, s.cfg.grid_size
        gen = torch.Generator(device=s.device).manual_seed(s.cfg.seed)
        labels = (torch.arange(n, device=s.device) % k) if k else None
        img = s.model.sample(n, generator=gen, labels=labels)
        path = self.run_dir / "samples" / f"step-{s.step:07d}.png"
        grid = save_grid(img, path, nrow=k or None)
        assert s.logger is not None
        s.logger.image("samples", s.step, grid)
        return path

    def _evaluate(self, s: _Session) -> None:
        """Rank 0 evaluates; every rank learns whether it improved, so all join the best checkpoint's
        collective save."""
        improved = False
        if s.evaluator is not None:
            results, warnings = s.evaluator(s.model, s.step)
            assert s.logger is not None
            s.logger.scalars(s.step, {f"eval/{k}": v for k, v in results.items()}, s.images_seen / 1000)
            append_metrics(self.run_dir, {"step": s.step, "kimg": s.images_seen / 1000, **results,
                                          "protocol": getattr(s.evaluator, "protocol", None)})
            for w in warnings:
                (s.bar.write if s.bar is not None else self.echo)(f"warning (step {s.step}): {w}")
            key = getattr(s.evaluator, "best_metric", None)
            if key in results and (s.best_value is None or results[key] < s.best_value):
                s.best_value, improved = results[key], True
        if broadcast_object(s.dist, improved):
            self._save(s, "best")

    def _save(self, s: _Session, name: str) -> Path:
        """Checkpoint (collective: every rank contributes its RNG and data-stream state)."""
        rng = all_gather_object(s.dist, rng_state())
        data = all_gather_object(s.dist, s.stream.state_dict())
        path = self.run_dir / "checkpoints" / name
        if s.dist.is_main:
            state = {"step": s.step, "images_seen": s.images_seen, "world_size": s.dist.world_size,
                     "optimizers": {n: o.state_dict() for n, o in s.optimizers.items()},
                     "rng": rng, "data": data, "best_value": s.best_value, "seconds": s.seconds}
            path = ckpt.save_checkpoint(self.run_dir, name, s.model, {**s.meta, "step": s.step}, state,
                                        keep=s.cfg.keep_ckpts)
        barrier(s.dist)
        return path

    def _finish(self, s: _Session) -> TrainResult:
        if s.dist.enabled:
            _check_in_sync(s.dist, s.model)
        if s.dist.is_main:
            self.echo(f"done: {s.step} steps, {s.images_seen:,} images seen, {s.seconds:.1f} s")
            if s.last_grid is not None:
                self.echo(f"samples: {s.last_grid}")
            self.echo(f"checkpoint: {s.last_ckpt}")
        assert s.last_ckpt is not None
        return TrainResult(self.run_dir, s.last_ckpt, s.last_grid, s.step, s.images_seen, s.seconds)
