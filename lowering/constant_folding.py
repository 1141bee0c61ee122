"""Lowering pass plugin: evaluate subgraphs that read no input, once, at compile time.

``torch.arange``, ``torch.ones(...).tril()`` and the like (causal masks, position ids)
build the same tensor on every call. Folded into constants, they become part of the
engine instead of PyTorch blocks between engines. What depends only on frozen weights
(``t(weight)`` before ``addmm``, a weight's reshape, cast or scaling) is folded too, so the
network holds one constant of the final shape and dtype instead of a constant and the layers
that transform it; the folded tensors are recomputed whenever the model's weights change
(the backend re-traces then). A bare weight stays shared with the model.
"""
from __future__ import annotations

import operator
from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.hookspecs import hookimpl
from plugtrt.records import LoweringPassSpec

_FOLDED_PREFIX = "_folded_"
_MAX_ELEMENTS = 1 << 24  # a larger constant costs more memory than recomputing it saves


def _foldable(node: torch.fx.Node, constant: set[torch.fx.Node]) -> bool:
    if node.op != "call_function" or node.is_impure():
        return False
    if any(arg not in constant for arg in node.all_input_nodes):
        return False
    tag = getattr(node.target, "tags", ())
    if torch.Tag.nondeterministic_seeded in tag:
        return False  # random: a fresh value per call
    value = node.meta.get("val")
    return isinstance(value, torch.Tensor) and value.numel() <= _MAX_ELEMENTS


def fold_constants(gm: torch.fx.GraphModule, settings) -> torch.fx.GraphModule:
    """Replace every maximal input-free subgraph whose result a non-constant node reads by a
    ``get_attr`` of its value."""
    weights = {n for n in gm.graph.nodes if n.op == "get_attr"}
    constant: set[torch.fx.Node] = set()
    for node in gm.graph.nodes:
        if _foldable(node, constant | weights):
            constant.add(node)
    env: dict[torch.fx.Node, object] = {
        n: operator.attrgetter(n.target)(gm) for n in weights}
    for node in gm.graph.nodes:
        if node not in constant:
            continue
        args, kwargs = torch.fx.node.map_arg((node.args, node.kwargs), lambda n: env[n])
        env[node] = node.target(*args, **kwargs)
        if all(user in constant for user in node.users):
            continue  # an intermediate: only the subgraph's results become constants
        name = f"{_FOLDED_PREFIX}{len([n for n in gm.graph.nodes if n.op == 'get_attr'])}"
        gm.register_buffer(name, env[node], persistent=False)
        with gm.graph.inserting_before(node):
            attr = gm.graph.get_attr(name)
        attr.meta.update(node.meta)
        node.replace_all_uses_with(attr, delete_user_cb=lambda user: user not in constant)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return gm


@hookimpl
def plugtrt_lowering_passes() -> Iterator[LoweringPassSpec]:
    yield LoweringPassSpec(name="builtin.fold_constants", fn=fold_constants, order=-10)
