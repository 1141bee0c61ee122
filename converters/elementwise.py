"""Built-in converters for pointwise arithmetic, comparisons, ``where``, ``clamp`` and casts.

Dtypes follow torch exactly: every converter computes in the engine dtype of the node's own
result (``meta["val"].dtype``, which tracing derived with torch's promotion rules, python
scalars included), so ``int / int`` divides as floats and ``int_tensor + 2.5`` adds as floats.
Comparisons compute in the promoted dtype of their operands and return bool.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.fx

from plugtrt.conversion import (
    FLOATS, NUMERIC, all_of, arg, aten, elementwise, out_dtype, rank_of, scalar_computable,
    select, typed, unary, val,
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
    dtype = out_dtype(ctx, node)
    rank = rank_of(condition, a, b)
    condition = ctx.operand(condition, torch.bool, rank, node)
    a, b = ctx.operand(a, dtype, rank, node), ctx.operand(b, dtype, rank, node)
    return select(ctx, condition, a, b, node)


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


def _clamp(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    x = ctx.cast(args[0], dtype, node)
    low, high = arg(args, kwargs, 1, "min"), arg(args, kwargs, 2, "max")
    if node.target is aten.clamp_max.default:
        low, high = None, args[1]
    if low is not None:
        x = elementwise(ctx, x, low, "MAX", node, dtype, suffix="min")
    if high is not None:
        x = elementwise(ctx, x, high, "MIN", node, dtype, suffix="max")
    return x


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


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
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
