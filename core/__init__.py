"""plugtrt: a TensorRT backend for ``torch.compile``, built as a pluggy plugin framework.

``torch.compile(model, backend="plugtrt", options={...})`` works without importing this
package (the backend is an entry point). Importing it gives plugin authors their API: the
records and ``hookimpl`` here, :mod:`plugtrt.conversion` for converters, :mod:`plugtrt.runtime`
for runtimes, :mod:`plugtrt.blocks` for partitioners and :mod:`plugtrt.testing` for tests.
"""
from __future__ import annotations

from plugtrt.conversion import ConversionContext
from plugtrt.errors import (
    ConversionError,
    EngineBuildError,
    InvalidOptionError,
    PluginConflictError,
    PluginLoadError,
    PlugtrtError,
)
from plugtrt.export import export, load, save
from plugtrt.hookspecs import hookimpl
from plugtrt.records import (
    CommandSpec,
    ConverterSpec,
    DecompositionSpec,
    LayerEvaluatorSpec,
    EngineStoreSpec,
    LoweringPassSpec,
    PartitionerSpec,
    RuntimeSpec,
)
from plugtrt.report import compile_count, compile_reports
from plugtrt.runtime import BoundarySpec, EngineArtifact, EngineModule
from plugtrt.settings import CompilationSettings
from plugtrt.weights import weights_changed

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
