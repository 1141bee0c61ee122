"""Loops (``ILoop``) and conditionals (``IIfConditional``) of a snapshot.

TensorRT lists a loop's body layers among the network's layers without marking them; only the
boundary layers (trip limit, recurrence, iterator, loop output) name their loop. A layer belongs
to a loop's body when it depends, directly or not, on one of that loop's recurrences or
iterators: layers that depend only on values from outside are loop-invariant, so computing them
once outside the loop gives the same result.

A loop runs when the walk reaches its first loop output layer (TensorRT's importer adds those
after the body); each iteration evaluates the body in layer order on a copy of the environment.

Conditionals are evaluated eagerly: both branches are computed from the values they need and
each ``CONDITIONAL_OUTPUT`` picks the branch its condition selects.
"""
from __future__ import annotations

from collections.abc import Callable

import attrs
import torch

from plugtrt.errors import UnsupportedLayerError
from plugtrt.network_snapshot import LayerSnapshot, NetworkSnapshot

_BOUNDARY = frozenset({"TRIP_LIMIT", "RECURRENCE", "ITERATOR", "LOOP_OUTPUT"})
Env = dict[str, torch.Tensor]
Step = Callable[[tuple[int, ...], Env, "str | None"], None]


@attrs.frozen(kw_only=True)
class LoopPlan:
    """Which layers one loop owns and where the walk runs it."""

    name: str
    parent: str | None
    """The enclosing loop's name, for a loop nested in another's body."""
    boundary: tuple[int, ...]
    body: tuple[int, ...]
    """Layers that depend on this loop's recurrences or iterators, in layer order."""
    trigger_index: int
    """The first loop output layer: the walk runs the whole loop there."""

    @property
    def member_indices(self) -> frozenset[int]:
        return frozenset(self.boundary) | frozenset(self.body)


def plan_loops(snapshot: NetworkSnapshot) -> dict[str, LoopPlan]:
    """One ``LoopPlan`` per loop name found on the boundary layers."""
    boundary: dict[str, list[int]] = {}
    for layer in snapshot.layers:
        if layer.type in _BOUNDARY:
            boundary.setdefault(layer.params["loop"], []).append(layer.index)
    bodies = {name: _body(snapshot, indices) for name, indices in boundary.items()}
    plans = {}
    for name, indices in boundary.items():
        enclosing = [other for other in boundary if other != name and set(indices) <= bodies[other]]
        parent = min(enclosing, key=lambda other: len(bodies[other]), default=None)
        outputs = [i for i in indices if snapshot.layers[i].type == "LOOP_OUTPUT"]
        if not outputs:
            raise UnsupportedLayerError(f"loop {name!r} has no LOOP_OUTPUT layer")
        plans[name] = LoopPlan(name=name, parent=parent, boundary=tuple(indices),
                               body=tuple(sorted(bodies[name] - set(indices))),
                               trigger_index=min(outputs))
    return plans


def _body(snapshot: NetworkSnapshot, boundary: list[int]) -> set[int]:
    """Indices of the layers reachable from the loop's recurrence and iterator outputs."""
    layers = snapshot.layers
    members = set(boundary)
    live = {spec.name for i in boundary if layers[i].type in ("RECURRENCE", "ITERATOR")
            for spec in layers[i].outputs}
    changed = True
    while changed:
        changed = False
        for layer in layers:
            if layer.index in members or layer.type == "LOOP_OUTPUT":
                continue
            if any(name in live for name in layer.inputs):
                members.add(layer.index)
                live.update(spec.name for spec in layer.outputs)
                changed = True
    return members


def evaluation_order(snapshot: NetworkSnapshot, plans: dict[str, LoopPlan]) -> tuple[int, ...]:
    """Layer indices in an order where every layer comes after the layers it reads.

    TensorRT's layer list is not always topological (the importer adds some shape constants
    late), so the runtime sorts it, keeping the list order wherever it is free to. A recurrence's
    second input is the previous iteration's value, not a dependency. Each loop output also
    waits for everything its loop reads from outside, so that the loop can run there whole.
    """
    import heapq

    layers = snapshot.layers
    producer = {spec.name: layer.index for layer in layers for spec in layer.outputs}
    deps: dict[int, set[int]] = {}
    for layer in layers:
        names = layer.inputs[:1] if layer.type == "RECURRENCE" else layer.inputs
        deps[layer.index] = {producer[n] for n in names if n is not None and n in producer}
    for plan in plans.values():
        members = plan.member_indices
        outside = {d for i in members for d in deps[i]} - members
        for i in plan.boundary:
            if layers[i].type == "LOOP_OUTPUT":
                deps[i] |= outside
    users: dict[int, list[int]] = {i: [] for i in deps}
    for i, ds in deps.items():
        for d in ds:
            users[d].append(i)
    waiting = {i: len(ds) for i, ds in deps.items()}
    ready = [i for i, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for user in users[index]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, user)
    if len(order) != len(layers):
        raise UnsupportedLayerError("the network has a cycle outside recurrence layers")
    return tuple(order)


def run_loop(plan: LoopPlan, snapshot: NetworkSnapshot, env: Env, step: Step) -> None:
    """Iterate ``plan``'s body and store its loop outputs in ``env``.

    ``step(indices, env, scope)`` evaluates the given layers that belong directly to ``scope``.
    """
    layers = [snapshot.layers[i] for i in plan.boundary]
    recurrences = [l for l in layers if l.type == "RECURRENCE"]
    iterators = [l for l in layers if l.type == "ITERATOR"]
    whiles = [l for l in layers if l.type == "TRIP_LIMIT" and l.params["kind"] == "WHILE"]
    outputs = [l for l in layers if l.type == "LOOP_OUTPUT"]
    trips = _max_trips(layers, iterators, env)
    state = {rec.outputs[0].name: env[rec.inputs[0]] for rec in recurrences}
    history: dict[int, list[torch.Tensor]] = {out.index: [] for out in outputs}
    iteration = 0
    while trips is None or iteration < trips:
        local = dict(env)
        local.update(state)
        for it in iterators:
            local[it.outputs[0].name] = _iterate(it, env[it.inputs[0]], iteration)
        step(plan.body, local, plan.name)
        if any(not bool(local[limit.inputs[0]]) for limit in whiles):
            break
        for out in outputs:
            history[out.index].append(local[out.inputs[0]])
        state = {rec.outputs[0].name: local[rec.inputs[1]] for rec in recurrences}
        iteration += 1
    for out in outputs:
        env[out.outputs[0].name] = _loop_output(out, history[out.index], state, env)


def _max_trips(layers: list[LayerSnapshot], iterators: list[LayerSnapshot], env: Env) -> int | None:
    """The iteration bound from COUNT trip limits and iterator lengths; None when only WHILE."""
    bounds = [int(env[l.inputs[0]]) for l in layers
              if l.type == "TRIP_LIMIT" and l.params["kind"] == "COUNT"]
    bounds += [env[it.inputs[0]].shape[it.params["axis"]] for it in iterators]
    return min(bounds) if bounds else None


def _iterate(layer: LayerSnapshot, value: torch.Tensor, iteration: int) -> torch.Tensor:
    axis = layer.params["axis"]
    index = value.shape[axis] - 1 - iteration if layer.params["reverse"] else iteration
    return value.select(axis, index)


def _loop_output(layer: LayerSnapshot, history: list[torch.Tensor], state: Env,
                 env: Env) -> torch.Tensor:
    kind = layer.params["kind"]
    source = layer.inputs[0]
    if kind == "LAST_VALUE":
        if source in state:  # a recurrence's last value is the one its final iteration computed
            return state[source]
        if not history:
            raise UnsupportedLayerError(f"loop output {layer.name!r}: LAST_VALUE of a loop "
                                        "that ran zero iterations")
        return history[-1]
    if kind not in ("CONCATENATE", "REVERSE"):
        raise UnsupportedLayerError(f"loop output {layer.name!r}: kind {kind} is not supported")
    axis = layer.params["axis"]
    length = int(env[layer.inputs[1]]) if len(layer.inputs) > 1 and layer.inputs[1] else len(history)
    if not history:
        shape = layer.outputs[0].shape
        if shape is None or any(d < 0 for i, d in enumerate(shape) if i != axis):
            raise UnsupportedLayerError(f"loop output {layer.name!r}: zero iterations and "
                                        "no static element shape")
        device = env[layer.inputs[1]].device if len(layer.inputs) > 1 and layer.inputs[1] else None
        return torch.zeros([length if i == axis else d for i, d in enumerate(shape)],
                           dtype=layer.outputs[0].dtype, device=device)
    values = history[::-1] if kind == "REVERSE" else history
    stacked = torch.stack(values, dim=axis)
    missing = length - stacked.shape[axis]
    if missing > 0:  # a WHILE loop that stopped early leaves the rest zero
        pad_shape = list(stacked.shape)
        pad_shape[axis] = missing
        stacked = torch.cat([stacked, stacked.new_zeros(pad_shape)], dim=axis)
    return stacked


# -- conditionals --------------------------------------------------------------------------------

def _condition_key(layer: LayerSnapshot) -> str:
    return f"\0condition:{layer.params['conditional']}"


def run_condition(layer: LayerSnapshot, env: Env) -> None:
    """``CONDITION``: remember the predicate for the conditional's output layers."""
    env[_condition_key(layer)] = env[layer.inputs[0]]


def run_conditional_output(layer: LayerSnapshot, env: Env) -> torch.Tensor:
    """``CONDITIONAL_OUTPUT``: the then-branch value (input 0) or the else-branch (input 1)."""
    condition = env.get(_condition_key(layer))
    if condition is None:
        raise UnsupportedLayerError(f"conditional output {layer.name!r} comes before its "
                                    "CONDITION layer")
    return env[layer.inputs[0]] if bool(condition) else env[layer.inputs[1]]
