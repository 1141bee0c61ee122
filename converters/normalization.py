"""Built-in converters for inference batch normalization and layer normalization.

Batch norm: ``y = (x - mean) / sqrt(var + eps) * weight + bias`` per channel (dim 1). With
frozen statistics (the usual case; most batch norms are folded into the convolution before
them by the ``builtin.fold_batch_norm`` lowering pass) the per-channel scale and shift are
computed once, in float64 in torch, and applied by one scale layer; statistics computed in
the graph are combined at run time. Layer norm is TensorRT's normalization layer over the
trailing ``normalized_shape`` dims. Both compute in float32 (``ctx.upcast``) whatever the
engine's precision, then cast to the result's engine dtype. Only output 0 of the
tuple-returning ops may be used: the saved mean / rstd of training do not exist in inference.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import (
    FLOATS, aten, axes_mask, batch_norm_scale_shift, elementwise, is_dynamic,
    only_first_output_used, static_shapes, unary, val,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt


def _batch_norm(ctx, node, x, weight, bias, mean, var, eps: float):
    result = val(node)[0] if isinstance(val(node), (tuple, list)) else val(node)
    x = ctx.upcast(x, node)
    stats = (weight, bias, mean, var)
    if all(s is None or isinstance(s, torch.Tensor) for s in stats):
        out = _folded_batch_norm(ctx, node, x, weight, bias, mean, var, eps)
    else:
        out = _batch_norm_at_run_time(ctx, node, x, weight, bias, mean, var, eps)
    return ctx.cast(out, ctx.engine_dtype(result.dtype), node)


def _folded_batch_norm(ctx, node, x, weight, bias, mean, var, eps: float):
    """Constant statistics: ``x * scale + shift`` with both computed now, in one scale layer
    (channel mode, float32 coefficients)."""
    scale, shift = (t.float() for t in batch_norm_scale_shift(weight, bias, mean, var, eps))
    rank = len(x.shape)
    if rank >= 3:  # TensorRT's scale layer needs a channel axis and at least one more dim
        layer = ctx.network.add_scale_nd(
            x, trt.ScaleMode.CHANNEL, ctx.weights(shift, torch.float32),
            ctx.weights(scale, torch.float32), trt.Weights(), 1)
        return ctx.finish(layer, node)
    shape = (1, scale.numel())
    f32 = torch.float32
    scaled = elementwise(ctx, x, scale.reshape(shape), "PROD", node, f32, "scaled")
    return elementwise(ctx, scaled, shift.reshape(shape), "SUM", node, f32, "batch_norm")


def _batch_norm_at_run_time(ctx, node, x, weight, bias, mean, var, eps: float):
    """Statistics that are graph values: the same arithmetic, as layers."""
    f32 = torch.float32
    shape = (1, tuple(x.shape)[1]) + (1,) * (len(x.shape) - 2)

    def channel(t):
        if isinstance(t, torch.Tensor):
            return t.reshape(shape)  # a constant among graph values: operand() emits it
        return ctx.reshape(ctx.upcast(t, node), shape, node)

    std = unary(ctx, elementwise(ctx, channel(var), float(eps), "SUM", node, f32, "var_eps"),
                "SQRT", node)
    scale = unary(ctx, std, "RECIP", node)
    if weight is not None:
        scale = elementwise(ctx, scale, channel(weight), "PROD", node, f32, "scale")
    shift = elementwise(ctx, channel(mean), scale, "PROD", node, f32, "mean_scale")
    shift = unary(ctx, shift, "NEG", node)
    if bias is not None:
        shift = elementwise(ctx, shift, channel(bias), "SUM", node, f32, "shift")
    return elementwise(ctx, elementwise(ctx, x, scale, "PROD", node, f32, "scaled"), shift,
                       "SUM", node, f32, "batch_norm")


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
    """TensorRT's normalization layer over the trailing dims, with the affine weight and bias
    (ones and zeros where absent) as float32 constants of the input's rank."""
    x, normalized_shape, weight, bias, eps = args[:5]
    result = val(node)[0]
    x = ctx.upcast(x, node)
    rank, trailing = len(x.shape), tuple(normalized_shape)
    lead = (1,) * (rank - len(trailing))

    def affine(t, fill: float):
        if t is None:
            t = torch.full(trailing, fill)
        if isinstance(t, torch.Tensor):
            return ctx.constant(t.reshape(lead + trailing), node, dtype=torch.float32)
        t = ctx.upcast(t, node)
        return ctx.reshape(t, lead + tuple(t.shape), node)

    axes = axes_mask(range(rank - len(trailing), rank), rank)
    layer = ctx.network.add_normalization(x, affine(weight, 1.0), affine(bias, 0.0), axes)
    layer.epsilon = float(eps)
    out = ctx.finish(layer, node)
    return (ctx.cast(out, ctx.engine_dtype(result.dtype), node), None, None)


def _floats(settings) -> frozenset:
    """Float dtypes taken: float64 too where truncate_long_and_double makes it float32."""
    return FLOATS | {torch.float64} if settings.truncate_long_and_double else FLOATS


def _layer_norm_supported(node: torch.fx.Node, settings) -> bool:
    if len(node.args) < 5 or node.kwargs or not only_first_output_used(node):
        return False
    x = val(node.args[0])
    return (isinstance(x, torch.Tensor) and x.dtype in _floats(settings) and 1 <= len(node.args[1]) <= x.dim()
            and static_shapes(node, last=len(node.args[1])) and (is_dynamic(x.shape) or x.numel() > 0))


def _supported(training_index: int | None, tuple_result: bool):
    def is_supported(node: torch.fx.Node, settings) -> bool:
        args = node.args
        if len(args) < 7 or node.kwargs:
            return False
        if training_index is not None and args[training_index] is not False:
            return False
        if tuple_result and not only_first_output_used(node):
            return False
        x, floats = val(args[0]), _floats(settings)
        if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.dtype not in floats:
            return False
        stats = [val(a) for a in (args[3], args[4])]  # running mean and var are required
        if not all(isinstance(s, torch.Tensor) and s.dtype in floats for s in stats):
            return False
        return isinstance(x.shape[1], int) and (is_dynamic(x.shape) or x.numel() > 0)
    return is_supported


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    yield ConverterSpec(name="builtin._native_batch_norm_legit_no_training",
                        target=aten._native_batch_norm_legit_no_training.default,
                        convert=_legit_no_training, is_supported=_supported(None, True),
                        constant_args={1, 2, 3, 4}, supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.native_batch_norm", target=aten.native_batch_norm.default,
                        convert=_native_batch_norm, is_supported=_supported(5, True),
                        constant_args={1, 2, 3, 4}, supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.batch_norm", target=aten.batch_norm.default,
                        convert=_batch_norm_op, is_supported=_supported(5, False),
                        constant_args={1, 2, 3, 4}, supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.native_layer_norm", target=aten.native_layer_norm.default,
                        convert=_layer_norm, is_supported=_layer_norm_supported,
                        constant_args={2, 3}, supports_dynamic_shapes=True)
