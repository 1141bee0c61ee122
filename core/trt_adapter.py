"""The one place that imports TensorRT: full ``tensorrt`` when installed, else ``tensorrt_rtx``.

Converters and runtimes use ``from plugtrt.trt_adapter import trt`` and only the API both
flavours share. The import is lazy so that loading plugins never needs TensorRT.
"""
from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import types

import torch

from plugtrt.errors import TensorRTUnavailableError

_FLAVOURS = ("tensorrt", "tensorrt_rtx")


@functools.cache
def load() -> types.ModuleType:
    """Import the TensorRT flavour this machine has, preferring full TensorRT."""
    failures = []
    for name in _FLAVOURS:
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            failures.append(f"{name}: {exc}")
    raise TensorRTUnavailableError(
        "plugtrt needs TensorRT to build engines, and neither flavour imports ("
        + "; ".join(failures)
        + "). Install one: `pip install 'plugtrt[tensorrt]'` on a datacenter GPU, "
        "or `pip install 'plugtrt[rtx]'` (TensorRT-RTX, which also builds on a CPU-only machine)."
    )


@functools.cache
def version() -> str:
    """``flavour==version`` of the TensorRT :func:`load` imports (``none`` where neither flavour
    is installed), from the distribution's metadata where it has one: a cache key needs it,
    and a compile restored from the cache, or one that builds no engine, need not import
    TensorRT at all."""
    for name in _FLAVOURS:
        try:
            if importlib.util.find_spec(name) is None:
                continue
        except ImportError:
            continue
        try:
            return f"{name}=={importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            return f"{name}=={getattr(module, '__version__', 'unknown')}"
    return "none"


def flavour() -> str:
    """``"tensorrt"`` or ``"tensorrt_rtx"``: the module ``load()`` returned."""
    return load().__name__


class _LazyTensorRT:
    """Module proxy: attribute access imports TensorRT on first use."""

    def __getattr__(self, name: str):
        return getattr(load(), name)

    def __repr__(self) -> str:
        return "<plugtrt.trt_adapter.trt (lazy TensorRT module)>"


trt = _LazyTensorRT()


@functools.cache
def _dtype_pairs() -> tuple[tuple[object, torch.dtype], ...]:
    dt = load().DataType
    pairs = [(dt.FLOAT, torch.float32), (dt.HALF, torch.float16), (dt.INT32, torch.int32),
             (dt.INT8, torch.int8), (dt.BOOL, torch.bool), (dt.UINT8, torch.uint8)]
    for trt_name, torch_dtype in [("BF16", torch.bfloat16), ("INT64", torch.int64),
                                  ("FP8", torch.float8_e4m3fn)]:
        if hasattr(dt, trt_name):
            pairs.append((getattr(dt, trt_name), torch_dtype))
    return tuple(pairs)


def to_torch_dtype(trt_dtype) -> torch.dtype:
    """The torch dtype of a TensorRT ``DataType``; raises naming the type when there is none."""
    for t, d in _dtype_pairs():
        if t == trt_dtype:
            return d
    raise TypeError(f"TensorRT data type {trt_dtype} has no torch equivalent")


def to_trt_dtype(torch_dtype: torch.dtype):
    """The TensorRT ``DataType`` of a torch dtype; raises naming the dtype when TensorRT has none."""
    for t, d in _dtype_pairs():
        if d == torch_dtype:
            return t
    raise TypeError(f"TensorRT has no data type for {torch_dtype}; "
                    "float64 needs truncate_long_and_double=True")
