"""The one training loop shared by every model.

The model declares its optimisers and phases (:mod:`imagegen.models.base`); the :class:`Trainer` owns
devices, seeds, data order, augmentation, progress, logging, sample grids, checkpoints, exact resume,
evaluation during training and DistributedDataParallel.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch.utils.data.distributed import DistributedSampler

from .. import __version__
from ..config import from_dict, to_dict
from ..data import ImageDataset, build_dataset
from ..errors import CheckpointError, ConfigError
from ..models.base import GenerativeModel, count_parameters
from ..registry import get_model_class
from ..sampling.images import save_grid
from . import checkpoint as ckpt
from .config import RESUMABLE_OVERRIDES, TrainConfig
from .distributed import DistInfo, all_gather_object, barrier, broadcast_object, cleanup, init_distributed
from .logger import RunLogger


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


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


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
            return self._fit(dist)
        finally:
            cleanup(dist)

    def _fit(self, dist: DistInfo) -> TrainResult:
        cfg = self.cfg
        resume_from = self._prepare_run_dir(dist)
        if resume_from is not None:
            self._load_resume_configs(resume_from)
            cfg = self.cfg
        device = resolve_device(cfg.device, dist)
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world_size))
        torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // local_world))
        if cfg.batch_size % dist.world_size:
            raise ConfigError(f"--batch-size {cfg.batch_size} is not divisible by the {dist.world_size} "
                              "processes; use a multiple of the process count")
        batch = cfg.batch_size // dist.world_size
        _seed_all(cfg.seed + dist.rank)

        # ---- data and model ----
        model_cfg = self.model_config
        dataset = self.dataset or build_dataset(cfg.data, root=cfg.data_root, split=cfg.split,
                                resolution=getattr(model_cfg, "resolution", None),
                                channels=getattr(model_cfg, "channels", None), resize=cfg.resize,
                                strict=cfg.strict)
        model_cfg = self.model_config = _fill_from_data(model_cfg, dataset)
        model: GenerativeModel = self.model_cls(model_cfg).to(device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizers = model.configure_optimizers()
        phases = model.phases()
        for ph in phases:
            if ph.optimizer_name not in optimizers:
                raise RuntimeError(f"{self.model_name}: phase {ph.name} uses unknown optimiser {ph.optimizer_name}")
        opt_params = {name: [p for g in opt.param_groups for p in g["params"]] for name, opt in optimizers.items()}
        trainable = [p for ps in opt_params.values() for p in ps]

        sampler = DistributedSampler(range(len(dataset)), num_replicas=dist.world_size, rank=dist.rank,
                                     shuffle=True, seed=cfg.seed, drop_last=True)
        batches_per_epoch = len(sampler) // batch
        if batches_per_epoch == 0:
            raise ConfigError(f"dataset {dataset.name} has {len(dataset)} images, fewer than one batch of "
                              f"{cfg.batch_size}; lower --batch-size")
        draws_per_step = sum(ph.needs_batch for ph in phases) or 1
        if cfg.steps is not None:
            total_steps = cfg.steps
        elif cfg.epochs is not None:
            total_steps = math.ceil(cfg.epochs * batches_per_epoch / draws_per_step)
        else:
            raise ConfigError("give the training length with --epochs N or --steps N")

        aug_cfg = None
        if cfg.flip or cfg.crop_pad or cfg.rotate_deg:
            from ..data.augment import AugmentConfig, augment

            aug_cfg = AugmentConfig(flip=cfg.flip, crop_pad=cfg.crop_pad, rotate_deg=cfg.rotate_deg)
        aug_gen = torch.Generator(device=device).manual_seed(cfg.seed * 7919 + 17 + dist.rank)

        step = images_seen = batches_drawn = 0
        best_value: Optional[float] = None
        elapsed_before = 0.0
        if resume_from is not None:
            ckpt.load_weights(model, resume_from)
            state = ckpt.load_trainer_state(resume_from)
            for name, opt in optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
            step, images_seen, batches_drawn = state["step"], state["images_seen"], state["batches_drawn"]
            best_value = state.get("best_value")
            elapsed_before = state.get("seconds", 0.0)
            if state["world_size"] == dist.world_size:
                _set_rng_state(state["rng"][dist.rank])
                aug_gen.set_state(state["augment_rng"][dist.rank])
            elif dist.is_main:
                self.echo(f"warning: resuming a {state['world_size']}-process run with {dist.world_size} "
                          "processes; RNG streams restart, so the run will not match an uninterrupted one")

        meta = {"format": ckpt.FORMAT, "format_version": ckpt.FORMAT_VERSION, "imagegen_version": __version__,
                "model": self.model_name, "model_config": to_dict(model_cfg), "train_config": to_dict(cfg),
                "dataset": {"name": dataset.name, "split": cfg.split, "num_images": len(dataset),
                            "resolution": dataset.resolution, "channels": dataset.channels,
                            "num_classes": dataset.num_classes, "class_names": dataset.class_names}}
        logger: Optional[RunLogger] = None
        if dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "samples").mkdir(exist_ok=True)
            ckpt.write_json_atomic(self.run_dir / "config.json", meta)
            logger = RunLogger(self.run_dir / "logs", resume_step=step if resume_from is not None else None)
            counts = ", ".join(f"{n}: {count_parameters(m):,}" for n, m in model.training_modules().items())
            self.echo(f"imagegen {__version__} | {self.model_name} | parameters {counts} | "
                      f"data {dataset.name} ({len(dataset):,} images, {dataset.channels}×{dataset.resolution}²) | "
                      f"device {device} × {dist.world_size} process(es), {torch.get_num_threads()} threads | "
                      f"{'resuming at step ' + str(step) + ' of ' if resume_from is not None else ''}{total_steps} steps")

        engine: torch.nn.Module = model
        if dist.enabled:
            engine = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=True)

        evaluator = None
        if cfg.eval_every > 0 and dist.is_main:
            from ..metrics.training_eval import TrainingEvaluator

            evaluator = TrainingEvaluator(dataset, self.run_dir, cfg.eval_samples,
                                          [m for m in cfg.eval_metrics.split(",") if m], device, cfg.data_root)

        # ---- data stream: epoch-seeded permutation sharded per rank, resumable mid-epoch ----
        order: dict[str, Any] = {"epoch": -1, "idx": None}

        def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
            nonlocal batches_drawn
            epoch, pos = divmod(batches_drawn, batches_per_epoch)
            if order["epoch"] != epoch:
                sampler.set_epoch(epoch)
                order["epoch"], order["idx"] = epoch, torch.tensor(list(iter(sampler)))
            img, label = dataset.get_batch(order["idx"][pos * batch:(pos + 1) * batch])
            batches_drawn += 1
            img = img.to(device, non_blocking=True)
            if cfg.channels_last:
                img = img.contiguous(memory_format=torch.channels_last)
            if aug_cfg is not None:
                img = augment(img, aug_cfg, aug_gen)
            return img, label.to(device, non_blocking=True)

        def grid_labels() -> Optional[torch.Tensor]:
            k = model.num_classes
            return (torch.arange(cfg.grid_size, device=device) % k) if k else None

        def write_samples(at_step: int) -> Path:
            gen = torch.Generator(device=device).manual_seed(cfg.seed)  # the same latents every time
            img = model.sample(cfg.grid_size, generator=gen, labels=grid_labels())
            path = self.run_dir / "samples" / f"step-{at_step:07d}.png"
            grid = save_grid(img, path, nrow=model.num_classes or None)
            assert logger is not None
            logger.image("samples", at_step, grid)
            return path

        def save(name: str) -> Path:
            rng = all_gather_object(dist, _rng_state())
            aug = all_gather_object(dist, aug_gen.get_state())
            path = self.run_dir / "checkpoints" / name
            if dist.is_main:
                state = {"step": step, "images_seen": images_seen, "batches_drawn": batches_drawn,
                         "optimizers": {n: o.state_dict() for n, o in optimizers.items()},
                         "rng": rng, "augment_rng": aug, "world_size": dist.world_size,
                         "best_value": best_value, "seconds": elapsed_before + time.perf_counter() - t_start}
                path = ckpt.save_checkpoint(self.run_dir, name, model, {**meta, "step": step}, state,
                                            keep=cfg.keep_ckpts)
            barrier(dist)
            return path

        def set_trainable(name: str) -> None:
            for p in trainable:
                p.requires_grad_(False)
            for p in opt_params[name]:
                p.requires_grad_(True)

        # ---- the loop ----
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        grad_norms: dict[str, float] = {}
        t_start = time.perf_counter()
        t_window, window_images, overhead = time.perf_counter(), 0, 0.0
        last_grid: Optional[Path] = None
        last_ckpt: Optional[Path] = resume_from
        bar = None
        if dist.is_main and cfg.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total_steps, initial=step, unit="step", dynamic_ncols=True, mininterval=1.0,
                       file=sys.stderr)
        model.train()
        current_opt = None
        while step < total_steps:
            log_now = (step + 1) % cfg.log_every == 0 or step + 1 == total_steps
            img = label = None
            for ph in phases:
                if step % ph.every:
                    continue
                if ph.needs_batch or img is None:
                    img, label = next_batch()
                    window_images += batch * dist.world_size
                    images_seen += batch * dist.world_size
                name = ph.optimizer_name
                if name != current_opt:
                    set_trainable(name)
                    current_opt = name
                opt = optimizers[name]
                opt.zero_grad(set_to_none=True)
                out = engine(ph.name, img, label)
                out["loss"].backward()
                if log_now:
                    grads = [p.grad for p in opt_params[name] if p.grad is not None]
                    grad_norms[f"{ph.name}/grad_norm"] = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0
                opt.step()
                for k, v in out.items():
                    key = f"{ph.name}/{k}"
                    v = v.detach()
                    sums[key] = sums[key] + v if key in sums else v
                    counts[key] = counts.get(key, 0) + 1
            model.after_step(step + 1)
            step += 1

            if log_now:
                now = time.perf_counter()
                ips = window_images / max(1e-9, now - t_window - overhead)
                values = {k: float(v) / counts[k] for k, v in sums.items()}
                values.update(grad_norms)
                values["images_per_sec"] = ips
                if logger is not None:
                    logger.scalars(step, values, images_seen / 1000)
                if bar is not None:
                    shown = {k: f"{v:.3g}" for k, v in values.items() if k.endswith("/loss")}
                    bar.set_postfix(shown | {"img/s": f"{ips:.0f}"}, refresh=False)
                sums, counts, grad_norms = {}, {}, {}
                t_window, window_images, overhead = now, 0, 0.0
            if bar is not None:
                bar.update(1)

            t0 = time.perf_counter()
            if dist.is_main and (step % cfg.sample_every == 0 or step == total_steps):
                last_grid = write_samples(step)
            if cfg.eval_every > 0 and (step % cfg.eval_every == 0 or step == total_steps):
                improved = False
                if evaluator is not None:  # rank 0 evaluates; the others wait for its verdict
                    results, warnings = evaluator(model, step)
                    assert logger is not None
                    logger.scalars(step, {f"eval/{k}": v for k, v in results.items()}, images_seen / 1000)
                    with open(self.run_dir / "metrics.jsonl", "a") as f:
                        f.write(json.dumps({"step": step, "kimg": images_seen / 1000, **results,
                                            "protocol": getattr(evaluator, "protocol", None)}) + "\n")
                    for w in warnings:
                        (bar.write if bar is not None else self.echo)(f"warning (step {step}): {w}")
                    key = getattr(evaluator, "best_metric", None)
                    if key in results and (best_value is None or results[key] < best_value):
                        best_value, improved = results[key], True
                if broadcast_object(dist, improved):
                    save("best")
            if step % cfg.ckpt_every == 0 or step == total_steps:
                last_ckpt = save(f"step-{step:07d}")
            overhead += time.perf_counter() - t0

        if bar is not None:
            bar.close()
        if dist.enabled:
            _check_in_sync(dist, model)
        seconds = elapsed_before + time.perf_counter() - t_start
        if logger is not None:
            logger.close()
        if dist.is_main:
            self.echo(f"done: {step} steps, {images_seen:,} images seen, {seconds:.1f} s")
            if last_grid is not None:
                self.echo(f"samples: {last_grid}")
            self.echo(f"checkpoint: {last_ckpt}")
        assert last_ckpt is not None
        return TrainResult(self.run_dir, last_ckpt, last_grid, step, images_seen, seconds)
