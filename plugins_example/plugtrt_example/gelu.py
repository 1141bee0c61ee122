"""An override: this package's converter for ``aten.gelu`` replaces the built-in one, but
only where its validator accepts (the tanh approximation in float32); everywhere else the
built-in converter still runs.

It computes ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))`` with elementwise and
activation layers, the way a package might to match another framework's numerics bit for bit.
Its priority, 10, is what makes it win over the built-in's 0.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch

import plugtrt
from plugtrt.conversion import activation, all_of, arg, elementwise, static

_F32 = torch.float32


def convert_gelu_tanh(ctx, node, args, kwargs):
    x = args[0]
    cube = elementwise(ctx, elementwise(ctx, x, x, "PROD", node, _F32, "square"), x, "PROD", node,
                       _F32, "cube")
    inner = elementwise(ctx, x, elementwise(ctx, cube, 0.044715, "PROD", node, _F32, "cubic_term"),
                        "SUM", node, _F32, "inner")
    scaled = elementwise(ctx, inner, math.sqrt(2 / math.pi), "PROD", node, _F32, "scaled")
    gate = elementwise(ctx, activation(ctx, scaled, "TANH", node), 1.0, "SUM", node, _F32, "gate")
    half = elementwise(ctx, x, 0.5, "PROD", node, _F32, "half")
    return elementwise(ctx, half, gate, "PROD", node, _F32, "gelu")


def _tanh_approximation(node, settings) -> bool:
    return arg(node.args, node.kwargs, 1, "approximate", "none") == "tanh" and settings.precision == _F32


@plugtrt.hookimpl
def plugtrt_converters() -> Iterator[plugtrt.ConverterSpec]:
    yield plugtrt.ConverterSpec(name="example.gelu_tanh", target=torch.ops.aten.gelu.default,
                                convert=convert_gelu_tanh, priority=10,
                                is_supported=all_of(static({_F32}), _tanh_approximation))
