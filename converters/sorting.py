"""Built-in converters for sorting and selection on TensorRT's TopK layer: ``topk``, ``sort``
(``.default``, ``.stable``), ``argsort`` (``.default``, ``.stable``) and ``kthvalue``.

TopK's limits (TensorRT's operator docs): ``k <= 3840`` and ``k <=`` the axis' size, the axis one
of the last four dims, an input of rank >= 2 (a vector is lifted to a row and back), no bool
input (bools are sorted as int32). ``sort`` is TopK with ``k`` the whole axis, so the sorted axis
must be static and at most 3840 long; ``topk`` takes a dynamic axis (``k`` is a constant).

Ties: TensorRT does not document which of several equal values TopK reports first. torch makes
no promise either for ``topk``, ``kthvalue`` and unstable ``sort``/``argsort``, so those convert;
a stable sort (``stable=True``) is converted only for int32 and bool inputs, where the sort key
``x * n + position`` (int64) has no ties and so fixes torch's order; for floats and int64 it
stays in PyTorch. NaN (torch sorts it as the largest value) gets TensorRT's order.
"""
from __future__ import annotations

import operator
from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import INTS, NUMERIC, aten, arg, elementwise, lift_rank, \
    norm_dim, out_dtype, typed, val
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt

MAX_K = 3840
"""TensorRT's largest TopK ``k``."""
_IN = NUMERIC | {torch.bool}


def _reads(node: torch.fx.Node, index: int) -> bool:
    return any(u.target is not operator.getitem or u.args[1] == index for u in node.users)


def _top(ctx, node, x, largest: bool, k: int, dim: int, index_dtype: torch.dtype):
    """(values, indices) of the ``k`` largest/smallest along ``dim``, sorted; values in ``x``'s
    dtype (bool sorted as int32), indices in ``index_dtype``; the result has ``x``'s rank."""
    rank = len(x.shape)
    axis = norm_dim(dim, rank)
    work = ctx.cast(x, torch.int32, node) if ctx.dtype(x) == torch.bool else x
    lifted = lift_rank(ctx, work, 2, node)
    axis += len(lifted.shape) - rank
    op = trt.TopKOperation.MAX if largest else trt.TopKOperation.MIN
    layer = ctx.network.add_topk(lifted, op, k, 1 << axis,
                                 trt.int64 if index_dtype == torch.int64 else trt.int32)
    ctx.name(layer, node, "topk")
    values, indices = layer.get_output(0), layer.get_output(1)
    if lifted is not work:  # drop the row dim again
        values = ctx.reshape(values, (k,), node)
        indices = ctx.reshape(indices, (k,), node)
    return ctx.cast(values, ctx.dtype(x), node), indices


def _index_dtype(ctx, node, index: int) -> torch.dtype:
    return out_dtype(ctx, node, index)


def _topk(ctx, node, args, kwargs):
    x, k = args[0], args[1]
    dim = args[2] if len(args) > 2 else kwargs.get("dim", -1)
    largest = args[3] if len(args) > 3 else kwargs.get("largest", True)
    return _top(ctx, node, x, largest, k, dim, _index_dtype(ctx, node, 1))


def _sort_args(node, args, kwargs, stable_overload: bool):
    if stable_overload:  # sort.stable(x, *, stable, dim=-1, descending=False)
        return (kwargs.get("stable"), kwargs.get("dim", -1), kwargs.get("descending", False))
    dim = args[1] if len(args) > 1 else kwargs.get("dim", -1)
    descending = args[2] if len(args) > 2 else kwargs.get("descending", False)
    return False, dim, descending


def _stable_order(ctx, node, x, dim: int, descending: bool, index_dtype: torch.dtype):
    """Indices of torch's stable sort of int32 ``x`` along ``dim``: TopK of the tie-free int64
    key ``x * n + position`` (``n - 1 - position`` descending, so equal values keep their order)."""
    rank = len(x.shape)
    axis = norm_dim(dim, rank)
    n = val(node.args[0]).shape[axis]
    shape = [1] * rank
    shape[axis] = n
    position = torch.arange(n, dtype=torch.int64)
    if descending:
        position = n - 1 - position
    scaled = elementwise(ctx, ctx.cast(x, torch.int64, node), n, "PROD", node, torch.int64, "scale")
    key = elementwise(ctx, scaled, position.reshape(shape), "SUM", node, torch.int64, "sort_key")
    return _top(ctx, node, key, descending, n, axis, index_dtype)[1]


def _gather_along(ctx, node, x, indices, dim: int):
    layer = ctx.network.add_gather(x, indices, norm_dim(dim, len(x.shape)))
    layer.mode = trt.GatherMode.ELEMENT
    return ctx.finish(layer, node, suffix="gather_sorted")


def _sort(stable_overload: bool, indices_only: bool):
    def convert(ctx, node, args, kwargs):
        x = args[0]
        stable, dim, descending = _sort_args(node, args, kwargs, stable_overload)
        n = val(node.args[0]).shape[norm_dim(dim, len(x.shape))]
        index_at = None if indices_only else 1
        index_dtype = _index_dtype(ctx, node, index_at)
        if stable:
            work = ctx.cast(x, torch.int32, node) if ctx.dtype(x) == torch.bool else x
            indices = _stable_order(ctx, node, work, dim, descending, index_dtype)
            if indices_only:
                return indices
            values = _gather_along(ctx, node, x, indices, dim) if _reads(node, 0) else None
            return values, indices
        values, indices = _top(ctx, node, x, descending, n, dim, index_dtype)
        return indices if indices_only else (values, indices)
    return convert


def _kthvalue(ctx, node, args, kwargs):
    """The k-th smallest along ``dim``: element ``k - 1`` of the k smallest, taken by a gather
    with a constant index (0-d drops the axis, one element keeps it: ``keepdim``)."""
    x, k = args[0], args[1]
    dim = args[2] if len(args) > 2 else kwargs.get("dim", -1)
    keepdim = args[3] if len(args) > 3 else kwargs.get("keepdim", False)
    values, indices = _top(ctx, node, x, False, k, dim, _index_dtype(ctx, node, 1))
    axis = norm_dim(dim, len(x.shape))
    at = ctx.constant(torch.tensor([k - 1] if keepdim else k - 1, dtype=torch.int32), node)
    results = []
    for i, t in enumerate((values, indices)):
        if _reads(node, i):
            results.append(ctx.finish(ctx.network.add_gather(t, at, axis), node, suffix="kth"))
        else:
            results.append(None)
    return tuple(results)


# -- validators -----------------------------------------------------------------------------------
def _axis_ok(x: torch.Tensor, dim) -> bool:
    """``dim`` an int naming one of the last four dims (TopK's rule)."""
    if not isinstance(dim, int) or x.dim() == 0:
        return False
    return norm_dim(dim, x.dim()) >= x.dim() - 4


def _topk_supported(node: torch.fx.Node, settings) -> bool:
    x = val(node.args[0]) if node.args else None
    k = arg(node.args, node.kwargs, 1, "k")
    if not isinstance(x, torch.Tensor) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        return False
    return _axis_ok(x, arg(node.args, node.kwargs, 2, "dim", -1)) and typed(_IN | INTS, _IN)(node, settings)


def _sort_supported(stable_overload: bool):
    def is_supported(node: torch.fx.Node, settings) -> bool:
        x = val(node.args[0]) if node.args else None
        if not isinstance(x, torch.Tensor):
            return False
        if stable_overload:
            stable, dim = node.kwargs.get("stable"), node.kwargs.get("dim", -1)
        else:
            stable, dim = False, arg(node.args, node.kwargs, 1, "dim", -1)
        if not _axis_ok(x, dim):
            return False
        n = x.shape[norm_dim(dim, x.dim())]
        if not isinstance(n, int) or not 1 <= n <= MAX_K:  # k is the whole axis
            return False
        if stable and x.dtype not in (torch.int32, torch.bool):
            return False  # no tie-free key: TensorRT's tie order is not documented
        return typed(_IN | INTS, _IN)(node, settings)
    return is_supported


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    specs = [
        ("topk", aten.topk.default, _topk, _topk_supported),
        ("sort", aten.sort.default, _sort(False, False), _sort_supported(False)),
        ("sort.stable", aten.sort.stable, _sort(True, False), _sort_supported(True)),
        ("argsort", aten.argsort.default, _sort(False, True), _sort_supported(False)),
        ("argsort.stable", aten.argsort.stable, _sort(True, True), _sort_supported(True)),
        ("kthvalue", aten.kthvalue.default, _kthvalue, _topk_supported),
    ]
    for name, target, convert, check in specs:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=convert,
                            is_supported=check, supports_dynamic_shapes=True)

