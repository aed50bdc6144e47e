"""The one training loop shared by every model.

The model declares its data sources, optimisers, schedules and phases (:mod:`imagegen.models.base`);
the :class:`Trainer` owns devices, seeds, data streams, augmentation, progress, logging, preview grids,
checkpoints (every N steps and every M minutes), exact resume, clean stops on SIGINT/SIGTERM or a
wall-clock budget, evaluation during training and DistributedDataParallel.
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
from .. import checkpoint as ckpt
from ..config import from_dict, from_saved, to_dict
from ..device import resolve_device
from ..errors import CheckpointError, ConfigError, TrainingDiverged
from ..models.base import GenerativeModel, Phase, StepContext, batches_per_step, count_parameters
from ..registry import get_model_class
from ..sampling.images import save_grid
from .batches import BatchStream, DataStreams
from .config import RESUMABLE_OVERRIDES, TrainConfig
from .distributed import DistInfo, all_gather_object, all_reduce_max, barrier, broadcast_object, cleanup, init_distributed
from .interrupt import StopSignals, TrainingInterrupted
from .logger import RunLogger
from .sources import build_source, describe, fill_from_data
from .state import rng_state, seed_all, set_rng_state

__all__ = ["Trainer", "TrainResult", "resolve_device"]


def _check_in_sync(dist: DistInfo, model: torch.nn.Module) -> None:
    """Raise if DistributedDataParallel let the replicas' weights drift apart (a bug, never bad input)."""
    with torch.no_grad():
        sums = [float(p.double().sum()) for p in model.parameters()]
    every = all_gather_object(dist, sums)
    for r, other in enumerate(every[1:], 1):
        if not np.allclose(other, every[0], rtol=1e-5, atol=1e-6):
            raise RuntimeError(f"rank {r}'s weights differ from rank 0's after training")


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

    def state_dict(self) -> dict[str, Any]:
        """The partial sums (so a run resumed mid-window logs the same means as an uninterrupted one)."""
        return {"sums": {k: v.detach().cpu() for k, v in self.sums.items()}, "counts": dict(self.counts)}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.sums = {k: v.to(device) for k, v in state["sums"].items()}
        self.counts = {k: int(v) for k, v in state["counts"].items()}

    def values(self) -> dict[str, float]:
        out = {k: float(v) / self.counts[k] for k, v in self.sums.items()}
        out.update(self.extra)
        out["images_per_sec"] = self.images / max(1e-9, time.perf_counter() - self.t0 - self.paused)
        return out


@dataclasses.dataclass
class _Session:
    """Everything one call of :meth:`Trainer.fit` works with (built by ``Trainer._setup``)."""

    dist: DistInfo
    device: torch.device
    cfg: TrainConfig
    datasets: dict[str, Any]
    model: GenerativeModel
    engine: torch.nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizers: dict[str, torch.optim.Optimizer]
    phases: list[Phase]
    streams: DataStreams
    total_steps: Optional[int]  # None: open-ended (--minutes only)
    meta: dict[str, Any]
    step: int = 0
    images_seen: int = 0
    best_value: Optional[float] = None
    seconds_before: float = 0.0
    t_start: float = dataclasses.field(default_factory=time.perf_counter)
    t_last_ckpt: float = dataclasses.field(default_factory=time.perf_counter)
    logger: Optional[RunLogger] = None
    evaluator: Any = None
    bar: Any = None
    last_grid: Optional[Path] = None
    last_ckpt: Optional[Path] = None
    preview: Optional[dict[str, torch.Tensor]] = None
    stop_reason: Optional[str] = None
    window: _Window = dataclasses.field(default_factory=lambda: _Window())

    def __post_init__(self) -> None:
        self.opt_params = {n: [p for g in o.param_groups for p in g["params"]] for n, o in self.optimizers.items()}
        self.trainable = [p for ps in self.opt_params.values() for p in ps]
        self.current_opt: Optional[str] = None
        self.schedules = self.model.lr_schedules()
        unknown = sorted(set(self.schedules) - set(self.optimizers))
        if unknown:
            raise RuntimeError(f"{self.model.model_name}: lr schedule for unknown optimiser(s) {unknown}")
        for opt in self.optimizers.values():
            for g in opt.param_groups:
                g.setdefault("initial_lr", g["lr"])

    @property
    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.t_start

    def context(self) -> StepContext:
        return StepContext(self.step, self.total_steps or 0, self.images_seen)

    def finished(self) -> bool:
        return self.total_steps is not None and self.step >= self.total_steps


@dataclasses.dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns (on every rank; paths are meaningful on rank 0).

    Attributes:
        stopped_early: the run stopped before its last step because the ``--minutes`` budget ran out
            (a checkpoint was written; ``--resume`` continues it).
    """

    run_dir: Path
    checkpoint: Path
    sample_grid: Optional[Path]
    steps: int
    images_seen: int
    seconds: float
    stopped_early: bool = False


class Trainer:
    """Train a registered model on its data sources, writing everything to ``run_dir``.

    Args:
        model_name: registry name (``dcgan``, ...).
        model_config: the model's ``Config`` instance; ``channels`` / ``num_classes`` left as None are
            filled from the main dataset. Ignored (taken from the run) when resuming.
        train_config: :class:`TrainConfig`. When resuming, only the fields in
            ``RESUMABLE_OVERRIDES`` named in ``overrides`` replace the saved ones.
        run_dir: output directory. It must not exist (or be empty) unless ``resume`` or ``force``.
        resume: continue the run in ``run_dir`` exactly where its latest checkpoint stopped
            (weights, EMA, optimisers and their schedules, the model's training state, step and image
            counters, every source's data order, RNG states).
        force: delete an existing ``run_dir`` and start afresh.
        overrides: names of train options the user set explicitly (used on resume).
        echo: where progress messages go (default: ``print``).
        dataset: an in-memory :class:`ImageDataset` for the main source instead of loading
            ``train_config.data`` (Python API; ``train_config.data`` is then only recorded as its name).
        should_stop: optional callable polled after every step with the step count; returning True
            stops the run like SIGTERM does (checkpoint, then :class:`TrainingInterrupted`). For tests
            and embedding applications.

    Raises:
        ConfigError, DataError, CheckpointError: bad options, data or checkpoints.
        TrainingInterrupted: SIGINT/SIGTERM (or ``should_stop``) stopped the run after a checkpoint.
    """

    def __init__(self, model_name: str, model_config: Any, train_config: TrainConfig,
                 run_dir: str | os.PathLike, *, resume: bool = False, force: bool = False,
                 overrides: Optional[set[str]] = None, echo: Callable[[str], None] = print,
                 dataset: Optional[Any] = None, should_stop: Optional[Callable[[int], bool]] = None) -> None:
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
        self.should_stop = should_stop

    # ------------------------------------------------------------------------------------------
    def _prepare_run_dir(self, dist: DistInfo) -> Optional[Path]:
        """Check (and for --force, clear) the run directory; return the checkpoint to resume."""
        if self.resume:
            if self.force:
                raise ConfigError("--resume and --force contradict each other; use one")
            if dist.is_main:
                ckpt.clean_stale(self.run_dir)
            barrier(dist)
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
        self.model_config = from_saved(self.model_cls.Config, meta["model_config"], what=f"{self.model_name} config")
        saved = from_dict(TrainConfig, meta["train_config"], what="train config")
        changed = {k for k in self.overrides if getattr(self.cfg, k) != getattr(saved, k)}
        bad = sorted(changed - RESUMABLE_OVERRIDES)
        if bad:
            raise ConfigError(f"cannot change {', '.join('--' + b.replace('_', '-') for b in bad)} when resuming; "
                              f"only {', '.join(sorted('--' + r.replace('_', '-') for r in RESUMABLE_OVERRIDES))} may differ")
        sources = {n: dict(v) for n, v in saved.sources.items()}
        for name, given in (self.cfg.sources.items() if "sources" in changed else ()):
            for key, value in given.items():
                if value is None:
                    continue
                if key != "data_root" and value != sources.get(name, {}).get(key):
                    raise ConfigError(f"cannot change --{key.replace('_', '-')}-{name} when resuming; only "
                                      f"--data-root-{name} may differ")
                sources.setdefault(name, {})[key] = value
        self.cfg = dataclasses.replace(saved, **{k: getattr(self.cfg, k) for k in changed - {"sources"}},
                                       sources=sources)

    # ------------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Run training to the configured length (or budget); returns where the results are.

        Raises:
            TrainingInterrupted: a signal (or ``should_stop``) stopped the run; a checkpoint was written.
        """
        dist = init_distributed(resolve_device(self.cfg.device)) if os.environ.get("WORLD_SIZE", "1") != "1" \
            else DistInfo()
        try:
            s = self._setup(dist)
            with StopSignals() as signals:
                try:
                    self._loop(s, signals)
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
        device = resolve_device(cfg.device, dist.local_rank)
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world_size))
        torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // local_world))
        if device.type == "cpu":
            torch.set_flush_denormal(True)  # denormal gradients make CPU kernels many times slower
        if cfg.batch_size % dist.world_size:
            raise ConfigError(f"--batch-size {cfg.batch_size} is not divisible by the {dist.world_size} "
                              "processes; use a multiple of the process count")
        seed_all(cfg.seed + dist.rank)

        sources = self.model_cls.data_sources()
        model_cfg = self.model_config
        res, ch = self.model_cls.data_resolution(model_cfg), getattr(model_cfg, "channels", None)
        datasets: dict[str, Any] = {}
        for src in sources:
            given = self.dataset if (self.dataset is not None and src is sources[0]) else None
            datasets[src.name] = given if given is not None else build_source(cfg, src, res, ch)
            if src is sources[0]:
                model_cfg = fill_from_data(model_cfg, datasets[src.name])
                ch = getattr(model_cfg, "channels", ch)
        self.model_config = model_cfg
        model: GenerativeModel = self.model_cls(model_cfg).to(device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizers = model.configure_optimizers()
        phases = model.phases()
        for ph in phases:
            if ph.optimizer_name not in optimizers:
                raise RuntimeError(f"{self.model_name}: phase {ph.name} uses unknown optimiser {ph.optimizer_name}")

        augment = cfg.augment_config()
        streams = DataStreams({src.name: BatchStream(datasets[src.name], src, cfg.batch_size // dist.world_size, dist,
                                                     cfg.seed, device, cfg.channels_last, augment, index=i,
                                                     workers=cfg.workers)
                               for i, src in enumerate(sources)})
        if cfg.steps is not None:
            total_steps: Optional[int] = cfg.steps
        elif cfg.epochs is not None:
            total_steps = math.ceil(cfg.epochs * streams.batches_per_epoch / batches_per_step(phases))
        elif cfg.minutes is not None:
            total_steps = None
            if model.lr_schedules() and model.lr_schedules_need_length():
                raise ConfigError(f"{self.model_name} has a learning-rate schedule that needs the run's length; "
                                  "give --steps or --epochs with --minutes")
        else:
            raise ConfigError("give the training length with --epochs N or --steps N (or a budget with --minutes M)")

        main = datasets[sources[0].name]
        meta = ckpt.checkpoint_meta(
            self.model_name, model_cfg, train_config=to_dict(cfg),
            dataset={**describe(sources[0], main), "split": cfg.split},
            **({"sources": {src.name: describe(src, datasets[src.name]) for src in sources}}
               if len(sources) > 1 or sources[0].name else {}))
        engine: torch.nn.Module = model
        if dist.enabled:
            engine = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)
        s = _Session(dist, device, cfg, datasets, model, engine, optimizers, phases, streams, total_steps, meta)
        if resume_from is not None:
            self._restore(s, resume_from)
        s.preview = streams.preview_batch(cfg.grid_size, cfg.seed)

        if dist.is_main and cfg.eval_every > 0:  # before the run directory exists: bad metrics fail cleanly
            from ..metrics.training_eval import build_training_evaluator

            s.evaluator = build_training_evaluator(model, main, self.run_dir, cfg, device)
        if dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "samples").mkdir(exist_ok=True)
            ckpt.write_json_atomic(self.run_dir / "config.json", meta)
            s.logger = RunLogger(self.run_dir / "logs", resume_step=s.step if resume_from is not None else None)
            counts = ", ".join(f"{n}: {count_parameters(m):,}" for n, m in model.training_modules().items())
            data = " + ".join(f"{d.name} ({len(d):,} {'pairs' if src.kind == 'paired' else 'images'}, "
                              f"{d.channels}×{d.resolution}²)" for src, d in zip(sources, datasets.values()))
            length = f"{total_steps} steps" if total_steps is not None else "until the time budget"
            budget = f", budget {cfg.minutes:g} min" if cfg.minutes is not None and total_steps is not None else ""
            self.echo(f"imagegen {__version__} | {self.model_name} | parameters {counts} | data {data} | "
                      f"device {device} × {dist.world_size} process(es), {torch.get_num_threads()} threads | "
                      f"{'resuming at step ' + str(s.step) + ' of ' if resume_from is not None else ''}"
                      f"{length}{budget}")
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
        rank = s.dist.rank if same_world else 0
        s.streams.load_state_dict(state["data"][rank], restore_rng=same_world)
        if "model_state" in state:
            s.model.load_training_state(state["model_state"][rank])
        if state.get("log_window"):
            s.window.load_state_dict(state["log_window"], s.device)
        if same_world:
            set_rng_state(state["rng"][s.dist.rank])
        elif s.dist.is_main:
            self.echo(f"warning: resuming a {state['world_size']}-process run with {s.dist.world_size} "
                      "processes; RNG streams restart, so the run will not match an uninterrupted one")

    # ------------------------------------------------------------------------------------------
    def _loop(self, s: _Session, signals: StopSignals) -> None:
        cfg = s.cfg
        window = s.window
        s.model.train()
        t_loop = time.perf_counter()
        while not s.finished():
            last_planned = s.total_steps is not None and s.step + 1 == s.total_steps
            log_now = (s.step + 1) % cfg.log_every == 0 or last_planned
            self._apply_schedules(s, window if log_now else None)
            s.model.before_step(s.context())
            self._train_step(s, window, log_now)
            s.step += 1
            s.model.after_step(s.context())
            if log_now:
                values = window.values()
                self._check_finite(s, {k: v for k, v in values.items() if k.endswith("/loss")})
                self._log(s, values)
                window = s.window = _Window()
            if s.bar is not None:
                s.bar.update(1)

            t0 = time.perf_counter()
            signum, time_up, ckpt_due = self._poll(s, signals, t_loop)
            stop = bool(signum or time_up)
            last = s.finished() or stop
            if s.dist.is_main and (s.step % cfg.sample_every == 0 or last):
                s.last_grid = self._write_samples(s)
            if cfg.eval_every > 0 and (s.step % cfg.eval_every == 0 or s.finished()):
                self._evaluate(s)
            if s.step % cfg.ckpt_every == 0 or last or ckpt_due:
                self._check_finite(s, {k: float(v) / window.counts[k] for k, v in window.sums.items()
                                       if k.endswith("/loss")})
                s.last_ckpt = self._save(s, f"step-{s.step:07d}")
            window.paused += time.perf_counter() - t0
            if signum:
                name = {2: "SIGINT", 15: "SIGTERM"}.get(signum, f"signal {signum}")
                raise TrainingInterrupted(
                    f"{name}: stopped at step {s.step} after writing {s.last_ckpt}; continue with "
                    f"`imagegen train {self.model_name} --resume {self.run_dir}`", signum)
            if time_up:
                s.stop_reason = "minutes"
                break

    def _check_finite(self, s: _Session, losses: dict[str, float]) -> None:
        """Stop with :class:`TrainingDiverged` (naming the last good checkpoint) when a loss mean of the
        current log window is NaN or infinite; called before logging and before every checkpoint, so a
        diverged state is never saved. Under DDP every process calls it at the same steps and they agree
        (a non-finite loss on any rank stops all of them, so none waits forever in a collective)."""
        bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
        diverged = bool(bad)
        if s.dist.enabled:
            diverged = bool(all_reduce_max(s.dist, [int(diverged)], s.device)[0])
        if not diverged:
            return
        k, v = next(iter(bad.items())) if bad else ("a loss of another process", "non-finite")
        good = f"the last good checkpoint is {s.last_ckpt}" if s.last_ckpt is not None else \
            "no checkpoint was written before it"
        raise TrainingDiverged(
            f"{k} became {v} by step {s.step}: training diverged; {good}; resume from it with "
            f"`imagegen train {self.model_name} --resume {self.run_dir}` and a lower learning rate or "
            "stronger regularisation (e.g. R1 --r1-gamma, --gp-weight)")

    def _poll(self, s: _Session, signals: StopSignals, t_loop: float) -> tuple[int, bool, bool]:
        """(signal number or 0, --minutes budget spent, --ckpt-minutes due), agreed by every process
        (a signal on any rank counts; the clocks are rank 0's)."""
        cfg, now = s.cfg, time.perf_counter()
        signum = signals.signum or 0
        if not signum and self.should_stop is not None and self.should_stop(s.step):
            signum = 15
        time_up = ckpt_due = 0
        if s.dist.is_main:
            time_up = int(cfg.minutes is not None and now - t_loop >= 60.0 * cfg.minutes)
            ckpt_due = int(cfg.ckpt_minutes > 0 and now - s.t_last_ckpt >= 60.0 * cfg.ckpt_minutes)
        if s.dist.enabled:
            signum, time_up, ckpt_due = all_reduce_max(s.dist, [signum, time_up, ckpt_due], s.device)
        return signum, bool(time_up), bool(ckpt_due)

    def _apply_schedules(self, s: _Session, window: Optional[_Window]) -> None:
        """Set each scheduled optimiser's learning rates to ``initial_lr × factor(ctx)``."""
        if not s.schedules:
            return
        ctx = s.context()
        for name, fn in s.schedules.items():
            factor = float(fn(ctx))
            for g in s.optimizers[name].param_groups:
                g["lr"] = g["initial_lr"] * factor
            if window is not None:
                window.extra[f"lr/{name}"] = s.optimizers[name].param_groups[0]["lr"]

    def _train_step(self, s: _Session, window: _Window, log_now: bool) -> None:
        """Run every phase of one step: enable only the phase optimiser's parameters, backpropagate the
        phase's loss, step the optimiser."""
        batch: Optional[dict[str, torch.Tensor]] = None
        for ph in s.phases:
            if s.step % ph.every:
                continue
            if ph.needs_batch or batch is None:
                batch = s.streams.next()
                n = s.streams.batch * s.dist.world_size
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
            out = s.engine(ph.name, batch)
            out["loss"].backward()
            if log_now:
                grads = [p.grad for p in s.opt_params[name] if p.grad is not None]
                window.extra[f"{ph.name}/grad_norm"] = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0
            opt.step()
            window.add(ph.name, out)

    def _log(self, s: _Session, values: dict[str, float]) -> None:
        if s.logger is not None:
            s.logger.scalars(s.step, values, s.images_seen / 1000)
        if s.bar is not None:
            shown = {k: f"{v:.3g}" for k, v in values.items() if k.endswith("/loss")}
            s.bar.set_postfix(shown | {"img/s": f"{values['images_per_sec']:.0f}"}, refresh=False)

    def _write_samples(self, s: _Session) -> Path:
        """The model's preview of the run's fixed batch, with a generator seeded the same at every call."""
        gen = torch.Generator(device=s.device).manual_seed(s.cfg.seed)
        assert s.preview is not None
        img, nrow = s.model.preview(s.preview, gen, s.cfg.grid_size)
        path = self.run_dir / "samples" / f"step-{s.step:07d}.png"
        grid = save_grid(img, path, nrow=nrow)
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
            ckpt.append_metrics(self.run_dir, {"step": s.step, "kimg": s.images_seen / 1000, **results,
                                               "protocol": getattr(s.evaluator, "protocol", None)})
            for w in warnings:
                (s.bar.write if s.bar is not None else self.echo)(f"warning (step {s.step}): {w}")
            key = getattr(s.evaluator, "best_metric", None)
            if key in results and (s.best_value is None or results[key] < s.best_value):
                s.best_value, improved = results[key], True
        if broadcast_object(s.dist, improved):
            self._save(s, "best")

    def _save(self, s: _Session, name: str) -> Path:
        """Checkpoint (collective: every rank contributes its RNG, data-stream and model training state)."""
        rng = all_gather_object(s.dist, rng_state())
        data = all_gather_object(s.dist, s.streams.state_dict())
        model_state = all_gather_object(s.dist, s.model.training_state())
        path = self.run_dir / "checkpoints" / name
        if s.dist.is_main:
            state = {"step": s.step, "images_seen": s.images_seen, "world_size": s.dist.world_size,
                     "optimizers": {n: o.state_dict() for n, o in s.optimizers.items()},
                     "rng": rng, "data": data, "model_state": model_state, "best_value": s.best_value,
                     "seconds": s.seconds, "log_window": s.window.state_dict()}
            path = ckpt.save_checkpoint(self.run_dir, name, s.model, {**s.meta, "step": s.step}, state,
                                        keep=s.cfg.keep_ckpts)
        s.t_last_ckpt = time.perf_counter()
        barrier(s.dist)
        return path

    def _finish(self, s: _Session) -> TrainResult:
        if s.dist.enabled:
            _check_in_sync(s.dist, s.model)
        early = s.stop_reason == "minutes" and not s.finished()
        if s.dist.is_main:
            self.echo(f"done: {s.step} steps, {s.images_seen:,} images seen, {s.seconds:.1f} s")
            if early:
                self.echo(f"stopped by --minutes {s.cfg.minutes:g} at step {s.step}"
                          f"{' of ' + str(s.total_steps) if s.total_steps else ''}; continue with "
                          f"`imagegen train {self.model_name} --resume {self.run_dir}`")
            if s.last_grid is not None:
                self.echo(f"samples: {s.last_grid}")
            self.echo(f"checkpoint: {s.last_ckpt}")
        assert s.last_ckpt is not None
        return TrainResult(self.run_dir, s.last_ckpt, s.last_grid, s.step, s.images_seen, s.seconds, early)
