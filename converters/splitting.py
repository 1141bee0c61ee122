"""Built-in converters for ``narrow`` (and ``narrow_copy``), ``slice_copy`` and ``movedim``.
The other split, view and ``*_copy`` forms share their converters in
:mod:`plugtrt.converters.shape`.

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
    dynamic = dict(supports_dynamic_shapes=True)
    for name, target in (("narrow", aten.narrow.default), ("narrow_copy", aten.narrow_copy.default)):
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_narrow,
                            is_supported=_narrow_supported, **dynamic)
    yield ConverterSpec(name="builtin.slice_copy", target=aten.slice_copy.Tensor, convert=_slice_copy,
                        is_supported=_slice_copy_supported, **dynamic)
    for name, target in (("movedim.int", aten.movedim.int), ("movedim.intlist", aten.movedim.intlist)):
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_movedim,
                            is_supported=_ints(1, "source", allow_single=True), **dynamic)
