"""Built-in converters for writing by index: ``scatter`` (src / value), the reducing scatters
(``scatter_add``, ``scatter_reduce.two``, ``scatter.reduce``), ``slice_scatter``,
``select_scatter``, ``diagonal_scatter``, ``index_copy``, ``index_fill`` and ``index_add``.

Plain writes map onto TensorRT's SCATTER layer (ELEMENT mode for torch's per-element scatter,
ND mode for whole slices). TensorRT's scatter has no reduction: where indices may repeat, the
sum (product, max, min, mean) is built instead from a one-hot comparison of the indices with
every position of the scattered dim, a select and a REDUCE over the index dim. That costs
``index.numel() * size`` elements, so those converters take static shapes and decline beyond
``_ONE_HOT_LIMIT`` elements.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import (
    FLOATS, INTS, NUMERIC, arg, aten, broadcast_to, constant_value, elementwise, is_dynamic,
    nonempty, norm_dim, out_dtype, reduce, same_shape, select, sizes_computable, slice_to,
    static_shapes, val, wrap_index,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt

_DATA = NUMERIC | {torch.bool}
_ONE_HOT_LIMIT = 1 << 22



# -- helpers shared in spirit with indexing (converter modules import only the public
# API, not each other) ---------------------------------------------------------------------------
def diagonal_geometry(shape: tuple, offset: int, dim1: int, dim2: int):
    rank = len(shape)
    d1, d2 = norm_dim(dim1, rank), norm_dim(dim2, rank)
    n1, n2 = shape[d1], shape[d2]
    row, col = (0, offset) if offset >= 0 else (-offset, 0)
    length = max(0, min(n1 - row, n2 - col))
    flat = (torch.arange(length) + row) * n2 + torch.arange(length) + col
    others = [d for d in range(rank) if d not in (d1, d2)]
    return d1, d2, others, flat


def _scatter_element(ctx, node, data, index, updates, axis: int):
    layer = ctx.network.add_scatter(data, index, updates, trt.ScatterMode.ELEMENT)
    layer.axis = axis
    return ctx.finish(layer, node, suffix="scatter_element")


def _cut(ctx, node, x, shape_from, shape_to):
    """``x`` (shape ``shape_from``) cut to its leading ``shape_to`` block (torch's scatter reads
    only the part of ``src`` that the index covers)."""
    if same_shape(shape_from, shape_to):
        return x
    return slice_to(ctx, x, (0,) * len(shape_to), shape_to, (1,) * len(shape_to), node, "cut")


# -- scatter.src / scatter.value ---------------------------------------------------------------
def _scatter(ctx, node, args, kwargs):
    x, dim, index, src = args[:4]
    rank = len(x.shape)
    axis = norm_dim(dim, rank)
    index_shape = tuple(val(node.args[2]).shape)
    dtype = out_dtype(ctx, node)
    if isinstance(node.args[3], torch.fx.Node):
        updates = _cut(ctx, node, ctx.cast(src, dtype, node), tuple(val(node.args[3]).shape), index_shape)
    else:  # scatter.value: the scalar broadcast to the index's shape
        updates = broadcast_to(ctx, ctx.scalar(src, dtype, rank, node), index_shape, node, (1,) * rank)
    return _scatter_element(ctx, node, ctx.cast(x, dtype, node), index, updates, axis)


def _scatter_ok(node: torch.fx.Node, settings) -> bool:
    x, index = val(node.args[0]), val(node.args[2])
    if not isinstance(x, torch.Tensor) or x.dtype not in _DATA or x.dim() == 0:
        return False
    reduced = arg(node.args, node.kwargs, 4, "reduce") is not None
    if index.dtype not in INTS or index.dim() != x.dim() or reduced:
        return False
    src = val(node.args[3])
    if isinstance(src, torch.Tensor) and (src.dtype != x.dtype or src.dim() != x.dim()):
        return False
    return nonempty(node)


# -- reducing scatters (one-hot) ---------------------------------------------------------------
_IDENTITY = {"sum": 0, "prod": 1, "mean": 0}
_REDUCE = {"sum": "SUM", "prod": "PROD", "amax": "MAX", "amin": "MIN", "mean": "SUM"}
_COMBINE = {"sum": "SUM", "prod": "PROD", "amax": "MAX", "amin": "MIN"}


def _extreme(dtype: torch.dtype, low: bool) -> float | int:
    if dtype in FLOATS:
        return -math.inf if low else math.inf
    info = torch.iinfo(dtype)
    return info.min if low else info.max


def scatter_reduced(ctx, node, x, axis: int, index, index_shape: tuple, src, mode: str,
                    include_self: bool, compute: torch.dtype):
    """torch's ``scatter_reduce(x, axis, index, src, mode, include_self)`` for an ``index``
    broadcastable to ``index_shape`` (``src``'s shape), whose dims other than ``axis`` equal
    ``x``'s: a one-hot ``index == n`` over the ``x.shape[axis]`` positions, REDUCE over the index
    axis, then combined with ``x`` (``compute`` is the dtype of the arithmetic)."""
    rank = len(index_shape)
    size = x.shape[axis]
    positions = torch.arange(size, dtype=torch.int32).reshape((1,) * rank + (size,))
    index = ctx.reshape(ctx.cast(index, torch.int32, node), tuple(index.shape) + (1,), node)
    hot = elementwise(ctx, index, positions, "EQUAL", node, torch.int32, "one_hot")
    hot = broadcast_to(ctx, hot, tuple(index_shape) + (size,), node)
    src = ctx.reshape(ctx.cast(src, compute, node), tuple(index_shape) + (1,), node)
    if mode in ("amax", "amin"):
        filler = _extreme(compute, mode == "amax")
    else:
        filler = _IDENTITY[mode]
    picked = select(ctx, hot, src, ctx.scalar(filler, compute, rank + 1, node), node, "pick")
    folded = reduce(ctx, picked, _REDUCE[mode], [axis], False, node)  # index dims but axis, + size
    back = list(range(rank - 1))
    back.insert(axis, rank - 1)
    folded = ctx.shuffle(folded, node, perm=back)  # the positions back on the scattered axis
    x = ctx.cast(x, compute, node)
    if mode == "mean" or not include_self:
        ones = ctx.cast(hot, compute, node)
        count = ctx.shuffle(reduce(ctx, ones, "SUM", [axis], False, node, "count"), node, perm=back)
    if mode == "mean":
        total = elementwise(ctx, folded, x, "SUM", node, compute) if include_self else folded
        if include_self:
            count = elementwise(ctx, count, 1, "SUM", node, compute, "count_self")
        hit = elementwise(ctx, count, 0, "GREATER", node, compute, "hit")
        safe = elementwise(ctx, count, 1, "MAX", node, compute, "safe_count")
        mean = elementwise(ctx, total, safe, "DIV", node, compute, "mean")
        return select(ctx, hit, mean, x, node, "mean_or_self")
    if include_self:
        return elementwise(ctx, x, folded, _COMBINE[mode], node, compute, "combine")
    hit = elementwise(ctx, count, 0, "GREATER", node, compute, "hit")
    return select(ctx, hit, folded, x, node, "reduced_or_self")


def _scatter_reduce(mode_of):
    def convert(ctx, node, args, kwargs):
        x, dim, index, src = args[:4]
        axis = norm_dim(dim, len(x.shape))
        mode, include_self = mode_of(node)
        index_shape = tuple(val(node.args[2]).shape)
        dtype = out_dtype(ctx, node)
        compute = torch.float32 if dtype in FLOATS else dtype
        if isinstance(node.args[3], torch.fx.Node):
            src = _cut(ctx, node, src, tuple(val(node.args[3]).shape), index_shape)
        else:  # a python scalar
            src = broadcast_to(ctx, ctx.scalar(src, compute, len(index_shape), node), index_shape, node,
                               (1,) * len(index_shape))
        out = scatter_reduced(ctx, node, x, axis, index, index_shape, src, mode, include_self, compute)
        return ctx.cast(out, dtype, node)
    return convert


def _two_mode(node):
    return {"sum": "sum", "prod": "prod", "amax": "amax", "amin": "amin", "mean": "mean"}[node.args[4]], \
        bool(arg(node.args, node.kwargs, 5, "include_self", True))


def _legacy_mode(node):
    return {"add": "sum", "multiply": "prod"}[arg(node.args, node.kwargs, 4, "reduce")], True


def _reduce_ok(mode_of, allowed_modes):
    def is_supported(node: torch.fx.Node, settings) -> bool:
        x, index = val(node.args[0]), val(node.args[2])
        if not isinstance(x, torch.Tensor) or x.dtype not in NUMERIC or x.dim() == 0:
            return False
        try:
            mode, _ = mode_of(node)
        except (KeyError, IndexError):
            return False
        if mode not in allowed_modes or (mode == "mean" and x.dtype not in FLOATS):
            return False  # integer mean rounds as torch's floor division: not reproduced here
        if index.dtype not in INTS or index.dim() != x.dim() or not static_shapes(node):
            return False  # the one-hot positions are folded from the static size
        src = val(node.args[3])
        if isinstance(src, torch.Tensor) and (src.dtype != x.dtype or src.dim() != x.dim()):
            return False
        axis = norm_dim(node.args[1], x.dim())
        if any(i != s for d, (i, s) in enumerate(zip(index.shape, x.shape)) if d != axis):
            return False  # an index narrower than x outside the axis would need padding; declined
        return index.numel() * x.shape[axis] <= _ONE_HOT_LIMIT
    return is_supported


# -- index_add / index_copy / index_fill -------------------------------------------------------
def _index_along(ctx, node, index, rank: int, axis: int, size):
    """A 1-D (or 0-d) index, wrapped, reshaped to lie along ``axis`` of a rank-``rank`` tensor."""
    count = val(node.args[2]).numel() if val(node.args[2]).dim() else 1
    index = wrap_index(ctx, ctx.reshape(index, (count,), node), size, node)
    shape = [1] * rank
    shape[axis] = count
    return ctx.reshape(index, tuple(shape), node)


def _index_add(ctx, node, args, kwargs):
    x, dim, index, src = args[:4]
    alpha = arg(args, kwargs, 4, "alpha", 1)
    rank = len(x.shape)
    axis = norm_dim(dim, rank)
    dtype = out_dtype(ctx, node)
    compute = torch.float32 if dtype in FLOATS else dtype
    src_shape = tuple(val(node.args[3]).shape)
    if rank and not src_shape:
        src_shape = (1,) * rank
    src = ctx.reshape(src, src_shape, node) if len(src.shape) != len(src_shape) else src
    if alpha != 1:
        src = elementwise(ctx, src, alpha, "PROD", node, compute, "alpha")
    along = _index_along(ctx, node, index, len(src_shape), axis, val(node.args[0]).shape[axis])
    out = scatter_reduced(ctx, node, x, axis, along, src_shape, src, "sum", True, compute)
    return ctx.cast(out, dtype, node)


def _index_add_ok(node: torch.fx.Node, settings) -> bool:
    x, index, src = val(node.args[0]), val(node.args[2]), val(node.args[3])
    if not isinstance(x, torch.Tensor) or x.dtype not in NUMERIC or x.dim() == 0:
        return False
    if index.dtype not in INTS or index.dim() > 1 or src.dtype != x.dtype or src.dim() != x.dim():
        return False
    if not static_shapes(node):
        return False
    axis = norm_dim(node.args[1], x.dim())
    return index.numel() * x.shape[axis] * (src.numel() // max(src.shape[axis], 1)) <= _ONE_HOT_LIMIT


def _index_copy(ctx, node, args, kwargs):
    """SCATTER/ND on ``x`` with ``dim`` moved to the front: each index names a whole slice."""
    x, dim, index, src = args[:4]
    rank = len(x.shape)
    axis = norm_dim(dim, rank)
    dtype = out_dtype(ctx, node)
    perm = [axis] + [d for d in range(rank) if d != axis]
    index_fake = val(node.args[2])
    count = index_fake.shape[0] if index_fake.dim() == 1 else 1  # may be symbolic
    src_fake = val(node.args[3])
    if src_fake.dim() == 0:
        src = ctx.reshape(src, (1,) * rank, node)
    data = ctx.shuffle(ctx.cast(x, dtype, node), node, perm=perm)
    updates = ctx.shuffle(ctx.cast(src, dtype, node), node, perm=perm)
    index = wrap_index(ctx, ctx.reshape(index, (count, 1), node), val(node.args[0]).shape[axis], node)
    layer = ctx.network.add_scatter(data, index, updates, trt.ScatterMode.ND)
    out = ctx.finish(layer, node, suffix="scatter_nd")
    back = [0] * rank
    for i, d in enumerate(perm):
        back[d] = i
    return ctx.shuffle(out, node, perm=back)


def _index_copy_ok(node: torch.fx.Node, settings) -> bool:
    x, index, src = val(node.args[0]), val(node.args[2]), val(node.args[3])
    if not isinstance(x, torch.Tensor) or x.dtype not in _DATA or x.dim() == 0:
        return False
    if index.dtype not in INTS or index.dim() > 1 or src.dtype != x.dtype or src.dim() != x.dim():
        return False
    axis = norm_dim(node.args[1], x.dim())
    return nonempty(node) and sizes_computable(index.shape) and not is_dynamic([x.shape[axis]])


def _index_fill(ctx, node, args, kwargs):
    """``where(hit, value, x)`` with ``hit`` true on the positions of ``dim`` that ``index``
    names (folded at conversion for a constant index)."""
    x, dim, index, value = args[:4]
    rank = len(x.shape)
    axis = norm_dim(dim, rank)
    dtype = out_dtype(ctx, node)
    size = val(node.args[0]).shape[axis]
    view = [1] * rank
    view[axis] = size
    constant = constant_value(node.args[2])
    if constant is not None:
        wrapped = torch.where(constant < 0, constant + size, constant).reshape(-1)
        hit = torch.zeros(size, dtype=torch.bool)
        hit[wrapped] = True
        hit = ctx.constant(hit.reshape(view), node)
    else:
        count = max(val(node.args[2]).numel(), 1)
        flat = wrap_index(ctx, ctx.reshape(ctx.cast(index, torch.int32, node), (count, 1), node), size, node)
        positions = torch.arange(size, dtype=torch.int32).reshape(1, size)
        same = ctx.cast(elementwise(ctx, flat, positions, "EQUAL", node, torch.int32, "one_hot"),
                        torch.int32, node)
        hit = reduce(ctx, same, "MAX", [0], False, node, "any")
        hit = elementwise(ctx, ctx.reshape(hit, tuple(view), node), 0, "GREATER", node, torch.int32, "hit")
    fill = ctx.operand(value, dtype, rank, node)
    return select(ctx, hit, fill, ctx.cast(x, dtype, node), node)


def _index_fill_ok(node: torch.fx.Node, settings) -> bool:
    x, index = val(node.args[0]), val(node.args[2])
    if not isinstance(x, torch.Tensor) or x.dtype not in _DATA or x.dim() == 0:
        return False
    if index.dtype not in INTS or index.dim() > 1 or not nonempty(node):
        return False
    value = val(node.args[3])
    if isinstance(value, torch.Tensor) and (value.dim() or value.dtype != x.dtype):
        return False
    if not isinstance(value, torch.Tensor) and (isinstance(value, float) and x.dtype not in FLOATS):
        return False
    axis = norm_dim(node.args[1], x.dim())
    return not is_dynamic([x.shape[axis]]) and not is_dynamic(index.shape)


# -- slice_scatter / select_scatter / diagonal_scatter -----------------------------------------
def _slice_bounds(node, size: int, start, end, step) -> tuple[int, int, int]:
    begin, stop, step = slice(start, end, step).indices(size)
    count = max(0, (stop - begin + step - 1) // step)
    return begin, count, step


def _place(ctx, node, x, src, x_shape, src_shape, axis: int, begin: int, count: int, step: int):
    """``x`` with positions ``begin, begin + step, ...`` (``count`` of them) of ``axis`` replaced
    by ``src``: a concatenation of untouched pieces and ``src`` for ``step == 1``, else a
    SCATTER/ELEMENT with constant indices."""
    rank = len(x_shape)
    size = x_shape[axis]
    if step == 1:
        pieces = []
        if begin > 0:
            sizes = list(x_shape)
            sizes[axis] = begin
            pieces.append(slice_to(ctx, x, (0,) * rank, sizes, (1,) * rank, node, "head"))
        pieces.append(src)
        if begin + count < size:
            starts, sizes = [0] * rank, list(x_shape)
            starts[axis], sizes[axis] = begin + count, size - begin - count
            pieces.append(slice_to(ctx, x, starts, sizes, (1,) * rank, node, "tail"))
        if len(pieces) == 1:
            return src
        layer = ctx.network.add_concatenation(pieces)
        layer.axis = axis
        return ctx.finish(layer, node)
    view = [1] * rank
    view[axis] = count
    index = (torch.arange(count, dtype=torch.int32) * step + begin).reshape(view).expand(src_shape)
    return _scatter_element(ctx, node, x, ctx.constant(index.contiguous(), node), src, axis)


def _slice_scatter(ctx, node, args, kwargs):
    x, src = args[:2]
    x_shape = tuple(val(node.args[0]).shape)
    dtype = out_dtype(ctx, node)
    if same_shape(val(node.args[1]).shape, x_shape):  # the whole of x replaced
        return ctx.cast(src, dtype, node)
    axis = norm_dim(arg(args, kwargs, 2, "dim", 0), len(x_shape))
    begin, count, step = _slice_bounds(node, x_shape[axis], arg(args, kwargs, 3, "start"),
                                       arg(args, kwargs, 4, "end"), arg(args, kwargs, 5, "step", 1))
    dtype = out_dtype(ctx, node)
    return _place(ctx, node, ctx.cast(x, dtype, node), ctx.cast(src, dtype, node), x_shape,
                  tuple(val(node.args[1]).shape), axis, begin, count, step)


def _slice_scatter_ok(node: torch.fx.Node, settings) -> bool:
    x, src = val(node.args[0]), val(node.args[1])
    if not isinstance(x, torch.Tensor) or x.dtype not in _DATA or src.dtype != x.dtype:
        return False
    if same_shape(src.shape, x.shape):
        return nonempty(node)
    axis = norm_dim(arg(node.args, node.kwargs, 2, "dim", 0), x.dim())
    a, k = node.args, node.kwargs
    bounds = [arg(a, k, 3, "start"), arg(a, k, 4, "end"), arg(a, k, 5, "step", 1)]
    if is_dynamic([x.shape[axis]]) or any(b is not None and not isinstance(b, int) for b in bounds):
        return False  # the cut points are folded from a static size and int bounds
    if bounds[2] != 1 and is_dynamic(src.shape):
        return False  # the constant scatter indices take src's shape
    return nonempty(node)


def _select_scatter(ctx, node, args, kwargs):
    x, src, dim, index = args[:4]
    x_shape = tuple(val(node.args[0]).shape)
    rank = len(x_shape)
    axis = norm_dim(dim, rank)
    begin = index % x_shape[axis]
    src_shape = list(val(node.args[1]).shape)
    src_shape.insert(axis, 1)
    dtype = out_dtype(ctx, node)
    src = ctx.reshape(ctx.cast(src, dtype, node), tuple(src_shape), node)
    return _place(ctx, node, ctx.cast(x, dtype, node), src, x_shape, tuple(src_shape), axis, begin, 1, 1)


def _select_scatter_ok(node: torch.fx.Node, settings) -> bool:
    x, src = val(node.args[0]), val(node.args[1])
    if not isinstance(x, torch.Tensor) or x.dtype not in _DATA or x.dim() == 0 or src.dtype != x.dtype:
        return False
    axis = norm_dim(node.args[2], x.dim())
    return isinstance(node.args[3], int) and not is_dynamic([x.shape[axis]]) and nonempty(node)


def _diagonal_scatter(ctx, node, args, kwargs):
    """SCATTER/ELEMENT on ``x`` with the two dims flattened into one last axis."""
    x, src = args[:2]
    shape = tuple(val(node.args[0]).shape)
    d1, d2, others, flat = diagonal_geometry(shape, arg(args, kwargs, 2, "offset", 0),
                                             arg(args, kwargs, 3, "dim1", 0), arg(args, kwargs, 4, "dim2", 1))
    dtype = out_dtype(ctx, node)
    perm = others + [d1, d2]
    kept = [shape[d] for d in others]
    data = ctx.shuffle(ctx.cast(x, dtype, node), node, perm=perm, shape=kept + [shape[d1] * shape[d2]])
    src_shape = tuple(val(node.args[1]).shape)
    index = broadcast_to(ctx, ctx.constant(flat.to(torch.int32).reshape((1,) * len(kept) + (-1,)), node),
                         src_shape, node, (1,) * len(kept) + (flat.numel(),))
    out = _scatter_element(ctx, node, data, index, ctx.cast(src, dtype, node), len(kept))
    out = ctx.shuffle(out, node, shape=kept + [shape[d1], shape[d2]])
    back = [0] * len(perm)
    for i, d in enumerate(perm):
        back[d] = i
    return ctx.shuffle(out, node, perm=back)


def _diagonal_scatter_ok(node: torch.fx.Node, settings) -> bool:
    x, src = val(node.args[0]), val(node.args[1])
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.dtype not in _DATA:
        return False
    rank = x.dim()
    d1 = norm_dim(arg(node.args, node.kwargs, 3, "dim1", 0), rank)
    d2 = norm_dim(arg(node.args, node.kwargs, 4, "dim2", 1), rank)
    if d1 == d2 or is_dynamic([x.shape[d1], x.shape[d2]]):
        return False  # the diagonal's positions are folded from the two (static) dims
    return nonempty(node) and isinstance(src, torch.Tensor) \
        and src.dtype == val(node.args[0]).dtype and src.numel() > 0


# -- masked_scatter ----------------------------------------------------------------------------
def _masked_scatter(ctx, node, args, kwargs):
    """Element ``i`` where the mask holds takes ``src.flatten()[k]``, ``k`` the number of set
    mask elements before ``i`` in row-major order: an exclusive CUMULATIVE/SUM over the
    flattened mask, a GATHER/DEFAULT from the flattened source, and a SELECT."""
    x, mask, src = args[:3]
    shape = tuple(val(node).shape)
    count = math.prod(shape)
    dtype = out_dtype(ctx, node)
    mask = broadcast_to(ctx, mask, shape, node, tuple(val(node.args[1]).shape))
    flat_mask = ctx.reshape(mask, (count,), node)
    ones = ctx.cast(flat_mask, torch.int32, node)
    axis = ctx.constant(torch.tensor(0, dtype=torch.int32), node)
    before = ctx.finish(ctx.network.add_cumulative(ones, axis, trt.CumulativeOperation.SUM, True, False),
                        node, suffix="position")
    sources = val(node.args[2]).numel()
    position = elementwise(ctx, before, sources - 1, "MIN", node, torch.int32, "clamp")
    flat_src = ctx.reshape(ctx.cast(src, dtype, node), (sources,), node)
    picked = ctx.finish(ctx.network.add_gather(flat_src, position, 0), node, suffix="pick")
    flat_x = ctx.reshape(broadcast_to(ctx, ctx.cast(x, dtype, node), shape, node,
                                      tuple(val(node.args[0]).shape)), (count,), node)
    out = select(ctx, flat_mask, picked, flat_x, node, "select")
    return ctx.reshape(out, shape, node)


def _masked_scatter_ok(node: torch.fx.Node, settings) -> bool:
    x, mask, src = (val(a) for a in node.args[:3])
    if not all(isinstance(t, torch.Tensor) for t in (x, mask, src)) or mask.dtype != torch.bool:
        return False
    if x.dtype not in _DATA or src.dtype != x.dtype or not static_shapes(node):
        return False  # the flattened sizes are folded from static shapes
    return val(node).numel() < 2**31 and tuple(val(node).shape) == tuple(x.shape)


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    for name, target in [("scatter_src", aten.scatter.src), ("scatter_value", aten.scatter.value)]:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_scatter,
                            is_supported=_scatter_ok, supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.scatter_add", target=aten.scatter_add.default,
                        convert=_scatter_reduce(lambda node: ("sum", True)),
                        is_supported=_reduce_ok(lambda node: ("sum", True), {"sum"}))
    yield ConverterSpec(name="builtin.scatter_reduce", target=aten.scatter_reduce.two,
                        convert=_scatter_reduce(_two_mode),
                        is_supported=_reduce_ok(_two_mode, set(_REDUCE)))
    for name, target in [("scatter_reduce_src", aten.scatter.reduce),
                         ("scatter_reduce_value", aten.scatter.value_reduce)]:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_scatter_reduce(_legacy_mode),
                            is_supported=_reduce_ok(_legacy_mode, {"sum", "prod"}))
    yield ConverterSpec(name="builtin.index_add", target=aten.index_add.default, convert=_index_add,
                        is_supported=_index_add_ok)
    yield ConverterSpec(name="builtin.index_copy", target=aten.index_copy.default, convert=_index_copy,
                        is_supported=_index_copy_ok, supports_dynamic_shapes=True)
    for name, target in [("index_fill_scalar", aten.index_fill.int_Scalar),
                         ("index_fill_tensor", aten.index_fill.int_Tensor)]:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_index_fill,
                            is_supported=_index_fill_ok, supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.slice_scatter", target=aten.slice_scatter.default,
                        convert=_slice_scatter, is_supported=_slice_scatter_ok,
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.select_scatter", target=aten.select_scatter.default,
                        convert=_select_scatter, is_supported=_select_scatter_ok,
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.masked_scatter", target=aten.masked_scatter.default,
                        convert=_masked_scatter, is_supported=_masked_scatter_ok)
    yield ConverterSpec(name="builtin.diagonal_scatter", target=aten.diagonal_scatter.default,
                        convert=_diagonal_scatter, is_supported=_diagonal_scatter_ok,
                        supports_dynamic_shapes=True)
