"""Built-in converters for ops that move data without arithmetic: views and reshapes,
permutes and transposes, (un)squeeze, expand, cat, slice, select, narrow, movedim, every split
and chunk, and clone, each with export's functional ``*_copy`` forms and the aliases tracing
leaves (``swapaxes``, ``expand_as``, ``unsafe_split`` ...). Through ``torch.compile`` the
composite ones (``narrow``, ``movedim``, ``chunk`` ...) never arrive; tracers that keep
composite ops (pre-dispatch ``make_fx``, export) produce them.

Each converter takes the result's shape from the node's fake value rather than re-deriving
torch's rules (``-1`` in a view, squeeze of non-unit dims, ...). Where a size is symbolic, the
same sizes reach the layers as shape tensors (``ctx.shuffle``, ``slice_to``), so one engine
serves every size of a dynamic dim."""
from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import (
    NUMERIC, arg, aten, is_dynamic, lift_rank, norm_dim, out_dtype, same_shape,
    sizes_computable, slice_to, typed, val,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec


_ANY = NUMERIC | {torch.bool, torch.int8, torch.uint8}


_OK = typed(_ANY)


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
    return _broadcast(ctx, args[0], tuple(val(node.args[0]).shape), node)


def _broadcast(ctx, x, source: tuple, node):
    """``x`` (of shape ``source``) broadcast to the node's shape: dims of size 1 by a
    zero-stride slice, after adding leading unit dims."""
    out = tuple(val(node).shape)
    if same_shape(source, out):
        return x
    source = (1,) * (len(out) - len(source)) + source
    x = lift_rank(ctx, x, len(out), node)
    stride = tuple(0 if _is_one(s) and not _is_one(o) else 1 for s, o in zip(source, out))
    return slice_to(ctx, x, (0,) * len(out), out, stride, node, "expand")


def _copy(ctx, node, args, kwargs):
    """``copy(self, src)``, the functional form of ``self.copy_(src)`` that slice assignment
    (``x[:, 1:3] = v``) leaves: ``src`` in ``self``'s dtype, broadcast to ``self``'s shape."""
    source = ctx.cast(args[1], out_dtype(ctx, node), node)
    return _broadcast(ctx, source, tuple(val(node.args[1]).shape), node)


def _is_one(size) -> bool:
    return isinstance(size, int) and size == 1


def _cat(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    tensors = [ctx.cast(t, dtype, node) for t, v in zip(args[0], node.args[0]) if _has_elements(val(v))]
    rank = len(val(node).shape)
    layer = ctx.network.add_concatenation(tensors)
    layer.axis = norm_dim(arg(args, kwargs, 1, "dim", 0), rank)
    return ctx.finish(layer, node)


def _has_elements(value) -> bool:
    return is_dynamic(value.shape) or value.numel() > 0


def _cat_supported(node, settings) -> bool:
    """A non-empty result of rank >= 1; empty inputs (torch's legacy ``(0,)`` tensors included)
    are skipped, as torch skips them."""
    parts = [val(t) for t in node.args[0]]
    result = val(node)
    kept = [p for p in parts if _has_elements(p)]
    return (_has_elements(result) and result.dim() >= 1
            and result.dtype in _ANY and all(p.dtype in _ANY for p in parts)
            and all(p.dim() == result.dim() for p in kept))


def _slice(ctx, node, args, kwargs):
    source = val(node.args[0]).shape
    rank = len(source)
    dim = norm_dim(arg(node.args, node.kwargs, 1, "dim", 0), rank)
    start, end = (val(b) if isinstance(b, torch.fx.Node) else b
                  for b in (arg(node.args, node.kwargs, 2, "start"), arg(node.args, node.kwargs, 3, "end")))
    step = arg(node.args, node.kwargs, 4, "step", 1)
    if isinstance(source[dim], int) and not isinstance(start, torch.SymInt) \
            and not isinstance(end, torch.SymInt):
        begin, _, _ = slice(start, end, step).indices(source[dim])
    elif isinstance(start, int) and start < 0:  # from the end of a dynamic dim, clamped as torch does
        begin = torch.sym_max(source[dim] + start, 0)
    else:  # validated: a start of None, a symbolic size, or an int >= 0 (no clamping needed)
        begin = start or 0
    if same_shape(val(node).shape, source):
        return args[0]  # the whole dim: nothing to cut
    starts, strides = [0] * rank, [1] * rank
    starts[dim], strides[dim] = begin, step
    return slice_to(ctx, args[0], starts, val(node).shape, strides, node)


def _slice_supported(node, settings) -> bool:
    step = arg(node.args, node.kwargs, 4, "step", 1)
    start = arg(node.args, node.kwargs, 2, "start")
    x = val(node.args[0])
    if not (isinstance(step, int) and step >= 1 and x.dim() >= 1 and _OK(node, settings)):
        return False
    bounds = [start, arg(node.args, node.kwargs, 3, "end")]
    if not all(b is None or isinstance(b, int) or isinstance(val(b), torch.SymInt) for b in bounds):
        return False
    # from the end of a dynamic dim, the start is computed (and clamped at 0) in the engine
    return sizes_computable(val(node).shape)


def _select(ctx, node, args, kwargs):
    source = val(node.args[0]).shape
    rank = len(source)
    dim = norm_dim(args[1], rank)
    index = args[2] if args[2] >= 0 else source[dim] + args[2]
    starts, shape = [0] * rank, list(source)
    starts[dim], shape[dim] = index, 1
    picked = slice_to(ctx, args[0], starts, shape, [1] * rank, node)
    return ctx.shuffle(picked, node, shape=tuple(val(node).shape))


def _select_supported(node, settings) -> bool:
    return isinstance(node.args[2], int) and val(node.args[0]).dim() >= 1 and _OK(node, settings)


def _split(ctx, node, args, kwargs):
    """Every split, chunk and tensor_split overload: one slice per piece along the dim at
    argument 2, sizes from the node's results (consecutive pieces, none empty)."""
    x = args[0]
    rank = len(x.shape)
    dim = norm_dim(arg(args, kwargs, 2, "dim", 0), rank)
    outputs, offset = [], 0
    for i, piece in enumerate(val(node)):
        starts = [0] * rank
        starts[dim] = offset
        outputs.append(slice_to(ctx, x, starts, piece.shape, (1,) * rank, node, f"piece{i}"))
        offset = offset + piece.shape[dim]
    return tuple(outputs)


def _split_supported(node, settings) -> bool:
    """Non-empty pieces (TensorRT has no empty tensors; ``tensor_split`` past the end, or
    ``chunk`` into more pieces than elements, makes some) of a tensor of rank >= 1."""
    pieces = val(node)
    return (isinstance(pieces, (tuple, list)) and isinstance(arg(node.args, node.kwargs, 2, "dim", 0), int)
            and val(node.args[0]).dim() >= 1 and all(_has_elements(p) for p in pieces)
            and _OK(node, settings))


def _clone(ctx, node, args, kwargs):
    return args[0]  # values are immutable inside an engine: a copy is the tensor itself


def _clone_supported(node, settings) -> bool:
    return set(node.kwargs) <= {"memory_format"} and _OK(node, settings)


# Each family with export's functional ``*_copy`` forms and the aliases tracing can leave.
_RESHAPES = [
    ("view", aten.view.default), ("_unsafe_view", aten._unsafe_view.default),
    ("reshape", aten.reshape.default), ("flatten", aten.flatten.using_ints),
    ("unsqueeze", aten.unsqueeze.default), ("squeeze", aten.squeeze.default),
    ("squeeze.dim", aten.squeeze.dim), ("squeeze.dims", aten.squeeze.dims),
    ("view_copy", aten.view_copy.default), ("_reshape_copy", aten._reshape_copy.default),
    ("unsqueeze_copy", aten.unsqueeze_copy.default), ("squeeze_copy", aten.squeeze_copy.default),
    ("squeeze_copy.dim", aten.squeeze_copy.dim), ("squeeze_copy.dims", aten.squeeze_copy.dims),
]


_TRANSPOSES = [("transpose", aten.transpose.int), ("transpose_copy", aten.transpose_copy.int),
               ("swapaxes", aten.swapaxes.default), ("swapdims", aten.swapdims.default)]


_EXPANDS = [("expand", aten.expand.default), ("expand_copy", aten.expand_copy.default),
            ("expand_as", aten.expand_as.default)]


_SPLITS = [
    ("split", aten.split.Tensor), ("split_with_sizes", aten.split_with_sizes.default),
    ("chunk", aten.chunk.default), ("unsafe_chunk", aten.unsafe_chunk.default),
    ("tensor_split.sections", aten.tensor_split.sections),
    ("tensor_split.indices", aten.tensor_split.indices),
    ("unsafe_split", aten.unsafe_split.Tensor),
    ("unsafe_split_with_sizes", aten.unsafe_split_with_sizes.default),
    ("split_copy", aten.split_copy.Tensor), ("split_with_sizes_copy", aten.split_with_sizes_copy.default),
]


aten = torch.ops.aten


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
    dim = norm_dim(arg(node.args, node.kwargs, 1, "dim", 0), len(source))
    start = _bound(arg(node.args, node.kwargs, 2, "start"))
    end = _bound(arg(node.args, node.kwargs, 3, "end"))
    step = arg(node.args, node.kwargs, 4, "step", 1)
    if isinstance(source[dim], int) and not isinstance(start, torch.SymInt) \
            and not isinstance(end, torch.SymInt):
        begin, _, _ = slice(start, end, step).indices(source[dim])
    else:
        begin = start or 0
    return _slice_along(ctx, node, args[0], dim, begin, step)


def _slice_copy_supported(node, settings) -> bool:
    x = val(node.args[0])
    step, start = arg(node.args, node.kwargs, 4, "step", 1), arg(node.args, node.kwargs, 2, "start")
    if not (isinstance(step, int) and step >= 1 and x.dim() >= 1 and _OK(node, settings)):
        return False
    bounds = [start, arg(node.args, node.kwargs, 3, "end")]
    if not all(b is None or isinstance(b, int) or isinstance(_bound(b), torch.SymInt) for b in bounds):
        return False
    dim_size = x.shape[norm_dim(arg(node.args, node.kwargs, 1, "dim", 0), x.dim())]
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


def _ints(index: int, name: str, allow_single: bool = False):
    def check(node, settings) -> bool:
        value = arg(node.args, node.kwargs, index, name)
        if allow_single and isinstance(value, int):
            return _OK(node, settings)
        return (isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value)
                and _OK(node, settings))
    return check


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    families = (
        (_reshape, _OK, _RESHAPES),
        (_permute, _OK, [("permute", aten.permute.default), ("permute_copy", aten.permute_copy.default)]),
        (_transpose, _OK, _TRANSPOSES),
        (_t, _OK, [("t", aten.t.default), ("t_copy", aten.t_copy.default)]),
        (_expand, _OK, _EXPANDS),
        (_copy, _OK, [("copy", aten.copy.default)]),
        (_cat, _cat_supported, [("cat", aten.cat.default)]),
        (_slice, _slice_supported, [("slice", aten.slice.Tensor)]),
        (_select, _select_supported, [("select", aten.select.int), ("select_copy", aten.select_copy.int)]),
        (_split, _split_supported, _SPLITS),
        (_clone, _clone_supported, [("clone", aten.clone.default)]),
    )
    for convert, is_supported, targets in families:
        for name, target in targets:
            yield ConverterSpec(name=f"builtin.{name}", target=target, convert=convert,
                                is_supported=is_supported, supports_dynamic_shapes=True)
    dynamic = dict(supports_dynamic_shapes=True)
    for name, target in (("narrow", aten.narrow.default), ("narrow_copy", aten.narrow_copy.default)):
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_narrow,
                            is_supported=_narrow_supported, **dynamic)
    yield ConverterSpec(name="builtin.slice_copy", target=aten.slice_copy.Tensor, convert=_slice_copy,
                        is_supported=_slice_copy_supported, **dynamic)
    for name, target in (("movedim.int", aten.movedim.int), ("movedim.intlist", aten.movedim.intlist)):
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_movedim,
                            is_supported=_ints(1, "source", allow_single=True), **dynamic)
