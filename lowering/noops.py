"""Lowering pass plugin: remove ops that do nothing in an inference graph.

``clone``, ``alias``, ``detach`` and ``_to_copy`` that keep dtype, device and strides copy or
re-wrap a tensor without changing anything a functional inference graph can observe, so
their users read the input directly and TensorRT sees fewer layers. A clone that makes a
tensor contiguous stays (a PyTorch block may ``view`` its result), and so does a copy the
graph returns (the caller owns it). Metadata assertions
(``_assert_tensor_metadata``, after ``x.int()``) were checked when the graph was traced for
these very shapes, so they go too. A ``cat`` input without elements (the pass-through half of
a partial rotary embedding whose rotary part is the whole head, an empty cache) adds nothing
to the result, so the cat stops reading it and the op making it goes with the dead code.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.hookspecs import hookimpl
from plugtrt.records import LoweringPassSpec

aten = torch.ops.aten
_VIEWS = {aten.alias.default, aten.detach.default}
_COPIES = {aten.clone.default, aten.lift_fresh_copy.default, aten._to_copy.default}
_CHECKS = {aten._assert_tensor_metadata.default}


def _is_noop(node: torch.fx.Node) -> bool:
    """Same values, dtype, device and strides as its input: a PyTorch block that views the
    result afterwards (``view`` needs contiguity) cannot tell the difference."""
    if node.op != "call_function" or node.target not in _VIEWS | _COPIES:
        return False
    if node.target in _COPIES and any(user.op == "output" for user in node.users):
        return False  # the copy escapes to the caller, who may modify it in place
    source, result = node.args[0].meta.get("val"), node.meta.get("val")
    return (isinstance(source, torch.Tensor) and isinstance(result, torch.Tensor)
            and source.dtype == result.dtype and source.device == result.device
            and source.stride() == result.stride())


def _empty_operand(node: object, result: torch.Tensor) -> bool:
    """A statically empty tensor of the cat's dtype (another dtype takes part in type promotion)."""
    value = node.meta.get("val") if isinstance(node, torch.fx.Node) else None
    return (isinstance(value, torch.Tensor) and value.dtype == result.dtype
            and all(isinstance(d, int) for d in value.shape) and value.numel() == 0)


def _drop_empty_operands(node: torch.fx.Node) -> None:
    result = node.meta.get("val")
    if not isinstance(result, torch.Tensor) or not isinstance(node.args[0], (list, tuple)):
        return
    kept = [t for t in node.args[0] if not _empty_operand(t, result)]
    if kept and len(kept) < len(node.args[0]):
        node.args = (kept,) + tuple(node.args[1:])


def remove_noops(gm: torch.fx.GraphModule, settings) -> torch.fx.GraphModule:
    """Bypass every no-op node; the output node keeps what it returned."""
    for node in list(gm.graph.nodes):
        if node.op == "call_function" and node.target in _CHECKS and not node.users:
            gm.graph.erase_node(node)
        elif _is_noop(node):
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
        elif node.op == "call_function" and node.target is aten.cat.default:
            _drop_empty_operands(node)
    gm.recompile()
    return gm


@hookimpl
def plugtrt_lowering_passes() -> Iterator[LoweringPassSpec]:
    yield LoweringPassSpec(name="builtin.remove_noops", fn=remove_noops, order=0)
