"""A progress bar for long engine builds, fed by TensorRT's own progress monitor.

TensorRT reports its build as nested phases of known step counts through
``IProgressMonitor`` (both flavours have it; ``config.progress_monitor`` attaches one). Each
phase becomes a ``tqdm`` bar, nested by depth, that appears only once the phase has run for
``delay`` seconds: a build of a tenth of a second shows nothing. Nothing is drawn when the
output is not a terminal (logs, CI, pytest's capture), with ``progress_bar=False`` or with
``PLUGTRT_PROGRESS=0``.
"""
from __future__ import annotations

import os
import sys
from typing import IO, Any

from tqdm import tqdm

from plugtrt.trt_adapter import trt

DELAY_SECONDS = 2.0


def wanted(settings: Any, file: IO[str] | None = None) -> bool:
    """Whether a build under ``settings`` should show progress on ``file`` (stderr)."""
    file = file or sys.stderr
    if not getattr(settings, "progress_bar", True) or os.environ.get("PLUGTRT_PROGRESS") == "0":
        return False
    isatty = getattr(file, "isatty", None)
    return bool(isatty and isatty())


def monitor(name: str, settings: Any, file: IO[str] | None = None,
            delay: float = DELAY_SECONDS) -> Any:
    """A progress monitor to attach to the builder config of engine ``name``, or None when no
    progress is wanted (see :func:`wanted`)."""
    if not wanted(settings, file):
        return None
    return BuildProgress(name, file or sys.stderr, delay)


class BuildProgress(trt.IProgressMonitor):
    """One bar per running TensorRT build phase, nested by depth; never cancels the build."""

    def __init__(self, name: str, file: IO[str], delay: float):
        trt.IProgressMonitor.__init__(self)
        self.name, self.file, self.delay = name, file, delay
        self.bars: dict[str, tqdm] = {}
        self.depths: dict[str, int] = {}
        self.phases_seen: list[str] = []
        """Every phase TensorRT started, in order (what a test can check)."""

    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        depth = self.depths.get(parent_phase, -1) + 1 if parent_phase is not None else 0
        self.depths[phase_name] = depth
        label = f"{self.name}: {phase_name}" if depth == 0 else phase_name
        self.bars[phase_name] = tqdm(total=num_steps, desc=label, position=depth, leave=False,
                                     delay=self.delay, file=self.file, unit="step")
        self.phases_seen.append(phase_name)

    def step_complete(self, phase_name: str, step: int) -> bool:
        bar = self.bars.get(phase_name)
        if bar is not None:
            bar.update(step + 1 - bar.n)
        return True  # keep building

    def phase_finish(self, phase_name: str) -> None:
        bar = self.bars.pop(phase_name, None)
        if bar is not None:
            bar.close()
