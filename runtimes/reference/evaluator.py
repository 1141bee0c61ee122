"""Walk a ``NetworkSnapshot`` in layer order and compute every layer with torch.

After each layer the result is checked against the shape and dtype TensorRT inferred for it
while building: a disagreement means our reading of the layer's semantics is wrong, and it is
reported at the layer where it happens rather than as a wrong number at the network's end.
"""
from __future__ import annotations

from collections.abc import Mapping

import attrs
import torch

from plugtrt.errors import ReferenceMismatchError, UnsupportedLayerError
from plugtrt.network_snapshot import LayerSnapshot, NetworkSnapshot, TensorSpec
from plugtrt.runtimes.reference import control
from plugtrt.runtimes.reference.layers import LAYER_FUNCTIONS
from plugtrt.runtimes.reference.layers.common import Context, LayerFunction


class ReferenceProgram:
    """A snapshot prepared for repeated evaluation on one device.

    Preparing plans the loops; weights become torch tensors on first use and are kept, so
    later runs only execute torch ops. ``evaluators`` maps a layer type (or
    ``PLUGIN_V3:<name>``) to its function: the registry's ``layer_evaluators`` in the backend,
    the built-in table by default.
    """

    def __init__(self, snapshot: NetworkSnapshot, device: torch.device | str = "cpu",
                 evaluators: Mapping[str, LayerFunction] = LAYER_FUNCTIONS):
        self.snapshot = snapshot
        self.evaluators = evaluators
        self.context = Context(device=torch.device(device))
        plans = control.plan_loops(snapshot)
        order = control.evaluation_order(snapshot, plans)
        position = {index: i for i, index in enumerate(order)}
        self.loops = {name: attrs.evolve(
            plan, body=tuple(sorted(plan.body, key=position.__getitem__)),
            trigger_index=min((i for i in plan.boundary
                               if snapshot.layers[i].type == "LOOP_OUTPUT"), key=position.__getitem__))
            for name, plan in plans.items()}
        # innermost loop owning each layer: the smallest member set that contains it
        self._owner: dict[int, str] = {}
        for plan in sorted(self.loops.values(), key=lambda p: -len(p.member_indices)):
            self._owner.update(dict.fromkeys(plan.member_indices, plan.name))
        self._all = order

    def run(self, feeds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Compute the network's outputs, by name, from ``feeds`` (one tensor per input)."""
        env: dict[str, torch.Tensor] = {}
        for spec in self.snapshot.inputs:
            if spec.name not in feeds:
                raise KeyError(f"no feed for network input {spec.name!r}; "
                               f"inputs are {[s.name for s in self.snapshot.inputs]}")
            value = feeds[spec.name].to(self.context.device)
            check_result(spec, value, f"network input {spec.name!r}")
            env[spec.name] = value
        self._step(self._all, env, None)
        return {name: env[name] for name in self.snapshot.outputs}

    def _step(self, indices: tuple[int, ...], env: dict[str, torch.Tensor], scope: str | None) -> None:
        """Evaluate the layers among ``indices`` that belong directly to loop ``scope``.

        A nested loop runs as a whole at its trigger layer; its members are skipped here.
        """
        for index in indices:
            owner = self._owner.get(index)
            if owner == scope:
                self.run_layer(self.snapshot.layers[index], env)
                continue
            plan = self.loops[owner]
            if plan.parent == scope and plan.trigger_index == index:
                control.run_loop(plan, self.snapshot, env, self._step)

    def run_layer(self, layer: LayerSnapshot, env: dict[str, torch.Tensor]) -> None:
        """Compute one layer from ``env`` and store its checked outputs in ``env``."""
        if layer.type in ("TRIP_LIMIT", "RECURRENCE", "ITERATOR", "LOOP_OUTPUT"):
            return  # boundary layers act through control.run_loop
        if layer.type == "CONDITION":
            control.run_condition(layer, env)
            return
        if layer.type == "CONDITIONAL_OUTPUT":
            results = [control.run_conditional_output(layer, env)]
        else:
            results = self._compute(layer, env)
        for spec, value in zip(layer.outputs, results, strict=True):
            check_result(spec, value, f"layer {layer.name!r} ({layer.type})")
            env[spec.name] = value

    def _compute(self, layer: LayerSnapshot, env: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        kind = layer.type
        if "plugin_name" in layer.params:
            kind = f"{layer.type}:{layer.params['plugin_name']}"
        function = self.evaluators.get(kind)
        if function is None:
            raise UnsupportedLayerError(
                f"layer {layer.name!r}: the reference runtime has no evaluator for {kind} layers; "
                "a plugin registers one with the plugtrt_layer_evaluators hook")
        try:
            inputs = [None if name is None else env[name] for name in layer.inputs]
        except KeyError as exc:
            raise UnsupportedLayerError(
                f"layer {layer.name!r} ({layer.type}) reads {exc.args[0]!r} before any layer "
                "computed it (a control-flow structure the runtime does not follow)") from exc
        return function(layer, inputs, self.context)


def evaluate(snapshot: NetworkSnapshot, feeds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Evaluate ``snapshot`` on ``feeds`` on the feeds' device; returns outputs by name."""
    device = next(iter(feeds.values())).device if feeds else torch.device("cpu")
    return ReferenceProgram(snapshot, device).run(feeds)


def check_result(spec: TensorSpec, value: torch.Tensor, where: str) -> None:
    """Raise ``ReferenceMismatchError`` unless ``value`` has TensorRT's inferred dtype and shape."""
    if isinstance(spec.dtype, str):
        raise UnsupportedLayerError(f"{where}: tensor {spec.name!r} has TensorRT type "
                                    f"{spec.dtype}, which torch cannot represent")
    if value.dtype != spec.dtype:
        raise ReferenceMismatchError(f"{where}: output {spec.name!r} dtype: TensorRT inferred "
                                     f"{spec.dtype}, the reference computed {value.dtype}")
    if spec.shape is None:
        return
    got = tuple(value.shape)
    if len(got) != len(spec.shape) or any(e >= 0 and e != g for e, g in zip(spec.shape, got)):
        raise ReferenceMismatchError(f"{where}: output {spec.name!r} shape: TensorRT inferred "
                                     f"{spec.shape} (-1 = dynamic), the reference computed {got}")
