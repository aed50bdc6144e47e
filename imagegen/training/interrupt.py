"""Stopping a run cleanly: SIGINT (Ctrl-C) and SIGTERM (schedulers, preemptible machines).

The first signal only raises a flag: the trainer finishes the current step, writes a checkpoint and
raises :class:`TrainingInterrupted`, which the CLI turns into exit code 130 (SIGINT) or 143
(SIGTERM) with the resume command. A second SIGINT raises ``KeyboardInterrupt`` at once; since
checkpoints are written atomically, the previous one stays intact.
"""
from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, Optional

from ..errors import ImagegenError


class TrainingInterrupted(ImagegenError):
    """Training stopped on a signal after writing a checkpoint.

    Attributes:
        signum: the signal number (``signal.SIGINT`` or ``signal.SIGTERM``).
        exit_code: 128 + signum (130 for SIGINT, 143 for SIGTERM), the shell's convention.
    """

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


class StopSignals:
    """Context manager that turns SIGINT/SIGTERM into a flag (main thread only; elsewhere a no-op).

    Attributes:
        signum: the first signal received, or None.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: leave now
        if self.signum is None:
            self.signum = signum

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
