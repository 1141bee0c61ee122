"""Built-in converters for scans along one dim: ``cumsum``, ``cumprod``, ``logcumsumexp``,
``cummax`` and ``cummin``.

``cumsum`` is TensorRT's Cumulative layer (its only operation is SUM). The others are a
Hillis-Steele scan: ``ceil(log2(n))`` steps of ``y = y (op) shift(y, s)``, ``s = 1, 2, 4 ...``,
where ``shift`` is a FILL-mode slice that moves the axis by ``s`` and fills the start with the
operation's identity. Every output is combined from exactly the elements torch combines, only in
another association order (exact for max/min, rounding-level for products and log-sum-exp,
where ``exp(cumsum(log))`` would fail on zeros and negatives). The scanned dim must be static
(the steps are unrolled) and at most :data:`MAX_SCAN` long; the other dims may be dynamic.

``cummax``/``cummin`` indices are torch's: the LAST position holding the running extreme, i.e.
the running max of ``where(x == running_extreme, position, 0)``. NaN is not propagated as torch
propagates it (TensorRT's max/min decide).

Floats accumulate in float32 (``ctx.upcast``); int32 and bool sums and products accumulate in
int64, torch's result dtype.
"""
from __future__ import annotations

import math
import operator
from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import (
    FLOATS, NUMERIC, arg, aten, elementwise, is_dynamic, norm_dim, out_dtype, shape_tensor,
    trt_dims, typed, unary, val,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt

MAX_SCAN = 4096
"""Longest dim the unrolled scans take (12 steps)."""
_IN = NUMERIC | {torch.bool}


def _reads(node: torch.fx.Node, index: int) -> bool:
    return any(u.target is not operator.getitem or u.args[1] == index for u in node.users)


def _work(ctx, node, x, index=None):
    """``x`` in the dtype to scan in: the result's (``dtype=``, int64 for int32/bool sums), then
    float32 for floats."""
    return ctx.upcast(ctx.cast(x, out_dtype(ctx, node, index), node), node)


def _cumsum(ctx, node, args, kwargs):
    x = args[0]
    axis = norm_dim(args[1], len(x.shape))
    work = _work(ctx, node, x)
    axis_tensor = ctx.constant(torch.tensor(axis, dtype=torch.int32), node, dtype=torch.int32)
    layer = ctx.network.add_cumulative(work, axis_tensor, trt.CumulativeOperation.SUM, False, False)
    return ctx.cast(ctx.finish(layer, node), out_dtype(ctx, node), node)


# -- the unrolled scan ----------------------------------------------------------------------------
def _identity(op: str, dtype: torch.dtype):
    if op == "PROD":
        return 1
    if op == "LOGADDEXP":
        return -math.inf
    if dtype.is_floating_point:
        return -math.inf if op == "MAX" else math.inf
    info = torch.iinfo(dtype)
    return info.min if op == "MAX" else info.max


def _shift(ctx, node, y, axis: int, step: int, fill, shape):
    """``y`` moved ``step`` places along ``axis``, the first ``step`` filled with ``fill``."""
    rank = len(y.shape)
    starts = [0] * rank
    starts[axis] = -step
    dynamic = is_dynamic(shape)
    layer = ctx.network.add_slice(y, tuple(starts), (1,) * rank if dynamic else trt_dims(shape),
                                  (1,) * rank)
    if dynamic:
        layer.set_input(2, shape_tensor(ctx, shape, node))
    layer.mode = trt.SampleMode.FILL
    dtype = ctx.dtype(y)
    layer.set_input(4, ctx.constant(torch.tensor(fill, dtype=torch.float32 if dtype.is_floating_point
                                                 else dtype), node, dtype=dtype))
    return ctx.name(layer, node, f"shift_{step}").get_output(0)


def _logaddexp(ctx, node, a, b):
    """``log(exp(a) + exp(b))``: ``hi + log(1 + exp(lo - hi))``, and ``hi`` itself where it is
    infinite (both -inf, or a +inf), where the formula gives NaN."""
    hi = elementwise(ctx, a, b, "MAX", node, torch.float32, "hi")
    lo = elementwise(ctx, a, b, "MIN", node, torch.float32, "lo")
    gap = unary(ctx, elementwise(ctx, lo, hi, "SUB", node, torch.float32, "gap"), "EXP", node)
    one_plus = elementwise(ctx, gap, 1.0, "SUM", node, torch.float32, "one_plus")
    summed = elementwise(ctx, hi, unary(ctx, one_plus, "LOG", node), "SUM", node, torch.float32)
    layer = ctx.network.add_select(unary(ctx, hi, "ISINF", node), hi, summed)
    return ctx.name(layer, node, "logaddexp").get_output(0)


def _scan(ctx, node, y, op: str, axis: int):
    shape = val(node.args[0]).shape
    n = shape[axis]
    fill = _identity(op, ctx.dtype(y))
    step = 1
    while step < n:
        shifted = _shift(ctx, node, y, axis, step, fill, shape)
        if op == "LOGADDEXP":
            y = _logaddexp(ctx, node, y, shifted)
        else:
            y = elementwise(ctx, y, shifted, op, node, ctx.dtype(y), f"scan_{step}")
        step *= 2
    return y


def _scan_op(op: str):
    """cumprod (x, dim, *, dtype=None) and logcumsumexp (x, dim)."""
    def convert(ctx, node, args, kwargs):
        x = args[0]
        axis = norm_dim(args[1], len(x.shape))
        return ctx.cast(_scan(ctx, node, _work(ctx, node, x), op, axis), out_dtype(ctx, node), node)
    return convert


def _running_extreme(op: str):
    """cummax / cummin (x, dim) -> (values, indices)."""
    def convert(ctx, node, args, kwargs):
        x = args[0]
        rank = len(x.shape)
        axis = norm_dim(args[1], rank)
        work = ctx.cast(x, torch.int32, node) if ctx.dtype(x) == torch.bool else x
        running = _scan(ctx, node, work, op, axis)
        values = ctx.cast(running, out_dtype(ctx, node, 0), node) if _reads(node, 0) else None
        indices = None
        if _reads(node, 1):
            n = val(node.args[0]).shape[axis]
            view = [1] * rank
            view[axis] = n
            position = ctx.constant(torch.arange(n, dtype=torch.int32).reshape(view), node,
                                    dtype=torch.int32)
            hit = elementwise(ctx, work, running, "EQUAL", node, ctx.dtype(work), "is_extreme")
            layer = ctx.network.add_select(hit, position, ctx.scalar(0, torch.int32, rank, node))
            latest = ctx.name(layer, node, "positions").get_output(0)
            indices = ctx.cast(_scan(ctx, node, latest, "MAX", axis), out_dtype(ctx, node, 1), node)
        return values, indices
    return convert


# -- validators -----------------------------------------------------------------------------------
def _supported(results, inputs, unrolled: bool):
    check = typed(results, inputs)

    def is_supported(node: torch.fx.Node, settings) -> bool:
        x = val(node.args[0]) if node.args else None
        dim = arg(node.args, node.kwargs, 1, "dim")
        if not isinstance(x, torch.Tensor) or x.dim() == 0 or not isinstance(dim, int):
            return False
        if unrolled:
            n = x.shape[norm_dim(dim, x.dim())]
            if not isinstance(n, int) or n > MAX_SCAN:
                return False
        return check(node, settings)
    return is_supported


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    specs = [
        ("cumsum", aten.cumsum.default, _cumsum, _supported(NUMERIC, _IN, False)),
        ("cumprod", aten.cumprod.default, _scan_op("PROD"), _supported(NUMERIC, _IN, True)),
        ("logcumsumexp", aten.logcumsumexp.default, _scan_op("LOGADDEXP"),
         _supported(FLOATS, FLOATS, True)),
        ("cummax", aten.cummax.default, _running_extreme("MAX"), _supported(_IN, _IN, True)),
        ("cummin", aten.cummin.default, _running_extreme("MIN"), _supported(_IN, _IN, True)),
    ]
    for name, target, convert, check in specs:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=convert,
                            is_supported=check, supports_dynamic_shapes=True)
