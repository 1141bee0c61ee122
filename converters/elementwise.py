"""Built-in converters for pointwise ops of two or three operands: arithmetic, comparisons,
``where``, ``clamp``, casts, and the named math functions built on them (``atan2``,
``remainder``/``fmod``, bool ``bitwise_*`` and ``mul``, shifts by a constant, ``logical_*``,
``hypot``, ``copysign``, ``lerp``, ``addcmul``/``addcdiv``, ``rsub``, ``xlogy``,
``fmax``/``fmin``, ``true_divide``). Every overload of an op lives here, scalar and tensor forms
alike.

Dtypes follow torch exactly: every converter computes in the engine dtype of the node's own
result (``meta["val"].dtype``, which tracing derived with torch's promotion rules, python
scalars included), so ``int / int`` divides as floats and ``int_tensor + 2.5`` adds as floats.
Comparisons compute in the promoted dtype of their operands and return bool. Semantics that
differ between look-alikes are kept: ``remainder`` takes the divisor's sign, ``fmod`` the
dividend's; ``fmax``/``fmin`` ignore a NaN operand where ``maximum`` propagates it;
``xlogy(0, y)`` is 0 unless ``y`` is NaN.

Known limits (the edge cases TensorRT's ops cannot tell apart cheaply): ``atan2`` of two
infinities is NaN (torch: a multiple of pi/4) and of a zero over ``-0.0`` is 0 (torch: pi);
float ``fmod``/``remainder`` compute ``a - trunc(a / b) * b`` in float32 (half inputs too,
where that is exact); for float32 inputs a quotient that rounds onto an integer can make the
result off by ``b``; an infinite divisor gives NaN (torch: ``a``).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any
import math

import torch
import torch.fx

from plugtrt.conversion import (
    FLOATS, INTS, NUMERIC, all_of, arg, aten, elementwise, out_dtype, rank_of,
    scalar_computable, typed, unary, val, where,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt


_IN = NUMERIC | {torch.bool}


_OPERANDS = frozenset({0, 1})  # constant operands arrive as torch tensors: operand() shapes them


def _has_tensor_input(node: torch.fx.Node, settings: Any) -> bool:
    return bool(node.all_input_nodes)


_ARITH_OK = all_of(_has_tensor_input, typed(NUMERIC, _IN))


_FLOAT_OK = all_of(_has_tensor_input, typed(FLOATS, _IN))


# -- arithmetic ----------------------------------------------------------------------------
def _binary(op: str, with_alpha: bool = False):
    """``a <op> b`` (``a <op> alpha * b`` for add/sub), computed in the result's dtype."""
    def convert(ctx, node, args, kwargs):
        dtype = out_dtype(ctx, node)
        a, b = args[0], args[1]
        alpha = arg(args, kwargs, 2, "alpha", 1) if with_alpha else 1
        if alpha != 1:
            b = elementwise(ctx, b, alpha, "PROD", node, dtype, suffix="alpha")
        return elementwise(ctx, a, b, op, node, dtype)
    return convert


def _rounding_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half types: a quotient of two half values rounded to half can land on the
    next integer before it is floored or truncated; eager computes these in float32 too."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _div_mode(ctx, node, args, kwargs):
    mode = arg(args, kwargs, 2, "rounding_mode", None)
    result = out_dtype(ctx, node)
    a, b = args[0], args[1]
    if mode is None:
        return elementwise(ctx, a, b, "DIV", node, result)
    dtype = _rounding_dtype(result)
    if mode == "floor":
        return ctx.cast(elementwise(ctx, a, b, "FLOOR_DIV", node, dtype), result, node)
    quotient = elementwise(ctx, a, b, "DIV", node, dtype)  # ints: DIV truncates toward zero
    if dtype not in FLOATS:
        return quotient
    magnitude = unary(ctx, unary(ctx, quotient, "ABS", node), "FLOOR", node)
    return ctx.cast(elementwise(ctx, unary(ctx, quotient, "SIGN", node), magnitude, "PROD", node, dtype,
                                suffix="trunc"), result, node)


def _div_mode_supported(node, settings) -> bool:
    mode = node.kwargs.get("rounding_mode", node.args[2] if len(node.args) > 2 else None)
    return mode in (None, "trunc", "floor") and _ARITH_OK(node, settings)


_INT_POWERS = range(0, 65)


"""Integer exponents computed by repeated products (TensorRT's POW takes floats only)."""


def _int_power_supported(node, settings) -> bool:
    exponent = node.args[1] if len(node.args) > 1 else None
    return (isinstance(exponent, int) and not isinstance(exponent, bool) and exponent in _INT_POWERS
            and val(node).dtype in (torch.int32, torch.int64) and _ARITH_OK(node, settings))


def _int_power(ctx, node, args, kwargs):
    """``x ** n`` for integer ``x`` and a constant ``n`` >= 0, by squaring: as exact as torch's
    (both wrap around on overflow)."""
    dtype = out_dtype(ctx, node)
    x, n = ctx.cast(args[0], dtype, node), args[1]
    result = elementwise(ctx, elementwise(ctx, x, 0, "PROD", node, dtype), 1, "SUM", node, dtype) \
        if n == 0 else None
    square = x
    while n:
        if n & 1:
            result = square if result is None else elementwise(ctx, result, square, "PROD", node, dtype)
        n >>= 1
        if n:
            square = elementwise(ctx, square, square, "PROD", node, dtype)
    return result


def _floor_divide(ctx, node, args, kwargs):
    result = out_dtype(ctx, node)
    return ctx.cast(elementwise(ctx, args[0], args[1], "FLOOR_DIV", node, _rounding_dtype(result)),
                    result, node)


def _unary(op: str | tuple[str, ...]):
    """``op(x)`` after casting ``x`` to the result's dtype (``sqrt(int)`` is a float)."""
    ops = (op,) if isinstance(op, str) else op

    def convert(ctx, node, args, kwargs):
        x = ctx.cast(args[0], out_dtype(ctx, node), node)
        for name in ops:
            x = unary(ctx, x, name, node)
        return x
    return convert


def _neg(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    if dtype in FLOATS:
        return unary(ctx, ctx.cast(args[0], dtype, node), "NEG", node)
    return elementwise(ctx, 0, args[0], "SUB", node, dtype, suffix="neg")


def _abs(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    if dtype in FLOATS:
        return unary(ctx, ctx.cast(args[0], dtype, node), "ABS", node)
    negated = elementwise(ctx, 0, args[0], "SUB", node, dtype, suffix="neg")
    return elementwise(ctx, args[0], negated, "MAX", node, dtype, suffix="abs")


# -- comparisons ---------------------------------------------------------------------------
def _promoted(node: torch.fx.Node) -> torch.dtype:
    """torch's promoted dtype of a binary node's two operands (tensor or python scalar)."""
    def meta(x):
        v = val(x)
        # the rank, not the sizes, decides promotion (0-d tensors rank below dimensioned ones)
        return torch.empty((1,) * v.dim(), dtype=v.dtype, device="meta") if isinstance(v, torch.Tensor) else x
    return torch.result_type(meta(node.args[0]), meta(node.args[1]))


_COMPARE = {"eq": ("EQUAL",), "lt": ("LESS",), "gt": ("GREATER",),
            "le": ("LESS", "EQUAL"), "ge": ("GREATER", "EQUAL"), "ne": ("EQUAL",)}


def _compare(name: str):
    ops = _COMPARE[name]

    def convert(ctx, node, args, kwargs):
        common = _promoted(node)
        dtype = torch.int32 if common == torch.bool else ctx.engine_dtype(common)
        results = [elementwise(ctx, args[0], args[1], op, node, dtype) for op in ops]
        out = results[0]
        if len(results) == 2:
            layer = ctx.network.add_elementwise(results[0], results[1], trt.ElementWiseOperation.OR)
            out = ctx.name(layer, node, "or").get_output(0)
        if name == "ne":
            out = unary(ctx, out, "NOT", node)
        return out
    return convert


_COMPARE_OK = all_of(_has_tensor_input, typed({torch.bool}, _IN))


# -- select, clamp, casts, constants -------------------------------------------------------
def _where(ctx, node, args, kwargs):
    condition, a, b = args
    return where(ctx, condition, a, b, node, out_dtype(ctx, node))


def _masked_fill(ctx, node, args, kwargs):
    x, mask, value = args
    return _where(ctx, node, (mask, value, x), kwargs)


def _masked_fill_supported(node, settings) -> bool:
    mask = val(node.args[1])
    return (isinstance(mask, torch.Tensor) and mask.dtype == torch.bool
            and typed(NUMERIC, _IN)(node, settings))


def _where_supported(node, settings) -> bool:
    condition = val(node.args[0])
    return (isinstance(condition, torch.Tensor) and condition.dtype == torch.bool
            and typed(NUMERIC, _IN)(node, settings))


def _bounded(ctx, x, low, high, node, dtype):
    """``x`` clamped to the bounds that are given (a number, a constant or an ITensor each)."""
    if low is not None:
        x = elementwise(ctx, x, low, "MAX", node, dtype, suffix="min")
    if high is not None:
        x = elementwise(ctx, x, high, "MIN", node, dtype, suffix="max")
    return x


def _clamp(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    x = ctx.cast(args[0], dtype, node)
    low, high = arg(args, kwargs, 1, "min"), arg(args, kwargs, 2, "max")
    if node.target is aten.clamp_max.default:
        low, high = None, args[1]
    return _bounded(ctx, x, low, high, node, dtype)


def _clamp_supported(node, settings) -> bool:
    bounds = [a for a in node.args[1:3]] + [node.kwargs.get(k) for k in ("min", "max")]
    # a bound computed from sizes (torch's upsampling clamps indices to size - 1) is a 0-d tensor
    return (all(not isinstance(b, torch.fx.Node) or scalar_computable(val(b)) for b in bounds)
            and any(b is not None for b in bounds) and _ARITH_OK(node, settings))


def _to_copy(ctx, node, args, kwargs):
    x = args[0]
    dtype = out_dtype(ctx, node)
    if val(node).dtype == torch.bool:
        zero = ctx.operand(0, ctx.dtype(x), len(x.shape), node)
        return unary(ctx, ctx.finish(ctx.network.add_elementwise(
            x, zero, trt.ElementWiseOperation.EQUAL), node), "NOT", node, suffix="nonzero")
    return ctx.cast(x, dtype, node)  # no layer when the dtype stays


def _to_copy_supported(node, settings) -> bool:
    ignored = {"dtype", "layout", "device", "memory_format", "non_blocking", "pin_memory"}
    return set(node.kwargs) <= ignored and typed(_IN, _IN)(node, settings)


def _scalar_tensor(ctx, node, args, kwargs):
    value = val(node)
    staged = torch.float32 if value.dtype == torch.bfloat16 else value.dtype
    return ctx.constant(torch.tensor(args[0], dtype=staged), node, dtype=ctx.engine_dtype(value.dtype))


def _scalar_tensor_supported(node, settings) -> bool:
    value = val(node)
    return isinstance(value, torch.Tensor) and value.dtype in _IN and not isinstance(
        node.args[0], torch.fx.Node)


# -- registration --------------------------------------------------------------------------
_BINARY = [  # (name, targets, trt op, alpha)
    ("add", (aten.add.Tensor, aten.add.Scalar), "SUM", True),
    ("sub", (aten.sub.Tensor, aten.sub.Scalar), "SUB", True),
    ("mul", (aten.mul.Tensor, aten.mul.Scalar), "PROD", False),
    ("div", (aten.div.Tensor, aten.div.Scalar), "DIV", False),
    ("maximum", (aten.maximum.default,), "MAX", False),
    ("minimum", (aten.minimum.default,), "MIN", False),
]


_POW = (aten.pow.Tensor_Scalar, aten.pow.Tensor_Tensor, aten.pow.Scalar)


_UNARY = [  # (name, target, trt unary ops applied in turn)
    ("sqrt", aten.sqrt.default, "SQRT"), ("rsqrt", aten.rsqrt.default, ("SQRT", "RECIP")),
    ("exp", aten.exp.default, "EXP"), ("log", aten.log.default, "LOG"),
    ("reciprocal", aten.reciprocal.default, "RECIP"), ("floor", aten.floor.default, "FLOOR"),
    ("ceil", aten.ceil.default, "CEIL"), ("sin", aten.sin.default, "SIN"),
    ("cos", aten.cos.default, "COS"),
]


def _spec_name(name: str, target) -> str:
    """``builtin.<op>`` for a default overload, else ``builtin.<op>.<overload>``."""
    overload = target._overloadname.lower()
    return f"builtin.{name}" if overload == "default" else f"builtin.{name}.{overload}"


_BOOL = frozenset({torch.bool})


def _logic(ctx, a, b, op, node):
    """``a <op> b`` for bool operands (AND, OR, XOR)."""
    return elementwise(ctx, a, b, op, node, torch.bool)


# -- atan2, hypot, copysign --------------------------------------------------------------------
def _atan2(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    a, b = args[0], args[1]
    quotient = unary(ctx, elementwise(ctx, a, b, "DIV", node, dtype), "ATAN", node)
    a_negative = elementwise(ctx, a, 0, "LESS", node, dtype)
    half_turn = where(ctx, a_negative, -math.pi, math.pi, node, dtype, "half_turn")
    behind = elementwise(ctx, quotient, half_turn, "SUM", node, dtype, suffix="behind")
    out = where(ctx, elementwise(ctx, b, 0, "LESS", node, dtype), behind, quotient, node, dtype,
                  "left")
    # b == 0: +-pi/2 by a's sign, 0 for a == 0
    axis = where(ctx, a_negative, -math.pi / 2, where(
        ctx, elementwise(ctx, a, 0, "GREATER", node, dtype), math.pi / 2, 0.0, node, dtype, "up"),
        node, dtype, "axis")
    return where(ctx, elementwise(ctx, b, 0, "EQUAL", node, dtype), axis, out, node, dtype,
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
    return where(ctx, negative, unary(ctx, magnitude, "NEG", node), magnitude, node, dtype)


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
    out = where(ctx, shift, elementwise(ctx, mod, b, "SUM", node, dtype), mod, node, dtype,
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
    return _bounded(ctx, x, low, high, node, dtype)


def _clamp_tensor_supported(node, settings) -> bool:
    """At least one bound is given (torch refuses none)."""
    x = val(node.args[0])
    bounds = list(node.args[1:3]) + [node.kwargs.get(k) for k in ("min", "max")]
    return (isinstance(x, torch.Tensor) and any(b is not None for b in bounds)
            and _ARITH_OK(node, settings))


def _where_scalars(ctx, node, args, kwargs):
    condition, a, b = args
    return where(ctx, condition, a, b, node, out_dtype(ctx, node))


def _where_scalars_supported(node, settings) -> bool:
    condition = val(node.args[0])
    return (isinstance(condition, torch.Tensor) and condition.dtype == torch.bool
            and typed(NUMERIC | _BOOL, _IN)(node, settings))


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
    return where(ctx, near, low, high, node, dtype, "lerp")


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
    out = where(ctx, zero, 0.0, product, node, dtype, "x_zero")
    return where(ctx, unary(ctx, y, "ISNAN", node), math.nan, out, node, dtype, "y_nan")


def _fmaxmin(op: str):
    def convert(ctx, node, args, kwargs):
        dtype = out_dtype(ctx, node)
        a, b = args[0], args[1]
        out = elementwise(ctx, a, b, op, node, dtype)
        if dtype not in FLOATS:
            return out
        rank = rank_of(a, b)
        a, b = ctx.operand(a, dtype, rank, node), ctx.operand(b, dtype, rank, node)
        out = where(ctx, unary(ctx, b, "ISNAN", node), a, out, node, dtype, "b_nan")
        return where(ctx, unary(ctx, a, "ISNAN", node), b, out, node, dtype, "a_nan")
    return convert


def _true_divide(ctx, node, args, kwargs):
    return elementwise(ctx, args[0], args[1], "DIV", node, out_dtype(ctx, node))


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    def spec(name: str, target: Any, convert: Any, ok: Any, constants=_OPERANDS,
             priority: int = 0) -> ConverterSpec:
        return ConverterSpec(name=f"builtin.{name}", target=target, convert=convert,
                             is_supported=ok, constant_args=constants, priority=priority,
                             supports_dynamic_shapes=True)

    for name, targets, op, alpha in _BINARY:
        ok = _ARITH_OK if name != "div" else _FLOAT_OK
        for target in targets:
            yield ConverterSpec(name=_spec_name(name, target), target=target,
                                convert=_binary(op, alpha), is_supported=ok,
                                constant_args=_OPERANDS,
                                supports_dynamic_shapes=True)
    for target in (aten.div.Tensor_mode, aten.div.Scalar_mode):
        yield ConverterSpec(name=_spec_name("div", target), target=target,
                            convert=_div_mode, is_supported=_div_mode_supported,
                            constant_args=_OPERANDS,
                            supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.floor_divide", target=aten.floor_divide.default,
                        convert=_floor_divide, is_supported=_ARITH_OK, constant_args=_OPERANDS,
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.pow.tensor_scalar.int", target=aten.pow.Tensor_Scalar,
                        convert=_int_power, is_supported=_int_power_supported, priority=-1,
                        supports_dynamic_shapes=True)
    for target in _POW:
        yield ConverterSpec(name=_spec_name("pow", target), target=target,
                            convert=_binary("POW"), is_supported=_FLOAT_OK,
                            constant_args=_OPERANDS,
                            supports_dynamic_shapes=True)
    for name, target, ops in _UNARY:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_unary(ops),
                            is_supported=_FLOAT_OK,
                            supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.neg", target=aten.neg.default, convert=_neg,
                        is_supported=typed(NUMERIC),
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.abs", target=aten.abs.default, convert=_abs,
                        is_supported=typed(NUMERIC),
                        supports_dynamic_shapes=True)
    for name in _COMPARE:
        for overload in ("Tensor", "Scalar"):
            target = getattr(getattr(aten, name), overload)
            yield ConverterSpec(name=f"builtin.{name}.{overload.lower()}", target=target,
                                convert=_compare(name), is_supported=_COMPARE_OK,
                                constant_args=_OPERANDS,
                                supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.where", target=aten.where.self, convert=_where,
                        is_supported=_where_supported, constant_args={0, 1, 2},
                        supports_dynamic_shapes=True)
    for target in (aten.masked_fill.Scalar, aten.masked_fill.Tensor):
        yield ConverterSpec(name=f"builtin.masked_fill.{target._overloadname.lower()}", target=target,
                            convert=_masked_fill, is_supported=_masked_fill_supported,
                            supports_dynamic_shapes=True)
    for target in (aten.clamp.default, aten.clamp_min.default, aten.clamp_max.default):
        yield ConverterSpec(name=f"builtin.{target._opname}", target=target, convert=_clamp,
                            is_supported=_clamp_supported,
                            supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin._to_copy", target=aten._to_copy.default, convert=_to_copy,
                        is_supported=_to_copy_supported,
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.scalar_tensor", target=aten.scalar_tensor.default,
                        convert=_scalar_tensor, is_supported=_scalar_tensor_supported,
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
    # bool * bool is AND; builtin.mul.tensor takes numbers only (isfinite decomposes into one)
    yield spec("mul.tensor_bool", aten.mul.Tensor, _bitwise("AND"), _BOOL_OK, priority=1)
    for name, op in (("logical_and", "AND"), ("logical_or", "OR"), ("logical_xor", "XOR")):
        yield spec(name, getattr(aten, name).default, _logical(op),
                   all_of(_has_tensor_input, typed(_BOOL, _IN)), constants=frozenset())
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
