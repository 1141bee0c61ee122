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


class ReferenceEngineModule(EngineModule):
    """Runs an engine's network snapshot with :func:`plugtrt.runtimes.reference.evaluate`."""

    def execute(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        from plugtrt.runtimes.reference import evaluate

        feeds = {spec.name: x for spec, x in zip(self.artifact.inputs, inputs)}
        results = evaluate(self.artifact.network, feeds)
        return [results[spec.name] for spec in self.artifact.outputs]


def _create(artifact, settings) -> ReferenceEngineModule:
    return ReferenceEngineModule(artifact)


def _available(settings) -> None:
    return None  # torch ops run on every device


@hookimpl
def plugtrt_runtimes() -> Iterator[RuntimeSpec]:
    yield RuntimeSpec(name="reference", create=_create, available=_available)
