"""Built-in converters for the inference forms of training-only ops: dropout and its variants
with ``train=False`` are the identity.

What reaches the backend from ``torch.compile``: in ``eval()`` mode, ``nn.Dropout`` and
``F.dropout(training=False)`` (and the alpha and feature variants) vanish while dynamo and AOT
trace, before any converter sees them. ``F.dropout(x, training=True)`` arrives as
``native_dropout(x, p, True)``, which is random: :mod:`plugtrt.converters.random` converts it.
The composite overloads (``dropout``, ``alpha_dropout``, ``feature_dropout``,
``feature_alpha_dropout``) arrive from tracers that keep composite ops (pre-dispatch
``make_fx``, ``torch.export``); with ``train=True`` they are declined here and stay in PyTorch.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import NUMERIC, arg, aten, is_dynamic, nonempty, slice_to, val
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec

_DROPOUTS = (aten.dropout.default, aten.alpha_dropout.default, aten.feature_dropout.default,
             aten.feature_alpha_dropout.default)


def _identity(ctx, node, args, kwargs):
    return args[0]


def _dropout_supported(node, settings) -> bool:
    x = val(node.args[0])
    return (arg(node.args, node.kwargs, 2, "train") is False and isinstance(x, torch.Tensor)
            and x.dtype in NUMERIC and nonempty(node))


def _native_dropout(ctx, node, args, kwargs):
    """``(x, mask)`` where nobody is dropped: the mask is all True (one constant, broadcast)."""
    x = args[0]
    mask_value = val(node)[1]
    shape = tuple(mask_value.shape)
    mask = None
    if any(u.args[1] == 1 for u in node.users):
        mask = ctx.scalar(True, torch.bool, len(shape), node)
        if shape and (is_dynamic(shape) or any(d != 1 for d in shape)):
            mask = slice_to(ctx, mask, (0,) * len(shape), shape, (0,) * len(shape), node, "mask")
    return x, mask


def native_dropout_is_identity(node: torch.fx.Node) -> bool:
    """``native_dropout`` that drops nothing: ``train=False``, or ``p == 0``."""
    train = arg(node.args, node.kwargs, 2, "train")
    return train is False or arg(node.args, node.kwargs, 1, "p") == 0


def _native_dropout_supported(node, settings) -> bool:
    x = val(node.args[0])
    return (native_dropout_is_identity(node) and isinstance(x, torch.Tensor)
            and x.dtype in NUMERIC and nonempty(node)
            and all(u.op == "call_function" and u.args[1] in (0, 1) for u in node.users))


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    for target in _DROPOUTS:
        yield ConverterSpec(name=f"builtin.{target._opname}", target=target, convert=_identity,
                            is_supported=_dropout_supported, supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.native_dropout", target=aten.native_dropout.default,
                        convert=_native_dropout, is_supported=_native_dropout_supported,
                        supports_dynamic_shapes=True)
