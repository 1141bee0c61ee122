"""Built-in converters for reading by index tensors: ``embedding``, ``embedding_bag``,
``index_select``, ``gather``, torch's subscript ``x[i]`` (``index.Tensor`` /
``_unsafe_index.Tensor``) with its write ``x[i] = v`` (``index_put`` / ``_unsafe_index_put``),
which shares its index plan, and ``diagonal``. The named writes (``scatter``, ``index_add`` ...)
are :mod:`plugtrt.converters.scatter`'s.

``embedding`` and ``index_select`` take whole slices along one axis (GATHER/DEFAULT), ``gather``
picks single elements (GATHER/ELEMENT, on the block of the input that the index covers); torch
rejects negative indices for these ops, so no wrap-around is needed. ``embedding_bag`` is a
gather, then a per-bag REDUCE.

Subscripts follow torch's rule: the index tensors broadcast to one shape ``B``; when the indexed
dims are adjacent, ``B`` replaces them in place, otherwise ``B`` comes first. One index tensor
is a GATHER/DEFAULT on its axis; several are a GATHER/ND (or SCATTER/ND) on the input with the
indexed dims permuted to the front. Negative indices are wrapped in the network (constant
indices in torch, at conversion), so no layer relies on TensorRT wrapping them. A boolean mask
is accepted only when it is a constant: it is folded to its integer indices here. A mask read
from a graph input has a data-dependent number of ``True`` entries, and so a data-dependent
result shape, which a TensorRT engine of these converters cannot express: it stays in PyTorch;
except ``x[mask] = v`` with values that do not depend on that number (a scalar, or one row
broadcast over the selected elements), which is a SELECT whatever the mask holds.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any
import math

import torch
import torch.fx

from plugtrt.conversion import (
    FLOATS, INTS, NUMERIC, arg, aten, broadcast_to, constant_value, elementwise, is_dynamic,
    nonempty, norm_dim, only_first_output_used, out_dtype, reduce, same_shape, same_shape as
    shapes_equal, select, slice_to, val, wrap_index,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt


def _gather(ctx, node, data, indices, axis: int, mode: str):
    layer = ctx.network.add_gather(data, indices, axis)
    layer.mode = getattr(trt.GatherMode, mode)
    return ctx.finish(layer, node)


def _embedding(ctx, node, args, kwargs):
    weight, indices = args[:2]
    return _gather(ctx, node, weight, indices, 0, "DEFAULT")


def _index_select(ctx, node, args, kwargs):
    x, dim, index = args[:3]
    return _gather(ctx, node, x, index, norm_dim(dim, len(x.shape)), "DEFAULT")


def _gather_elements(ctx, node, args, kwargs):
    """torch reads only the block of ``x`` the index covers outside ``dim``: ``x`` is cut to it
    first (no layer when the shapes agree), so ELEMENT mode sees index and data of one shape
    there."""
    x, dim, index = args[:3]
    axis = norm_dim(dim, len(x.shape))
    data, index_shape = tuple(val(node.args[0]).shape), tuple(val(node.args[2]).shape)
    block = tuple(d if i == axis else n for i, (d, n) in enumerate(zip(data, index_shape)))
    if not shapes_equal(block, data):
        x = slice_to(ctx, x, (0,) * len(block), block, (1,) * len(block), node, "cut")
    return _gather(ctx, node, x, index, axis, "ELEMENT")


def _indexed(data_arg: int, index_arg: int, same_shape: bool = False, vector: bool = False):
    """Data of a numeric dtype, integer indices, non-empty shapes (static or dynamic)."""
    def is_supported(node: torch.fx.Node, settings) -> bool:
        if node.kwargs.get("sparse_grad") or len(node.args) <= max(data_arg, index_arg):
            return False
        data, index = val(node.args[data_arg]), val(node.args[index_arg])
        if not (isinstance(data, torch.Tensor) and isinstance(index, torch.Tensor)):
            return False
        if data.dtype not in FLOATS | INTS or index.dtype not in INTS or data.dim() == 0:
            return False
        if same_shape:  # torch's gather: index of the data's rank, no larger outside the axis
            axis = norm_dim(node.args[1], data.dim())
            if index.dim() != data.dim() or any(
                    d != axis and not shapes_equal([i], [n]) and (is_dynamic([i, n]) or i > n)
                    for d, (i, n) in enumerate(zip(index.shape, data.shape))):
                return False
        if vector and index.dim() != 1:
            return False  # torch keeps the axis for a 0-d index; TensorRT's gather drops it
        return nonempty(node)
    return is_supported


_DATA = NUMERIC | {torch.bool}


_INDEX = frozenset({torch.int32, torch.int64})


class _Plan:
    """Which dims of ``x`` are indexed, by what, and where the broadcast index dims land."""

    def __init__(self, dims: list[int], indices: list[Any], shapes: list[tuple], rank: int):
        self.dims = dims  # indexed dims of x, ascending
        self.indices = indices  # per indexed dim: an FX node or a constant int64 tensor (wrapped)
        self.shapes = shapes  # their (fake) shapes
        self.rank = rank
        self.adjacent = dims == list(range(dims[0], dims[0] + len(dims)))
        self.rest = [d for d in range(rank) if d not in dims]
        self.broadcast_rank = max(len(s) for s in shapes)

    @property
    def front(self) -> int:
        """Where the broadcast index dims start in the result."""
        return self.dims[0] if self.adjacent else 0


def plan(x_node: torch.fx.Node, index_nodes: list[Any]) -> _Plan | str:
    """The plan for indexing ``x_node`` by ``index_nodes`` (``None`` entries skip a dim), or why
    the backend declines it."""
    x = val(x_node)
    if not isinstance(x, torch.Tensor) or x.dim() == 0 or len(index_nodes) > x.dim():
        return "indexing a 0-d tensor or with more indices than dims"
    dims, indices, shapes, position = [], [], [], 0
    for entry in index_nodes:
        if entry is None:
            position += 1
            continue
        fake = val(entry)
        if not isinstance(fake, torch.Tensor):
            return "an index that is not a tensor"
        if fake.dtype in (torch.bool, torch.uint8):
            mask = constant_value(entry)
            if mask is None:
                return ("a boolean mask from the graph: its number of True entries, and so the "
                        "result's shape, is data-dependent")
            covered = x.shape[position:position + mask.dim()]
            if mask.dim() == 0 or mask.dim() + position > x.dim() or is_dynamic(covered):
                return "a 0-d boolean mask or one over dynamic dims"
            if tuple(mask.shape) != tuple(x.shape[position:position + mask.dim()]):
                return "a boolean mask whose shape differs from the dims it indexes"
            found = mask.bool().nonzero()
            if found.shape[0] == 0:
                return "a boolean mask with no True entry (an empty result)"
            for column in found.unbind(1):
                dims.append(position)
                indices.append(column.contiguous())
                shapes.append(tuple(column.shape))
                position += 1
            continue
        if fake.dtype not in _INDEX:
            return f"an index of dtype {fake.dtype}"
        constant = constant_value(entry)
        if constant is not None and not is_dynamic(x.shape[position:position + 1]):
            size = x.shape[position]
            if constant.numel() and (constant.min() < -size or constant.max() >= size):
                return "a constant index out of range"
            indices.append(torch.where(constant < 0, constant + size, constant).to(torch.int64))
        else:
            indices.append(entry)
        dims.append(position)
        shapes.append(tuple(fake.shape))
        position += 1
    if not dims:
        return "no index tensor"
    return _Plan(dims, indices, shapes, x.dim())


def index_tensors(ctx, node: torch.fx.Node, p: _Plan, x_shape: tuple, index_args: list) -> list:
    """Each index as a non-negative ITensor of one dtype (int32 when all are, else int64)."""
    by_node = {id(n): a for n, a in zip(node.args[1], index_args) if n is not None}
    graph = [by_node[id(i)] for i in p.indices if isinstance(i, torch.fx.Node)]
    # constants only, or int32 graph indices: int32 (enough for any index a dim can take)
    dtype = torch.int32 if all(ctx.dtype(t) == torch.int32 for t in graph) else ctx.engine_dtype(torch.int64)
    out = []
    for dim, index in zip(p.dims, p.indices):
        if isinstance(index, torch.Tensor):
            out.append(ctx.constant(index, node, dtype=dtype))
        else:
            out.append(wrap_index(ctx, ctx.cast(by_node[id(index)], dtype, node), x_shape[dim], node))
    return out


def _nd_indices(ctx, node, p: _Plan, tensors: list, shape: tuple) -> Any:
    """The index tensors broadcast to ``shape`` and stacked on a new last axis (GATHER/ND's)."""
    columns = []
    for t, s in zip(tensors, p.shapes):
        t = broadcast_to(ctx, t, shape, node, s)
        columns.append(ctx.reshape(t, tuple(shape) + (1,), node))
    if len(columns) == 1:
        return columns[0]
    layer = ctx.network.add_concatenation(columns)
    layer.axis = len(shape)
    return ctx.finish(layer, node, suffix="indices")


def _front_perm(p: _Plan) -> list[int]:
    return p.dims + p.rest


def _result_to_front(p: _Plan, result_rank: int) -> list[int] | None:
    """The permutation taking a result laid out ``pre, B, post`` to ``B, pre, post`` (None when
    the index dims already lead)."""
    k, f = p.broadcast_rank, p.front
    if f == 0:
        return None
    return list(range(f, f + k)) + list(range(f)) + list(range(f + k, result_rank))


def _inverse(perm: list[int]) -> list[int]:
    inverse = [0] * len(perm)
    for i, d in enumerate(perm):
        inverse[d] = i
    return inverse


def _broadcast_shape(node: torch.fx.Node, p: _Plan) -> tuple:
    """``B``, read off the result's fake shape."""
    out = tuple(val(node).shape)
    return out[p.front:p.front + p.broadcast_rank]


def _index(ctx, node, args, kwargs):
    x = args[0]
    x_shape = tuple(val(node.args[0]).shape)
    p = plan(node.args[0], list(node.args[1]))
    tensors = index_tensors(ctx, node, p, x_shape, list(args[1]))
    if len(p.dims) == 1:  # one index tensor: a plain gather on its axis, result dims in place
        layer = ctx.network.add_gather(x, tensors[0], p.dims[0])
        return ctx.finish(layer, node)
    shape = _broadcast_shape(node, p)
    x = ctx.shuffle(x, node, perm=_front_perm(p))
    layer = ctx.network.add_gather_v2(x, _nd_indices(ctx, node, p, tensors, shape), trt.GatherMode.ND)
    out = ctx.finish(layer, node, suffix="gather_nd")
    back = _result_to_front(p, len(val(node).shape))
    return out if back is None else ctx.shuffle(out, node, perm=_inverse(back))


def _index_supported(node: torch.fx.Node, settings) -> bool:
    x = val(node.args[0])
    if not isinstance(x, torch.Tensor) or x.dtype not in _DATA or not isinstance(val(node), torch.Tensor):
        return False
    p = plan(node.args[0], list(node.args[1]))
    if isinstance(p, str):
        return False  # plan() says why (a mask from the graph: a data-dependent shape, ...)
    if not same_shape(_indexed_shape(p, tuple(x.shape)), val(node).shape):
        return False  # torch's fake index.Tensor (2.14) mis-shapes a last 0-d index after a
        # higher-rank one (x[i, 0-d j] recorded as 0-d): an engine built to it would be wrong
    return nonempty(node)


# -- index_put ---------------------------------------------------------------------------------
def _index_put(ctx, node, args, kwargs):
    form = _masked_form(node)
    if form is not None:
        return _masked_put(ctx, node, args, form)
    x, values = args[0], args[2]
    accumulate = bool(arg(node.args, node.kwargs, 3, "accumulate", False))
    x_fake = val(node.args[0])
    x_shape = tuple(x_fake.shape)
    p = plan(node.args[0], list(node.args[1]))
    tensors = index_tensors(ctx, node, p, x_shape, list(args[1]))
    dtype = out_dtype(ctx, node)
    shape = _indexed_shape(p, x_shape)
    # values, as torch broadcasts them onto x[indices], then laid out as B + rest
    values = broadcast_to(ctx, ctx.cast(values, dtype, node), shape, node, tuple(val(node.args[2]).shape))
    to_front = _result_to_front(p, len(shape))
    if to_front is not None:
        values = ctx.shuffle(values, node, perm=to_front)
    front = _front_perm(p)
    data = ctx.shuffle(x, node, perm=front)
    b_shape = shape[p.front:p.front + p.broadcast_rank]
    indices = _nd_indices(ctx, node, p, tensors, b_shape)
    if accumulate:  # validated: constant, distinct indices, so gather + add + scatter is exact
        gathered = ctx.finish(ctx.network.add_gather_v2(data, indices, trt.GatherMode.ND), node,
                              suffix="gather_nd")
        values = elementwise(ctx, gathered, values, "SUM", node, dtype, "accumulate")
    layer = ctx.network.add_scatter(data, indices, values, trt.ScatterMode.ND)
    out = ctx.finish(layer, node, suffix="scatter_nd")
    return ctx.shuffle(out, node, perm=_inverse(front))


def _masked_form(node: torch.fx.Node) -> tuple[int, int] | None:
    """``(position, mask rank)`` when ``node`` is ``x[..., mask] = v`` with one boolean mask over
    dims of ``x`` and values that do not depend on how many elements the mask selects (they
    broadcast along that dim): then the put is a SELECT, whatever the mask holds, and no shape
    is data-dependent. None otherwise."""
    x, values = val(node.args[0]), val(node.args[2])
    entries = list(node.args[1])
    tensors = [i for i, e in enumerate(entries) if e is not None]
    if len(tensors) != 1 or any(e is not None for e in entries[:tensors[0]]):
        return None
    position = tensors[0]
    mask = val(entries[position])
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.dim() == 0:
        return None
    rank = x.dim()
    if position + mask.dim() > rank or not same_shape(mask.shape, x.shape[position:position + mask.dim()]):
        return None
    trailing = rank - position - mask.dim()  # result dims right of the selected-count dim
    if values.dim() > trailing + 1 + position:
        return None
    if values.dim() > trailing and not same_shape([values.shape[values.dim() - trailing - 1]], [1]):
        return None  # one value per selected element: how many is data-dependent
    return position, mask.dim()


def _masked_put(ctx, node, args, form: tuple[int, int]):
    """``where(mask, v, x)`` (``x + where(mask, v, 0)`` when accumulating: a mask names each
    element at most once)."""
    x, values = args[0], args[2]
    position, mask_rank = form
    x_shape = tuple(val(node.args[0]).shape)
    rank = len(x_shape)
    dtype = out_dtype(ctx, node)
    mask = args[1][position]
    mask_shape = tuple(val(node.args[1][position]).shape)
    mask = ctx.reshape(mask, (1,) * position + mask_shape + (1,) * (rank - position - mask_rank), node)
    v_shape = tuple(val(node.args[2]).shape)
    trailing = rank - position - mask_rank
    block = (1,) * (trailing + 1 + position - len(v_shape)) + v_shape  # aligned to x[mask]'s dims
    aligned = block[:position] + (1,) * mask_rank + block[position + 1:]
    values = ctx.reshape(ctx.cast(values, dtype, node), aligned, node)
    x = ctx.cast(x, dtype, node)
    if arg(node.args, node.kwargs, 3, "accumulate", False):
        zero = ctx.scalar(0, dtype, rank, node)
        added = select(ctx, mask, values, zero, node, "masked_values")
        return elementwise(ctx, x, added, "SUM", node, dtype, "accumulate")
    return select(ctx, mask, values, x, node, "masked_put")


def _indexed_shape(p: _Plan, x_shape: tuple) -> tuple:
    """The shape of ``x[indices]``."""
    b = tuple(torch.broadcast_shapes(*p.shapes)) if not any(is_dynamic(s) for s in p.shapes) \
        else _symbolic_broadcast(p.shapes)
    rest = [x_shape[d] for d in p.rest]
    return tuple(rest[:p.front]) + b + tuple(rest[p.front:])


def _symbolic_broadcast(shapes: list[tuple]) -> tuple:
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        sizes = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        sizes = [d for d in sizes if not (isinstance(d, int) and d == 1)] or [1]
        out.append(sizes[0])
    return tuple(out)


def _index_put_supported(node: torch.fx.Node, settings) -> bool:
    x, values = val(node.args[0]), val(node.args[2]) if len(node.args) > 2 else None
    if not isinstance(x, torch.Tensor) or x.dtype not in _DATA or not isinstance(values, torch.Tensor):
        return False
    if values.dtype != x.dtype:
        return False
    if _masked_form(node) is not None:
        accumulate = arg(node.args, node.kwargs, 3, "accumulate", False)
        return nonempty(node) and not (accumulate and x.dtype == torch.bool)
    p = plan(node.args[0], list(node.args[1]))
    if isinstance(p, str):
        return False  # plan() says why
    if any(is_dynamic(s) for s in p.shapes) and len(p.shapes) > 1:
        return False  # broadcasting several dynamic index shapes: keep it simple and static
    if arg(node.args, node.kwargs, 3, "accumulate", False):
        if x.dtype == torch.bool:
            return False
        # TensorRT's scatter has no reduction: duplicate indices cannot be summed, so only
        # constant indices proven distinct are accepted (gather + add + scatter is then exact)
        if not all(isinstance(i, torch.Tensor) for i in p.indices):
            return False
        keys = _linear_keys(p, tuple(x.shape))
        if keys is None or keys.unique().numel() != keys.numel():
            return False
    return nonempty(node)


def _linear_keys(p: _Plan, x_shape: tuple) -> torch.Tensor | None:
    if is_dynamic([x_shape[d] for d in p.dims]):
        return None
    columns = torch.broadcast_tensors(*p.indices)
    key = torch.zeros_like(columns[0])
    for d, c in zip(p.dims, columns):
        key = key * x_shape[d] + c
    return key.reshape(-1)


# -- diagonal ----------------------------------------------------------------------------------
def _diagonal_geometry(shape: tuple, offset: int, dim1: int, dim2: int):
    rank = len(shape)
    d1, d2 = norm_dim(dim1, rank), norm_dim(dim2, rank)
    n1, n2 = shape[d1], shape[d2]
    row, col = (0, offset) if offset >= 0 else (-offset, 0)
    length = max(0, min(n1 - row, n2 - col))
    flat = (torch.arange(length) + row) * n2 + torch.arange(length) + col
    others = [d for d in range(rank) if d not in (d1, d2)]
    return d1, d2, others, flat


def _diagonal(ctx, node, args, kwargs):
    x = args[0]
    shape = tuple(val(node.args[0]).shape)
    a, k = node.args, node.kwargs
    d1, d2, others, flat = _diagonal_geometry(shape, arg(a, k, 1, "offset", 0), arg(a, k, 2, "dim1", 0),
                                              arg(a, k, 3, "dim2", 1))
    x = ctx.shuffle(x, node, perm=others + [d1, d2],
                    shape=[shape[d] for d in others] + [shape[d1] * shape[d2]])
    layer = ctx.network.add_gather(x, ctx.constant(flat.to(torch.int32), node), len(others))
    return ctx.finish(layer, node)


def diagonal_supported(node: torch.fx.Node, settings) -> bool:
    x = val(node.args[0])
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.dtype not in _DATA:
        return False
    rank = x.dim()
    d1 = norm_dim(arg(node.args, node.kwargs, 2, "dim1", 0), rank)
    d2 = norm_dim(arg(node.args, node.kwargs, 3, "dim2", 1), rank)
    if d1 == d2 or is_dynamic([x.shape[d1], x.shape[d2]]):
        return False  # the diagonal's positions are folded from the two (static) dims
    return nonempty(node)


# -- embedding_bag -----------------------------------------------------------------------------
_BAG_LIMIT = 1 << 22


def _embedding_bag(ctx, node, args, kwargs):
    """Rows gathered (GATHER/DEFAULT), then folded per bag: a ``[bags, n]`` membership mask
    (``offsets[b] <= i < end[b]``, and ``indices[i] != padding_idx``), a select and a REDUCE
    over ``n`` (SUM for sum and mean, MAX for max); empty bags give 0 as in torch."""
    weight, indices, offsets = args[:3]
    mode = arg(args, kwargs, 4, "mode", 0)
    per_sample = arg(args, kwargs, 6, "per_sample_weights")
    include_last = arg(args, kwargs, 7, "include_last_offset", False)
    padding_idx = arg(args, kwargs, 8, "padding_idx", -1)
    dtype = out_dtype(ctx, node, 0)
    n = val(node.args[1]).shape[0]
    bags = val(node)[0].shape[0]
    rows = ctx.upcast(ctx.finish(ctx.network.add_gather(weight, indices, 0), node, suffix="rows"), node)
    compute = ctx.dtype(rows)
    if per_sample is not None:
        weights = ctx.reshape(ctx.cast(per_sample, compute, node), (n, 1), node)
        rows = elementwise(ctx, rows, weights, "PROD", node, compute, "per_sample")
    positions = torch.arange(n, dtype=torch.int32).reshape(1, n)
    offsets_value = constant_value(node.args[2])
    if offsets_value is not None:
        bounds = offsets_value.to(torch.int64).tolist() + ([] if include_last else [n])
        member = torch.zeros(bags, n, dtype=torch.bool)
        for b in range(bags):
            member[b, bounds[b]:bounds[b + 1]] = True
        member = ctx.constant(member, node)
    else:
        offsets = ctx.cast(offsets, torch.int32, node)
        count = val(node.args[2]).shape[0]
        starts = offsets if count == bags else slice_to(ctx, offsets, (0,), (bags,), (1,), node, "starts")
        if include_last:
            ends = slice_to(ctx, offsets, (1,), (bags,), (1,), node, "ends")
        else:
            tail = ctx.constant(torch.tensor([n], dtype=torch.int32), node)
            pieces = [slice_to(ctx, offsets, (1,), (bags - 1,), (1,), node, "ends")] if bags > 1 else []
            pieces.append(tail)
            ends = pieces[0] if len(pieces) == 1 else ctx.finish(ctx.network.add_concatenation(pieces), node,
                                                                 suffix="ends")
        # bools compared as int32: a < b is (not a) and b
        early = elementwise(ctx, positions, ctx.reshape(starts, (bags, 1), node), "LESS", node, torch.int32,
                            "before_start")
        early_or_in = elementwise(ctx, positions, ctx.reshape(ends, (bags, 1), node), "LESS", node,
                                  torch.int32, "before_end")
        member = elementwise(ctx, early, early_or_in, "LESS", node, torch.int32, "inside")
    if padding_idx is not None and padding_idx >= 0:
        row = ctx.reshape(ctx.cast(indices, torch.int32, node), (1, n), node)
        padded = elementwise(ctx, row, padding_idx, "EQUAL", node, torch.int32, "padding")
        member = elementwise(ctx, padded, member, "LESS", node, torch.int32, "not_padding")
    mask = ctx.reshape(member, (bags, n, 1), node)
    rows = ctx.reshape(rows, (1, n, val(node.args[0]).shape[1]), node)
    if mode == 2:
        filler = ctx.scalar(-math.inf, compute, 3, node)
    else:
        filler = ctx.scalar(0, compute, 3, node)
    picked = select(ctx, mask, rows, filler, node, "pick")
    out = reduce(ctx, picked, "MAX" if mode == 2 else "SUM", [1], False, node)
    if mode != 0:
        hits = reduce(ctx, ctx.cast(mask, compute, node), "SUM", [1], False, node, "count")
        if mode == 1:
            safe = elementwise(ctx, hits, 1, "MAX", node, compute, "safe_count")
            out = elementwise(ctx, out, safe, "DIV", node, compute, "mean")
        else:
            empty = elementwise(ctx, hits, 0, "EQUAL", node, compute, "empty")
            out = select(ctx, empty, ctx.scalar(0, compute, 2, node), out, node,
                             "empty_bag")
    return (ctx.cast(out, dtype, node), None, None, None)


def _embedding_bag_supported(node: torch.fx.Node, settings) -> bool:
    if len(node.args) < 3 or not only_first_output_used(node):
        return False
    weight, indices, offsets = (val(a) for a in node.args[:3])
    mode = arg(node.args, node.kwargs, 4, "mode", 0)
    if not all(isinstance(t, torch.Tensor) for t in (weight, indices, offsets)) or mode not in (0, 1, 2):
        return False
    if weight.dtype not in FLOATS or weight.dim() != 2 or indices.dim() != 1 or offsets.dim() != 1:
        return False
    result = val(node)[0]
    if indices.dtype not in _INDEX or offsets.dtype not in _INDEX:
        return False
    used = (weight, indices, offsets, result)  # the unused outputs may be empty (sum mode)
    if is_dynamic([d for t in used for d in t.shape]) or not all(t.numel() for t in used):
        return False  # bag bounds compare with positions folded from the static count
    last_offset = arg(node.args, node.kwargs, 7, "include_last_offset", False)
    if last_offset and (mode != 0 or arg(node.args, node.kwargs, 8, "padding_idx", -1) >= 0):
        return False  # torch's CPU kernel then reads past the last offset (max, and padding_idx
        # run the last bag to the end of indices; mean divides by the count to the end): its
        # sum-mode reading (the bag ends at the last offset) is the only one reproduced
    per_sample = val(arg(node.args, node.kwargs, 6, "per_sample_weights"))
    if per_sample is not None and (mode != 0 or per_sample.dtype != weight.dtype):
        return False
    bags = result.shape[0]
    return bags * indices.shape[0] * weight.shape[1] <= _BAG_LIMIT


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    yield ConverterSpec(name="builtin.embedding", target=aten.embedding.default, convert=_embedding,
                        is_supported=_indexed(0, 1),
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.index_select", target=aten.index_select.default,
                        convert=_index_select, is_supported=_indexed(0, 2, vector=True),
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.gather", target=aten.gather.default, convert=_gather_elements,
                        is_supported=_indexed(0, 2, same_shape=True),
                        supports_dynamic_shapes=True)
    for name, target in [("index", aten.index.Tensor), ("unsafe_index", aten._unsafe_index.Tensor)]:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_index,
                            is_supported=_index_supported, supports_dynamic_shapes=True)
    for name, target in [("index_put", aten.index_put.default),
                         ("unsafe_index_put", aten._unsafe_index_put.default)]:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_index_put,
                            is_supported=_index_put_supported, supports_dynamic_shapes=True)
    for name, target in [("embedding_bag_forward_only", aten._embedding_bag_forward_only.default),
                         ("embedding_bag", aten._embedding_bag.default)]:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_embedding_bag,
                            is_supported=_embedding_bag_supported)
    yield ConverterSpec(name="builtin.diagonal", target=aten.diagonal.default, convert=_diagonal,
                        is_supported=diagonal_supported, supports_dynamic_shapes=True)
