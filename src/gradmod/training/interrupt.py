"""Stop training cleanly on SIGINT or SIGTERM.

``StopOnSignal`` installs handlers that only record the signal. The Trainer
checks ``requested`` at each step boundary, writes a checkpoint and raises
``TrainingInterrupted``. A second signal while the first is pending raises
``KeyboardInterrupt`` at once, for a user who does not want to wait.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["StopOnSignal", "TrainingInterrupted"]

logger = logging.getLogger(__name__)


class TrainingInterrupted(Exception):
    """Training stopped at a step boundary after SIGINT or SIGTERM.

    Attributes:
        signum: the signal number.
        step: the last completed optimizer step.
        checkpoint: the checkpoint written at that step, or None without a run folder.
        exit_code: 128 + signum, the shell's convention (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, signum: int, step: int, checkpoint: Path | None) -> None:
        self.signum = signum
        self.step = step
        self.checkpoint = checkpoint
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        if checkpoint is None:
            detail = "no checkpoint was written because the run has no output folder"
        else:
            detail = f"checkpoint saved to {checkpoint}; resume with: gradmod train --resume {checkpoint.parent}"
        super().__init__(f"training stopped by {name} after step {step}; {detail}")


class StopOnSignal:
    """Context manager that records SIGINT/SIGTERM instead of raising.

    Outside the main thread Python cannot install signal handlers, so there the
    handlers stay as they are and ``requested`` remains False.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def handle(self, signum: int, frame: FrameType | None = None) -> None:
        """Record the signal; a repeated signal raises KeyboardInterrupt."""
        if self.signum is not None:
            self.restore()
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name} while stopping")
        self.signum = signum
        logger.warning("received %s: stopping after the current step", signal.Signals(signum).name)

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self.handle)
        else:
            logger.debug("not in the main thread: SIGINT/SIGTERM keep their handlers")
        return self

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    def __exit__(self, *exc_info: Any) -> None:
        self.restore()
