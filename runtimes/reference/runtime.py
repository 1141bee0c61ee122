"""The ``reference`` runtime plugin: evaluates the engine's network with torch ops, on any device.

It never executes the engine; it walks the layers TensorRT built (read back into a
snapshot) and checks each layer's shape and dtype against TensorRT's own inference.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch

from plugtrt.hookspecs import hookimpl
from plugtrt.records import CommandSpec, LayerEvaluatorSpec, RuntimeSpec
from plugtrt.runtime import EngineModule
from plugtrt.runtimes.reference.evaluator import ReferenceProgram
from plugtrt.runtimes.reference.layers import LAYER_FUNCTIONS
from plugtrt.runtimes.reference.layers.common import LayerFunction


class ReferenceEngineModule(EngineModule):
    """Runs an engine's network snapshot with a :class:`ReferenceProgram` per device, so
    weights move to each device once."""

    def __init__(self, artifact, evaluators: Mapping[str, LayerFunction]):
        super().__init__(artifact)
        self._evaluators = evaluators
        self._programs: dict[torch.device, ReferenceProgram] = {}

    def execute(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        device = inputs[0].device if inputs else torch.device("cpu")
        program = self._programs.get(device)
        if program is None:
            program = self._programs[device] = ReferenceProgram(
                self.artifact.network, device, self._evaluators)
        results = program.run({spec.name: x for spec, x in zip(self.artifact.inputs, inputs)})
        return [results[spec.name] for spec in self.artifact.outputs]


def _create(artifact, settings, registry) -> ReferenceEngineModule:
    evaluators = {kind: reg.record.evaluate for kind, reg in registry.layer_evaluators.items()}
    return ReferenceEngineModule(artifact, evaluators)


def _available(settings) -> None:
    return None  # torch ops run on every device


def _conformance(argv: list[str]) -> int:
    from plugtrt.runtimes.reference.conformance import main_conformance  # imports onnx

    return main_conformance(argv)


@hookimpl
def plugtrt_runtimes() -> Iterator[RuntimeSpec]:
    yield RuntimeSpec(name="reference", create=_create, available=_available, reads={"network"})


@hookimpl
def plugtrt_layer_evaluators() -> Iterator[LayerEvaluatorSpec]:
    for layer_type, function in LAYER_FUNCTIONS.items():
        yield LayerEvaluatorSpec(name=f"builtin.{layer_type.lower()}", layer_type=layer_type,
                                 evaluate=function)


@hookimpl
def plugtrt_commands() -> Iterator[CommandSpec]:
    yield CommandSpec(name="conformance", main=_conformance,
                      help="prove the reference runtime against ONNX's conformance cases, through "
                           "NVIDIA's ONNX importer (conformance -h for its options)")
