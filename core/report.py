"""What one compilation did: stage times, engines, ops left to PyTorch, fallbacks."""
from __future__ import annotations

import collections
import threading
from typing import Any

import attrs

from plugtrt.dynamic import describe_profiles


@attrs.define(kw_only=True)
class EngineReport:
    name: str
    layers: int
    ops: int
    build_seconds: float
    runtime: str
    layer_types: dict[str, int] = attrs.Factory(dict)
    """TensorRT layer type -> count, read back from the built network."""
    converters: tuple[str, ...] = ()
    """Names of the converters that built this engine's layers."""
    cached: bool = False
    """Loaded from the engine cache: neither converted nor built in this process."""
    profiles: tuple[dict[str, tuple[int, int, int]], ...] = ()
    """The engine's optimization profiles, in order: each symbol's (min, opt, max) by name (more
    than one where a range spans more than 8×, :mod:`plugtrt.dynamic`); () when static."""
    plan_bytes: int = 0
    """Size of the serialized engine: where weights are stored as int8 or FP8 it shows."""


@attrs.define(kw_only=True)
class CompileReport:
    """Filled stage by stage while one graph compiles; read by tests, the demo and ``debug``."""

    graph: str
    input_shapes: list[tuple[int, ...]] = attrs.Factory(list)
    stage_seconds: dict[str, float] = attrs.Factory(dict)
    engines: list[EngineReport] = attrs.Factory(list)
    pytorch_ops: list[str] = attrs.Factory(list)
    """aten targets that run in PyTorch, one entry per node."""
    fallbacks: list[str] = attrs.Factory(list)
    """Blocks that failed to convert or build and run in PyTorch instead, with the reason."""
    coverage: dict[str, Any] | None = None
    dry_run: bool = False
    dynamic: bool = False
    """The graph had symbolic sizes: its engines were built with an optimization profile."""
    restored: bool = False
    """Restored whole from the graph cache (:mod:`plugtrt.graph_cache`): not traced, lowered,
    partitioned or converted in this process."""

    def summary(self) -> str:
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in self.stage_seconds.items())
        restored = " (restored from the graph cache)" if self.restored else ""
        profiles = "".join(f"\n  {e.name}: {len(e.profiles)} optimization profile(s): "
                           f"{describe_profiles(e.profiles)}" for e in self.engines if e.profiles)
        return (f"{self.graph}{restored}: {len(self.engines)} engine(s), {sum(e.ops for e in self.engines)} "
                f"ops in TensorRT, {len(self.pytorch_ops)} in PyTorch; {stages}{profiles}")


MAX_REPORTS = 256
"""How many compile reports :func:`compile_reports` keeps: a long-running process that keeps
compiling (new shapes, new models) must not grow without bound; older reports are dropped."""

_lock = threading.Lock()
_history: collections.deque[CompileReport] = collections.deque(maxlen=MAX_REPORTS)
_count = 0


def record(report: CompileReport) -> None:
    global _count
    with _lock:
        _history.append(report)
        _count += 1


def compile_reports() -> list[CompileReport]:
    """The latest :data:`MAX_REPORTS` compilations of this process, oldest first (like dynamo's
    counters, for inspection)."""
    with _lock:
        return list(_history)


def compile_count() -> int:
    """How many compilations this process has recorded, including those no longer kept."""
    with _lock:
        return _count
