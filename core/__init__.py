"""plugtrt: a TensorRT backend for ``torch.compile``, built as a pluggy plugin framework.

``torch.compile(model, backend="plugtrt", options={...})`` works without importing this
package (the backend is an entry point). Importing it gives plugin authors their API: the
records and ``hookimpl`` here, :mod:`plugtrt.conversion` for converters, :mod:`plugtrt.runtime`
for runtimes, :mod:`plugtrt.blocks` for partitioners and :mod:`plugtrt.testing` for tests.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

# Each name is imported from its module on first use (PEP 562): ``import plugtrt`` and
# ``python -m plugtrt --help`` do not pay for torch until something needs it.
_LAZY = {
    "ConversionContext": "plugtrt.conversion",
    "ConversionError": "plugtrt.errors", "EngineBuildError": "plugtrt.errors",
    "InvalidOptionError": "plugtrt.errors", "PluginConflictError": "plugtrt.errors",
    "PluginLoadError": "plugtrt.errors", "PlugtrtError": "plugtrt.errors",
    "hookimpl": "plugtrt.hookspecs",
    "CommandSpec": "plugtrt.records", "ConverterSpec": "plugtrt.records",
    "DecompositionSpec": "plugtrt.records", "LayerEvaluatorSpec": "plugtrt.records",
    "EngineStoreSpec": "plugtrt.records", "LoweringPassSpec": "plugtrt.records",
    "PartitionerSpec": "plugtrt.records", "RuntimeSpec": "plugtrt.records",
    "compile_count": "plugtrt.report", "compile_reports": "plugtrt.report",
    "BoundarySpec": "plugtrt.runtime", "EngineArtifact": "plugtrt.runtime",
    "EngineModule": "plugtrt.runtime",
    "CompilationSettings": "plugtrt.settings",
    "weights_changed": "plugtrt.weights",
    "export": "plugtrt.exporting", "load": "plugtrt.exporting", "save": "plugtrt.exporting",
}

# Not lazy: importing plugtrt defines torch.ops.plugtrt.execute_engine, which torch.export.load
# looks up by name in a saved program (torch's own import is most of this line's cost).
import plugtrt.engine_op  # noqa: E402,F401

if TYPE_CHECKING:
    from plugtrt.conversion import ConversionContext
    from plugtrt.errors import (
        ConversionError, EngineBuildError, InvalidOptionError, PluginConflictError, PluginLoadError,
        PlugtrtError,
    )
    from plugtrt.hookspecs import hookimpl
    from plugtrt.records import (
        CommandSpec, ConverterSpec, DecompositionSpec, EngineStoreSpec, LayerEvaluatorSpec,
        LoweringPassSpec, PartitionerSpec, RuntimeSpec,
    )
    from plugtrt.report import compile_count, compile_reports
    from plugtrt.runtime import BoundarySpec, EngineArtifact, EngineModule
    from plugtrt.settings import CompilationSettings
    from plugtrt.weights import weights_changed
    from plugtrt.exporting import export, load, save


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:  # a submodule (plugtrt.engine_cache), as an eager import made them visible
        if importlib.util.find_spec(f"plugtrt.{name}") is None:
            raise AttributeError(f"module 'plugtrt' has no attribute {name!r}")
        return importlib.import_module(f"plugtrt.{name}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "BoundarySpec",
    "CommandSpec",
    "CompilationSettings",
    "ConversionContext",
    "ConversionError",
    "ConverterSpec",
    "DecompositionSpec",
    "EngineArtifact",
    "EngineBuildError",
    "EngineModule",
    "EngineStoreSpec",
    "InvalidOptionError",
    "LayerEvaluatorSpec",
    "LoweringPassSpec",
    "PartitionerSpec",
    "PluginConflictError",
    "PluginLoadError",
    "PlugtrtError",
    "RuntimeSpec",
    "compile_count",
    "compile_reports",
    "export",
    "hookimpl",
    "load",
    "save",
    "weights_changed",
]
