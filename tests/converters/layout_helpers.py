"""Helpers the padding and layout tests share."""
from __future__ import annotations

from plugtrt.testing import BackendRun


def converters_used(run: BackendRun) -> set[str]:
    """The converters that built ``run``'s engines."""
    return {name for report in run.reports for engine in report.engines for name in engine.converters}
