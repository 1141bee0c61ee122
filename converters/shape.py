"""Built-in converters for ops that move data without arithmetic: views and reshapes,
permutes and transposes, (un)squeeze, expand, cat, slice, select, split and clone.

Shapes are static here: each converter takes the result's shape from the node's fake value
rather than re-deriving torch's rules (``-1`` in a view, squeeze of non-unit dims, ...).
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import (
    NUMERIC,
    aten,
    get,
    norm_dim,
    out_dtype,
    slice_,
    static,
    static_shapes,
    val,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec

_ANY = NUMERIC | {torch.bool, torch.int8, torch.uint8}
_OK = static(_ANY)


def _shuffle(ctx, node, x, *, shape=None, perm=None):
    """One shuffle, merged into the previous one where that only fed this node."""
    return ctx.shuffle(x, node, node.args[0], shape=shape, perm=perm)


def _reshape(ctx, node, args, kwargs):
    """view, _unsafe_view, reshape, flatten, (un)squeeze: the result's shape, from the node."""
    return _shuffle(ctx, node, args[0], shape=tuple(val(node).shape))


def _permute(ctx, node, args, kwargs):
    rank = len(args[0].shape)
    return _shuffle(ctx, node, args[0], perm=[norm_dim(d, rank) for d in args[1]])


def _transpose(ctx, node, args, kwargs):
    rank = len(args[0].shape)
    perm = list(range(rank))
    if rank:
        a, b = norm_dim(args[1], rank), norm_dim(args[2], rank)
        perm[a], perm[b] = perm[b], perm[a]
    return _shuffle(ctx, node, args[0], perm=perm)


def _t(ctx, node, args, kwargs):
    return _shuffle(ctx, node, args[0], perm=tuple(reversed(range(len(args[0].shape)))))


def _expand(ctx, node, args, kwargs):
    """Broadcast dims of size 1 by a zero-stride slice (after adding leading unit dims)."""
    x = args[0]
    out = tuple(val(node).shape)
    if tuple(x.shape) == out:
        return x
    if len(x.shape) < len(out):
        x = ctx.reshape(x, (1,) * (len(out) - len(x.shape)) + tuple(x.shape), node)
    stride = tuple(0 if s == 1 and o != 1 else 1 for s, o in zip(tuple(x.shape), out))
    return ctx.finish(ctx.network.add_slice(x, (0,) * len(out), out, stride), node)


def _cat(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    tensors = [ctx.cast(t, dtype, node) for t, v in zip(args[0], node.args[0]) if val(v).numel()]
    rank = len(val(node).shape)
    layer = ctx.network.add_concatenation(tensors)
    layer.axis = norm_dim(get(args, kwargs, 1, "dim", 0), rank)
    return ctx.finish(layer, node)


def _cat_supported(node, settings) -> bool:
    """Static shapes, a non-empty result of rank >= 1; empty inputs (torch's legacy ``(0,)``
    tensors included) are skipped, as torch skips them."""
    parts = [val(t) for t in node.args[0]]
    result = val(node)
    kept = [p for p in parts if p.numel()]
    return (static_shapes(node, allow_empty=True) and result.numel() > 0 and result.dim() >= 1
            and result.dtype in _ANY and all(p.dtype in _ANY for p in parts)
            and all(p.dim() == result.dim() for p in kept))


def _slice(ctx, node, args, kwargs):
    x = args[0]
    rank = len(x.shape)
    dim = norm_dim(get(args, kwargs, 1, "dim", 0), rank)
    start = get(args, kwargs, 2, "start", None)
    end = get(args, kwargs, 3, "end", None)
    step = get(args, kwargs, 4, "step", 1)
    if tuple(val(node).shape) == tuple(x.shape):
        return x  # the whole dim: nothing to cut
    begin, _, _ = slice(start, end, step).indices(x.shape[dim])
    starts, strides = [0] * rank, [1] * rank
    starts[dim], strides[dim] = begin, step
    return ctx.finish(ctx.network.add_slice(x, tuple(starts), tuple(val(node).shape),
                                            tuple(strides)), node)


def _slice_supported(node, settings) -> bool:
    step = node.args[4] if len(node.args) > 4 else node.kwargs.get("step", 1)
    bounds = list(node.args[2:4]) + [node.kwargs.get(k) for k in ("start", "end")]
    return (isinstance(step, int) and step >= 1 and val(node.args[0]).dim() >= 1
            and all(b is None or isinstance(b, int) for b in bounds) and _OK(node, settings))


def _select(ctx, node, args, kwargs):
    x = args[0]
    rank = len(x.shape)
    dim = norm_dim(args[1], rank)
    index = args[2] % x.shape[dim]
    starts, shape = [0] * rank, list(x.shape)
    starts[dim], shape[dim] = index, 1
    picked = slice_(ctx, x, starts, shape, [1] * rank, node)
    return ctx.shuffle(picked, node, shape=tuple(val(node).shape))


def _select_supported(node, settings) -> bool:
    return isinstance(node.args[2], int) and val(node.args[0]).dim() >= 1 and _OK(node, settings)


def _split(ctx, node, args, kwargs):
    """split.Tensor / split_with_sizes: one slice per piece, sizes from the node's results."""
    x = args[0]
    rank = len(x.shape)
    dim = norm_dim(get(args, kwargs, 2, "dim", 0), rank)
    outputs, offset = [], 0
    for i, piece in enumerate(val(node)):
        starts = [0] * rank
        starts[dim] = offset
        layer = ctx.network.add_slice(x, tuple(starts), tuple(piece.shape), (1,) * rank)
        outputs.append(ctx.finish(layer, node, suffix=f"piece{i}"))
        offset += piece.shape[dim]
    return tuple(outputs)


def _split_supported(node, settings) -> bool:
    pieces = val(node)
    return (isinstance(pieces, (tuple, list)) and val(node.args[0]).dim() >= 1
            and all(p.numel() > 0 for p in pieces) and _OK(node, settings))


def _clone(ctx, node, args, kwargs):
    return args[0]  # values are immutable inside an engine: a copy is the tensor itself


def _clone_supported(node, settings) -> bool:
    return set(node.kwargs) <= {"memory_format"} and _OK(node, settings)


_RESHAPES = [
    ("view", aten.view.default), ("_unsafe_view", aten._unsafe_view.default),
    ("reshape", aten.reshape.default), ("flatten", aten.flatten.using_ints),
    ("unsqueeze", aten.unsqueeze.default), ("squeeze", aten.squeeze.default),
    ("squeeze.dim", aten.squeeze.dim), ("squeeze.dims", aten.squeeze.dims),
]


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    for name, target in _RESHAPES:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_reshape, is_supported=_OK)
    yield ConverterSpec(name="builtin.permute", target=aten.permute.default, convert=_permute,
                        is_supported=_OK)
    yield ConverterSpec(name="builtin.transpose", target=aten.transpose.int, convert=_transpose,
                        is_supported=_OK)
    yield ConverterSpec(name="builtin.t", target=aten.t.default, convert=_t, is_supported=_OK)
    yield ConverterSpec(name="builtin.expand", target=aten.expand.default, convert=_expand,
                        is_supported=_OK)
    yield ConverterSpec(name="builtin.cat", target=aten.cat.default, convert=_cat,
                        is_supported=_cat_supported)
    yield ConverterSpec(name="builtin.slice", target=aten.slice.Tensor, convert=_slice,
                        is_supported=_slice_supported)
    yield ConverterSpec(name="builtin.select", target=aten.select.int, convert=_select,
                        is_supported=_select_supported)
    for name, target in (("split", aten.split.Tensor), ("split_with_sizes", aten.split_with_sizes.default)):
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_split,
                            is_supported=_split_supported)
    yield ConverterSpec(name="builtin.clone", target=aten.clone.default, convert=_clone,
                        is_supported=_clone_supported)
