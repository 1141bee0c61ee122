"""Built-in converters that rearrange elements: ``roll``, ``flip``, ``repeat``/``tile``,
``repeat_interleave``, ``unfold``, ``pixel_shuffle``/``pixel_unshuffle``, ``stack``, ``unbind``,
``diag_embed``, ``as_strided`` and ``alias``.

Most are one slice layer: a roll is a WRAP slice starting ``-shift`` on each rolled dim (one
layer however many dims roll), a repeat is a WRAP slice as large as the result, a flip a slice
of stride -1 from the last element. Sizes come from the node's fake result, as shape tensors
where a dim is symbolic, so a dynamic batch takes the same layers.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import (
    NUMERIC, arg, is_dynamic, lift_rank, norm_dim, out_dtype, reshape_to, same_shape, select,
    shape_tensor, slice_to, static_shapes, trt_dims, typed, val,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt

aten = torch.ops.aten
_ANY = NUMERIC | {torch.bool, torch.int8, torch.uint8}
_OK = typed(_ANY)


def _slice_layer(ctx, node, x, starts, sizes, mode: str, suffix: str):
    """A slice layer in sample ``mode`` whose sizes may be symbolic (starts are static ints)."""
    rank = len(sizes)
    dynamic = is_dynamic(sizes)
    layer = ctx.network.add_slice(x, tuple(starts), trt_dims(sizes) if not dynamic else (1,) * rank,
                                  (1,) * rank)
    if dynamic:
        layer.set_input(2, shape_tensor(ctx, sizes, node))
    layer.mode = getattr(trt.SampleMode, mode)
    return ctx.finish(layer, node, suffix=suffix)


# -- roll ------------------------------------------------------------------------------------
def _roll(ctx, node, args, kwargs):
    x = args[0]
    source = val(node.args[0])
    shifts = list(arg(node.args, node.kwargs, 1, "shifts"))
    dims = list(arg(node.args, node.kwargs, 2, "dims", []) or [])
    if not dims:  # the flattened tensor rolls, then takes its shape back
        flat = reshape_to(ctx, x, (source.numel(),), node, "flatten")
        rolled = _slice_layer(ctx, node, flat, [_start(-shifts[0], source.numel())],
                              (source.numel(),), "WRAP", "roll")
        return reshape_to(ctx, rolled, tuple(source.shape), node, "unflatten")
    rank = source.dim()
    starts = [0] * rank
    for shift, dim in zip(shifts, dims):
        starts[norm_dim(dim, rank)] -= shift
    starts = [_start(s, source.shape[d]) for d, s in enumerate(starts)]
    if not any(starts):
        return x
    return _slice_layer(ctx, node, x, starts, tuple(source.shape), "WRAP", "roll")


def _start(start: int, size) -> int:
    """A WRAP start folded into ``[0, size)`` where the size is known."""
    return start % size if isinstance(size, int) else start


def _roll_supported(node, settings) -> bool:
    shifts, dims = arg(node.args, node.kwargs, 1, "shifts"), arg(node.args, node.kwargs, 2, "dims", []) or []
    if not (isinstance(shifts, (list, tuple)) and all(isinstance(s, int) for s in shifts)):
        return False
    if not all(isinstance(d, int) for d in dims):
        return False
    if not dims and len(shifts) != 1 or dims and len(dims) != len(shifts):
        return False
    return val(node.args[0]).dim() >= (1 if dims else 0) and _OK(node, settings)


# -- flip ------------------------------------------------------------------------------------
def _flip(ctx, node, args, kwargs):
    source = val(node.args[0]).shape
    rank = len(source)
    dims = {norm_dim(d, rank) for d in args[1]}
    if not any(not (isinstance(source[d], int) and source[d] == 1) for d in dims):
        return args[0]  # flipping unit dims changes nothing
    starts = [source[d] - 1 if d in dims else 0 for d in range(rank)]
    strides = [-1 if d in dims else 1 for d in range(rank)]
    return slice_to(ctx, args[0], starts, source, strides, node, "flip")


def _flip_supported(node, settings) -> bool:
    dims = arg(node.args, node.kwargs, 1, "dims")
    return (isinstance(dims, (list, tuple)) and all(isinstance(d, int) for d in dims)
            and val(node.args[0]).dim() >= 1 and _OK(node, settings))


# -- repeat and tile ---------------------------------------------------------------------------
def _repeat(ctx, node, args, kwargs):
    """repeat / tile: a WRAP slice of the result's size (leading unit dims added first)."""
    out = tuple(val(node).shape)
    if same_shape(out, val(node.args[0]).shape):
        return args[0]
    x = lift_rank(ctx, args[0], len(out), node)
    return _slice_layer(ctx, node, x, [0] * len(out), out, "WRAP", "repeat")


def _repeat_supported(node, settings) -> bool:
    reps = arg(node.args, node.kwargs, 1, "repeats" if node.target == aten.repeat.default else "dims")
    return (isinstance(reps, (list, tuple)) and all(isinstance(r, int) for r in reps)
            and val(node).dim() >= 1 and _OK(node, settings))


# -- repeat_interleave ---------------------------------------------------------------------------
def _repeat_interleave(ctx, node, args, kwargs):
    """Each element ``repeats`` times along ``dim``: one gather by a constant index."""
    source = val(node.args[0])
    repeats = arg(node.args, node.kwargs, 1, "repeats")
    dim = arg(node.args, node.kwargs, 2, "dim")
    x = args[0]
    if dim is None:
        x = reshape_to(ctx, x, (source.numel(),), node, "flatten")
        axis, size = 0, source.numel()
    else:
        axis = norm_dim(dim, source.dim())
        size = source.shape[axis]
    index = torch.arange(size, dtype=torch.int32).repeat_interleave(repeats)
    layer = ctx.network.add_gather(x, ctx.constant(index, node, dtype=torch.int32), axis)
    return ctx.finish(layer, node)


def _repeat_interleave_supported(node, settings) -> bool:
    source = val(node.args[0])
    repeats, dim = arg(node.args, node.kwargs, 1, "repeats"), arg(node.args, node.kwargs, 2, "dim")
    if not (isinstance(repeats, int) and repeats >= 1 and source.dim() >= 1):
        return False
    if dim is None:  # the flattened length is the index's length: static
        return static_shapes(node) and _OK(node, settings)
    if not isinstance(dim, int) or not isinstance(source.shape[norm_dim(dim, source.dim())], int):
        return False
    return _OK(node, settings)


# -- unfold (Tensor.unfold: sliding windows) --------------------------------------------------
def _unfold(ctx, node, args, kwargs):
    """Windows as a gather by a constant ``(count, size)`` index, then the window dim moved last."""
    source = val(node.args[0])
    rank = source.dim()
    dim, size, step = norm_dim(args[1], rank), args[2], args[3]
    count = (source.shape[dim] - size) // step + 1
    index = (torch.arange(count, dtype=torch.int32)[:, None] * step
             + torch.arange(size, dtype=torch.int32)[None, :])
    layer = ctx.network.add_gather(args[0], ctx.constant(index, node, dtype=torch.int32), dim)
    out = ctx.finish(layer, node, suffix="windows")
    perm = [d for d in range(rank + 1) if d != dim + 1] + [dim + 1]
    return ctx.shuffle(out, node, perm=perm)


def _unfold_supported(node, settings) -> bool:
    source = val(node.args[0])
    if len(node.args) < 4 or source.dim() < 1:
        return False
    dim, size, step = node.args[1:4]
    if not all(isinstance(v, int) for v in (dim, size, step)) or size < 1 or step < 1:
        return False
    extent = source.shape[norm_dim(dim, source.dim())]
    return isinstance(extent, int) and _OK(node, settings)


# -- pixel_shuffle / pixel_unshuffle ------------------------------------------------------------
def _pixel(unshuffle: bool):
    """Two shuffle layers: (reshape, transpose), then reshape; leading (batch) dims pass as 0,
    TensorRT's placeholder for "copy this input dim", so a dynamic batch needs no shape tensor."""
    def convert(ctx, node, args, kwargs):
        x, r = args[0], args[1]
        source = val(node.args[0]).shape
        lead = len(source) - 3
        c, h, w = (int(d) for d in source[-3:])
        keep = [0] * lead
        if unshuffle:
            dims = [c, h // r, r, w // r, r]
            perm = [0, 2, 4, 1, 3]  # C, r, r, H, W
        else:
            dims = [c // (r * r), r, r, h, w]
            perm = [0, 3, 1, 4, 2]  # C, H, r, W, r
        first = ctx.network.add_shuffle(x)
        first.reshape_dims = tuple(keep + dims)
        first.second_transpose = tuple(list(range(lead)) + [lead + p for p in perm])
        y = ctx.finish(first, node, suffix="split")
        out = [int(d) for d in val(node).shape[-3:]]
        second = ctx.network.add_shuffle(y)
        second.reshape_dims = tuple(keep + out)
        return ctx.finish(second, node, suffix="merge")
    return convert


def _pixel_supported(node, settings) -> bool:
    source = val(node.args[0])
    name = "upscale_factor" if node.target == aten.pixel_shuffle.default else "downscale_factor"
    r = arg(node.args, node.kwargs, 1, name)
    return (isinstance(r, int) and r >= 1 and source.dim() >= 3 and static_shapes(node, last=3)
            and _OK(node, settings))


# -- stack / unbind ---------------------------------------------------------------------------
def _stack(ctx, node, args, kwargs):
    """Before the last dim: one concatenation along ``dim`` reshaped to the result (the pieces
    lie in order); a new last dim: each piece unsqueezed, then concatenated."""
    dtype = out_dtype(ctx, node)
    out = val(node).shape
    rank = len(out)
    dim = norm_dim(arg(node.args, node.kwargs, 1, "dim", 0), rank)
    pieces = [ctx.cast(t, dtype, node) for t in args[0]]
    if dim < rank - 1:
        layer = ctx.network.add_concatenation(pieces)
        layer.axis = dim
        return reshape_to(ctx, ctx.finish(layer, node, suffix="cat"), out, node)
    shape = tuple(out[:-1]) + (1,)
    pieces = [reshape_to(ctx, p, shape, node, f"unsqueeze{i}") for i, p in enumerate(pieces)]
    layer = ctx.network.add_concatenation(pieces)
    layer.axis = dim
    return ctx.finish(layer, node)


def _stack_supported(node, settings) -> bool:
    parts = [val(t) for t in node.args[0]]
    result = val(node)
    return (all(isinstance(p, torch.Tensor) for p in parts) and result.dtype in _ANY
            and all(p.dtype in _ANY for p in parts)
            and isinstance(arg(node.args, node.kwargs, 1, "dim", 0), int)
            and _OK(node, settings))


def _unbind(ctx, node, args, kwargs):
    source = val(node.args[0]).shape
    rank = len(source)
    dim = norm_dim(arg(node.args, node.kwargs, 1, "dim", 0), rank)
    outputs = []
    for i, piece in enumerate(val(node)):
        starts, sizes = [0] * rank, list(source)
        starts[dim], sizes[dim] = i, 1
        picked = slice_to(ctx, args[0], starts, sizes, (1,) * rank, node, f"piece{i}")
        outputs.append(reshape_to(ctx, picked, tuple(piece.shape), node, f"squeeze{i}"))
    return tuple(outputs)


def _unbind_supported(node, settings) -> bool:
    source = val(node.args[0])
    if source.dim() < 1 or not isinstance(arg(node.args, node.kwargs, 1, "dim", 0), int):
        return False
    return isinstance(source.shape[norm_dim(arg(node.args, node.kwargs, 1, "dim", 0), source.dim())], int) \
        and _OK(node, settings)


# -- diag_embed -------------------------------------------------------------------------------
def _diag_embed(ctx, node, args, kwargs):
    """``where(eye, x[..., :, None], 0)``: a select, so inf and NaN stay on the diagonal only."""
    source = val(node.args[0]).shape
    n = int(source[-1])
    dtype = ctx.dtype(args[0])
    column = reshape_to(ctx, args[0], tuple(source) + (1,), node, "column")
    rank = len(source) + 1
    mask = ctx.operand(torch.eye(n, dtype=torch.bool), torch.bool, rank, node)
    zero = ctx.scalar(False if dtype == torch.bool else 0, dtype, rank, node)
    return select(ctx, mask, column, zero, node)


def _diag_embed_supported(node, settings) -> bool:
    source = val(node.args[0])
    a, k = node.args, node.kwargs
    offset, dim1, dim2 = arg(a, k, 1, "offset", 0), arg(a, k, 2, "dim1", -2), arg(a, k, 3, "dim2", -1)
    rank = source.dim() + 1
    if offset != 0 or source.dim() < 1 or not isinstance(source.shape[-1], int):
        return False
    return {norm_dim(dim1, rank), norm_dim(dim2, rank)} == {rank - 2, rank - 1} and _OK(node, settings)


# -- as_strided -------------------------------------------------------------------------------
def _strided_index(node) -> torch.Tensor | None:
    """The flat (row-major) index into the input of each element of the result, or None when
    the view reads storage outside the input."""
    source = val(node.args[0])
    size = list(arg(node.args, node.kwargs, 1, "size"))
    stride = list(arg(node.args, node.kwargs, 2, "stride"))
    offset = arg(node.args, node.kwargs, 3, "storage_offset", None)
    offset = source.storage_offset() if offset is None else offset
    extent = source.storage_offset() + 1 + sum((s - 1) * abs(t) for s, t in zip(source.shape, source.stride()))
    reach = offset + 1 + sum((s - 1) * t for s, t in zip(size, stride))
    storage = torch.full((max(extent, reach, 1),), -1, dtype=torch.int64)
    placed = torch.as_strided(storage, tuple(source.shape), tuple(source.stride()), source.storage_offset())
    placed.copy_(torch.arange(source.numel()).reshape(source.shape))
    index = torch.as_strided(storage, tuple(size), tuple(stride), offset)
    return None if (index < 0).any() else index


def _as_strided(ctx, node, args, kwargs):
    """A strided view of the input's storage: a slice of the flattened input when the elements
    read form one progression, else a gather by their (constant) flat index; then the shape."""
    index = _strided_index(node).reshape(-1)
    source = val(node.args[0])
    out = tuple(val(node).shape)
    flat = ctx.reshape(args[0], (source.numel(),), node)
    step = int(index[1] - index[0]) if index.numel() > 1 else 1
    if step >= 1 and torch.equal(index, index[0] + step * torch.arange(index.numel())):
        picked = slice_to(ctx, flat, (int(index[0]),), (index.numel(),), (step,), node)
    else:
        layer = ctx.network.add_gather(flat, ctx.constant(index.to(torch.int32), node, dtype=torch.int32), 0)
        picked = ctx.finish(layer, node, suffix="gather")
    return ctx.reshape(picked, out, node)


def _as_strided_supported(node, settings) -> bool:
    """Static shapes only: the index is computed from the sizes at conversion; views that read
    outside the input's elements (overlapping storage of other tensors) are declined."""
    size, stride = arg(node.args, node.kwargs, 1, "size"), arg(node.args, node.kwargs, 2, "stride")
    if not (isinstance(size, (list, tuple)) and isinstance(stride, (list, tuple))):
        return False
    if not (all(isinstance(v, int) for v in (*size, *stride)) and len(size) == len(stride)):
        return False
    offset = arg(node.args, node.kwargs, 3, "storage_offset", None)
    if not (offset is None or isinstance(offset, int)) or not static_shapes(node):
        return False
    if math.prod(size) > 2**24 or min(stride, default=0) < 0:
        return False
    return _OK(node, settings) and _strided_index(node) is not None


# -- alias ------------------------------------------------------------------------------------
def _alias(ctx, node, args, kwargs):
    return args[0]  # values are immutable inside an engine


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    dynamic = dict(supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.roll", target=aten.roll.default, convert=_roll,
                        is_supported=_roll_supported, **dynamic)
    yield ConverterSpec(name="builtin.flip", target=aten.flip.default, convert=_flip,
                        is_supported=_flip_supported, **dynamic)
    yield ConverterSpec(name="builtin.repeat", target=aten.repeat.default, convert=_repeat,
                        is_supported=_repeat_supported, **dynamic)
    yield ConverterSpec(name="builtin.tile", target=aten.tile.default, convert=_repeat,
                        is_supported=_repeat_supported, **dynamic)
    yield ConverterSpec(name="builtin.repeat_interleave.self_int", target=aten.repeat_interleave.self_int,
                        convert=_repeat_interleave, is_supported=_repeat_interleave_supported, **dynamic)
    for name, target in (("unfold", aten.unfold.default), ("unfold_copy", aten.unfold_copy.default)):
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_unfold,
                            is_supported=_unfold_supported, **dynamic)
    yield ConverterSpec(name="builtin.pixel_shuffle", target=aten.pixel_shuffle.default,
                        convert=_pixel(False), is_supported=_pixel_supported, **dynamic)
    yield ConverterSpec(name="builtin.pixel_unshuffle", target=aten.pixel_unshuffle.default,
                        convert=_pixel(True), is_supported=_pixel_supported, **dynamic)
    yield ConverterSpec(name="builtin.stack", target=aten.stack.default, convert=_stack,
                        is_supported=_stack_supported, **dynamic)
    for name, target in (("unbind", aten.unbind.int), ("unbind_copy", aten.unbind_copy.int)):
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_unbind,
                            is_supported=_unbind_supported, **dynamic)
    yield ConverterSpec(name="builtin.diag_embed", target=aten.diag_embed.default, convert=_diag_embed,
                        is_supported=_diag_embed_supported, **dynamic)
    for name, target in (("as_strided", aten.as_strided.default),
                         ("as_strided_copy", aten.as_strided_copy.default)):
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_as_strided,
                            is_supported=_as_strided_supported)
    for name, target in (("alias", aten.alias.default), ("alias_copy", aten.alias_copy.default)):
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_alias, is_supported=_OK,
                            **dynamic)
