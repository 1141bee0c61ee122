"""Every exception plugtrt raises on purpose; each message says what failed and how to fix it."""
from __future__ import annotations

import functools
import importlib.util
import os
import sys
import warnings
from pathlib import Path


class PlugtrtError(Exception):
    """Base class of plugtrt's own errors."""


class InvalidOptionError(PlugtrtError, ValueError):
    """An ``options`` key or value that ``CompilationSettings`` does not accept."""


class PluginLoadError(PlugtrtError):
    """A plugin failed to import, broke a hook contract, or yielded a bad record.

    ``plugins`` names the plugins at fault, so that the registry can skip third-party ones.
    """

    def __init__(self, message: str, plugins: tuple[str, ...] = ()):
        super().__init__(message)
        self.plugins = plugins


class PluginConflictError(PluginLoadError):
    """Two plugins registered the same name, or the same target at the same priority."""


class TensorRTUnavailableError(PlugtrtError, ImportError):
    """Neither full TensorRT nor TensorRT-RTX can be imported."""


class ConversionError(PlugtrtError):
    """A converter could not express an FX node as TensorRT layers."""


class EngineBuildError(PlugtrtError):
    """TensorRT's builder returned no engine for a network."""


class NetworkRejectedError(EngineBuildError):
    """TensorRT's builder refused this network, not the builder settings: a part of the network
    may still build, so the core bisects the block (see :mod:`plugtrt.bisection`)."""


class ReferenceMismatchError(PlugtrtError):
    """The reference runtime computed a shape or dtype that TensorRT did not infer."""


class UnsupportedLayerError(PlugtrtError, NotImplementedError):
    """The reference runtime met a layer type or parameter it cannot evaluate yet."""


@functools.cache
def _internal_folders() -> tuple[str, ...]:
    """plugtrt's own folders (the core and the built-in plugins, installed or editable), torch's
    and the standard library's (contextlib, functools): no user code lives in them. Found
    without importing torch, so that importing this module stays cheap."""
    core = Path(__file__).resolve().parent
    torch_spec = importlib.util.find_spec("torch")
    folders = [core, *(core.parent / d for d in ("converters", "lowering", "partitioners",
                                                 "runtimes", "stores")),
               Path(os.__file__).resolve().parent]
    if torch_spec is not None and torch_spec.origin:
        folders.append(Path(torch_spec.origin).resolve().parent)
    return tuple(str(folder) + os.sep for folder in folders)


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the user's line: the innermost frame outside plugtrt,
    its plugins and torch (the ``model(x)`` that compiled or called the graph), not the line of
    plugtrt that noticed. A fixed ``stacklevel`` cannot say that: how deep dynamo calls the
    backend differs between the first call, a recompile and a graph-cache restore."""
    internal = _internal_folders()
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(internal):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level if frame is not None else 2)
