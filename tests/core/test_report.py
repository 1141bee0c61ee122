"""The compile-report history stays bounded in a long-running process."""
from __future__ import annotations

import os

import hypothesis
import torch

import plugtrt
from plugtrt import report
from plugtrt.testing import run_through_backend


def test_history_keeps_the_latest_reports_and_counts_all(monkeypatch):
    monkeypatch.setattr(report, "_history", report.collections.deque(maxlen=3))
    before = plugtrt.compile_count()
    for i in range(5):
        report.record(report.CompileReport(graph=f"g{i}"))
    assert [r.graph for r in plugtrt.compile_reports()] == ["g2", "g3", "g4"]
    assert plugtrt.compile_count() == before + 5


def test_history_is_bounded_by_default():
    assert report._history.maxlen == report.MAX_REPORTS > 0


def test_backend_records_engines_in_the_history():
    before = plugtrt.compile_count()
    run = run_through_backend(lambda x: torch.relu(x) + 1, [torch.randn(3)])
    assert run.engines == 1
    assert plugtrt.compile_count() == before + 1
    assert plugtrt.compile_reports()[-1] is run.reports[-1]


def test_hypothesis_replays_fixed_examples_only_in_ci():
    in_ci = os.environ.get("CI", "").lower() == "true"
    loaded = hypothesis.settings()
    assert loaded.derandomize is in_ci
    assert loaded.deadline is None and loaded.print_blob
