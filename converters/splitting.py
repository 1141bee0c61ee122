"""Built-in converters for the split family beyond ``split``/``split_with_sizes`` (``chunk``,
``tensor_split``, the ``unsafe_`` and ``_copy`` forms), ``narrow``, ``movedim``/``swapaxes``,
``expand_as``, and the functional ``*_copy`` view ops that ``torch.export`` produces
(``view_copy``, ``permute_copy``, ``slice_copy`` ...).

Through ``torch.compile`` most of these never arrive (they are composite, or dynamo sees the
view form); tracers that keep composite ops (pre-dispatch ``make_fx``, export) produce them.
Each takes its sizes from the node's fake result, so symbolic sizes reach the layers as shape
tensors and a dynamic batch takes the same converters.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import (
    NUMERIC,
    arg,
    is_dynamic,
    lift_rank,
    norm_dim,
    same_shape,
    slice_to,
    typed,
    val,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec

aten = torch.ops.aten
_ANY = NUMERIC | {torch.bool, torch.int8, torch.uint8}
_OK = typed(_ANY)


def _shuffle(ctx, node, x, *, shape=None, perm=None):
    return ctx.shuffle(x, node, node.args[0], shape=shape, perm=perm)


# -- splits -----------------------------------------------------------------------------------
def _split(ctx, node, args, kwargs):
    """One slice per piece along the dim at argument 2, sizes from the node's results (the
    pieces of every overload here are consecutive once none is empty)."""
    x = args[0]
    rank = len(x.shape)
    dim = norm_dim(arg(node, 2, "dim", 0), rank)
    outputs, offset = [], 0
    for i, piece in enumerate(val(node)):
        starts = [0] * rank
        starts[dim] = offset
        outputs.append(slice_to(ctx, x, starts, piece.shape, (1,) * rank, node, f"piece{i}"))
        offset = offset + piece.shape[dim]
    return tuple(outputs)


def _has_elements(value) -> bool:
    return is_dynamic(value.shape) or value.numel() > 0


def _split_supported(node, settings) -> bool:
    """Non-empty pieces (TensorRT has no empty tensors; ``tensor_split`` past the end, or
    ``chunk`` into more pieces than elements, makes some) of a tensor of rank >= 1."""
    pieces = val(node)
    dim = arg(node, 2, "dim", 0)
    return (isinstance(pieces, (tuple, list)) and isinstance(dim, int)
            and val(node.args[0]).dim() >= 1 and all(_has_elements(p) for p in pieces)
            and _OK(node, settings))


# -- narrow, slice_copy --------------------------------------------------------------------------
def _slice_along(ctx, node, x, dim: int, begin, step: int = 1):
    source = val(node.args[0]).shape
    out = val(node).shape
    if same_shape(out, source):
        return x
    starts, strides = [0] * len(source), [1] * len(source)
    starts[dim], strides[dim] = begin, step
    return slice_to(ctx, x, starts, out, strides, node)


def _bound(value):
    return val(value) if isinstance(value, torch.fx.Node) else value


def _narrow(ctx, node, args, kwargs):
    source = val(node.args[0]).shape
    dim = norm_dim(args[1], len(source))
    start = _bound(node.args[2])
    if isinstance(start, int) and start < 0:
        start += source[dim]
    return _slice_along(ctx, node, args[0], dim, start)


def _narrow_supported(node, settings) -> bool:
    source = val(node.args[0])
    if len(node.args) < 4 or source.dim() < 1 or not isinstance(node.args[1], int):
        return False
    start = _bound(node.args[2])
    if not (isinstance(start, int) or isinstance(start, torch.SymInt)):
        return False
    size = source.shape[norm_dim(node.args[1], source.dim())]
    # a negative start counts from the end: known only for a static dim
    return (isinstance(size, int) or not (isinstance(start, int) and start < 0)) and _OK(node, settings)


def _slice_copy(ctx, node, args, kwargs):
    source = val(node.args[0]).shape
    dim = norm_dim(arg(node, 1, "dim", 0), len(source))
    start, end = _bound(arg(node, 2, "start")), _bound(arg(node, 3, "end"))
    step = arg(node, 4, "step", 1)
    if isinstance(source[dim], int) and not isinstance(start, torch.SymInt) \
            and not isinstance(end, torch.SymInt):
        begin, _, _ = slice(start, end, step).indices(source[dim])
    else:
        begin = start or 0
    return _slice_along(ctx, node, args[0], dim, begin, step)


def _slice_copy_supported(node, settings) -> bool:
    x = val(node.args[0])
    step, start = arg(node, 4, "step", 1), arg(node, 2, "start")
    if not (isinstance(step, int) and step >= 1 and x.dim() >= 1 and _OK(node, settings)):
        return False
    bounds = [start, arg(node, 3, "end")]
    if not all(b is None or isinstance(b, int) or isinstance(_bound(b), torch.SymInt) for b in bounds):
        return False
    dim_size = x.shape[norm_dim(arg(node, 1, "dim", 0), x.dim())]
    return isinstance(dim_size, int) or not (isinstance(start, int) and start < 0)


# -- permutations -----------------------------------------------------------------------------
def _movedim_perm(source, destination, rank: int) -> list[int]:
    """torch.movedim's order of the input dims in the result."""
    source = [norm_dim(d, rank) for d in ([source] if isinstance(source, int) else source)]
    destination = [norm_dim(d, rank) for d in ([destination] if isinstance(destination, int) else destination)]
    order = [-1] * rank
    for s, d in zip(source, destination):
        order[d] = s
    rest = iter(d for d in range(rank) if d not in source)
    return [o if o >= 0 else next(rest) for o in order]


def _movedim(ctx, node, args, kwargs):
    rank = len(args[0].shape)
    return _shuffle(ctx, node, args[0], perm=_movedim_perm(args[1], args[2], rank))


def _swap(ctx, node, args, kwargs):
    """swapaxes / swapdims / transpose_copy: the two dims exchanged."""
    rank = len(args[0].shape)
    perm = list(range(rank))
    if rank:
        a, b = norm_dim(args[1], rank), norm_dim(args[2], rank)
        perm[a], perm[b] = perm[b], perm[a]
    return _shuffle(ctx, node, args[0], perm=perm)


def _permute(ctx, node, args, kwargs):
    rank = len(args[0].shape)
    return _shuffle(ctx, node, args[0], perm=[norm_dim(d, rank) for d in args[1]])


def _t(ctx, node, args, kwargs):
    return _shuffle(ctx, node, args[0], perm=tuple(reversed(range(len(args[0].shape)))))


def _reshape(ctx, node, args, kwargs):
    """view_copy, _reshape_copy, (un)squeeze_copy: the result's shape, from the node."""
    return _shuffle(ctx, node, args[0], shape=tuple(val(node).shape))


def _expand(ctx, node, args, kwargs):
    """expand_copy / expand_as: dims of size 1 broadcast by a zero-stride slice."""
    out = tuple(val(node).shape)
    source = tuple(val(node.args[0]).shape)
    if same_shape(source, out):
        return args[0]
    source = (1,) * (len(out) - len(source)) + source
    x = lift_rank(ctx, args[0], len(out), node)
    stride = tuple(0 if _is_one(s) and not _is_one(o) else 1 for s, o in zip(source, out))
    return slice_to(ctx, x, (0,) * len(out), out, stride, node, "expand")


def _is_one(size) -> bool:
    return isinstance(size, int) and size == 1


def _ints(index: int, name: str, allow_single: bool = False):
    def check(node, settings) -> bool:
        value = arg(node, index, name)
        if allow_single and isinstance(value, int):
            return _OK(node, settings)
        return (isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value)
                and _OK(node, settings))
    return check


def _dims_ok(node, settings) -> bool:
    return all(isinstance(a, int) for a in node.args[1:3]) and _OK(node, settings)


_SPLITS = [
    ("chunk", aten.chunk.default), ("unsafe_chunk", aten.unsafe_chunk.default),
    ("tensor_split.sections", aten.tensor_split.sections),
    ("tensor_split.indices", aten.tensor_split.indices),
    ("unsafe_split", aten.unsafe_split.Tensor),
    ("unsafe_split_with_sizes", aten.unsafe_split_with_sizes.default),
    ("split_copy", aten.split_copy.Tensor), ("split_with_sizes_copy", aten.split_with_sizes_copy.default),
]
_RESHAPES = [
    ("view_copy", aten.view_copy.default), ("_reshape_copy", aten._reshape_copy.default),
    ("unsqueeze_copy", aten.unsqueeze_copy.default), ("squeeze_copy", aten.squeeze_copy.default),
    ("squeeze_copy.dim", aten.squeeze_copy.dim), ("squeeze_copy.dims", aten.squeeze_copy.dims),
]


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    dynamic = dict(supports_dynamic_shapes=True)
    for name, target in _SPLITS:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_split,
                            is_supported=_split_supported, **dynamic)
    for name, target in (("narrow", aten.narrow.default), ("narrow_copy", aten.narrow_copy.default)):
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_narrow,
                            is_supported=_narrow_supported, **dynamic)
    yield ConverterSpec(name="builtin.slice_copy", target=aten.slice_copy.Tensor, convert=_slice_copy,
                        is_supported=_slice_copy_supported, **dynamic)
    for name, target in (("movedim.int", aten.movedim.int), ("movedim.intlist", aten.movedim.intlist)):
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_movedim,
                            is_supported=_ints(1, "source", allow_single=True), **dynamic)
    for name, target in (("swapaxes", aten.swapaxes.default), ("swapdims", aten.swapdims.default),
                         ("transpose_copy", aten.transpose_copy.int)):
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_swap,
                            is_supported=_dims_ok, **dynamic)
    yield ConverterSpec(name="builtin.permute_copy", target=aten.permute_copy.default, convert=_permute,
                        is_supported=_ints(1, "dims"), **dynamic)
    yield ConverterSpec(name="builtin.t_copy", target=aten.t_copy.default, convert=_t,
                        is_supported=_OK, **dynamic)
    for name, target in _RESHAPES:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_reshape,
                            is_supported=_OK, **dynamic)
    for name, target in (("expand_copy", aten.expand_copy.default), ("expand_as", aten.expand_as.default)):
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_expand,
                            is_supported=_OK, **dynamic)
