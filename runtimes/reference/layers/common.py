"""What every layer module shares: the evaluation context and small parameter helpers."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs
import torch

from plugtrt.errors import UnsupportedLayerError
from plugtrt.network_snapshot import LayerSnapshot


@attrs.frozen(kw_only=True)
class Context:
    """Per-program state: the device, and the weights already moved to it (converted once)."""

    device: torch.device
    _weights: dict[tuple[int, str], torch.Tensor] = attrs.field(factory=dict, init=False)

    def weight(self, layer: LayerSnapshot, key: str, dtype: torch.dtype) -> torch.Tensor | None:
        """The layer's numpy weight ``key`` as a flat tensor of ``dtype``; None when empty."""
        cache_key = (layer.index, key)
        if cache_key not in self._weights:
            array = layer.weights.get(key)
            if array is None or array.size == 0:
                return None
            self._weights[cache_key] = torch.from_numpy(array.copy()).reshape(-1).to(
                device=self.device, dtype=dtype)
        return self._weights[cache_key]


LayerFunction = Callable[[LayerSnapshot, list, Context], list[torch.Tensor]]


def axes_from_mask(mask: int, rank: int) -> list[int]:
    """TensorRT's axes bitmask (bit i = axis i) as a list of axes."""
    return [axis for axis in range(rank) if mask >> axis & 1]


def to_ints(value: torch.Tensor | Sequence[int]) -> list[int]:
    """A shape tensor or a dims tuple as Python ints (shape tensors are host-side in TensorRT)."""
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.reshape(-1).tolist()]
    return [int(v) for v in value]


def param(layer: LayerSnapshot, name: str):
    """A parameter the layer must have; a clear error when the snapshot lacks it."""
    if name not in layer.params or layer.params[name] is None:
        raise UnsupportedLayerError(f"layer {layer.name!r} ({layer.type}): parameter {name!r} "
                                    "was not recorded (set through an input the runtime ignores?)")
    return layer.params[name]


def unsupported(layer: LayerSnapshot, what: str) -> UnsupportedLayerError:
    """The error for a parameter combination the reference runtime does not implement."""
    return UnsupportedLayerError(f"layer {layer.name!r} ({layer.type}): {what} is not supported "
                                 "by the reference runtime yet")


def out_dtype(layer: LayerSnapshot, index: int = 0) -> torch.dtype:
    """The dtype TensorRT inferred for output ``index``."""
    dtype = layer.outputs[index].dtype
    if isinstance(dtype, str):
        raise unsupported(layer, f"output type {dtype}")
    return dtype
