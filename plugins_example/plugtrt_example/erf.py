"""Converter plugin for ``aten.erf``, which plugtrt's built-ins leave to PyTorch.

Installed, it is found through the ``plugtrt`` entry-point group; nothing imports it.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch

import plugtrt
from plugtrt.trt_adapter import trt

aten = torch.ops.aten
_FLOATS = (torch.float32, torch.float16, torch.bfloat16)


def convert_erf(ctx, node, args, kwargs):
    """TensorRT's ERF unary, on the input as it is (float types only)."""
    return ctx.finish(ctx.network.add_unary(args[0], trt.UnaryOperation.ERF), node)


def erf_supported(node, settings) -> bool:
    value = node.meta.get("val")
    return isinstance(value, torch.Tensor) and value.dtype in _FLOATS


@plugtrt.hookimpl
def plugtrt_converters() -> Iterator[plugtrt.ConverterSpec]:
    yield plugtrt.ConverterSpec(name="example.erf", target=aten.erf.default, convert=convert_erf,
                                is_supported=erf_supported, supports_dynamic_shapes=True)
