"""Built-in converters for pointwise activations.

As TensorRT activation layers where one matches: relu, sigmoid, tanh, gelu (erf and tanh
forms), silu (x * sigmoid(x)), hardtanh (CLIP), leaky_relu, elu, softplus, hardsigmoid
(HARD_SIGMOID), selu (SELU), celu (ELU). Composed of elementwise layers: mish, glu,
log-sigmoid, prelu, rrelu in eval mode, softshrink, hardshrink and threshold. Activation layers
take floats only; an int ``relu`` is ``max(x, 0)``. Converting these ops whole keeps the core
from decomposing them.

The shrink and threshold ops keep torch's NaN behaviour: a NaN input stays NaN (the
comparisons are written so that NaN takes the pass-through branch). Log-sigmoid uses the
overflow-free ``min(x, 0) - log(1 + exp(-|x|))``, as eager does.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.fx

from plugtrt.conversion import (
    FLOATS, INTS, activation, all_of, arg, aten, elementwise, is_dynamic, norm_dim,
    only_first_output_used, out_dtype, slice_to, typed, unary, val, where,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec


_GELU = {"none": "GELU_ERF", "tanh": "GELU_TANH"}


_FLOAT_OK = typed(FLOATS)


def _activation(kind: str):
    def convert(ctx, node, args, kwargs):
        return activation(ctx, args[0], kind, node)
    return convert


def _relu(ctx, node, args, kwargs):
    if out_dtype(ctx, node) in FLOATS:
        return activation(ctx, args[0], "RELU", node)
    return elementwise(ctx, args[0], 0, "MAX", node, out_dtype(ctx, node), suffix="relu")


def _gelu(ctx, node, args, kwargs):
    return activation(ctx, args[0], _GELU[arg(args, kwargs, 1, "approximate", "none")], node)


def _gelu_supported(node, settings) -> bool:
    approximate = node.kwargs.get("approximate", node.args[1] if len(node.args) > 1 else "none")
    return approximate in _GELU and _FLOAT_OK(node, settings)


def _silu(ctx, node, args, kwargs):
    x = args[0]
    return elementwise(ctx, x, activation(ctx, x, "SIGMOID", node), "PROD", node, out_dtype(ctx, node))


def _hardtanh(ctx, node, args, kwargs):
    low, high = arg(args, kwargs, 1, "min_val", -1.0), arg(args, kwargs, 2, "max_val", 1.0)
    return activation(ctx, args[0], "CLIP", node, float(low), float(high))


def _hardtanh_supported(node, settings) -> bool:
    low = node.args[1] if len(node.args) > 1 else node.kwargs.get("min_val", -1.0)
    high = node.args[2] if len(node.args) > 2 else node.kwargs.get("max_val", 1.0)
    return low <= high and _FLOAT_OK(node, settings)


def _leaky_relu(ctx, node, args, kwargs):
    return activation(ctx, args[0], "LEAKY_RELU", node,
                      float(arg(args, kwargs, 1, "negative_slope", 0.01)))


def _elu(ctx, node, args, kwargs):
    return activation(ctx, args[0], "ELU", node, float(arg(args, kwargs, 1, "alpha", 1.0)))


def _elu_supported(node, settings) -> bool:
    scale = node.args[2] if len(node.args) > 2 else node.kwargs.get("scale", 1)
    input_scale = node.args[3] if len(node.args) > 3 else node.kwargs.get("input_scale", 1)
    return scale == 1 and input_scale == 1 and _FLOAT_OK(node, settings)


def _softplus(ctx, node, args, kwargs):
    beta = float(arg(args, kwargs, 1, "beta", 1.0))
    return activation(ctx, args[0], "SOFTPLUS", node, 1.0 / beta, beta)


def _softplus_supported(node, settings) -> bool:
    """TensorRT has no threshold: beyond it torch returns x, which equals softplus to within
    float32 rounding only for thresholds of about 15 and up (the default is 20)."""
    beta = node.args[1] if len(node.args) > 1 else node.kwargs.get("beta", 1.0)
    threshold = node.args[2] if len(node.args) > 2 else node.kwargs.get("threshold", 20.0)
    return beta > 0 and threshold >= 15 and _FLOAT_OK(node, settings)


_SELU_ALPHA = 1.6732632423543772848170429916717


_SELU_SCALE = 1.0507009873554804934193349852946


def _at_most(ctx, x, bound, node, dtype):
    """``x <= bound`` (false for NaN)."""
    return elementwise(ctx, elementwise(ctx, x, bound, "LESS", node, dtype),
                       elementwise(ctx, x, bound, "EQUAL", node, dtype), "OR", node, torch.bool)


# -- hard* and smooth activations ----------------------------------------------------------------
def _hardsigmoid(ctx, node, args, kwargs):
    return activation(ctx, args[0], "HARD_SIGMOID", node, 1.0 / 6.0, 0.5)


def _hardswish(ctx, node, args, kwargs):
    gate = activation(ctx, args[0], "HARD_SIGMOID", node, 1.0 / 6.0, 0.5)
    return elementwise(ctx, args[0], gate, "PROD", node, out_dtype(ctx, node), suffix="hardswish")


def _mish(ctx, node, args, kwargs):
    soft = activation(ctx, args[0], "SOFTPLUS", node, 1.0, 1.0)
    return elementwise(ctx, args[0], activation(ctx, soft, "TANH", node), "PROD", node,
                       out_dtype(ctx, node), suffix="mish")


def _selu(ctx, node, args, kwargs):
    return activation(ctx, args[0], "SELU", node, _SELU_ALPHA, _SELU_SCALE)


def _celu(ctx, node, args, kwargs):
    alpha = float(arg(args, kwargs, 1, "alpha", 1.0))
    if alpha == 1.0:
        return activation(ctx, args[0], "ELU", node, 1.0)
    dtype = out_dtype(ctx, node)
    # celu(x, a) = a * elu(x / a)
    scaled = elementwise(ctx, args[0], alpha, "DIV", node, dtype, suffix="inner")
    return elementwise(ctx, activation(ctx, scaled, "ELU", node, 1.0), alpha, "PROD", node, dtype,
                       suffix="outer")


def _celu_supported(node, settings) -> bool:
    alpha = arg(node.args, node.kwargs, 1, "alpha", 1.0)
    return isinstance(alpha, (int, float)) and alpha != 0 and _FLOAT_OK(node, settings)


def _glu(ctx, node, args, kwargs):
    x = args[0]
    rank = len(x.shape)
    dim = norm_dim(arg(args, kwargs, 1, "dim", -1), rank)
    sizes = list(val(node).shape)
    half = sizes[dim]
    starts = [0] * rank
    first = slice_to(ctx, x, starts, sizes, [1] * rank, node, "first")
    starts[dim] = half
    second = slice_to(ctx, x, starts, sizes, [1] * rank, node, "second")
    return elementwise(ctx, first, activation(ctx, second, "SIGMOID", node), "PROD", node,
                       out_dtype(ctx, node), suffix="glu")


def _glu_supported(node, settings) -> bool:
    """The split dim must be static (its half is the slice start); other dims may be dynamic."""
    x = val(node.args[0])
    if not isinstance(x, torch.Tensor) or x.dim() == 0:
        return False
    size = x.shape[norm_dim(arg(node.args, node.kwargs, 1, "dim", -1), x.dim())]
    return not is_dynamic([size]) and size % 2 == 0 and _FLOAT_OK(node, settings)


def _log_sigmoid_forward(ctx, node, args, kwargs):
    x = args[0]
    dtype = out_dtype(ctx, node, 0)
    negative_part = elementwise(ctx, x, 0.0, "MIN", node, dtype, suffix="negative_part")
    decay = unary(ctx, unary(ctx, unary(ctx, x, "ABS", node), "NEG", node), "EXP", node)
    log_term = unary(ctx, elementwise(ctx, decay, 1.0, "SUM", node, dtype), "LOG", node)
    return elementwise(ctx, negative_part, log_term, "SUB", node, dtype, suffix="log_sigmoid"), None


_LOG_SIGMOID_OK = all_of(lambda node, settings: only_first_output_used(node),
                         typed(FLOATS))


# -- prelu, rrelu --------------------------------------------------------------------------------
def _prelu_kernel(ctx, node, args, kwargs):
    x, weight = args[0], args[1]
    dtype = out_dtype(ctx, node)
    slope = ctx.operand(weight, dtype, len(x.shape), node)
    return ctx.finish(ctx.network.add_parametric_relu(x, slope), node)


def _prelu(ctx, node, args, kwargs):
    """``prelu``: a weight of C > 1 elements scales dim 1 (channels), as eager reshapes it."""
    x, weight = args[0], args[1]
    rank = len(x.shape)
    count = val(node.args[1]).numel()
    if count > 1 and rank >= 2:
        shape = (count,) + (1,) * (rank - 2)
        weight = weight.reshape(shape) if isinstance(weight, torch.Tensor) else ctx.reshape(
            weight, shape, node)
    return _prelu_kernel(ctx, node, (x, weight), kwargs)


def _prelu_supported(node, settings) -> bool:
    """The slope broadcasts into the input's rank (a 0-d input with a 1-element weight would
    come out 1-d from TensorRT) and has a static shape."""
    x, weight = val(node.args[0]), val(node.args[1])
    return (isinstance(x, torch.Tensor) and isinstance(weight, torch.Tensor)
            and 1 <= x.dim() and weight.dim() <= x.dim() and not is_dynamic(weight.shape)
            and _FLOAT_OK(node, settings))


def _rrelu_eval(ctx, node, args, kwargs):
    lower, upper = arg(args, kwargs, 2, "lower", 1.0 / 8), arg(args, kwargs, 3, "upper", 1.0 / 3)
    out = activation(ctx, args[0], "LEAKY_RELU", node, (float(lower) + float(upper)) / 2)
    return (out, None) if node.target is aten.rrelu_with_noise_functional.default else out


def _rrelu_eval_supported(node, settings) -> bool:
    """Inference only: with ``training=False`` the slope is the mean of the bounds and the
    noise is not touched."""
    if arg(node.args, node.kwargs, 4, "training", False):
        return False
    if node.target is aten.rrelu_with_noise_functional.default and not only_first_output_used(node):
        return False
    result = val(node)
    result = result[0] if isinstance(result, (tuple, list)) else result
    x = val(node.args[0])
    return (isinstance(x, torch.Tensor) and x.dtype in FLOATS and result.dtype == x.dtype
            and (is_dynamic(x.shape) or x.numel() > 0))


# -- shrink and threshold ------------------------------------------------------------------------
def _softshrink(ctx, node, args, kwargs):
    x = args[0]
    dtype = out_dtype(ctx, node)
    lambd = float(arg(args, kwargs, 1, "lambd", 0.5))
    # eager: x > l ? x - l : (x < -l ? x + l : x * 0)  (NaN * 0 keeps NaN)
    inner = where(ctx, elementwise(ctx, x, -lambd, "LESS", node, dtype),
                    elementwise(ctx, x, lambd, "SUM", node, dtype), elementwise(
                        ctx, x, 0.0, "PROD", node, dtype, suffix="zero"), node, dtype, "below")
    return where(ctx, elementwise(ctx, x, lambd, "GREATER", node, dtype),
                   elementwise(ctx, x, lambd, "SUB", node, dtype), inner, node, dtype, "above")


def _softshrink_supported(node, settings) -> bool:
    lambd = arg(node.args, node.kwargs, 1, "lambd", 0.5)
    return isinstance(lambd, (int, float)) and lambd >= 0 and _FLOAT_OK(node, settings)


def _hardshrink(ctx, node, args, kwargs):
    x = args[0]
    dtype = out_dtype(ctx, node)
    lambd = float(arg(args, kwargs, 1, "lambd", 0.5))
    inside = _at_most(ctx, unary(ctx, x, "ABS", node), lambd, node, dtype)
    return where(ctx, inside, 0.0, x, node, dtype, "hardshrink")


def _threshold(ctx, node, args, kwargs):
    x = args[0]
    dtype = out_dtype(ctx, node)
    threshold, value = args[1], args[2]
    return where(ctx, _at_most(ctx, x, threshold, node, dtype), value, x, node, dtype, "threshold")


def _threshold_supported(node, settings) -> bool:
    """Scalar threshold and value; whole numbers for an integer input (a fraction would be
    rounded by the cast to the input's type before the comparison)."""
    bounds = node.args[1:3]
    if any(isinstance(a, torch.fx.Node) for a in bounds) or len(bounds) != 2:
        return False
    value = val(node)
    if isinstance(value, torch.Tensor) and value.dtype not in FLOATS and not all(
            isinstance(b, int) for b in bounds):
        return False
    return typed(FLOATS | {torch.int32, torch.int64})(node, settings)


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    def spec(name: str, target: Any, convert: Any, ok: Any = _FLOAT_OK, **extra) -> ConverterSpec:
        return ConverterSpec(name=f"builtin.{name}", target=target, convert=convert,
                             is_supported=ok, supports_dynamic_shapes=True, **extra)

    yield spec("relu", aten.relu.default, _relu, typed(FLOATS | INTS))
    yield spec("sigmoid", aten.sigmoid.default, _activation("SIGMOID"))
    yield spec("tanh", aten.tanh.default, _activation("TANH"))
    yield spec("gelu", aten.gelu.default, _gelu, _gelu_supported)
    yield spec("silu", aten.silu.default, _silu)
    yield spec("hardtanh", aten.hardtanh.default, _hardtanh, _hardtanh_supported)
    yield spec("leaky_relu", aten.leaky_relu.default, _leaky_relu)
    yield spec("elu", aten.elu.default, _elu, _elu_supported)
    yield spec("softplus", aten.softplus.default, _softplus, _softplus_supported)
    yield spec("hardsigmoid", aten.hardsigmoid.default, _hardsigmoid)
    yield spec("hardswish", aten.hardswish.default, _hardswish)
    yield spec("mish", aten.mish.default, _mish)
    yield spec("selu", aten.selu.default, _selu)
    yield spec("celu", aten.celu.default, _celu, _celu_supported)
    yield spec("glu", aten.glu.default, _glu, _glu_supported)
    yield spec("log_sigmoid_forward", aten.log_sigmoid_forward.default, _log_sigmoid_forward,
               _LOG_SIGMOID_OK)
    yield spec("_prelu_kernel", aten._prelu_kernel.default, _prelu_kernel, _prelu_supported,
               constant_args=frozenset({1}))
    yield spec("prelu", aten.prelu.default, _prelu, _prelu_supported, constant_args=frozenset({1}))
    yield spec("rrelu_with_noise", aten.rrelu_with_noise.default, _rrelu_eval,
               _rrelu_eval_supported)
    yield spec("rrelu_with_noise_functional", aten.rrelu_with_noise_functional.default,
               _rrelu_eval, _rrelu_eval_supported)
    yield spec("softshrink", aten.softshrink.default, _softshrink, _softshrink_supported)
    yield spec("hardshrink", aten.hardshrink.default, _hardshrink, _softshrink_supported)
    yield spec("threshold", aten.threshold.default, _threshold, _threshold_supported)
