"""Built-in converters for reductions and softmax: sum, mean, amax, amin, softmax and
log_softmax (``_softmax``, ``softmax.int``, ``_safe_softmax``, ``_log_softmax``,
``log_softmax.int``).

Floats accumulate in float32 (``ctx.upcast``) whatever the engine's precision; the result is
cast to its own engine dtype afterwards. Integer sums accumulate in the result's dtype (torch
sums int32 and bool into int64). An empty ``dim`` list, or None, reduces every dim.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import (
    FLOATS, NUMERIC, arg, aten, elementwise, lift_rank, norm_dim, out_dtype, reduce, reshape_to,
    typed, unary, val,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec

_IN = NUMERIC | {torch.bool}


def _dims(dim, rank: int) -> list[int]:
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return list(range(rank))
    return sorted({norm_dim(d, rank) for d in ([dim] if isinstance(dim, int) else dim)})


def _accumulate(ctx, node, x, dtype_arg):
    """``x`` in the dtype to reduce in: the result's (after ``dtype=``), float32 for floats."""
    dtype = out_dtype(ctx, node)
    if dtype_arg is not None:
        x = ctx.cast(x, ctx.engine_dtype(dtype_arg), node)
    x = ctx.cast(x, dtype, node)
    return ctx.upcast(x, node)


def _reduction(op: str, dims_index: int | None):
    """sum/mean/amax/amin; ``dims_index`` is where the dims argument is (None: all dims)."""
    def convert(ctx, node, args, kwargs):
        x = args[0]
        rank = len(x.shape)
        if dims_index is None:
            dims, keepdim, dtype_arg = list(range(rank)), False, arg(args, kwargs, 1, "dtype")
        else:
            dims = _dims(arg(args, kwargs, dims_index, "dim"), rank)
            keepdim = arg(args, kwargs, dims_index + 1, "keepdim", False)
            dtype_arg = arg(args, kwargs, dims_index + 2, "dtype") if op in ("SUM", "AVG") else None
        work = _accumulate(ctx, node, x, dtype_arg)
        out = reduce(ctx, work, op, dims, keepdim, node)
        return ctx.cast(out, out_dtype(ctx, node), node)
    return convert


def _reduction_supported(allowed, dims_index: int | None):
    check = typed(allowed, _IN)

    def is_supported(node: torch.fx.Node, settings) -> bool:
        x = val(node.args[0])
        if not isinstance(x, torch.Tensor) or x.dim() == 0 or not check(node, settings):
            return False
        if dims_index is not None:
            dim = node.args[dims_index] if len(node.args) > dims_index else node.kwargs.get("dim")
            if dim is not None and not (isinstance(dim, int) or all(isinstance(d, int) for d in dim)):
                return False
        return True
    return is_supported


def _softmax(log: bool):
    def convert(ctx, node, args, kwargs):
        x = args[0]
        dim = norm_dim(args[1], len(x.shape))
        dtype_arg = kwargs.get("dtype", args[2] if len(args) > 2 and not isinstance(args[2], bool)
                               else None)
        work = _accumulate(ctx, node, x, dtype_arg)
        if not log:  # TensorRT's softmax layer wants rank >= 2: lift a vector to a row
            lifted = lift_rank(ctx, work, 2, node)
            layer = ctx.network.add_softmax(lifted)
            layer.axes = 1 << (dim + len(lifted.shape) - len(work.shape))
            out = ctx.name(layer, node, "softmax").get_output(0)
            if lifted is not work:
                out = reshape_to(ctx, out, val(node.args[0]).shape, node)
        else:  # x - max - log(sum(exp(x - max))): stable for large logits
            shifted = elementwise(ctx, work, reduce(ctx, work, "MAX", [dim], True, node), "SUB",
                                  node, torch.float32, "shift")
            total = reduce(ctx, unary(ctx, shifted, "EXP", node), "SUM", [dim], True, node)
            out = elementwise(ctx, shifted, unary(ctx, total, "LOG", node), "SUB", node,
                              ctx.dtype(work), "log_softmax")
        return ctx.cast(out, out_dtype(ctx, node), node)
    return convert


def _safe_softmax(ctx, node, args, kwargs):
    """softmax, but 0 (not NaN) on rows that are all -inf: attention's fully masked rows."""
    out = _softmax(log=False)(ctx, node, args, kwargs)
    x = ctx.upcast(args[0], node)
    dim = norm_dim(args[1], len(x.shape))
    row_max = reduce(ctx, x, "MAX", [dim], True, node, "row_max")
    dead = elementwise(ctx, row_max, -math.inf, "EQUAL", node, torch.float32, "dead_row")
    rank = len(out.shape)
    layer = ctx.network.add_select(ctx.operand(dead, torch.bool, rank, node),
                                   ctx.operand(0.0, ctx.dtype(out), rank, node), out)
    return ctx.finish(layer, node, suffix="safe")


def _softmax_supported(node, settings) -> bool:
    x = val(node.args[0])
    return (isinstance(x, torch.Tensor) and x.dim() >= 1 and x.dtype in FLOATS
            and typed(FLOATS)(node, settings))


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    table = [  # (name, target, trt op, dims index, result dtypes)
        ("sum.dim_intlist", aten.sum.dim_IntList, "SUM", 1, NUMERIC),
        ("sum", aten.sum.default, "SUM", None, NUMERIC),
        ("mean.dim", aten.mean.dim, "AVG", 1, FLOATS),
        ("mean", aten.mean.default, "AVG", None, FLOATS),
        ("amax", aten.amax.default, "MAX", 1, NUMERIC),
        ("amin", aten.amin.default, "MIN", 1, NUMERIC),
    ]
    for name, target, op, dims_index, allowed in table:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_reduction(op, dims_index),
                            is_supported=_reduction_supported(allowed, dims_index),
                        supports_dynamic_shapes=True)
    for name, target, log in [("_softmax", aten._softmax.default, False),
                              ("softmax.int", aten.softmax.int, False),
                              ("_log_softmax", aten._log_softmax.default, True),
                              ("log_softmax.int", aten.log_softmax.int, True)]:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_softmax(log),
                            is_supported=_softmax_supported,
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin._safe_softmax", target=aten._safe_softmax.default,
                        convert=_safe_softmax, is_supported=_softmax_supported,
                        supports_dynamic_shapes=True)
