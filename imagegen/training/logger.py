"""Run logging: TensorBoard event files plus a JSON-lines copy of every scalar.

``RUN/logs/`` holds the TensorBoard events (``tensorboard --logdir RUN/logs``) and
``RUN/logs/scalars.jsonl``: one object per logged step, ``{"step": int, "kimg": float, "<phase>/<name>":
float, ...}``, which the report command and the tests read without TensorBoard. Evaluations (by the
trainer's ``--eval-every`` and by ``imagegen evaluate``) go to ``RUN/metrics.jsonl``
(:func:`imagegen.checkpoint.append_metrics`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np



class RunLogger:
    """Writes scalars and images for one run (rank 0 only).

    Args:
        log_dir: ``RUN/logs``.
        resume_step: when resuming, the step of the checkpoint; TensorBoard events and JSON lines
            logged after it by the interrupted process are discarded so curves do not double back.
    """

    def __init__(self, log_dir: Path, resume_step: Optional[int] = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        log_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = log_dir / "scalars.jsonl"
        if resume_step is not None and self.jsonl_path.exists():
            kept = [line for line in self.jsonl_path.read_text().splitlines()
                    if line.strip() and json.loads(line)["step"] <= resume_step]
            tmp = self.jsonl_path.with_name(self.jsonl_path.name + ".tmp")  # atomic: a kill keeps the history
            tmp.write_text("".join(line + "\n" for line in kept))
            tmp.replace(self.jsonl_path)
        self._jsonl = open(self.jsonl_path, "a", buffering=1)
        self.tb = SummaryWriter(str(log_dir), purge_step=None if resume_step is None else resume_step + 1)

    def scalars(self, step: int, values: dict[str, float], kimg: float) -> None:
        for k, v in values.items():
            self.tb.add_scalar(k, v, step)
        self._jsonl.write(json.dumps({"step": step, "kimg": round(kimg, 4), **values}) + "\n")

    def image(self, tag: str, step: int, grid_hwc: np.ndarray) -> None:
        """``grid_hwc``: uint8 [H, W, C]."""
        self.tb.add_image(tag, grid_hwc, step, dataformats="HWC")

    def flush(self) -> None:
        self.tb.flush()
        self._jsonl.flush()

    def close(self) -> None:
        self.tb.close()
        self._jsonl.close()
