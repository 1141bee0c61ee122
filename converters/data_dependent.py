"""Built-in converters for ops whose result size depends on the data: ``nonzero``, indexing by a
boolean mask from the graph (``x[mask]``, ``x[:, mask]``), ``masked_select``, and
``x[mask] = v`` with one value per selected element (``index_put``).

Dynamo hands these over with ``torch._dynamo.config.capture_dynamic_output_shape_ops = True``:
the number of selected elements is then an unbacked symbol (``u0``) in the result's shape. All
four go through TensorRT's non-zero layer, whose output ``[rank, N]`` lists the positions of the
True (non-zero) entries in row-major order, as ``torch.nonzero`` does:

- ``nonzero(x)`` is that output transposed to ``[N, rank]``;
- ``x[..., mask]`` flattens the dims the mask covers into one, takes the non-zero positions of
  the flattened mask as one index vector and gathers along that dim (NVIDIA's "compress":
  non-zero, shuffle, gather); ``masked_select`` is the same over every dim, after broadcasting;
- ``x[mask] = v`` scatters ``v`` at those positions (accumulating adds what is there first:
  a mask names each element at most once, so gather, add and scatter is exact). Only values
  that provably carry the mask's count are accepted: their length is the data-dependent size
  of a ``x[mask]`` or ``nonzero(mask)`` of the same mask node. Values that broadcast instead
  are a select (:mod:`plugtrt.converters.indexing`); values with any other length may
  not match the count, where eager raises, so they stay in PyTorch.

The converter binds the new symbol to the non-zero layer's output length (``ctx.symbols``), so
later layers whose sizes mention it (a reshape, an expand, a mean's divisor) compute it inside
the engine. TensorRT-RTX 1.7's builder has no runner for the non-zero layer ("NonZero has no
runners that implement it", NVIDIA/TensorRT-RTX#32): where the installed builder cannot build
one (probed once per process), these converters decline, with a warning saying why, and the ops
run in PyTorch between engines.
"""
from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.fx

from plugtrt.conversion import (
    NUMERIC,
    arg,
    aten,
    bind_sizes,
    broadcast_to,
    builder_refusal,
    constant_value,
    elementwise,
    is_dynamic,
    out_dtype,
    same_shape,
    unary,
    unbacked_symbols,
    val,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt, version

logger = logging.getLogger("plugtrt")

_DATA = NUMERIC | {torch.bool}
_NON_ZERO_INPUTS = frozenset({torch.float32, torch.float16, torch.int32, torch.bool})
"""What TensorRT's non-zero layer reads directly; other dtypes are compared with 0 first."""


def _non_zero_network(network: Any) -> None:
    x = network.add_input("x", trt.bool, (2,))
    network.mark_output(network.add_non_zero(x).get_output(0))


@functools.cache
def builder_refuses_non_zero() -> str | None:
    """Why the installed TensorRT cannot build a network with a non-zero layer, or None when it
    can (TensorRT-RTX 1.7 has no runner for it)."""
    if builder_refusal(_non_zero_network) is None:
        return None
    return (f"the installed TensorRT ({version()}) cannot build its non-zero layer (TensorRT-RTX "
            "has no runner for it: NVIDIA/TensorRT-RTX#32)")


_warned = False


def _buildable() -> bool:
    global _warned
    reason = builder_refuses_non_zero()
    if reason is not None and not _warned:
        _warned = True
        logger.warning("plugtrt: nonzero, boolean-mask indexing, masked_select and x[mask] = values "
                       "run in PyTorch: %s", reason)
    return reason is None


# -- the shared piece: positions of a mask's True entries ----------------------------------------
def _positions(ctx, mask: Any, mask_shape: tuple, count: Any, node: torch.fx.Node) -> Any:
    """The flat (row-major) positions of ``mask``'s True entries, a 1-D int32 tensor of length
    ``count`` (the node's data-dependent ``SymInt``), which this binds to that length."""
    total = math.prod(mask_shape)
    flat = ctx.reshape(mask, (total,), node)
    found = ctx.finish(ctx.network.add_non_zero(flat), node, suffix="non_zero")  # [1, N]
    bind_sizes(ctx, found, (1, count), node)
    layer = ctx.network.add_shuffle(found)
    layer.reshape_dims = (-1,)
    return ctx.cast(ctx.name(layer, node, "positions").get_output(0), torch.int32, node)


def _merge_dims(ctx, x: Any, shape: tuple, start: int, count: int, node: torch.fx.Node) -> Any:
    """``x`` with dims ``[start, start + count)`` merged into one."""
    merged = shape[:start] + (math.prod(shape[start:start + count]),) + shape[start + count:]
    return ctx.reshape(x, merged, node)


def _mask_of(node: torch.fx.Node) -> tuple[int, torch.fx.Node] | None:
    """``(position, mask node)`` when ``node``'s indices are leading ``None``s then one boolean
    mask from the graph (not a constant, which advanced indexing folds), covering dims of the
    indexed tensor with the same sizes."""
    x = val(node.args[0])
    entries = list(node.args[1])
    tensors = [i for i, e in enumerate(entries) if e is not None]
    if not isinstance(x, torch.Tensor) or len(tensors) != 1 or tensors[0] != len(entries) - 1:
        return None
    position, mask_node = tensors[0], entries[-1]
    mask = val(mask_node)
    if (not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.dim() == 0
            or constant_value(mask_node) is not None or position + mask.dim() > x.dim()):
        return None
    if not same_shape(mask.shape, x.shape[position:position + mask.dim()]):
        return None
    return position, mask_node


def _count_symbol(node: torch.fx.Node, position: int) -> Any:
    """The data-dependent size of ``node``'s result at ``position``, if it is one symbol."""
    size = val(node).shape[position]
    symbols = unbacked_symbols([size])
    return size if len(symbols) == 1 and size.node.expr in symbols else None


def _plain_input(node: torch.fx.Node, tensor_args: tuple[int, ...]) -> bool:
    """The tensors read are non-empty and of TensorRT's data dtypes."""
    for i in tensor_args:
        value = val(node.args[i])
        if not isinstance(value, torch.Tensor) or value.dtype not in _DATA:
            return False
        if not is_dynamic(value.shape) and value.numel() == 0:
            return False
    return True


# -- nonzero -----------------------------------------------------------------------------------
def _nonzero(ctx, node, args, kwargs):
    x = args[0]
    shape = tuple(val(node.args[0]).shape)
    if ctx.dtype(x) not in _NON_ZERO_INPUTS:
        x = unary(ctx, elementwise(ctx, x, 0, "EQUAL", node, ctx.dtype(x), "is_zero"), "NOT", node)
    found = ctx.finish(ctx.network.add_non_zero(x), node, suffix="non_zero")  # [rank, N]
    bind_sizes(ctx, found, (len(shape), val(node).shape[0]), node)
    return ctx.cast(ctx.shuffle(found, node, perm=(1, 0)), out_dtype(ctx, node), node)


def _nonzero_supported(node: torch.fx.Node, settings) -> bool:
    x = val(node.args[0])
    return (isinstance(x, torch.Tensor) and x.dim() > 0 and _plain_input(node, (0,))
            and _count_symbol(node, 0) is not None and _buildable())


# -- x[..., mask] --------------------------------------------------------------------------------
def _index_mask(ctx, node, args, kwargs):
    position, mask_node = _mask_of(node)
    shape = tuple(val(node.args[0]).shape)
    mask_shape = tuple(val(mask_node).shape)
    positions = _positions(ctx, args[1][position], mask_shape, val(node).shape[position], node)
    x = _merge_dims(ctx, args[0], shape, position, len(mask_shape), node)
    return ctx.finish(ctx.network.add_gather(x, positions, position), node, suffix="compress")


def _index_mask_supported(node: torch.fx.Node, settings) -> bool:
    form = _mask_of(node)
    return (form is not None and _plain_input(node, (0,)) and _count_symbol(node, form[0]) is not None
            and _buildable())


# -- masked_select -----------------------------------------------------------------------------
def _masked_select(ctx, node, args, kwargs):
    x_shape, mask_shape = (tuple(val(a).shape) for a in node.args[:2])
    shape = tuple(torch.broadcast_shapes(x_shape, mask_shape))
    x = broadcast_to(ctx, args[0], shape, node, x_shape)
    mask = broadcast_to(ctx, args[1], shape, node, mask_shape)
    positions = _positions(ctx, mask, shape, val(node).shape[0], node)
    x = ctx.reshape(x, (math.prod(shape),), node)
    return ctx.finish(ctx.network.add_gather(x, positions, 0), node, suffix="compress")


def _masked_select_supported(node: torch.fx.Node, settings) -> bool:
    x, mask = (val(a) for a in node.args[:2])
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or not _plain_input(node, (0,)):
        return False
    if is_dynamic(x.shape) or is_dynamic(mask.shape):
        if not same_shape(x.shape, mask.shape):
            return False  # broadcasting symbolic sizes: kept to the plain case
    elif x.dim() == 0 and mask.dim() == 0:
        return False
    return _count_symbol(node, 0) is not None and _buildable()


# -- x[mask] = values, one value per selected element -------------------------------------------
def _counted_values(node: torch.fx.Node) -> tuple[int, torch.fx.Node] | None:
    """``(position, mask node)`` when ``node`` is ``index_put(x, [None.., mask], v)`` whose
    values have, where the selected elements go, a data-dependent length that another node
    proves is this mask's count: an ``x[..., mask]`` or ``nonzero(mask)`` of the same mask node
    whose result has that symbol."""
    if len(node.args) < 3:
        return None
    form = _mask_of(node)
    if form is None:
        return None
    position, mask_node = form
    x, values = val(node.args[0]), val(node.args[2])
    mask = val(mask_node)
    if not isinstance(values, torch.Tensor) or values.dtype != x.dtype:
        return None
    rank = x.dim() - mask.dim() + 1  # of x[mask]: pre, the count, post
    if values.dim() > rank or values.dim() < rank - position:
        return None
    count = values.shape[values.dim() - (rank - position)]
    symbols = unbacked_symbols([count])
    if len(symbols) != 1 or count.node.expr not in symbols:
        return None
    for user in mask_node.users:
        if user is node or not isinstance(val(user), torch.Tensor):
            continue
        if user.target is aten.nonzero.default or (user.target is aten.index.Tensor and _mask_of(user)):
            if count.node.expr in {s for d in val(user).shape if isinstance(d, torch.SymInt)
                                   for s in d.node.expr.free_symbols}:
                return form
    return None


def _index_put_counted(ctx, node, args, kwargs):
    position, mask_node = _counted_values(node)
    x_shape = tuple(val(node.args[0]).shape)
    mask_shape = tuple(val(mask_node).shape)
    v_shape = tuple(val(node.args[2]).shape)
    dtype = out_dtype(ctx, node)
    k = len(mask_shape)
    count = v_shape[len(v_shape) - (len(x_shape) - k + 1 - position)]
    selected = x_shape[:position] + (count,) + x_shape[position + k:]  # the shape of x[mask]
    positions = _positions(ctx, args[1][position], mask_shape, count, node)
    data = _merge_dims(ctx, ctx.cast(args[0], dtype, node), x_shape, position, k, node)
    merged_shape = x_shape[:position] + (math.prod(mask_shape),) + x_shape[position + k:]
    front = [position] + [d for d in range(len(merged_shape)) if d != position]
    back = [front.index(d) for d in range(len(merged_shape))]
    data = ctx.shuffle(data, node, perm=front)
    values = broadcast_to(ctx, ctx.cast(args[2], dtype, node), selected, node, v_shape)
    values = ctx.shuffle(values, node, perm=front)
    indices = ctx.network.add_shuffle(positions)
    indices.reshape_dims = (-1, 1)
    indices = ctx.name(indices, node, "indices").get_output(0)
    if arg(node.args, node.kwargs, 3, "accumulate", False):
        there = ctx.finish(ctx.network.add_gather(data, positions, 0), node, suffix="there")
        values = elementwise(ctx, there, values, "SUM", node, dtype, "accumulate")
    out = ctx.finish(ctx.network.add_scatter(data, indices, values, trt.ScatterMode.ND), node,
                     suffix="scatter_nd")
    return ctx.reshape(ctx.shuffle(out, node, perm=back), x_shape, node)


def _index_put_counted_supported(node: torch.fx.Node, settings) -> bool:
    if _counted_values(node) is None or not _plain_input(node, (0, 2)):
        return False
    if arg(node.args, node.kwargs, 3, "accumulate", False) and val(node.args[0]).dtype == torch.bool:
        return False
    return _buildable()


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    yield ConverterSpec(name="builtin.nonzero", target=aten.nonzero.default, convert=_nonzero,
                        is_supported=_nonzero_supported, supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.masked_select", target=aten.masked_select.default,
                        convert=_masked_select, is_supported=_masked_select_supported,
                        supports_dynamic_shapes=True)
    # same targets as advanced indexing's converters, which take what these decline (constant
    # masks, values that broadcast): a priority apart, as the registry asks of two plugins
    yield ConverterSpec(name="builtin.index_mask", target=aten.index.Tensor, convert=_index_mask,
                        is_supported=_index_mask_supported, priority=1, supports_dynamic_shapes=True)
    for name, target in [("index_put_counted", aten.index_put.default),
                         ("unsafe_index_put_counted", aten._unsafe_index_put.default)]:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_index_put_counted,
                            is_supported=_index_put_counted_supported, priority=1,
                            supports_dynamic_shapes=True)
