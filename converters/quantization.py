"""Built-in converters for explicit quantization: TensorRT's quantize (Q) and dequantize (DQ) layers.

Three forms that users' models produce arrive here, each as the Q/DQ layers the model placed:

- torch's fake quantization (``fake_quantize_per_tensor_affine``/``per_channel_affine`` and the
  ``_cachemask`` forms tracing turns them into): one Q followed by one DQ, float in and out;
- the ``quantized_decomposed`` ops of PT2E (torchao's ``convert_pt2e``): a Q to int8, a DQ from
  int8, per tensor (the scale a number or, in the ``.tensor`` overloads, a tensor) or per channel;
- ``plugtrt::quantize_fp8``/``dequantize_fp8``, which the ``fp8_cast`` lowering pass makes of
  the scaled cast to ``float8_e4m3fn`` and back;
- NVIDIA ModelOpt's ``tensorrt::quantize_op(x, amax, num_bits, exponent_bits, unsigned,
  narrow_range)``, registered only when ModelOpt defined the op before plugtrt loaded its
  plugins (``import modelopt.torch.quantization`` first). Its kernels compute
  ``clamp(rint(x * bound / amax), -bound (- 1 unless narrow), bound) * amax / bound`` for
  integers (``bound = 2**(num_bits - 1) - 1``) and ``fp8(clamp(x * 448 / amax)) * amax / 448``
  for FP8 (8 bits, 4 of exponent): a Q/DQ pair with scale ``amax / bound`` (``amax / 448``).

TensorRT quantizes symmetrically: its INT8 Q rounds half to even and saturates into
[-128, 127], with zero point 0. A fake quantization with a zero point ``z`` and range
[``lo``, ``hi``] computes ``clamp(round(x / s), lo - z, hi - z) * s``, which is a Q/DQ pair
whenever that window lies inside [-128, 127] (a narrower one is clipped before the Q). A Q or
DQ that hands its integers on (PT2E's) must have zero point 0, since its int8 values are the
model's; uint8 and wider windows are declined with that reason.

A constant input (a frozen weight) is quantized here in torch, with torch's own rounding, into
an int8 constant followed by a DQ: TensorRT stores the weight as int8 and the engine's size
shows it. ``constant_folding`` leaves these ops alone so that the weight reaches this converter
still quantized, not folded into float32.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import attrs
import torch

from plugtrt.conversion import (
    FLOATS,
    Declined,
    aten,
    constant_value,
    elementwise,
    is_tensor,
    only_first_output_used,
    val,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.quantization import FP8, FP8_MAX, INT8_RANGE, quantized_decomposed_ops
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import to_trt_dtype

qd = quantized_decomposed_ops()
plugtrt_ops = torch.ops.plugtrt


@attrs.frozen(kw_only=True)
class _Form:
    """Where an op keeps its quantization parameters, and what it computes."""

    kind: str
    """``fake`` (float -> Q -> DQ -> float), ``quantize`` (float -> int8/fp8) or ``dequantize``."""
    scale: int
    zero: int | None = None
    axis: int | None = None
    """Position of the axis argument (per-channel ops); None: per tensor."""
    low: int | None = None
    enabled: int | None = None
    """Position of the ``fake_quant_enabled`` flag tensor."""
    dtype: int | None = None
    """Position of the quantized dtype argument; None: int8 (fake quantization) or FP8."""
    fp8: bool = False
    modelopt: bool = False
    """``tensorrt::quantize_op``: scale and window come from ``amax`` and the bit counts."""
    tuple_result: bool = False
    """``_cachemask`` forms return ``(output, mask)``; only the output may be read."""

    @property
    def constant_args(self) -> frozenset[int]:
        return frozenset({0, self.scale} | ({self.zero} if self.zero is not None else set())
                         | ({self.enabled} if self.enabled is not None else set()))


_FAKE_PER_TENSOR = _Form(kind="fake", scale=1, zero=2, low=3)
_FAKE_PER_CHANNEL = _Form(kind="fake", scale=1, zero=2, axis=3, low=4)
_FORMS = {
    aten.fake_quantize_per_tensor_affine.default: ("fake_quantize_per_tensor", _FAKE_PER_TENSOR),
    aten.fake_quantize_per_tensor_affine.tensor_qparams: (
        "fake_quantize_per_tensor_tensor_qparams", _FAKE_PER_TENSOR),
    aten.fake_quantize_per_tensor_affine_cachemask.default: (
        "fake_quantize_per_tensor_cachemask", attrs.evolve(_FAKE_PER_TENSOR, tuple_result=True)),
    aten._fake_quantize_per_tensor_affine_cachemask_tensor_qparams.default: (
        "fake_quantize_per_tensor_cachemask_tensor_qparams",
        _Form(kind="fake", scale=1, zero=2, enabled=3, low=4, tuple_result=True)),
    aten.fake_quantize_per_channel_affine.default: ("fake_quantize_per_channel", _FAKE_PER_CHANNEL),
    aten.fake_quantize_per_channel_affine_cachemask.default: (
        "fake_quantize_per_channel_cachemask", attrs.evolve(_FAKE_PER_CHANNEL, tuple_result=True)),
    qd.quantize_per_tensor.default: ("quantize_per_tensor", _Form(kind="quantize", scale=1, zero=2, low=3, dtype=5)),
    qd.quantize_per_tensor.tensor: ("quantize_per_tensor_tensor",
                                    _Form(kind="quantize", scale=1, zero=2, low=3, dtype=5)),
    qd.dequantize_per_tensor.default: ("dequantize_per_tensor",
                                       _Form(kind="dequantize", scale=1, zero=2, low=3, dtype=5)),
    qd.dequantize_per_tensor.tensor: ("dequantize_per_tensor_tensor",
                                      _Form(kind="dequantize", scale=1, zero=2, low=3, dtype=5)),
    qd.quantize_per_channel.default: ("quantize_per_channel",
                                      _Form(kind="quantize", scale=1, zero=2, axis=3, low=4, dtype=6)),
    qd.dequantize_per_channel.default: ("dequantize_per_channel",
                                        _Form(kind="dequantize", scale=1, zero=2, axis=3, low=4, dtype=6)),
    plugtrt_ops.quantize_fp8.default: ("quantize_fp8", _Form(kind="quantize", scale=1, fp8=True)),
    plugtrt_ops.dequantize_fp8.default: ("dequantize_fp8", _Form(kind="dequantize", scale=1, fp8=True)),
}


_MODELOPT = _Form(kind="fake", scale=1, modelopt=True)


def _forms() -> dict:
    """``_FORMS``, plus ModelOpt's op when ModelOpt has defined it in this process."""
    namespace = torch.ops.tensorrt
    if not hasattr(namespace, "quantize_op"):
        return _FORMS
    return {**_FORMS, namespace.quantize_op.default: ("modelopt_quantize_op", _MODELOPT)}


def _form(node: torch.fx.Node) -> _Form:
    return _forms()[node.target][1]


# -- reading the parameters from the node (validators) or the converter's arguments ------------

def _number_or_constant(value):
    """A python number, or the tensor of a constant node, as a float64 tensor; None when the
    value is computed in the graph (known only when the engine runs)."""
    if isinstance(value, torch.fx.Node):
        value = constant_value(value)
        return None if value is None else value.detach().double()
    if isinstance(value, torch.Tensor):
        return value.detach().double()
    return torch.tensor(float(value), dtype=torch.float64)


def _window(node: torch.fx.Node, form: _Form) -> tuple[int, int]:
    return int(node.args[form.low]), int(node.args[form.low + 1])


def _check(node: torch.fx.Node, settings) -> bool | Declined:
    """Symmetric int8 (zero point 0; a fake quantization's window inside [-128, 127]) or FP8 e4m3,
    constant scales per tensor or per static axis; others declined with the reason.

    Only what TensorRT's Q/DQ layers compute exactly is accepted."""
    form = _form(node)
    x, out = val(node.args[0]), val(node)
    out = out[0] if form.tuple_result else out
    if form.tuple_result and not only_first_output_used(node):
        return Declined("the fake-quantization mask (the second output) is read; TensorRT makes none")
    floats = FLOATS | ({torch.float64} if getattr(settings, "truncate_long_and_double", False) else set())
    float_side = x if form.kind != "dequantize" else out
    if not isinstance(float_side, torch.Tensor) or float_side.dtype not in floats or float_side.numel() == 0:
        return Declined("the float side must be a non-empty float16, bfloat16 or float32 tensor")
    if form.fp8:
        return True
    if form.modelopt:
        return _check_modelopt(node)
    qdtype = node.args[form.dtype] if form.dtype is not None else torch.int8
    if qdtype != torch.int8:
        return Declined(f"quantized dtype {qdtype}: TensorRT's quantize layers take int8 (and FP8 "
                        "through the scaled-cast form); use a symmetric int8 quantization config")
    scale = _number_or_constant(node.args[form.scale])
    if scale is not None and not bool((scale > 0).all()):
        return Declined("a scale that is not positive")
    if form.axis is not None and (scale is None or scale.dim() != 1):
        return Declined("a per-channel scale must be a constant 1-d tensor")
    if form.axis is not None and not isinstance(x.shape[node.args[form.axis]], int):
        return Declined("the channel axis has a symbolic size (TensorRT needs it at build time)")
    if form.enabled is not None and _number_or_constant(node.args[form.enabled]) is None:
        return Declined("fake_quant_enabled is computed in the graph; it must be a constant")
    zero = _number_or_constant(node.args[form.zero]) if node.args[form.zero] is not None else torch.zeros(())
    if zero is None:
        return Declined("the zero point is computed in the graph; it must be a constant")
    low, high = _window(node, form)
    if scale is None and form.kind != "dequantize" and (int(low - zero.min()), int(high - zero.max())) != INT8_RANGE:
        return Declined(f"a computed scale with the range [{low}, {high}] narrower than int8's: the "
                        "window to clip to would be known only when the engine runs")
    if form.kind == "fake":
        if not (INT8_RANGE[0] <= low - zero.min() and high - zero.max() <= INT8_RANGE[1]):
            return Declined(f"range [{low}, {high}] with zero point(s) {zero.unique().tolist()[:4]} "
                            "quantizes outside TensorRT's int8 window [-128, 127] around zero")
        return True
    if bool((zero != 0).any()):
        return Declined("a non-zero zero point: TensorRT quantizes symmetrically (zero point 0); use a "
                        "symmetric quantization config")
    return True


def _modelopt_args(node_or_args) -> tuple:
    """``(amax, num_bits, exponent_bits, unsigned, narrow_range)`` of a ``quantize_op``."""
    args = node_or_args.args if isinstance(node_or_args, torch.fx.Node) else node_or_args
    return tuple(args[1:6])


def _check_modelopt(node: torch.fx.Node) -> bool | Declined:
    amax, bits, exponent, unsigned, _ = _modelopt_args(node)
    amax = _number_or_constant(amax)
    if amax is None:
        return Declined("amax is computed in the graph; TensorRT's scale here must be a constant")
    if bool((amax < 2.0**-24).any()):
        return Declined("an amax of (nearly) zero, for which ModelOpt's kernels output zeros")
    if amax.numel() > 1 and amax.numel() not in amax.shape:
        return Declined("amax must be per tensor or along one axis")
    if amax.numel() > 1 and not isinstance(val(node.args[0]).shape[list(amax.shape).index(amax.numel())], int):
        return Declined("the channel axis has a symbolic size (TensorRT needs it at build time)")
    if (bits, exponent) == (8, 4):
        return True
    if exponent != 0 or unsigned or not 2 <= bits <= 8:
        return Declined(f"{bits}-bit {'unsigned ' if unsigned else ''}format with {exponent} exponent bits: "
                        "TensorRT's Q/DQ here take signed integers of up to 8 bits and FP8 e4m3")
    return True


def _modelopt_params(node: torch.fx.Node, args) -> tuple[_Params, bool]:
    """The Q/DQ parameters of a ``quantize_op`` and whether it is FP8."""
    amax, bits, exponent, _, narrow = _modelopt_args(args)
    amax = _number_or_constant(amax)
    axis = None
    if amax.numel() > 1:
        axis = list(amax.shape).index(amax.numel())
        amax = amax.reshape(-1)
    else:
        amax = amax.reshape(())
    if (bits, exponent) == (8, 4):
        return _Params(scale=amax / FP8_MAX, zero=torch.zeros(()), axis=axis, low=0, high=0), True
    bound = 2 ** (bits - 1) - 1
    return _Params(scale=amax / bound, zero=torch.zeros(()), axis=axis,
                   low=-bound - (0 if narrow else 1), high=bound), False


@attrs.frozen(kw_only=True)
class _Params:
    """One node's quantization parameters, converted: scale (tensor, or ITensor when computed),
    zero points (float64, broadcast to the scale), axis and the integer window."""

    scale: object
    zero: torch.Tensor
    axis: int | None
    low: int
    high: int


def _params(node: torch.fx.Node, form: _Form, args) -> _Params:
    scale = args[form.scale]
    scale = scale if is_tensor(scale) else _number_or_constant(scale)
    zero = args[form.zero] if form.zero is not None else None
    zero = torch.zeros(()) if zero is None else _number_or_constant(zero)
    axis = None
    if form.axis is not None:
        axis = args[form.axis] % val(node.args[0]).dim()
    low, high = (args[form.low], args[form.low + 1]) if form.low is not None else (0, 0)
    return _Params(scale=scale, zero=zero.double(), axis=axis, low=low, high=high)


def _along(value: torch.Tensor, axis: int | None, rank: int) -> torch.Tensor:
    """A per-channel vector shaped to broadcast along ``axis`` of a rank-``rank`` tensor."""
    if axis is None or value.dim() == 0:
        return value.reshape(())
    shape = [1] * rank
    shape[axis] = value.numel()
    return value.reshape(shape)


# -- building the layers ------------------------------------------------------------------------

def _scale_input(ctx, scale, dtype: torch.dtype, node: torch.fx.Node):
    """The scale as TensorRT's Q/DQ take it: 0-d per tensor, 1-d per channel, in ``dtype``."""
    if is_tensor(scale):
        count = math.prod(scale.shape)
        return ctx.reshape(ctx.cast(scale, dtype, node), () if count == 1 else (count,), node)
    flat = scale.reshape(()) if scale.numel() == 1 else scale.reshape(-1)
    return ctx.constant(flat.float(), node, dtype=dtype)


def _quantize(ctx, x, scale, axis: int | None, qdtype: torch.dtype, node: torch.fx.Node):
    layer = ctx.network.add_quantize(x, _scale_input(ctx, scale, ctx.dtype(x), node), to_trt_dtype(qdtype))
    if axis is not None:
        layer.axis = axis
    return ctx.finish(layer, node, suffix="quantize")


def _dequantize(ctx, q, scale, axis: int | None, dtype: torch.dtype, node: torch.fx.Node):
    layer = ctx.network.add_dequantize(q, _scale_input(ctx, scale, dtype, node), to_trt_dtype(dtype))
    if axis is not None:
        layer.axis = axis
    return ctx.finish(layer, node, suffix="dequantize")


def _clip_to_window(ctx, x, p: _Params, node: torch.fx.Node):
    """``x`` clipped to ``[s (lo - z), s (hi - z)]`` where that window is narrower than int8's, so
    that TensorRT's Q saturates where the model's range does."""
    low, high = p.low - p.zero, p.high - p.zero
    if bool((low == INT8_RANGE[0]).all() and (high == INT8_RANGE[1]).all()):
        return x
    dtype, rank = ctx.dtype(x), len(x.shape)
    scale = p.scale.double()
    x = elementwise(ctx, x, _along(scale * low, p.axis, rank).to(dtype), "MAX", node, dtype, "window_low")
    return elementwise(ctx, x, _along(scale * high, p.axis, rank).to(dtype), "MIN", node, dtype, "window_high")


def _quantize_constant(x: torch.Tensor, p: _Params) -> torch.Tensor:
    """A constant quantized in torch as torch's kernels do it (multiply by the float32 reciprocal
    of the scale, round half to even, add the zero point, clamp), centred on zero: int8."""
    rank = x.dim()
    inverse = _along(1.0 / p.scale.float(), p.axis, rank)
    zero = _along(p.zero, p.axis, rank)
    q = torch.round(x.float() * inverse).double() + zero
    return (q.clamp(p.low, p.high) - zero).to(torch.int8)


def _convert(ctx, node, args, kwargs):
    form = _form(node)
    x = args[0]
    result = _convert_form(ctx, node, form, x, args, kwargs)
    return (result, None) if form.tuple_result else result


def _convert_form(ctx, node, form: _Form, x, args, kwargs):
    out_val = val(node)[0] if form.tuple_result else val(node)
    if form.fp8:
        scale = args[1]
        if form.kind == "quantize":
            return _quantize(ctx, _float_input(ctx, x, node), scale, None, FP8, node)
        return _dequantize(ctx, x, scale, None, ctx.engine_dtype(out_val.dtype), node)
    if form.modelopt:
        p, fp8 = _modelopt_params(node, args)
        if fp8:
            q = _quantize(ctx, _float_input(ctx, x, node), p.scale, p.axis, FP8, node)
            return _dequantize(ctx, q, p.scale, p.axis, ctx.engine_dtype(out_val.dtype), node)
    else:
        p = _params(node, form, args)
    if form.enabled is not None and not bool(_number_or_constant(args[form.enabled]).item()):
        return x if is_tensor(x) else ctx.constant(x, node)
    if form.kind == "dequantize":
        q = x if is_tensor(x) else ctx.constant(x, node, dtype=torch.int8)
        return _dequantize(ctx, q, p.scale, p.axis, ctx.engine_dtype(out_val.dtype), node)
    if not is_tensor(x) and not is_tensor(p.scale):  # a weight: quantized here, stored as int8
        q = ctx.constant(_quantize_constant(x, p), node, dtype=torch.int8)
    else:
        q = _quantize(ctx, _clip_to_window(ctx, _float_input(ctx, x, node), p, node), p.scale, p.axis,
                      torch.int8, node)
    if form.kind == "quantize":
        return q
    return _dequantize(ctx, q, p.scale, p.axis, ctx.engine_dtype(out_val.dtype), node)


def _float_input(ctx, x, node: torch.fx.Node):
    """A Q's input (a tensor, or a constant weight) in the dtype it quantizes in."""
    dtype = _model_float(node)
    return ctx.cast(x, dtype, node) if is_tensor(x) else ctx.constant(x, node, dtype=dtype)


def _model_float(node: torch.fx.Node) -> torch.dtype:
    """The dtype a Q quantizes in: the model's own (float32 under ``precision=half`` too), so
    that its scale is not rounded to half and every value rounds to the integer eager gives;
    float64 (``truncate_long_and_double``) as float32."""
    dtype = val(node.args[0]).dtype
    return torch.float32 if dtype == torch.float64 else dtype


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    for target, (name, form) in _forms().items():
        # torch traces fake quantization with static sizes only (no meta kernel): declaring
        # dynamic support for it would promise what no graph can ask for
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_convert, is_supported=_check,
                            constant_args=form.constant_args,
                            supports_dynamic_shapes=target.namespace != "aten")
