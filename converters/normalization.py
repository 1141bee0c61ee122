"""Built-in converters for inference batch normalization and layer normalization.

Batch norm: ``y = (x - mean) / sqrt(var + eps) * weight + bias`` per channel (dim 1), folded
into one scale and one shift. Layer norm: the same over the trailing ``normalized_shape``
dims, with the statistics computed from ``x``. Both compute in float32 (``ctx.upcast``)
whatever the engine's precision, then cast to the result's engine dtype. Only output 0 of
the tuple-returning ops may be used: the saved mean / rstd of training do not exist in
inference.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import FLOATS, aten, elementwise, is_dynamic, only_first_output_used, \
    reduce, static_trailing, unary, val
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec


def _batch_norm(ctx, node, x, weight, bias, mean, var, eps: float):
    result = val(node)[0] if isinstance(val(node), (tuple, list)) else val(node)
    x = ctx.upcast(x, node)
    f32 = torch.float32
    channels = tuple(x.shape)[1]
    shape = (1, channels) + (1,) * (len(x.shape) - 2)

    def channel(t):
        return ctx.reshape(ctx.upcast(t, node), shape, node)

    rstd = unary(ctx, elementwise(ctx, channel(var), float(eps), "SUM", node, f32, "var_eps"),
                 "SQRT", node)
    scale = unary(ctx, rstd, "RECIP", node)
    if weight is not None:
        scale = elementwise(ctx, scale, channel(weight), "PROD", node, f32, "scale")
    shift = elementwise(ctx, channel(mean), scale, "PROD", node, f32, "mean_scale")
    shift = elementwise(ctx, 0.0, shift, "SUB", node, f32, "neg_shift")
    if bias is not None:
        shift = elementwise(ctx, shift, channel(bias), "SUM", node, f32, "shift")
    out = elementwise(ctx, elementwise(ctx, x, scale, "PROD", node, f32, "scaled"), shift, "SUM",
                      node, f32, "batch_norm")
    return ctx.cast(out, ctx.engine_dtype(result.dtype), node)


def _legit_no_training(ctx, node, args, kwargs):
    x, weight, bias, mean, var, _momentum, eps = args[:7]
    return (_batch_norm(ctx, node, x, weight, bias, mean, var, eps), None, None)


def _native_batch_norm(ctx, node, args, kwargs):
    x, weight, bias, mean, var, _training, _momentum, eps = args[:8]
    return (_batch_norm(ctx, node, x, weight, bias, mean, var, eps), None, None)


def _batch_norm_op(ctx, node, args, kwargs):
    x, weight, bias, mean, var, _training, _momentum, eps = args[:8]
    return _batch_norm(ctx, node, x, weight, bias, mean, var, eps)


def _layer_norm(ctx, node, args, kwargs):
    x, normalized_shape, weight, bias, eps = args[:5]
    result = val(node)[0]
    f32 = torch.float32
    x = ctx.upcast(x, node)
    dims = range(len(x.shape) - len(normalized_shape), len(x.shape))
    centred = elementwise(ctx, x, reduce(ctx, x, "AVG", dims, True, node, "mean"), "SUB", node, f32,
                          "centred")
    var = reduce(ctx, elementwise(ctx, centred, centred, "PROD", node, f32, "square"), "AVG", dims,
                 True, node, "var")
    std = unary(ctx, elementwise(ctx, var, float(eps), "SUM", node, f32, "var_eps"), "SQRT", node)
    out = elementwise(ctx, centred, std, "DIV", node, f32, "normalized")
    if weight is not None:
        out = elementwise(ctx, out, ctx.upcast(weight, node), "PROD", node, f32, "weight")
    if bias is not None:
        out = elementwise(ctx, out, ctx.upcast(bias, node), "SUM", node, f32, "bias")
    return (ctx.cast(out, ctx.engine_dtype(result.dtype), node), None, None)


def _layer_norm_supported(node: torch.fx.Node, settings) -> bool:
    if len(node.args) < 5 or node.kwargs or not only_first_output_used(node):
        return False
    x = val(node.args[0])
    return (isinstance(x, torch.Tensor) and x.dtype in FLOATS and 1 <= len(node.args[1]) <= x.dim()
            and static_trailing(node, len(node.args[1])) and (is_dynamic(x.shape) or x.numel() > 0))


def _supported(training_index: int | None, tuple_result: bool):
    def is_supported(node: torch.fx.Node, settings) -> bool:
        args = node.args
        if len(args) < 7 or node.kwargs:
            return False
        if training_index is not None and args[training_index] is not False:
            return False
        if tuple_result and not only_first_output_used(node):
            return False
        x = val(args[0])
        if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.dtype not in FLOATS:
            return False
        stats = [val(a) for a in (args[3], args[4])]  # running mean and var are required
        if not all(isinstance(s, torch.Tensor) and s.dtype in FLOATS for s in stats):
            return False
        return isinstance(x.shape[1], int) and (is_dynamic(x.shape) or x.numel() > 0)
    return is_supported


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    yield ConverterSpec(name="builtin._native_batch_norm_legit_no_training",
                        target=aten._native_batch_norm_legit_no_training.default,
                        convert=_legit_no_training, is_supported=_supported(None, True),
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.native_batch_norm", target=aten.native_batch_norm.default,
                        convert=_native_batch_norm, is_supported=_supported(5, True),
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.batch_norm", target=aten.batch_norm.default,
                        convert=_batch_norm_op, is_supported=_supported(5, False),
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.native_layer_norm", target=aten.native_layer_norm.default,
                        convert=_layer_norm, is_supported=_layer_norm_supported,
                        supports_dynamic_shapes=True)
