"""The ``reference`` runtime plugin: evaluates the engine's network with torch ops, on any device.

It never executes the engine; it walks the layers TensorRT built (read back into a
snapshot) and checks each layer's shape and dtype against TensorRT's own inference.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from plugtrt.hookspecs import hookimpl
from plugtrt.records import RuntimeSpec
from plugtrt.runtime_module import EngineModule
from plugtrt.runtimes.reference.evaluator import ReferenceProgram


class ReferenceEngineModule(EngineModule):
    """Runs an engine's network snapshot with a :class:`ReferenceProgram` per device, so
    weights move to each device once."""

    def __init__(self, artifact):
        super().__init__(artifact)
        self._programs: dict[torch.device, ReferenceProgram] = {}

    def execute(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        device = inputs[0].device if inputs else torch.device("cpu")
        program = self._programs.get(device)
        if program is None:
            program = self._programs[device] = ReferenceProgram(self.artifact.network, device)
        results = program.run({spec.name: x for spec, x in zip(self.artifact.inputs, inputs)})
        return [results[spec.name] for spec in self.artifact.outputs]


def _create(artifact, settings) -> ReferenceEngineModule:
    return ReferenceEngineModule(artifact)


def _available(settings) -> None:
    return None  # torch ops run on every device


@hookimpl
def plugtrt_runtimes() -> Iterator[RuntimeSpec]:
    yield RuntimeSpec(name="reference", create=_create, available=_available)
