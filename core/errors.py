"""Every exception plugtrt raises on purpose; each message says what failed and how to fix it."""
from __future__ import annotations


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
