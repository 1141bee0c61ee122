"""Lowering pass plugin: put back the batched matmuls that tracing flattened to 2-d and 3-d.

AOT tracing decomposes ``linear`` on a ``(batch, seq, features)`` input into
``view(addmm(bias, view(x, [batch*seq, k]), t(w)), [batch, seq, n])`` and ``q @ k`` on 4-d
inputs into ``view(bmm(view(q, ...), view(k, ...)), ...)``. TensorRT's matrix multiply
broadcasts leading dims itself, so each of those reshapes is a shuffle layer the network does
not need: this pass rewrites the patterns back to ``matmul`` (and ``add`` of the bias), with
the same result shape, so the converters emit one matrix multiply and no shuffles.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import is_dynamic
from plugtrt.hookspecs import hookimpl
from plugtrt.records import LoweringPassSpec

aten = torch.ops.aten
_VIEWS = {aten.view.default, aten._unsafe_view.default, aten.reshape.default}


def _shape(node: object) -> tuple[int, ...] | None:
    """The node's static shape; None for a non-tensor, and for symbolic sizes, which the pass
    leaves alone (comparing them would add guards to dynamo's shape environment)."""
    value = node.meta.get("val") if isinstance(node, torch.fx.Node) else None
    if not isinstance(value, torch.Tensor) or is_dynamic(value.shape):
        return None
    return tuple(value.shape)


def _unflattened(node: object) -> torch.fx.Node | None:
    """The tensor ``node`` is a flattening view of (through a same-shape ``expand``)."""
    if not (isinstance(node, torch.fx.Node) and node.op == "call_function" and node.target in _VIEWS):
        return None
    source = node.args[0]
    while (isinstance(source, torch.fx.Node) and source.target is aten.expand.default
           and _shape(source) == _shape(source.args[0])):
        source = source.args[0]
    return source if isinstance(source, torch.fx.Node) else None


def _only_view_user(node: torch.fx.Node) -> torch.fx.Node | None:
    users = list(node.users)
    if len(users) == 1 and users[0].op == "call_function" and users[0].target in _VIEWS:
        return users[0]
    return None


def _linear(gm: torch.fx.GraphModule, node: torch.fx.Node) -> bool:
    """``view(addmm(b, view(x), w))`` or ``view(mm(view(x), w))`` -> ``matmul(x, w) (+ b)``."""
    bias, flat, weight = (node.args[0], node.args[1], node.args[2]) if node.target is \
        aten.addmm.default else (None, node.args[0], node.args[1])
    if node.target is aten.addmm.default and (len(node.args) > 3 or node.kwargs):
        return False  # beta / alpha other than 1
    out, x = _only_view_user(node), _unflattened(flat)
    if out is None or x is None:
        return False
    sx, sf, so, sw = _shape(x), _shape(flat), _shape(out), _shape(weight)
    if None in (sx, sf, so, sw) or len(sw) != 2:
        return False
    lead = sx[:-1]
    if len(lead) < 2 or sx[-1] != sf[-1] or math.prod(lead) != sf[0] or so != lead + (sw[1],):
        return False
    if bias is not None and (_shape(bias) is None or len(_shape(bias)) > 1):
        return False
    with gm.graph.inserting_before(out):
        result = gm.graph.call_function(aten.matmul.default, (x, weight))
        result.meta.update(out.meta)
        if bias is not None:
            result = gm.graph.call_function(aten.add.Tensor, (result, bias))
            result.meta.update(out.meta)
    out.replace_all_uses_with(result)
    return True


def _batched(gm: torch.fx.GraphModule, node: torch.fx.Node) -> bool:
    """``view(bmm(view(a), view(b)))`` with 4-d or higher ``a``, ``b`` -> ``matmul(a, b)``."""
    out, a, b = _only_view_user(node), _unflattened(node.args[0]), _unflattened(node.args[1])
    if out is None or a is None or b is None:
        return False
    sa, sb, so = _shape(a), _shape(b), _shape(out)
    if sa is None or sb is None or so is None or len(sa) < 4 or len(sa) != len(sb):
        return False
    if sa[:-2] != sb[:-2] or so != sa[:-1] + sb[-1:] or sa[-1] != sb[-2]:
        return False
    with gm.graph.inserting_before(out):
        result = gm.graph.call_function(aten.matmul.default, (a, b))
    result.meta.update(out.meta)
    out.replace_all_uses_with(result)
    return True


def fuse_matmul(gm: torch.fx.GraphModule, settings) -> torch.fx.GraphModule:
    """Rewrite every flattened linear and batched matmul back to ``matmul``."""
    changed = False
    for node in list(gm.graph.nodes):
        if node.op != "call_function":
            continue
        if node.target in (aten.addmm.default, aten.mm.default):
            changed |= _linear(gm, node)
        elif node.target is aten.bmm.default:
            changed |= _batched(gm, node)
    if changed:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return gm


@hookimpl
def plugtrt_lowering_passes() -> Iterator[LoweringPassSpec]:
    yield LoweringPassSpec(name="builtin.fuse_matmul", fn=fuse_matmul, order=10)
