"""Built-in converters for the pointwise unary math ops that ``elementwise`` does not cover:
inverse and hyperbolic trigonometry, ``expm1``/``log1p``/``log2``/``log10``/``exp2``, rounding
(``trunc``, ``round`` with decimals, ``frac``), ``sign``, the float class tests (``isnan``,
``isinf``, ``isfinite``, ``isposinf``, ``isneginf``), ``logical_not``, ``bitwise_not``,
``nan_to_num``, ``square`` and ``logit``.

Dtypes follow torch: each converter computes in the engine dtype of the node's result, so an
integer input of ``tan`` is cast to the float result first. What eager computes in float32
for half inputs (``expm1``, ``log1p``, ``round(decimals=)``, ``logit``) is computed in
float32 here too and cast back once.

Exactness where TensorRT lacks the op: ``expm1`` and ``log1p`` use Kahan's correction
(``(u - 1) * x / log(u)`` with ``u = exp(x)``; ``log(u) * x / (u - 1)`` with ``u = 1 + x``),
which keeps full relative precision near zero where ``exp(x) - 1`` would cancel.
TensorRT's ROUND rounds half to even, as torch does.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.fx

from plugtrt.conversion import (
    FLOATS, INTS, NUMERIC, arg, aten, elementwise, out_dtype, typed, unary, val, where,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec

_ANY = NUMERIC | {torch.bool}
_FLOAT_OUT = typed(FLOATS, _ANY)  # tan(int) is a float
_FLOAT_ONLY = typed(FLOATS)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half types: what eager's CPU kernels accumulate in for the composite
    formulas below."""
    return torch.float32 if dtype in FLOATS else dtype


# -- one TensorRT unary op ---------------------------------------------------------------------
def _unary(op: str):
    def convert(ctx, node, args, kwargs):
        return unary(ctx, ctx.cast(args[0], out_dtype(ctx, node), node), op, node)
    return convert


def _test(op: str):
    """ISNAN/ISINF: a float input, a bool result."""
    def convert(ctx, node, args, kwargs):
        return unary(ctx, args[0], op, node)
    return convert


# -- exp / log family --------------------------------------------------------------------------
def _expm1(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    x = ctx.cast(args[0], _compute_dtype(dtype), node)
    wide = ctx.dtype(x)
    u = unary(ctx, x, "EXP", node)
    um1 = elementwise(ctx, u, 1, "SUB", node, wide, suffix="um1")
    log_u = unary(ctx, u, "LOG", node)
    kahan = elementwise(ctx, elementwise(ctx, um1, x, "PROD", node, wide), log_u, "DIV", node, wide)
    # u == 1: x itself; u == 0 or inf (log u infinite): u - 1 is exact
    out = where(ctx, unary(ctx, log_u, "ISINF", node), um1, kahan, node, wide, "saturated")
    out = where(ctx, elementwise(ctx, u, 1, "EQUAL", node, wide), x, out, node, wide, "tiny")
    return ctx.cast(out, dtype, node)


def _log1p(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    x = ctx.cast(args[0], _compute_dtype(dtype), node)
    wide = ctx.dtype(x)
    u = elementwise(ctx, x, 1, "SUM", node, wide, suffix="u")
    d = elementwise(ctx, u, 1, "SUB", node, wide, suffix="d")
    log_u = unary(ctx, u, "LOG", node)
    kahan = elementwise(ctx, elementwise(ctx, log_u, x, "PROD", node, wide), d, "DIV", node, wide)
    # u infinite: log u; 1 + x rounding to 1: x itself
    out = where(ctx, unary(ctx, u, "ISINF", node), log_u, kahan, node, wide, "huge")
    out = where(ctx, elementwise(ctx, d, 0, "EQUAL", node, wide), x, out, node, wide, "tiny")
    return ctx.cast(out, dtype, node)


def _log_base(base: float):
    def convert(ctx, node, args, kwargs):
        dtype = out_dtype(ctx, node)
        log = unary(ctx, ctx.cast(args[0], dtype, node), "LOG", node)
        return elementwise(ctx, log, 1.0 / math.log(base), "PROD", node, dtype, suffix=f"log{base:g}")
    return convert


def _exp2(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    return elementwise(ctx, 2.0, ctx.cast(args[0], dtype, node), "POW", node, dtype, suffix="exp2")


# -- rounding ----------------------------------------------------------------------------------
def _trunc_float(ctx, x, node, dtype):
    magnitude = unary(ctx, unary(ctx, x, "ABS", node), "FLOOR", node)
    return elementwise(ctx, unary(ctx, x, "SIGN", node), magnitude, "PROD", node, dtype, suffix="trunc")


def _trunc(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    if dtype not in FLOATS:
        return args[0]  # integers are whole already
    return _trunc_float(ctx, args[0], node, dtype)


def _round(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    decimals = arg(args, kwargs, 1, "decimals", 0)
    if dtype not in FLOATS:
        return args[0]
    if decimals == 0:
        return unary(ctx, args[0], "ROUND", node)
    # eager: nearbyint(x * 10^d) / 10^d, or nearbyint(x / 10^-d) * 10^-d, in float32
    x = ctx.cast(args[0], torch.float32, node)
    scale = float(10 ** abs(decimals))
    inward, outward = ("PROD", "DIV") if decimals > 0 else ("DIV", "PROD")
    scaled = unary(ctx, elementwise(ctx, x, scale, inward, node, torch.float32), "ROUND", node)
    return ctx.cast(elementwise(ctx, scaled, scale, outward, node, torch.float32), dtype, node)


def _round_supported(node, settings) -> bool:
    decimals = arg(node.args, node.kwargs, 1, "decimals", 0)
    return isinstance(decimals, int) and abs(decimals) <= 30 and _FLOAT_ONLY(node, settings)


def _frac(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    return elementwise(ctx, args[0], _trunc_float(ctx, args[0], node, dtype), "SUB", node, dtype,
                       suffix="frac")


def _sign(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    if dtype == torch.bool:
        return args[0]
    if dtype in FLOATS:
        return unary(ctx, args[0], "SIGN", node)
    # integers: (x > 0) - (x < 0)
    positive = ctx.cast(elementwise(ctx, args[0], 0, "GREATER", node, dtype), dtype, node)
    negative = ctx.cast(elementwise(ctx, args[0], 0, "LESS", node, dtype), dtype, node)
    return elementwise(ctx, positive, negative, "SUB", node, dtype, suffix="sign")


# -- float classes -----------------------------------------------------------------------------
def _isinf_signed(op: str):
    def convert(ctx, node, args, kwargs):
        x = args[0]
        infinite = unary(ctx, x, "ISINF", node)
        side = elementwise(ctx, x, 0, op, node, ctx.dtype(x))
        return elementwise(ctx, infinite, side, "AND", node, torch.bool, suffix="signed")
    return convert


def _isfinite(ctx, node, args, kwargs):
    x = args[0]
    if ctx.dtype(x) not in FLOATS:
        return elementwise(ctx, x, x, "EQUAL", node, ctx.dtype(x), suffix="true")
    special = elementwise(ctx, unary(ctx, x, "ISNAN", node), unary(ctx, x, "ISINF", node), "OR",
                          node, torch.bool)
    return unary(ctx, special, "NOT", node)


_CLASS_INPUT = typed({torch.bool}, FLOATS)


def _logical_not(ctx, node, args, kwargs):
    x = args[0]
    if ctx.dtype(x) == torch.bool:
        return unary(ctx, x, "NOT", node)
    return elementwise(ctx, x, 0, "EQUAL", node, ctx.dtype(x), suffix="logical_not")


def _bitwise_not(ctx, node, args, kwargs):
    x = args[0]
    dtype = ctx.dtype(x)
    if dtype == torch.bool:
        return unary(ctx, x, "NOT", node)
    return elementwise(ctx, -1, x, "SUB", node, dtype, suffix="bitwise_not")  # ~x == -1 - x


# -- nan_to_num, square, logit -----------------------------------------------------------------
def _nan_to_num(ctx, node, args, kwargs):
    x = args[0]
    dtype = out_dtype(ctx, node)
    if dtype not in FLOATS:
        return x
    limits = torch.finfo(val(node).dtype)
    nan = arg(args, kwargs, 1, "nan", 0.0)
    nan = 0.0 if nan is None else nan
    posinf = arg(args, kwargs, 2, "posinf", None)
    neginf = arg(args, kwargs, 3, "neginf", None)
    posinf = limits.max if posinf is None else posinf
    neginf = limits.min if neginf is None else neginf
    out = where(ctx, unary(ctx, x, "ISNAN", node), nan, x, node, dtype, "nan")
    out = where(ctx, elementwise(ctx, x, math.inf, "EQUAL", node, dtype), posinf, out, node,
                  dtype, "posinf")
    return where(ctx, elementwise(ctx, x, -math.inf, "EQUAL", node, dtype), neginf, out, node,
                   dtype, "neginf")


def _nan_to_num_supported(node, settings) -> bool:
    """A float32 model computed in half (``precision``) would replace infinities by half's
    limits, not float32's, when posinf/neginf are left to default: such nodes stay in PyTorch."""
    if not typed(NUMERIC)(node, settings):
        return False
    dtype = val(node).dtype
    reduced = settings.precision in (torch.float16, torch.bfloat16) and settings.precision != dtype
    defaults = (arg(node.args, node.kwargs, 2, "posinf") is None
                or arg(node.args, node.kwargs, 3, "neginf") is None)
    return not (dtype in FLOATS and reduced and defaults)


def _square(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    x = ctx.cast(args[0], dtype, node)
    return elementwise(ctx, x, x, "PROD", node, dtype, suffix="square")


def _logit(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    x = ctx.cast(args[0], _compute_dtype(dtype), node)
    wide = ctx.dtype(x)
    eps = arg(args, kwargs, 1, "eps", None)
    if eps is not None and eps >= 0:  # eager clamps only for a non-negative eps
        x = elementwise(ctx, x, float(eps), "MAX", node, wide, suffix="eps_low")
        x = elementwise(ctx, x, 1.0 - float(eps), "MIN", node, wide, suffix="eps_high")
    odds = elementwise(ctx, x, elementwise(ctx, 1.0, x, "SUB", node, wide), "DIV", node, wide)
    return ctx.cast(unary(ctx, odds, "LOG", node), dtype, node)


# -- registration ------------------------------------------------------------------------------
_TRIG = ["tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh"]


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    def spec(name: str, target: Any, convert: Any, ok: Any) -> ConverterSpec:
        return ConverterSpec(name=f"builtin.{name}", target=target, convert=convert,
                             is_supported=ok, supports_dynamic_shapes=True)

    for name in _TRIG:
        yield spec(name, getattr(aten, name).default, _unary(name.upper()), _FLOAT_OUT)
    yield spec("expm1", aten.expm1.default, _expm1, _FLOAT_OUT)
    yield spec("log1p", aten.log1p.default, _log1p, _FLOAT_OUT)
    yield spec("log2", aten.log2.default, _log_base(2.0), _FLOAT_OUT)
    yield spec("log10", aten.log10.default, _log_base(10.0), _FLOAT_OUT)
    yield spec("exp2", aten.exp2.default, _exp2, _FLOAT_OUT)
    yield spec("trunc", aten.trunc.default, _trunc, typed(NUMERIC))
    yield spec("round", aten.round.default, _round, typed(NUMERIC))
    yield spec("round.decimals", aten.round.decimals, _round, _round_supported)
    yield spec("frac", aten.frac.default, _frac, _FLOAT_ONLY)
    yield spec("sign", aten.sign.default, _sign, typed(_ANY))
    yield spec("sgn", aten.sgn.default, _sign, typed(_ANY))
    yield spec("isnan", aten.isnan.default, _test("ISNAN"), _CLASS_INPUT)
    yield spec("isinf", aten.isinf.default, _test("ISINF"), _CLASS_INPUT)
    yield spec("isfinite", aten.isfinite.default, _isfinite, typed({torch.bool}, NUMERIC))
    yield spec("isposinf", aten.isposinf.default, _isinf_signed("GREATER"), _CLASS_INPUT)
    yield spec("isneginf", aten.isneginf.default, _isinf_signed("LESS"), _CLASS_INPUT)
    yield spec("logical_not", aten.logical_not.default, _logical_not, typed({torch.bool}, _ANY))
    yield spec("bitwise_not", aten.bitwise_not.default, _bitwise_not, typed(INTS | {torch.bool}))
    yield spec("nan_to_num", aten.nan_to_num.default, _nan_to_num, _nan_to_num_supported)
    yield spec("square", aten.square.default, _square, typed(NUMERIC))
    yield spec("logit", aten.logit.default, _logit, _FLOAT_ONLY)
