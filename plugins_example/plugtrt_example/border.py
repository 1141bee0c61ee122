"""Converter for the custom op ``plugtrt_example::zero_border``, and the reference runtime's
evaluator for the TensorRT layer it emits.

The converter keeps the interior with a slice and puts the zero frame back with a PADDING
layer. The reference runtime has no PADDING evaluator of its own, so this package registers
one (at priority -1: a built-in evaluator, should one arrive, takes precedence); that is what
lets the converter be tested on a machine without a GPU.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

import plugtrt
from plugtrt.conversion import FLOATS, all_of, arg, slice_to, static

from plugtrt_example import ops  # noqa: F401  (defines the op the converter targets)


def convert_zero_border(ctx, node, args, kwargs):
    x, width = args[0], args[1]
    shape = tuple(x.shape)
    inner = tuple(shape[:-2]) + (shape[-2] - 2 * width, shape[-1] - 2 * width)
    start = (0,) * (len(shape) - 2) + (width, width)
    interior = slice_to(ctx, x, start, inner, (1,) * len(shape), node, "interior")
    layer = ctx.network.add_padding_nd(interior, (width, width), (width, width))
    return ctx.finish(layer, node)


def _fits(node, settings) -> bool:
    """The frame leaves an interior (TensorRT has no empty tensors) and x has rank >= 2."""
    x, width = node.args[0].meta["val"], arg(node.args, node.kwargs, 1, "width")
    return (x.dim() >= 2 and isinstance(width, int) and width >= 0
            and min(x.shape[-2], x.shape[-1]) > 2 * width)


def evaluate_padding(layer, inputs, context):
    """TensorRT's PADDING layer: zero padding of the last two dims (negative values crop)."""
    (x,) = inputs
    pre, post = layer.params["pre_padding_nd"], layer.params["post_padding_nd"]
    return [F.pad(x, (pre[1], post[1], pre[0], post[0]))]


@plugtrt.hookimpl
def plugtrt_converters() -> Iterator[plugtrt.ConverterSpec]:
    yield plugtrt.ConverterSpec(
        name="example.zero_border", target=torch.ops.plugtrt_example.zero_border.default, convert=convert_zero_border,
        is_supported=all_of(static(FLOATS), _fits))


@plugtrt.hookimpl
def plugtrt_layer_evaluators() -> Iterator[plugtrt.LayerEvaluatorSpec]:
    yield plugtrt.LayerEvaluatorSpec(name="example.padding", layer_type="PADDING",
                                     evaluate=evaluate_padding, priority=-1)

