"""Built-in converters for the pointwise binary and ternary math ops that ``elementwise`` does
not cover: ``atan2``, ``remainder``/``fmod``, bool ``bitwise_*`` and ``mul``, shifts by a
constant, ``logical_*``, ``hypot``, ``copysign``, tensor-bounded ``clamp``, the scalar forms of
``where``, ``lerp``, ``addcmul``/``addcdiv``, ``rsub``, ``xlogy``, ``fmax``/``fmin`` and
``true_divide``.

Dtypes follow torch: each converter computes in the engine dtype of the node's result (which
tracing derived with torch's promotion rules, python scalars included). Semantics that differ
between look-alikes are kept: ``remainder`` takes the divisor's sign, ``fmod`` the dividend's;
``fmax``/``fmin`` ignore a NaN operand where ``maximum`` propagates it; ``xlogy(0, y)`` is 0
unless ``y`` is NaN.

Known limits (the edge cases TensorRT's ops cannot tell apart cheaply): ``atan2`` of two
infinities is NaN (torch: a multiple of pi/4) and of a zero over ``-0.0`` is 0 (torch: pi);
float ``fmod``/``remainder`` compute ``a - trunc(a / b) * b`` in float32 (half inputs too,
where that is exact); for float32 inputs a quotient that rounds onto an integer can make the
result off by ``b``; an infinite divisor gives NaN (torch: ``a``).
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.fx

from plugtrt.conversion import (
    FLOATS, INTS, NUMERIC, all_of, arg, aten, elementwise, out_dtype, rank_of, typed, unary, val,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec

_ANY = NUMERIC | {torch.bool}
_BOOL = frozenset({torch.bool})
_OPERANDS = frozenset({0, 1})


def _has_tensor_input(node: torch.fx.Node, settings: Any) -> bool:
    return bool(node.all_input_nodes)


_ARITH_OK = all_of(_has_tensor_input, typed(NUMERIC, _ANY))
_FLOAT_OK = all_of(_has_tensor_input, typed(FLOATS, _ANY))


def _select(ctx, condition, a, b, node, dtype, suffix="select"):
    """``where(condition, a, b)`` in ``dtype``; ``a``/``b`` may be python scalars or constants."""
    rank = rank_of(condition, a, b)
    condition = ctx.operand(condition, torch.bool, rank, node)
    a, b = ctx.operand(a, dtype, rank, node), ctx.operand(b, dtype, rank, node)
    return ctx.name(ctx.network.add_select(condition, a, b), node, suffix).get_output(0)


def _logic(ctx, a, b, op, node):
    """``a <op> b`` for bool operands (AND, OR, XOR)."""
    return elementwise(ctx, a, b, op, node, torch.bool)


# -- atan2, hypot, copysign --------------------------------------------------------------------
def _atan2(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    a, b = args[0], args[1]
    quotient = unary(ctx, elementwise(ctx, a, b, "DIV", node, dtype), "ATAN", node)
    a_negative = elementwise(ctx, a, 0, "LESS", node, dtype)
    half_turn = _select(ctx, a_negative, -math.pi, math.pi, node, dtype, "half_turn")
    behind = elementwise(ctx, quotient, half_turn, "SUM", node, dtype, suffix="behind")
    out = _select(ctx, elementwise(ctx, b, 0, "LESS", node, dtype), behind, quotient, node, dtype,
                  "left")
    # b == 0: +-pi/2 by a's sign, 0 for a == 0
    axis = _select(ctx, a_negative, -math.pi / 2, _select(
        ctx, elementwise(ctx, a, 0, "GREATER", node, dtype), math.pi / 2, 0.0, node, dtype, "up"),
        node, dtype, "axis")
    return _select(ctx, elementwise(ctx, b, 0, "EQUAL", node, dtype), axis, out, node, dtype,
                   "vertical")


def _hypot(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    wide = torch.float32  # squares of half values overflow; eager computes in float32 too
    a, b = ctx.cast(args[0], wide, node), ctx.cast(args[1], wide, node)
    total = elementwise(ctx, elementwise(ctx, a, a, "PROD", node, wide),
                        elementwise(ctx, b, b, "PROD", node, wide), "SUM", node, wide)
    return ctx.cast(unary(ctx, total, "SQRT", node), dtype, node)


def _copysign(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    magnitude = unary(ctx, ctx.cast(args[0], dtype, node), "ABS", node)
    sign = args[1]
    if not hasattr(sign, "shape"):  # copysign.Scalar: the sign is known now
        return unary(ctx, magnitude, "NEG", node) if math.copysign(1.0, sign) < 0 else magnitude
    sign = ctx.operand(sign, dtype, len(sign.shape), node)
    # negative, or -0.0 (whose reciprocal is -inf)
    negative = _logic(ctx, elementwise(ctx, sign, 0, "LESS", node, dtype),
                      elementwise(ctx, unary(ctx, sign, "RECIP", node), 0, "LESS", node, dtype),
                      "OR", node)
    return _select(ctx, negative, unary(ctx, magnitude, "NEG", node), magnitude, node, dtype)


# -- remainder and fmod ------------------------------------------------------------------------
def _fmod_value(ctx, a, b, node, dtype):
    """``a - trunc(a / b) * b`` (integers: DIV truncates)."""
    quotient = elementwise(ctx, a, b, "DIV", node, dtype)
    if dtype in FLOATS:
        magnitude = unary(ctx, unary(ctx, quotient, "ABS", node), "FLOOR", node)
        quotient = elementwise(ctx, unary(ctx, quotient, "SIGN", node), magnitude, "PROD", node,
                               dtype, suffix="trunc")
    return elementwise(ctx, a, elementwise(ctx, quotient, b, "PROD", node, dtype), "SUB", node,
                       dtype, suffix="fmod")


def _wide(dtype: torch.dtype) -> torch.dtype:
    """float32 for half types: a quotient of two half values rounded to half can land on the
    wrong integer, in float32 it cannot (eager upcasts too)."""
    return torch.float32 if dtype in FLOATS else dtype


def _fmod(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    return ctx.cast(_fmod_value(ctx, args[0], args[1], node, _wide(dtype)), dtype, node)


def _remainder(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    a, b = args[0], args[1]
    if dtype not in FLOATS:  # a - floor_div(a, b) * b is exact for integers
        product = elementwise(ctx, elementwise(ctx, a, b, "FLOOR_DIV", node, dtype), b, "PROD",
                              node, dtype)
        return elementwise(ctx, a, product, "SUB", node, dtype, suffix="remainder")
    # eager: m = fmod(a, b); m + b where m != 0 and its sign differs from b's
    result, dtype = dtype, _wide(dtype)
    mod = _fmod_value(ctx, a, b, node, dtype)
    differs = _logic(ctx, elementwise(ctx, mod, 0, "LESS", node, dtype),
                     elementwise(ctx, b, 0, "LESS", node, dtype), "XOR", node)
    nonzero = unary(ctx, elementwise(ctx, mod, 0, "EQUAL", node, dtype), "NOT", node)
    shift = _logic(ctx, differs, nonzero, "AND", node)
    out = _select(ctx, shift, elementwise(ctx, mod, b, "SUM", node, dtype), mod, node, dtype,
                  "remainder")
    return ctx.cast(out, result, node)


# -- bool logic, shifts ------------------------------------------------------------------------
def _bitwise(op: str):
    def convert(ctx, node, args, kwargs):
        return _logic(ctx, args[0], args[1], op, node)
    return convert


_BOOL_OK = all_of(_has_tensor_input, typed(_BOOL))


def _truth(ctx, x, node):
    """``x != 0`` as bool (no layer for a bool tensor)."""
    if ctx.dtype(x) == torch.bool:
        return x
    zero = elementwise(ctx, x, 0, "EQUAL", node, ctx.dtype(x), suffix="is_zero")
    return unary(ctx, zero, "NOT", node)


def _logical(op: str):
    def convert(ctx, node, args, kwargs):
        return _logic(ctx, _truth(ctx, args[0], node), _truth(ctx, args[1], node), op, node)
    return convert


def _shift(op: str):
    def convert(ctx, node, args, kwargs):
        dtype = out_dtype(ctx, node)
        return elementwise(ctx, args[0], 2 ** int(args[1]), op, node, dtype, suffix="shift")
    return convert


def _shift_supported(node, settings) -> bool:
    """A constant shift ``s`` with ``2**s`` representable: ``x << s == x * 2**s`` (wrapping as
    torch does) and ``x >> s == floor(x / 2**s)`` (arithmetic shift)."""
    shift = node.args[1] if len(node.args) > 1 else None
    value = val(node)
    if isinstance(shift, bool) or not isinstance(shift, int) or not isinstance(value, torch.Tensor):
        return False
    narrow = value.dtype == torch.int32 or settings.truncate_long_and_double
    return 0 <= shift < (31 if narrow else 63) and typed(INTS)(node, settings)


# -- clamp with tensor bounds, where with scalars ------------------------------------------------
def _clamp_tensor(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    x = ctx.cast(args[0], dtype, node)
    if node.target is aten.clamp.Tensor:
        low, high = arg(args, kwargs, 1, "min"), arg(args, kwargs, 2, "max")
    elif node.target is aten.clamp_min.Tensor:
        low, high = args[1], None
    else:
        low, high = None, args[1]
    if low is not None:
        x = elementwise(ctx, x, low, "MAX", node, dtype, suffix="min")
    if high is not None:
        x = elementwise(ctx, x, high, "MIN", node, dtype, suffix="max")
    return x


def _clamp_tensor_supported(node, settings) -> bool:
    """At least one bound is given (torch refuses none)."""
    x = val(node.args[0])
    bounds = list(node.args[1:3]) + [node.kwargs.get(k) for k in ("min", "max")]
    return (isinstance(x, torch.Tensor) and any(b is not None for b in bounds)
            and _ARITH_OK(node, settings))


def _where_scalars(ctx, node, args, kwargs):
    condition, a, b = args
    return _select(ctx, condition, a, b, node, out_dtype(ctx, node))


def _where_scalars_supported(node, settings) -> bool:
    condition = val(node.args[0])
    return (isinstance(condition, torch.Tensor) and condition.dtype == torch.bool
            and typed(NUMERIC | _BOOL, _ANY)(node, settings))


# -- lerp, addcmul, addcdiv, rsub --------------------------------------------------------------
def _lerp(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    start, end, weight = args[0], args[1], args[2]
    span = elementwise(ctx, end, start, "SUB", node, dtype, suffix="span")
    if not hasattr(weight, "shape"):  # lerp.Scalar: eager's branch is known now
        if abs(weight) < 0.5:
            return elementwise(ctx, start, elementwise(ctx, span, weight, "PROD", node, dtype),
                               "SUM", node, dtype, suffix="lerp")
        return elementwise(ctx, end, elementwise(ctx, span, 1.0 - weight, "PROD", node, dtype),
                           "SUB", node, dtype, suffix="lerp")
    # eager: |w| < 0.5 ? start + w * (end - start) : end - (end - start) * (1 - w)
    weight = ctx.cast(weight, dtype, node)
    near = elementwise(ctx, unary(ctx, weight, "ABS", node), 0.5, "LESS", node, dtype)
    low = elementwise(ctx, start, elementwise(ctx, span, weight, "PROD", node, dtype), "SUM", node,
                      dtype, suffix="from_start")
    high = elementwise(ctx, end, elementwise(ctx, span, elementwise(
        ctx, 1.0, weight, "SUB", node, dtype), "PROD", node, dtype), "SUB", node, dtype,
        suffix="from_end")
    return _select(ctx, near, low, high, node, dtype, "lerp")


def _addc(op: str):
    def convert(ctx, node, args, kwargs):
        dtype = out_dtype(ctx, node)
        value = arg(args, kwargs, 3, "value", 1)
        combined = elementwise(ctx, args[1], args[2], op, node, dtype)
        if value != 1:
            combined = elementwise(ctx, combined, value, "PROD", node, dtype, suffix="value")
        return elementwise(ctx, args[0], combined, "SUM", node, dtype, suffix="addc")
    return convert


def _rsub(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    a, b = args[0], args[1]
    alpha = arg(args, kwargs, 2, "alpha", 1)
    if alpha != 1:
        a = elementwise(ctx, a, alpha, "PROD", node, dtype, suffix="alpha")
    return elementwise(ctx, b, a, "SUB", node, dtype, suffix="rsub")


# -- xlogy, fmax/fmin, bool mul ----------------------------------------------------------------
def _xlogy(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    x, y = args[0], args[1]
    y = ctx.operand(y, dtype, rank_of(x, y), node)
    product = elementwise(ctx, x, unary(ctx, y, "LOG", node), "PROD", node, dtype)
    zero = elementwise(ctx, x, 0, "EQUAL", node, dtype)
    out = _select(ctx, zero, 0.0, product, node, dtype, "x_zero")
    return _select(ctx, unary(ctx, y, "ISNAN", node), math.nan, out, node, dtype, "y_nan")


def _fmaxmin(op: str):
    def convert(ctx, node, args, kwargs):
        dtype = out_dtype(ctx, node)
        a, b = args[0], args[1]
        out = elementwise(ctx, a, b, op, node, dtype)
        if dtype not in FLOATS:
            return out
        rank = rank_of(a, b)
        a, b = ctx.operand(a, dtype, rank, node), ctx.operand(b, dtype, rank, node)
        out = _select(ctx, unary(ctx, b, "ISNAN", node), a, out, node, dtype, "b_nan")
        return _select(ctx, unary(ctx, a, "ISNAN", node), b, out, node, dtype, "a_nan")
    return convert


def _true_divide(ctx, node, args, kwargs):
    return elementwise(ctx, args[0], args[1], "DIV", node, out_dtype(ctx, node))


# -- registration ------------------------------------------------------------------------------
@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    def spec(name: str, target: Any, convert: Any, ok: Any, constants=_OPERANDS,
             priority: int = 0) -> ConverterSpec:
        return ConverterSpec(name=f"builtin.{name}", target=target, convert=convert,
                             is_supported=ok, constant_args=constants, priority=priority,
                             supports_dynamic_shapes=True)

    yield spec("atan2", aten.atan2.default, _atan2, _FLOAT_OK)
    yield spec("hypot", aten.hypot.default, _hypot, _FLOAT_OK, constants=frozenset())
    yield spec("copysign.tensor", aten.copysign.Tensor, _copysign, _FLOAT_OK, constants=frozenset({1}))
    yield spec("copysign.scalar", aten.copysign.Scalar, _copysign, _FLOAT_OK, constants=frozenset())
    for overload in ("Tensor", "Scalar", "Scalar_Tensor"):
        yield spec(f"remainder.{overload.lower()}", getattr(aten.remainder, overload), _remainder,
                   _ARITH_OK)
    for overload in ("Tensor", "Scalar"):
        yield spec(f"fmod.{overload.lower()}", getattr(aten.fmod, overload), _fmod, _ARITH_OK)
    for name, op in (("bitwise_and", "AND"), ("bitwise_or", "OR"), ("bitwise_xor", "XOR")):
        for overload in ("Tensor", "Scalar", "Scalar_Tensor"):
            yield spec(f"{name}.{overload.lower()}", getattr(getattr(aten, name), overload),
                       _bitwise(op), _BOOL_OK)
    # bool * bool is AND; elementwise's mul takes numbers only (isfinite decomposes into one)
    yield spec("mul.tensor_bool", aten.mul.Tensor, _bitwise("AND"), _BOOL_OK, priority=1)
    for name, op in (("logical_and", "AND"), ("logical_or", "OR"), ("logical_xor", "XOR")):
        yield spec(name, getattr(aten, name).default, _logical(op),
                   all_of(_has_tensor_input, typed(_BOOL, _ANY)), constants=frozenset())
    for name, target, op in (("__lshift__.scalar", aten.__lshift__.Scalar, "PROD"),
                             ("__rshift__.scalar", aten.__rshift__.Scalar, "FLOOR_DIV"),
                             ("bitwise_left_shift.tensor_scalar",
                              aten.bitwise_left_shift.Tensor_Scalar, "PROD"),
                             ("bitwise_right_shift.tensor_scalar",
                              aten.bitwise_right_shift.Tensor_Scalar, "FLOOR_DIV")):
        yield spec(name, target, _shift(op), _shift_supported)
    for target in (aten.clamp.Tensor, aten.clamp_min.Tensor, aten.clamp_max.Tensor):
        yield spec(f"{target._opname}.tensor", target, _clamp_tensor, _clamp_tensor_supported,
                   constants=frozenset({1, 2}))
    for overload in ("ScalarSelf", "ScalarOther", "Scalar"):
        yield spec(f"where.{overload.lower()}", getattr(aten.where, overload), _where_scalars,
                   _where_scalars_supported, constants=frozenset({0, 1, 2}))
    yield spec("lerp.scalar", aten.lerp.Scalar, _lerp, _FLOAT_OK)
    yield spec("lerp.tensor", aten.lerp.Tensor, _lerp, _FLOAT_OK)
    yield spec("addcmul", aten.addcmul.default, _addc("PROD"), _ARITH_OK,
               constants=frozenset({0, 1, 2}))
    yield spec("addcdiv", aten.addcdiv.default, _addc("DIV"), _FLOAT_OK,
               constants=frozenset({0, 1, 2}))
    yield spec("rsub.tensor", aten.rsub.Tensor, _rsub, _ARITH_OK)
    yield spec("rsub.scalar", aten.rsub.Scalar, _rsub, _ARITH_OK)
    for overload in ("Tensor", "Scalar_Self", "Scalar_Other"):
        yield spec(f"xlogy.{overload.lower()}", getattr(aten.xlogy, overload), _xlogy, _FLOAT_OK)
    yield spec("fmax", aten.fmax.default, _fmaxmin("MAX"), _ARITH_OK)
    yield spec("fmin", aten.fmin.default, _fmaxmin("MIN"), _ARITH_OK)
    yield spec("true_divide.tensor", aten.true_divide.Tensor, _true_divide, _FLOAT_OK)
