"""The build progress bar: fed by TensorRT's real progress monitor, drawn only on a terminal."""
from __future__ import annotations

import io

import torch
from torch import nn

from plugtrt import progress
from plugtrt.settings import CompilationSettings
from plugtrt.testing import assert_converts


class Terminal(io.StringIO):
    """A text stream that says it is a terminal, to see what a user's terminal would show."""

    def isatty(self) -> bool:
        return True


def _model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))


def test_monitor_reports_the_build_phases_on_a_terminal(monkeypatch):
    terminal, monitors = Terminal(), []
    make = progress.monitor

    def on_terminal(name, settings, file=None, delay=progress.DELAY_SECONDS):
        monitors.append(make(name, settings, file=terminal, delay=0))
        return monitors[-1]

    monkeypatch.setattr(progress, "monitor", on_terminal)
    assert_converts(_model().eval(), [torch.randn(1, 3, 8, 8)])
    (monitor,) = monitors
    assert "Building engine" in monitor.phases_seen  # TensorRT called the monitor
    assert "Building engine" in terminal.getvalue()  # and a bar was drawn
    assert not monitor.bars  # every phase finished and its bar closed


def test_build_is_silent_when_output_is_not_a_terminal(capfd):
    assert_converts(_model().eval(), [torch.randn(1, 3, 8, 8)])
    assert "Building engine" not in capfd.readouterr().err


def test_progress_is_off_by_option_or_environment(monkeypatch):
    terminal = Terminal()
    assert progress.wanted(CompilationSettings(), terminal)
    assert not progress.wanted(CompilationSettings(progress_bar=False), terminal)
    assert not progress.wanted(CompilationSettings(), io.StringIO())
    monkeypatch.setenv("PLUGTRT_PROGRESS", "0")
    assert progress.monitor("engine", CompilationSettings(), terminal) is None
