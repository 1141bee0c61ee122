"""Built-in converters for normalizations: batch norm (inference, and with the batch's own
statistics), layer norm, group norm and RMS norm.

- Inference batch norm: ``y = (x - mean) / sqrt(var + eps) * weight + bias`` per channel
  (dim 1). With frozen statistics (the usual case; most batch norms are folded into the
  convolution before them by the ``builtin.fold_batch_norm`` lowering pass, which shares
  :func:`batch_norm_scale_shift`) the per-channel scale and shift are computed once, in float64
  in torch, and applied by one scale layer; statistics computed in the graph are combined at
  run time.
- ``_native_batch_norm_legit.no_stats``: what ``instance_norm`` (and a batch norm with
  ``track_running_stats=False``) arrives as: statistics of the batch itself, over every axis but
  the channel axis 1: TensorRT's normalization layer over those axes.
- ``native_layer_norm``, and ``layer_norm`` as pre-dispatch tracers keep it: the normalization
  layer over the trailing ``normalized_shape`` dims.
- ``native_group_norm``: the input viewed as ``[N, groups, -1]``, the normalization layer over
  the last axis (a layer norm per group), viewed back, then the per-channel affine as
  elementwise product and sum. (TensorRT's own ``num_groups`` takes per-group scale and bias,
  not torch's per-channel ones.)
- ``rms_norm`` / ``_fused_rms_norm``: ``x * rsqrt(mean(x*x) + eps) * weight`` as reduce and
  elementwise layers (eps defaults to float32's machine epsilon, as torch's opmath type has it).

Every one computes in float32 (``ctx.upcast``) whatever the engine's precision, and casts to the
result's engine dtype. Only output 0 of the tuple-returning ops may be read: the saved mean /
rstd exist for a backward pass. Leading dims (the batch) may be dynamic; the dims a weight or a
group count depends on must be static.
"""
from __future__ import annotations

from collections.abc import Iterator
import math

import torch
import torch.fx

from plugtrt.conversion import (
    FLOATS, arg, aten, axes_mask, elementwise, is_dynamic,
    only_first_output_used, reduce, static_shapes, unary, val,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt


def batch_norm_scale_shift(weight: torch.Tensor | None, bias: torch.Tensor | None,
                           mean: torch.Tensor, var: torch.Tensor, eps: float
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-channel ``(scale, shift)`` of inference batch norm, ``y = x * scale + shift``,
    in float64: a tiny or huge running variance loses nothing before the caller rounds once,
    to the dtype it needs (shared by the batch-norm converter here and the conv+bn folding pass,
    ``plugtrt.lowering.fold_batch_norm``)."""
    scale = torch.rsqrt(var.double() + eps)
    if weight is not None:
        scale = scale * weight.double()
    shift = -mean.double() * scale
    if bias is not None:
        shift = shift + bias.double()
    return scale, shift


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


_F32 = torch.float32


def _result(ctx, node, out):
    value = val(node)
    value = value[0] if isinstance(value, (tuple, list)) else value
    return ctx.cast(out, ctx.engine_dtype(value.dtype), node)


def _param(ctx, node, t, shape):
    """A weight or bias (constant tensor or ITensor) as a float32 operand of ``shape``."""
    if isinstance(t, torch.Tensor):
        return ctx.constant(t.reshape(shape), node, dtype=_F32)
    return ctx.reshape(ctx.upcast(t, node), shape, node)


def _normalize(ctx, node, x, axes, param_shape, weight=None, bias=None, eps=1e-5):
    """TensorRT's normalization layer over ``axes`` of the float32 ``x``, with ``weight`` and
    ``bias`` (ones and zeros where absent) of ``param_shape``."""
    scale = _param(ctx, node, torch.ones(param_shape) if weight is None else weight, param_shape)
    shift = _param(ctx, node, torch.zeros(param_shape) if bias is None else bias, param_shape)
    layer = ctx.network.add_normalization(x, scale, shift, axes_mask(axes, len(x.shape)))
    layer.epsilon = float(eps)
    return ctx.finish(layer, node)


# -- group norm -------------------------------------------------------------------------------
def _group_norm(ctx, node, args, kwargs):
    x, weight, bias, _n, _c, _hxw, groups, eps = args[:8]
    shape = tuple(val(node.args[0]).shape)
    channels = shape[1]
    inner = (channels // groups) * math.prod(shape[2:])
    x = ctx.upcast(x, node)
    grouped = ctx.reshape(x, (shape[0], groups, inner), node)
    out = ctx.reshape(_normalize(ctx, node, grouped, [2], (1, 1, 1), eps=eps), shape, node)
    channel = (1, channels) + (1,) * (len(shape) - 2)
    return (_result(ctx, node, _affine(ctx, node, out, weight, bias, channel)), None, None)


def _affine(ctx, node, out, weight, bias, channel: tuple):
    """``out * weight + bias`` per channel, in float32, each only where given."""
    if weight is not None:
        out = elementwise(ctx, out, _param(ctx, node, weight, channel), "PROD", node, _F32, "weight")
    if bias is not None:
        out = elementwise(ctx, out, _param(ctx, node, bias, channel), "SUM", node, _F32, "bias")
    return out


def _group_norm_supported(node: torch.fx.Node, settings) -> bool:
    x = val(node.args[0])
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.dtype not in _floats(settings):
        return False
    groups = node.args[6]
    return (only_first_output_used(node) and isinstance(groups, int) and groups >= 1
            and isinstance(x.shape[1], int) and x.shape[1] % groups == 0
            and (is_dynamic(x.shape) or x.numel() > 0))


# -- instance norm: batch norm with the batch's own statistics ---------------------------------
def _batch_stats_norm(ctx, node, args, kwargs):
    x, weight, bias, _training, _momentum, eps = args[:6]
    shape = tuple(val(node.args[0]).shape)
    rank = len(shape)
    axes = [0] + list(range(2, rank))
    channel = (1, shape[1]) + (1,) * (rank - 2)
    ones = (1,) * rank
    # a channel count that is symbolic (instance norm's N*C under a dynamic batch) cannot shape
    # a constant: normalise with unit parameters, then apply the affine elementwise
    out = _normalize(ctx, node, ctx.upcast(x, node), axes, ones, eps=eps)
    return (_result(ctx, node, _affine(ctx, node, out, weight, bias, channel)), None, None)


def _batch_stats_supported(node: torch.fx.Node, settings) -> bool:
    x = val(node.args[0])
    return (isinstance(x, torch.Tensor) and x.dim() >= 2 and x.dtype in _floats(settings)
            and only_first_output_used(node) and (is_dynamic(x.shape) or x.numel() > 0))


# -- RMS norm ---------------------------------------------------------------------------------
def _rms(ctx, node, x, normalized_shape, weight, eps):
    shape = tuple(val(node.args[0]).shape)
    rank, trailing = len(shape), tuple(normalized_shape)
    x = ctx.upcast(x, node)
    square = elementwise(ctx, x, x, "PROD", node, _F32, "square")
    mean = reduce(ctx, square, "AVG", range(rank - len(trailing), rank), True, node)
    eps = torch.finfo(torch.float32).eps if eps is None else float(eps)
    rstd = unary(ctx, elementwise(ctx, mean, eps, "SUM", node, _F32, "eps"), "SQRT", node)
    out = elementwise(ctx, x, rstd, "DIV", node, _F32, "rms")
    if weight is not None:
        lead = (1,) * (rank - len(trailing))
        out = elementwise(ctx, out, _param(ctx, node, weight, lead + trailing), "PROD", node,
                          _F32, "weight")
    return _result(ctx, node, out)


def _rms_norm(ctx, node, args, kwargs):
    return _rms(ctx, node, args[0], args[1], arg(args, kwargs, 2, "weight"),
                arg(args, kwargs, 3, "eps"))


def _fused_rms_norm(ctx, node, args, kwargs):
    return (_rms(ctx, node, args[0], args[1], arg(args, kwargs, 2, "weight"),
                 arg(args, kwargs, 3, "eps")), None)


def _trailing_supported(tuple_result: bool):
    """A float input whose normalized (trailing) dims are static; output 0 only when a tuple."""
    def check(node: torch.fx.Node, settings) -> bool:
        x, normalized = val(node.args[0]), node.args[1]
        if tuple_result and not only_first_output_used(node):
            return False
        return (isinstance(x, torch.Tensor) and x.dtype in _floats(settings)
                and 1 <= len(normalized) <= x.dim() and static_shapes(node, last=len(normalized))
                and (is_dynamic(x.shape) or x.numel() > 0))
    return check


# -- layer_norm (the composite op, kept whole by pre-dispatch tracers) --------------------------
def _layer_norm_op(ctx, node, args, kwargs):
    x, normalized = args[0], tuple(args[1])
    weight, bias = arg(args, kwargs, 2, "weight"), arg(args, kwargs, 3, "bias")
    eps = arg(args, kwargs, 4, "eps", 1e-5)
    rank = len(x.shape)
    axes = range(rank - len(normalized), rank)
    param = (1,) * (rank - len(normalized)) + normalized
    return _result(ctx, node, _normalize(ctx, node, ctx.upcast(x, node), axes, param, weight, bias,
                                         eps))


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
    yield ConverterSpec(name="builtin.native_group_norm", target=aten.native_group_norm.default,
                        convert=_group_norm, is_supported=_group_norm_supported,
                        constant_args={1, 2}, supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin._native_batch_norm_legit.no_stats",
                        target=aten._native_batch_norm_legit.no_stats, convert=_batch_stats_norm,
                        is_supported=_batch_stats_supported, constant_args={1, 2},
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.rms_norm", target=aten.rms_norm.default, convert=_rms_norm,
                        is_supported=_trailing_supported(False), constant_args={2},
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin._fused_rms_norm", target=aten._fused_rms_norm.default,
                        convert=_fused_rms_norm, is_supported=_trailing_supported(True),
                        constant_args={2}, supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.layer_norm", target=aten.layer_norm.default,
                        convert=_layer_norm_op, is_supported=_trailing_supported(False),
                        constant_args={2, 3}, supports_dynamic_shapes=True)
