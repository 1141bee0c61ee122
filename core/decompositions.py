"""Decompositions, chosen per node: an op stays whole where a converter accepts it.

Two moments apply the plugins' :class:`~plugtrt.records.DecompositionSpec` records:

- while tracing (:func:`decomposition_table`), for ops that no converter is registered for at
  all, and for records with ``always=True``;
- after lowering (:func:`decompose_declined`), for each node that every converter of its op
  declines (a dtype, an argument, a rank): the node alone is replaced by its decomposition,
  and the nodes that replace it are checked for support again, so a decomposition that in turn
  needs one is applied too.

Experimental records (they change numerics slightly or build larger networks) take part only
with ``enable_experimental_decompositions=True``, on the same terms.
"""
from __future__ import annotations

import logging
import operator
from typing import Any

import torch
import torch.fx
import torch.utils._pytree as pytree
from torch.fx.experimental.proxy_tensor import make_fx

logger = logging.getLogger("plugtrt")
_MAX_ROUNDS = 8  # a decomposition whose ops decompose again; bounded against cycles


def _admitted(registry: Any, settings: Any) -> dict[Any, Any]:
    """Target -> the decomposition record the settings admit (experimental ones when enabled)."""
    return {reg.record.target: reg.record for reg in registry.decompositions
            if settings.enable_experimental_decompositions or not reg.record.experimental}


def decomposition_table(registry: Any, settings: Any) -> dict[Any, Any]:
    """``{OpOverload: fn}`` applied while tracing: ops with no converter registered, and records
    that set ``always``."""
    return {target: record.fn for target, record in _admitted(registry, settings).items()
            if record.always or target not in registry.converters}


def decompose_declined(gm: torch.fx.GraphModule, registry: Any, settings: Any) -> torch.fx.GraphModule:
    """Replace each node that every converter declines by its decomposition, where one exists;
    ops listed in ``torch_executed_ops`` stay as they are (the user wants them in PyTorch)."""
    records = _admitted(registry, settings)
    for _ in range(_MAX_ROUNDS):
        changed = False
        for node in list(gm.graph.nodes):
            record = records.get(node.target) if node.op == "call_function" else None
            if record is None or _forced_to_pytorch(node, settings):
                continue
            if registry.converter_for(node, settings) is not None:
                continue
            if _inline(gm, node, record.fn):
                logger.debug("decomposed %s (%s): its converters declined it", node.name, node.target)
                changed = True
        if not changed:
            break
    gm.graph.eliminate_dead_code()
    gm.graph.lint()
    gm.recompile()
    return gm


def _forced_to_pytorch(node: torch.fx.Node, settings: Any) -> bool:
    target = node.target
    return bool({str(target), str(getattr(target, "overloadpacket", target))} & settings.torch_executed_ops)


def _inline(gm: torch.fx.GraphModule, node: torch.fx.Node, fn: Any) -> bool:
    """Trace ``fn`` on the node's fake arguments and splice the aten graph in place of ``node``;
    False (graph untouched) when the decomposition declines (``NotImplemented``) or cannot trace."""
    flat, spec = pytree.tree_flatten((node.args, node.kwargs))
    slots = [i for i, a in enumerate(flat) if isinstance(a, torch.fx.Node)]
    fakes = [flat[i].meta.get("val") for i in slots]
    if not all(isinstance(f, torch.Tensor) for f in fakes):
        return False
    tuple_result = isinstance(node.meta.get("val"), (tuple, list))
    if tuple_result and not all(u.target is operator.getitem for u in node.users):
        return False

    def call(*tensors: torch.Tensor) -> Any:
        filled = list(flat)
        for slot, tensor in zip(slots, tensors):
            filled[slot] = tensor
        args, kwargs = pytree.tree_unflatten(filled, spec)
        result = fn(*args, **kwargs)
        if result is NotImplemented:
            raise _Declined
        # a structseq (torch.return_types) would be traced as a call building it: keep a tuple
        return tuple(result) if isinstance(result, tuple) else result

    try:
        with torch.no_grad():  # "fake" tracing reuses the fake mode the inputs belong to
            sub = make_fx(call, tracing_mode="fake")(*fakes)
    except _Declined:
        return False
    except Exception as exc:  # a decomposition that cannot run on these arguments: keep the node
        logger.debug("decomposition of %s failed to trace: %r", node.name, exc)
        return False
    placeholders = [n for n in sub.graph.nodes if n.op == "placeholder"]
    env: dict[torch.fx.Node, torch.fx.Node] = {p: flat[i] for p, i in zip(placeholders, slots)}
    for attr in (n for n in sub.graph.nodes if n.op == "get_attr"):
        name = f"_decomposed_{node.name}_{attr.target}"
        gm.register_buffer(name, getattr(sub, attr.target), persistent=False)
        with gm.graph.inserting_before(node):
            env[attr] = gm.graph.get_attr(name)
        env[attr].meta.update(attr.meta)
    body = [n for n in sub.graph.nodes if n.op not in ("placeholder", "get_attr", "output")]
    with gm.graph.inserting_before(node):
        for inner in body:
            env[inner] = gm.graph.node_copy(inner, lambda n: env[n])
            env[inner].meta.setdefault("stack_trace", node.meta.get("stack_trace"))
            env[inner].meta["nn_module_stack"] = node.meta.get("nn_module_stack", {})
    output = next(n for n in sub.graph.nodes if n.op == "output").args[0]
    result = torch.fx.node.map_arg(output, lambda n: env[n])
    if tuple_result:
        for user in list(node.users):
            user.replace_all_uses_with(result[user.args[1]])
            gm.graph.erase_node(user)
    else:
        node.replace_all_uses_with(result)
    gm.graph.erase_node(node)
    return True


class _Declined(Exception):
    """A decomposition returned ``NotImplemented`` for these arguments."""
