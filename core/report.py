"""What one compilation did: stage times, engines, ops left to PyTorch, fallbacks."""
from __future__ import annotations

import threading
from typing import Any

import attrs


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

    def summary(self) -> str:
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in self.stage_seconds.items())
        return (f"{self.graph}: {len(self.engines)} engine(s), {sum(e.ops for e in self.engines)} ops in "
                f"TensorRT, {len(self.pytorch_ops)} in PyTorch; {stages}")


_lock = threading.Lock()
_history: list[CompileReport] = []


def record(report: CompileReport) -> None:
    with _lock:
        _history.append(report)


def compile_reports() -> list[CompileReport]:
    """Every compilation of this process, oldest first (like dynamo's counters, for inspection)."""
    with _lock:
        return list(_history)
