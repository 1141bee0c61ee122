"""Converter plugin for ``aten.erf``, which plugtrt's built-ins leave to PyTorch.

Installed, it is found through the ``plugtrt`` entry-point group; nothing imports it.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch

import plugtrt
from plugtrt.conversion import FLOATS, typed, unary


def convert_erf(ctx, node, args, kwargs):
    """TensorRT's ERF unary, on the input as it is (float types only)."""
    return unary(ctx, args[0], "ERF", node)


@plugtrt.hookimpl
def plugtrt_converters() -> Iterator[plugtrt.ConverterSpec]:
    yield plugtrt.ConverterSpec(name="example.erf", target=torch.ops.aten.erf.default,
                                convert=convert_erf, is_supported=typed(FLOATS),
                                supports_dynamic_shapes=True)
