"""Lowering pass plugin: fold inference batch norm into the convolution before it.

``bn(conv(x, W, b))`` with a frozen kernel and frozen statistics is ``conv(x, W', b')`` with
``W' = W * scale`` per output channel and ``b' = b * scale + shift`` (``scale`` and ``shift``
from :func:`plugtrt.converters.normalization.batch_norm_scale_shift`, in float64; the kernel is scaled in
float32 and rounded once to its own dtype). The engine then holds one convolution where it
held a convolution and a scale. Folded only where the convolution's result feeds nothing but the batch norm, and
never for transposed convolutions (their kernel's channel dim differs); the new weights are
fresh tensors, recomputed whenever the model's weights change (the backend re-traces then).

The cost is one new kernel per folded convolution (about 0.3 s for resnet50's 25 M weights
on a 2-core machine, mostly first-touch page faults); TensorRT's builder, which would
otherwise fuse the scale into the convolution itself, saves about as much.
"""
from __future__ import annotations

import operator
from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.converters.normalization import batch_norm_scale_shift
from plugtrt.hookspecs import hookimpl
from plugtrt.records import LoweringPassSpec

aten = torch.ops.aten
_PREFIX = "_bn_folded_"
# batch-norm overload -> (index of the training flag or None, whether it returns a tuple)
_BATCH_NORMS = {
    aten._native_batch_norm_legit_no_training.default: (None, True),
    aten.native_batch_norm.default: (5, True),
    aten.batch_norm.default: (5, False),
}


def _constant(gm: torch.fx.GraphModule, arg: object) -> torch.Tensor | None:
    if isinstance(arg, torch.fx.Node) and arg.op == "get_attr":
        value = operator.attrgetter(arg.target)(gm)
        return value if isinstance(value, torch.Tensor) else None
    return None


def _foldable(gm: torch.fx.GraphModule, bn: torch.fx.Node) -> bool:
    training, returns_tuple = _BATCH_NORMS[bn.target]
    if len(bn.args) < 7 or bn.kwargs or (training is not None and bn.args[training] is not False):
        return False
    conv = bn.args[0]
    if not (isinstance(conv, torch.fx.Node) and conv.target is aten.convolution.default
            and len(conv.users) == 1 and len(conv.args) == 9 and not conv.args[6]):
        return False  # the conv's result is read elsewhere, or it is transposed
    kernel = _constant(gm, conv.args[1])
    if kernel is None or not kernel.is_floating_point():
        return False
    if conv.args[2] is not None and _constant(gm, conv.args[2]) is None:
        return False
    if any(a is not None and _constant(gm, a) is None for a in bn.args[1:3]):
        return False
    if any(_constant(gm, a) is None for a in bn.args[3:5]):
        return False
    return bool(bn.users) and (not returns_tuple or all(
        u.op == "call_function" and u.target is operator.getitem and u.args[1] == 0
        for u in bn.users))


def _add_constant(gm: torch.fx.GraphModule, before: torch.fx.Node, tensor: torch.Tensor,
                  like: torch.fx.Node) -> torch.fx.Node:
    """A ``get_attr`` of ``tensor``, with a fake value from ``like``'s fake mode (static: in a
    dynamic graph's mode a new tensor would otherwise get symbolic sizes)."""
    name = f"{_PREFIX}{sum(1 for n in gm.graph.nodes if n.op == 'get_attr')}"
    gm.register_buffer(name, tensor, persistent=False)
    with gm.graph.inserting_before(before):
        attr = gm.graph.get_attr(name)
    fake = like.meta.get("val")
    attr.meta["val"] = fake.fake_mode.from_tensor(tensor, static_shapes=True) \
        if hasattr(fake, "fake_mode") else tensor
    return attr


def fold_batch_norm(gm: torch.fx.GraphModule, settings) -> torch.fx.GraphModule:
    """Replace every foldable ``bn(conv(...))`` by one convolution with folded weights."""
    for bn in list(gm.graph.nodes):
        if bn.op != "call_function" or bn.target not in _BATCH_NORMS or not _foldable(gm, bn):
            continue
        conv = bn.args[0]
        kernel = _constant(gm, conv.args[1])
        bias = _constant(gm, conv.args[2])
        weight, shift, mean, var = (_constant(gm, a) for a in bn.args[1:5])
        scale, shift = batch_norm_scale_shift(weight, shift, mean, var, float(bn.args[6]))
        # the statistics are combined in float64; the kernel is scaled in float32 (a float64
        # copy of every kernel costs more time than the one extra rounding costs accuracy)
        work = torch.float64 if kernel.dtype == torch.float64 else torch.float32
        per_channel = (-1,) + (1,) * (kernel.dim() - 1)
        new_kernel = (kernel.to(work) * scale.to(work).reshape(per_channel)).to(kernel.dtype)
        new_bias = (shift if bias is None else bias.double() * scale + shift).to(kernel.dtype)
        conv.args = (conv.args[0], _add_constant(gm, conv, new_kernel, conv.args[1]),
                     _add_constant(gm, conv, new_bias, conv.args[1]), *conv.args[3:])
        results = list(bn.users) if _BATCH_NORMS[bn.target][1] else [bn]  # getitem(bn, 0) or bn
        conv.meta["val"] = results[0].meta.get("val", conv.meta.get("val"))
        for result in results:
            result.replace_all_uses_with(conv)
            if result is not bn:
                gm.graph.erase_node(result)
        gm.graph.erase_node(bn)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return gm


@hookimpl
def plugtrt_lowering_passes() -> Iterator[LoweringPassSpec]:
    yield LoweringPassSpec(name="builtin.fold_batch_norm", fn=fold_batch_norm, order=-20)
