"""The public API for runtime plugins: what a runtime receives and the module it returns.

``RuntimeSpec.create(artifact, settings, registry)`` receives an :class:`EngineArtifact` (the serialized
plan, the :class:`BoundarySpec` of every input and output, and a snapshot of the network) and
returns an :class:`EngineModule` subclass that implements :meth:`EngineModule.execute`; the
module casts between model and engine dtypes (and devices) around it.
:func:`tensorrt_logger` is the process's one TensorRT logger, for deserialising plans.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from plugtrt.engine import BoundarySpec, EngineArtifact, tensorrt_logger

__all__ = ["BoundarySpec", "EngineArtifact", "EngineModule", "tensorrt_logger"]


class EngineModule(torch.nn.Module):
    """Runs one engine: takes the block's inputs positionally, returns a tuple of outputs.

    Subclasses implement :meth:`execute` on tensors already in the engine's boundary dtypes
    (which differ from the model's only for float64 and truncated int64).
    """

    def __init__(self, artifact: EngineArtifact):
        super().__init__()
        self.artifact = artifact

    def execute(self, inputs: Sequence[torch.Tensor]) -> Sequence[torch.Tensor]:
        raise NotImplementedError

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        specs = self.artifact.inputs
        if len(inputs) != len(specs):
            raise TypeError(f"engine {self.artifact.name} takes {len(specs)} inputs, got {len(inputs)}")
        for x, spec in zip(inputs, specs):
            if spec.profile is not None and not all(
                    lo <= d <= hi for lo, d, hi in zip(spec.profile[0], x.shape, spec.profile[2])):
                raise ValueError(f"engine {self.artifact.name} input {spec.name} has shape {tuple(x.shape)}, "
                                 f"outside its optimization profile {spec.profile[0]}..{spec.profile[2]}")
        feeds = [x.to(spec.engine_dtype).contiguous() for x, spec in zip(inputs, specs)]
        outputs = self.execute(feeds)
        # An engine placed by the ``device`` option may live on another GPU than its inputs:
        # results go back where eager PyTorch would have computed them.
        home = inputs[0].device if inputs else None
        return tuple(y.to(device=home, dtype=spec.model_dtype)
                     for y, spec in zip(outputs, self.artifact.outputs))

    def extra_repr(self) -> str:
        return f"engine={self.artifact.name}, layers={self.artifact.layer_count}"
