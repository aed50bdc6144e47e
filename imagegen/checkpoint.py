"""Checkpoints: ``config.json`` + ``model.safetensors`` + ``trainer_state.pt``, written atomically.

Layout of a run directory::

    RUN/config.json                       model name, model config, train config, dataset facts
    RUN/checkpoints/step-0001000/         one complete checkpoint
        config.json  model.safetensors  trainer_state.pt
    RUN/checkpoints/latest                name of the newest complete checkpoint (text)
    RUN/checkpoints/best/                 best checkpoint by the evaluation metric (if --eval-every)
    RUN/metrics.jsonl                     one JSON line per evaluation (:func:`append_metrics`)

This module sits below both the trainer and the sampling/evaluation code: reading a checkpoint needs
nothing from the training loop.

A checkpoint is written to a temporary directory, flushed to disk, then renamed into place, and only
then is ``latest`` replaced (``os.replace``); a kill at any moment leaves the previous checkpoint
intact. Loading never unpickles code: weights come from safetensors and the trainer state (optimiser
states, counters, RNG states: tensors, numbers, strings) from ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from . import __version__
from .config import to_dict
from .errors import CheckpointError

FORMAT = "imagegen-checkpoint"
#: 1: single data stream, no model training state (imagegen 0.1 before the model contract);
#: 2: per-source data streams and ``model_state`` in ``trainer_state.pt``. Version 1 runs still load
#: for sampling and evaluation and resume exactly (their one stream is the main source's).
FORMAT_VERSION = 2
_STEP_DIR = re.compile(r"^step-(\d+)$")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, write) -> None:
    write(path)
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _write_atomic(path: Path, write, suffix: str = "") -> None:
    """``write(tmp)`` to a temporary file beside ``path`` (fsynced), then ``os.replace`` onto ``path``, so
    a reader never sees a half-written file; the temporary file is removed if writing fails."""
    path = Path(path)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}{suffix}")
    try:
        _write_file(tmp, write)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to ``path`` via a temporary file and ``os.replace``."""
    _write_atomic(path, lambda p: p.write_text(json.dumps(data, indent=2) + "\n"))


def write_torch_atomic(path: Path, obj: Any) -> None:
    """``torch.save(obj, path)`` via a temporary file (fsynced) and ``os.replace``."""
    _write_atomic(path, lambda p: torch.save(obj, p))


def write_npz_atomic(path: Path, arrays: dict[str, Any]) -> None:
    """``np.savez(path, **arrays)`` via a temporary file and ``os.replace``, so a reader never sees a
    half-written ``.npz``."""
    import numpy as np

    # the temporary name ends in .npz, or np.savez would append it
    _write_atomic(path, lambda p: np.savez(p, **arrays), suffix=".npz")


def checkpoint_meta(model_name: str, model_config: Any, **extra: Any) -> dict[str, Any]:
    """The ``config.json`` of a checkpoint: format and version, imagegen version, the registered
    model name and its config dataclass (as a dict), then ``extra`` (e.g. ``train_config``,
    ``dataset``, ``step``)."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "imagegen_version": __version__,
            "model": model_name, "model_config": to_dict(model_config), **extra}


def save_checkpoint(run_dir: Path, name: str, model: torch.nn.Module, meta: dict[str, Any],
                    trainer_state: dict[str, Any], keep: int = 2) -> Path:
    """Atomically write checkpoint ``RUN/checkpoints/<name>`` and, for ``step-*`` names, point
    ``latest`` at it and delete all but the newest ``keep`` step checkpoints.

    Args:
        run_dir: the run directory.
        name: ``step-0001000`` or ``best``.
        model: the model whose ``state_dict()`` is saved (EMA copies included).
        meta: JSON-serialisable description (model name and config, train config, step).
        trainer_state: optimiser states, counters and RNG states (no arbitrary objects).
        keep: number of step checkpoints to keep (≥ 1).

    Returns:
        The checkpoint directory.
    """
    ckpt_root = run_dir / "checkpoints"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / name
    tmp = ckpt_root / f".{name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    _write_file(tmp / "model.safetensors",
                lambda p: safetensors.torch.save_file(state, str(p), metadata={"format": FORMAT}))
    _write_file(tmp / "trainer_state.pt", lambda p: torch.save(trainer_state, p))
    _write_file(tmp / "config.json", lambda p: p.write_text(json.dumps(meta, indent=2) + "\n"))
    _fsync_dir(tmp)
    if final.exists():  # re-saving the same name (e.g. "best"): move the old one aside first
        old = ckpt_root / f".{name}.old-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old)
    else:
        os.replace(tmp, final)
    _fsync_dir(ckpt_root)
    if _STEP_DIR.match(name):
        latest_tmp = ckpt_root / f".latest.tmp-{os.getpid()}"
        _write_file(latest_tmp, lambda p: p.write_text(name + "\n"))
        os.replace(latest_tmp, ckpt_root / "latest")
        steps = sorted((d for d in ckpt_root.iterdir() if _STEP_DIR.match(d.name)), key=lambda d: d.name)
        for d in steps[:-max(1, keep)]:
            # rename first: a kill during the deletion must not leave a half-deleted step-* directory
            doomed = ckpt_root / f".{d.name}.del-{os.getpid()}"
            try:
                os.replace(d, doomed)
            except OSError:
                doomed = d
            shutil.rmtree(doomed, ignore_errors=True)
    return final


def clean_stale(run_dir: Path) -> None:
    """Remove what a process killed during :func:`save_checkpoint` left behind: temporary checkpoint
    directories and ``latest`` files, old checkpoints being deleted, and put back a checkpoint that
    was moved aside for re-saving (``best``) but not yet replaced. Call only while no other process
    writes to ``run_dir``."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return
    for d in root.iterdir():
        if not d.name.startswith("."):
            continue
        if ".old-" in d.name:
            final = root / d.name[1:].split(".old-")[0]
            if not final.exists():
                os.replace(d, final)
                continue
        if ".tmp-" in d.name or ".old-" in d.name or ".del-" in d.name:
            shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink(missing_ok=True)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint directory for ``path``: a checkpoint directory itself, or a run directory
    (its ``latest`` checkpoint, or the newest complete ``step-*`` one if ``latest`` is missing).

    Raises:
        CheckpointError: if ``path`` does not exist or holds no complete checkpoint.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p} does not exist; pass the --out directory of a training run")
    if (p / "model.safetensors").is_file() and (p / "config.json").is_file():
        return p
    root = p / "checkpoints"
    if root.is_dir():
        latest = root / "latest"
        if latest.is_file():
            cand = root / latest.read_text().strip()
            if (cand / "model.safetensors").is_file():
                return cand
        steps = sorted((d for d in root.iterdir() if _STEP_DIR.match(d.name)
                        and (d / "model.safetensors").is_file()), key=lambda d: d.name)
        if steps:
            return steps[-1]
    raise CheckpointError(f"{p} holds no complete imagegen checkpoint (expected {p}/checkpoints/latest "
                          "or model.safetensors); pass the --out directory of a training run")


def read_meta(ckpt_dir: Path) -> dict[str, Any]:
    """The checkpoint's ``config.json``.

    Raises:
        CheckpointError: if it is unreadable or not an imagegen checkpoint.
    """
    try:
        meta = json.loads((ckpt_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{ckpt_dir / 'config.json'} is unreadable ({e}); the checkpoint is "
                              "corrupt, use an earlier one") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{ckpt_dir / 'config.json'} is not an imagegen checkpoint config")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{ckpt_dir} was written by a newer imagegen (format "
                              f"{meta.get('format_version')}); upgrade imagegen to load it")
    return meta


def load_weights(model: torch.nn.Module, ckpt_dir: Path) -> None:
    """Load ``model.safetensors`` into ``model`` (strict: same architecture and shapes).

    Raises:
        CheckpointError: corrupt file, or a checkpoint of another model or shape (names the first
            mismatching tensor).
    """
    path = ckpt_dir / "model.safetensors"
    try:
        state = safetensors.torch.load_file(str(path), device="cpu")
    except Exception as e:  # safetensors raises several error types for corrupt files
        raise CheckpointError(f"{path} is corrupt or truncated ({type(e).__name__}); use an earlier "
                              "checkpoint") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"{path} does not fit this model (missing {missing[:3]}, unexpected "
                              f"{unexpected[:3]}); it was saved by a different model or configuration")
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise CheckpointError(f"{path}: tensor {k} has shape {tuple(v.shape)} but the model expects "
                                  f"{tuple(own[k].shape)}; the checkpoint is from a different configuration")
    model.load_state_dict(state, strict=True)


def load_trainer_state(ckpt_dir: Path) -> dict[str, Any]:
    """The trainer state, loaded without unpickling code (``weights_only=True``).

    Raises:
        CheckpointError: if the file is missing, corrupt or holds anything but plain data.
    """
    path = ckpt_dir / "trainer_state.pt"
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing; this checkpoint cannot be resumed (it can still be "
                              "sampled)") from None
    except Exception as e:
        raise CheckpointError(f"{path} is corrupt or holds objects other than plain data ({type(e).__name__}); "
                              "use an earlier checkpoint") from None



def append_metrics(run_dir: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Append one evaluation record (metric values, step, protocol: JSON-serialisable) as a line of
    ``RUN/metrics.jsonl`` and return that file's path."""
    path = Path(run_dir) / "metrics.jsonl"
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
    return path
