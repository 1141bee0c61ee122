"""Built-in converters for padding: ``constant_pad_nd``, ``reflection_pad{1,2,3}d``,
``replication_pad{1,2,3}d``, ``_pad_circular`` and ``pad``.

Every pad is ONE slice layer of the input: the slice starts ``-pad_before`` on each padded dim
and is as long as the result, and its sample mode says what lies outside the input (TensorRT's
``SampleMode``): FILL (a constant, fed as the layer's fill input when it is not 0), REFLECT
(about the edge element, as torch's reflection pads), CLAMP (the edge repeated: replication)
and WRAP (circular). A negative pad is a crop: the start moves into the input. The slice's
sizes come from the node's result, as shape tensors where a dim is symbolic, so a dynamic
batch (or a dynamic padded dim) takes the same layer.

Through ``torch.compile``, circular padding never arrives whole: ``_pad_circular`` is a
composite op that AOT tracing expands into ``new_empty``/``slice_scatter`` copies; its
converter serves tracers that keep composite ops (pre-dispatch ``make_fx``, export).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.fx

from plugtrt.conversion import NUMERIC, arg, is_dynamic, shape_tensor, trt_dims, typed, val
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt

aten = torch.ops.aten
_ANY = NUMERIC | {torch.bool, torch.int8, torch.uint8}
_OK = typed(_ANY)
_MODES = {"constant": "FILL", "reflect": "REFLECT", "replicate": "CLAMP", "circular": "WRAP"}


def sample(ctx, x, starts: Sequence, sizes: Sequence, strides: Sequence[int], mode: str,
           node: torch.fx.Node, fill=None, suffix: str = "pad"):
    """One slice layer of ``x`` in sample mode ``mode`` (a ``trt.SampleMode`` name); ``sizes``
    (and ``starts``) may be symbolic; ``fill`` is the FILL value's ITensor (0 when None)."""
    dynamic = is_dynamic(starts) or is_dynamic(sizes)
    rank = len(sizes)
    layer = ctx.network.add_slice(x, trt_dims(starts) if not dynamic else (0,) * rank,
                                  trt_dims(sizes) if not dynamic else (1,) * rank, tuple(strides))
    if dynamic:
        layer.set_input(1, shape_tensor(ctx, starts, node))
        layer.set_input(2, shape_tensor(ctx, sizes, node))
    layer.mode = getattr(trt.SampleMode, mode)
    if fill is not None:
        layer.set_input(4, fill)
    return ctx.finish(layer, node, suffix=suffix)


def _starts(pad: Sequence[int], rank: int) -> list[int]:
    """torch's pad list (last dim first, before/after pairs) as slice starts per dim."""
    starts = [0] * rank
    for i in range(len(pad) // 2):
        starts[rank - 1 - i] = -pad[2 * i]
    return starts


def _pad(ctx, node, x, pad: Sequence[int], mode: str, value=None):
    rank = len(x.shape)
    out = val(node)
    fill = None
    if mode == "FILL" and value is not None and value != 0:
        # torch fills with the value cast to the tensor's dtype (1.7 on int32 fills 1)
        cast = torch.full((), value, dtype=out.dtype)
        fill = ctx.constant(cast, node, dtype=ctx.dtype(x))
    return sample(ctx, x, _starts(pad, rank), tuple(out.shape), (1,) * rank, mode, node, fill)


def _constant_pad(ctx, node, args, kwargs):
    return _pad(ctx, node, args[0], list(args[1]), "FILL", arg(node.args, node.kwargs, 2, "value", 0))


def _mode_pad(mode: str):
    def convert(ctx, node, args, kwargs):
        return _pad(ctx, node, args[0], list(args[1]), mode)
    return convert


def _generic_pad(ctx, node, args, kwargs):
    """aten.pad(x, pad, mode, value): the mode's sample mode."""
    mode = _MODES[arg(node.args, node.kwargs, 2, "mode", "constant")]
    value = arg(node.args, node.kwargs, 3, "value", None)
    return _pad(ctx, node, args[0], list(args[1]), mode, value)


def _pad_supported(dims: int | None = None, mode_arg: bool = False):
    """Static int pads of at most ``rank`` dims (``dims`` for the reflection and replication
    pads); a reflected dim needs more than one element, as torch demands; non-empty tensors of
    every dtype. A pad may be negative (a crop) and may pad a dynamic dim."""
    def is_supported(node: torch.fx.Node, settings) -> bool:
        pad = arg(node.args, node.kwargs, 1, "pad")
        x = val(node.args[0])
        if not (isinstance(pad, (list, tuple)) and all(isinstance(p, int) for p in pad)):
            return False
        if len(pad) % 2 or len(pad) // 2 > x.dim() or (dims is not None and len(pad) != 2 * dims):
            return False
        if mode_arg:
            mode = arg(node.args, node.kwargs, 2, "mode", "constant")
            value = arg(node.args, node.kwargs, 3, "value", None)
            if mode not in _MODES or (value is not None and not isinstance(value, (int, float, bool))):
                return False
        elif node.target == aten.constant_pad_nd.default:
            if not isinstance(arg(node.args, node.kwargs, 2, "value", 0), (int, float, bool)):
                return False
        return _OK(node, settings)
    return is_supported


_FIXED = [
    ("reflection_pad1d", aten.reflection_pad1d.default, "REFLECT", 1),
    ("reflection_pad2d", aten.reflection_pad2d.default, "REFLECT", 2),
    ("reflection_pad3d", aten.reflection_pad3d.default, "REFLECT", 3),
    ("replication_pad1d", aten.replication_pad1d.default, "CLAMP", 1),
    ("replication_pad2d", aten.replication_pad2d.default, "CLAMP", 2),
    ("replication_pad3d", aten.replication_pad3d.default, "CLAMP", 3),
]


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    yield ConverterSpec(name="builtin.constant_pad_nd", target=aten.constant_pad_nd.default,
                        convert=_constant_pad, is_supported=_pad_supported(),
                        supports_dynamic_shapes=True)
    for name, target, mode, dims in _FIXED:
        yield ConverterSpec(name=f"builtin.{name}", target=target, convert=_mode_pad(mode),
                            is_supported=_pad_supported(dims), supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin._pad_circular", target=aten._pad_circular.default,
                        convert=_mode_pad("WRAP"), is_supported=_pad_supported(),
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.pad", target=aten.pad.default, convert=_generic_pad,
                        is_supported=_pad_supported(mode_arg=True), supports_dynamic_shapes=True)
