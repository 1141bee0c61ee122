"""Built-in converters for gathering by index: ``embedding``, ``index_select`` and ``gather``.

All map onto TensorRT's gather layer: ``embedding`` and ``index_select`` take whole slices
along one axis (DEFAULT mode), ``gather`` picks single elements (ELEMENT mode, on the block of the
input that the index covers). torch rejects negative indices for
these ops, so no wrap-around is needed.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import FLOATS, INTS, aten, is_dynamic, nonempty, norm_dim, slice_to, val
from plugtrt.conversion import same_shape as shapes_equal
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
