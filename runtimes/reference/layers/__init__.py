"""Layer implementations, one module per family; ``LAYER_FUNCTIONS`` maps a LayerType name to one.

Each function takes ``(layer, inputs, context)`` (inputs in TensorRT's order, None for an unset
optional input) and returns the outputs in order.
"""
from __future__ import annotations

from plugtrt.runtimes.reference.layers import (
    conv,
    elementwise,
    gather,
    misc,
    quantize,
    reduce,
    resize,
    shape,
)
from plugtrt.runtimes.reference.layers.common import LayerFunction


def _merge() -> dict[str, LayerFunction]:
    table: dict[str, LayerFunction] = {}
    for module in (conv, elementwise, gather, misc, quantize, reduce, resize, shape):
        clash = table.keys() & module.LAYERS.keys()
        if clash:
            raise RuntimeError(f"{module.__name__} redefines {sorted(clash)}")
        table.update(module.LAYERS)
    return table


LAYER_FUNCTIONS: dict[str, LayerFunction] = _merge()
