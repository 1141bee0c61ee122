"""plugtrt: a TensorRT backend for ``torch.compile``, built as a pluggy plugin framework.

``torch.compile(model, backend="plugtrt", options={...})`` works without importing this
package (the backend is an entry point). Importing it gives plugin authors their API.
"""
from __future__ import annotations

from plugtrt.errors import (
    ConversionError,
    EngineBuildError,
    InvalidOptionError,
    PluginConflictError,
    PluginLoadError,
    PlugtrtError,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import (
    ConverterSpec,
    DecompositionSpec,
    EngineStoreSpec,
    LoweringPassSpec,
    PartitionerSpec,
    RuntimeSpec,
)
from plugtrt.report import compile_reports
from plugtrt.settings import CompilationSettings

__version__ = "0.1.0"

__all__ = [
    "CompilationSettings",
    "ConversionError",
    "ConverterSpec",
    "DecompositionSpec",
    "EngineBuildError",
    "EngineStoreSpec",
    "InvalidOptionError",
    "LoweringPassSpec",
    "PartitionerSpec",
    "PluginConflictError",
    "PluginLoadError",
    "PlugtrtError",
    "RuntimeSpec",
    "compile_reports",
    "hookimpl",
]
