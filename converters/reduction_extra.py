"""Built-in converters for the reductions beyond sum/mean/amax/amin: ``prod``, ``max``/``min``
(whole tensor, and along a dim with indices), ``argmax``/``argmin``, ``aminmax``, ``any``/``all``,
``count_nonzero`` and ``logsumexp``.

Floats accumulate in float32 (``ctx.upcast``) where the op accumulates (``prod``,
``logsumexp``); extremes are exact in any dtype and are taken in the input's own. Integer
products accumulate in the result's dtype (int64: torch widens int32 and bool).

Indices (``argmax``, ``max.dim`` ...) are exactly torch's: the FIRST position holding the
extreme. TensorRT's TopK layer does not document which of several equal values it reports, so
indices are computed as ``min(where(x == extreme, iota, int32 max))`` over the dim, with
``iota`` a constant, or a LINSPACE fill where the reduced dim is dynamic; argmax/argmin over the
whole (flattened) tensor need a static shape. NaN is not an extreme
here as it is in torch (whose ``max`` propagates NaN): inputs with NaN give TensorRT's answer.

TensorRT's Reduce and TopK layers take no bool tensors: bools are reduced as int32.
"""
from __future__ import annotations

import math
import operator
from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import (
    FLOATS, INTS, NUMERIC, arg, aten, elementwise, norm_dim, out_dtype, reduce, shape_tensor,
    typed, unary, val,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt

_IN = NUMERIC | {torch.bool}


def _dims(dim, rank: int) -> list[int]:
    """Sorted, normalised dims; None or an empty list is every dim."""
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return list(range(rank))
    return sorted({norm_dim(d, rank) for d in ([dim] if isinstance(dim, int) else dim)})


def _int_dims(dim) -> bool:
    return dim is None or isinstance(dim, int) or (
        isinstance(dim, (list, tuple)) and all(isinstance(d, int) for d in dim))


def _reads(node: torch.fx.Node, index: int) -> bool:
    """Some user reads element ``index`` of the node's tuple result."""
    return any(u.target is not operator.getitem or u.args[1] == index for u in node.users)


def _input(node: torch.fx.Node) -> torch.Tensor | None:
    x = val(node.args[0]) if node.args else None
    return x if isinstance(x, torch.Tensor) else None


def _reducible(ctx, x, node):
    """``x`` in a dtype TensorRT's Reduce layer takes (bool as int32)."""
    return ctx.cast(x, torch.int32, node) if ctx.dtype(x) == torch.bool else x


def _finish(ctx, node, out, index=None):
    """``out`` in the result's engine dtype and recorded shape (a keepdim over every dim)."""
    out = ctx.cast(out, out_dtype(ctx, node, index), node)
    want = val(node) if index is None else val(node)[index]
    if len(out.shape) != want.dim():
        out = ctx.reshape(out, tuple(want.shape), node)
    return out


def _nonzero(ctx, x, node):
    """bool ``x != 0`` (NaN counts as nonzero, as in torch)."""
    if ctx.dtype(x) == torch.bool:
        return x
    zero = elementwise(ctx, x, 0, "EQUAL", node, ctx.dtype(x), "is_zero")
    return unary(ctx, zero, "NOT", node, "nonzero")


# -- prod --------------------------------------------------------------------------------
def _prod(all_dims: bool):
    def convert(ctx, node, args, kwargs):
        x = args[0]
        rank = len(x.shape)
        if all_dims:
            dims, keepdim = list(range(rank)), False
        else:
            dims, keepdim = _dims(args[1], rank), arg(args, kwargs, 2, "keepdim", False)
        work = ctx.upcast(ctx.cast(x, out_dtype(ctx, node), node), node)
        return _finish(ctx, node, reduce(ctx, work, "PROD", dims, keepdim, node))
    return convert


# -- extremes and their indices ----------------------------------------------------------
def _iota(ctx, n, axis: int, rank: int, node):
    """int32 positions ``0..n-1`` along ``axis``, unit dims elsewhere: a constant for a static
    ``n``, a LINSPACE fill shaped by the symbolic size otherwise."""
    shape = [1] * rank
    shape[axis] = n
    if isinstance(n, int):
        return ctx.constant(torch.arange(n, dtype=torch.int32).reshape(shape), node,
                            dtype=torch.int32)
    layer = ctx.network.add_fill((1,) * rank, trt.FillOperation.LINSPACE, trt.int32)
    layer.set_input(0, shape_tensor(ctx, shape, node))
    layer.set_input(1, ctx.constant(torch.tensor(0, dtype=torch.int32), node, dtype=torch.int32))
    step = torch.zeros(rank, dtype=torch.int32)
    step[axis] = 1
    layer.set_input(2, ctx.constant(step, node, dtype=torch.int32))
    return ctx.name(layer, node, "iota").get_output(0)


def _first_index(ctx, node, x, extreme, axis: int, keepdim: bool, n: int):
    """int32 index of the first element of ``x`` along ``axis`` equal to ``extreme`` (which has
    ``axis`` kept)."""
    rank = len(x.shape)
    hit = elementwise(ctx, x, extreme, "EQUAL", node, ctx.dtype(x), "is_extreme")
    # where no element hits (NaN rows), any position beyond the last: int32's max
    layer = ctx.network.add_select(hit, _iota(ctx, n, axis, rank, node),
                                   ctx.scalar(torch.iinfo(torch.int32).max, torch.int32, rank, node))
    candidates = ctx.name(layer, node, "candidates").get_output(0)
    return reduce(ctx, candidates, "MIN", [axis], keepdim, node, "first_index")


def _extreme_dim(op: str):
    """max.dim / min.dim: (values, indices) along one dim."""
    def convert(ctx, node, args, kwargs):
        x = _reducible(ctx, args[0], node)
        axis = norm_dim(args[1], len(x.shape))
        keepdim = arg(args, kwargs, 2, "keepdim", False)
        kept = reduce(ctx, x, op, [axis], True, node)
        values = None
        if _reads(node, 0):
            values = kept if keepdim else ctx.reshape(kept, tuple(val(node)[0].shape), node)
            values = _finish(ctx, node, values, 0)
        indices = None
        if _reads(node, 1):
            n = val(node.args[0]).shape[axis]
            indices = _finish(ctx, node, _first_index(ctx, node, x, kept, axis, keepdim, n), 1)
        return values, indices
    return convert


def _arg_extreme(op: str):
    """argmax / argmin, along a dim or over the flattened tensor (dim None)."""
    def convert(ctx, node, args, kwargs):
        x = _reducible(ctx, args[0], node)
        dim = arg(args, kwargs, 1, "dim")
        keepdim = arg(args, kwargs, 2, "keepdim", False)
        shape = tuple(val(node.args[0]).shape)
        if dim is None:
            x = ctx.reshape(x, (math.prod(shape),), node)
            axis, n = 0, math.prod(shape)
        else:
            axis = norm_dim(dim, len(shape))
            n = shape[axis] if shape else 1
            if not shape:
                x = ctx.reshape(x, (1,), node)
        kept = reduce(ctx, x, op, [axis], True, node)
        return _finish(ctx, node, _first_index(ctx, node, x, kept, axis, keepdim and dim is not None, n))
    return convert


def _extreme_all(op: str):
    def convert(ctx, node, args, kwargs):
        x = _reducible(ctx, args[0], node)
        return _finish(ctx, node, reduce(ctx, x, op, range(len(x.shape)), False, node))
    return convert


def _aminmax(ctx, node, args, kwargs):
    x = _reducible(ctx, args[0], node)
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    keepdim = kwargs.get("keepdim", args[2] if len(args) > 2 else False)
    dims = _dims(dim, len(x.shape))
    return tuple(_finish(ctx, node, reduce(ctx, x, op, dims, keepdim, node), i) if _reads(node, i)
                 else None for i, op in enumerate(("MIN", "MAX")))


# -- any, all, count_nonzero ----------------------------------------------------------------
def _logical(op: str, kind: str):
    """any/all (``op`` MAX/MIN over 0/1 values); ``kind``: default, dim or dims. An empty dims
    list reduces no dim (``any.dims(x, [])`` is ``x != 0``), unlike None, which reduces all."""
    def convert(ctx, node, args, kwargs):
        x = args[0]
        rank = len(x.shape)
        if kind == "default":
            dims, keepdim = list(range(rank)), False
        else:
            dim = arg(args, kwargs, 1, "dim")
            if isinstance(dim, (list, tuple)) and len(dim) == 0:  # torch reduces nothing here
                return _finish(ctx, node, _nonzero(ctx, x, node))
            dims = _dims(dim, rank)
            keepdim = arg(args, kwargs, 2, "keepdim", False)
        flags = ctx.cast(_nonzero(ctx, x, node), torch.int32, node)
        return _finish(ctx, node, reduce(ctx, flags, op, dims, keepdim, node))
    return convert


def _count_nonzero(ctx, node, args, kwargs):
    x = args[0]
    dims = _dims(arg(args, kwargs, 1, "dim"), len(x.shape))
    flags = ctx.cast(_nonzero(ctx, x, node), out_dtype(ctx, node), node)
    return _finish(ctx, node, reduce(ctx, flags, "SUM", dims, False, node))


# -- logsumexp ------------------------------------------------------------------------------
def _logsumexp(ctx, node, args, kwargs):
    """``m + log(sum(exp(x - m)))`` with ``m`` the max, or 0 where the max is infinite (torch's
    rule: a row of -inf gives -inf, a row holding +inf gives +inf, not NaN)."""
    x = ctx.upcast(ctx.cast(args[0], out_dtype(ctx, node), node), node)
    dims = _dims(args[1], len(x.shape))
    keepdim = arg(args, kwargs, 2, "keepdim", False)
    rank = len(x.shape)
    top = reduce(ctx, x, "MAX", dims, True, node, "max")
    infinite = unary(ctx, top, "ISINF", node)
    layer = ctx.network.add_select(infinite, ctx.scalar(0.0, torch.float32, rank, node), top)
    shift = ctx.name(layer, node, "finite_max").get_output(0)
    centred = elementwise(ctx, x, shift, "SUB", node, torch.float32, "centre")
    total = reduce(ctx, unary(ctx, centred, "EXP", node), "SUM", dims, keepdim, node)
    if not keepdim:
        shift = ctx.reshape(shift, tuple(val(node).shape), node)
    out = elementwise(ctx, unary(ctx, total, "LOG", node), shift, "SUM", node, torch.float32)
    return _finish(ctx, node, out)


# -- validators ---------------------------------------------------------------------------------
def _supported(results, inputs=_IN, dims_at: int | None = None, dims_name: str = "dim",
               static_dim: bool = False, dim_optional: bool = False, min_rank: int = 1):
    """Input of ``inputs`` dtypes with at least ``min_rank`` dims, results of ``results``;
    the dims argument (at ``dims_at``) made of ints; with ``static_dim`` a None dim (the whole
    tensor, flattened) needs a static shape."""
    check = typed(results, inputs)

    def is_supported(node: torch.fx.Node, settings) -> bool:
        x = _input(node)
        if x is None or x.dim() < min_rank or not check(node, settings):
            return False
        if dims_at is None:
            return True
        dim = arg(node.args, node.kwargs, dims_at, dims_name)
        if not _int_dims(dim) or (dim is None and not dim_optional):
            return False
        if isinstance(dim, (list, tuple)) and len(dim) == 0 and not dim_optional:
            return False
        if static_dim and dim is None:  # flattened to one static axis
            return all(isinstance(s, int) for s in x.shape)
        return True
    return is_supported


def _aminmax_supported(node, settings) -> bool:
    x = _input(node)
    dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
    return (x is not None and x.dim() >= 1 and (dim is None or isinstance(dim, int))
            and typed(_IN)(node, settings))


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    prod_out = NUMERIC | {torch.bool}
    specs = [
        ("prod", aten.prod.default, _prod(True), _supported(prod_out)),
        ("prod.dim_int", aten.prod.dim_int, _prod(False), _supported(prod_out, dims_at=1)),
        ("max", aten.max.default, _extreme_all("MAX"), _supported(_IN)),
        ("min", aten.min.default, _extreme_all("MIN"), _supported(_IN)),
        ("max.dim", aten.max.dim, _extreme_dim("MAX"),
         _supported(_IN, dims_at=1, static_dim=True)),
        ("min.dim", aten.min.dim, _extreme_dim("MIN"),
         _supported(_IN, dims_at=1, static_dim=True)),
        ("argmax", aten.argmax.default, _arg_extreme("MAX"),
         _supported(INTS, FLOATS | INTS, dims_at=1, static_dim=True, dim_optional=True, min_rank=0)),
        ("argmin", aten.argmin.default, _arg_extreme("MIN"),
         _supported(INTS, FLOATS | INTS, dims_at=1, static_dim=True, dim_optional=True, min_rank=0)),
        ("aminmax", aten.aminmax.default, _aminmax, _aminmax_supported),
        ("any", aten.any.default, _logical("MAX", "default"), _supported({torch.bool})),
        ("any.dim", aten.any.dim, _logical("MAX", "dim"), _supported({torch.bool}, dims_at=1)),
        ("any.dims", aten.any.dims, _logical("MAX", "dims"),
         _supported({torch.bool}, dims_at=1, dim_optional=True)),
        ("all", aten.all.default, _logical("MIN", "default"), _supported({torch.bool})),
        ("all.dim", aten.all.dim, _logical("MIN", "dim"), _supported({torch.bool}, dims_at=1)),
        ("all.dims", aten.all.dims, _logical("MIN", "dims"),
         _supported({torch.bool}, dims_at=1, dim_optional=True)),
        ("count_nonzero", aten.count_nonzero.default, _count_nonzero,
         _supported(INTS, dims_at=1, dim_optional=True)),
        ("count_nonzero.dim_intlist", aten.count_nonzero.dim_IntList, _count_nonzero,
         _supported(INTS, dims_at=1, dim_optional=True)),
        ("logsumexp", aten.logsumexp.default, _logsumexp,
         _supported(FLOATS, FLOATS | INTS | {torch.bool}, dims_at=1)),
    ]
    for name, target, convert, check in specs:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=convert,
                            is_supported=check, supports_dynamic_shapes=True)

