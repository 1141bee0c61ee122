"""The public API for runtime plugins: what a runtime receives and the module it returns.

``RuntimeSpec.create(artifact, settings, registry)`` receives an :class:`EngineArtifact` (the serialized
plan, the :class:`BoundarySpec` of every input and output, and a snapshot of the network) and
returns an :class:`EngineModule` subclass that implements :meth:`EngineModule.execute`; the
module casts between model and engine dtypes (and devices) around it, and refuses a call whose
shapes lie in none of the engine's optimization profiles. A runtime that executes the plan
selects the profile :func:`choose_profile` names for the call's shapes (an engine whose range
spans more than 8× has several, :mod:`plugtrt.dynamic`).
:func:`tensorrt_logger` is the process's one TensorRT logger, for deserialising plans.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from plugtrt.engine import BoundarySpec, EngineArtifact, tensorrt_logger

__all__ = ["BoundarySpec", "EngineArtifact", "EngineModule", "choose_profile", "tensorrt_logger"]


def choose_profile(specs: Sequence[BoundarySpec], shapes: Sequence[Sequence[int]]) -> int | None:
    """The index of the first optimization profile that holds every input's shape (``shapes``
    in the order of ``specs``), None when none does; 0 for an engine without dynamic inputs.
    Profiles split one symbol's range into disjoint buckets, so at most one holds a call."""
    dynamic = [(spec, shape) for spec, shape in zip(specs, shapes) if spec.profiles]
    count = len(dynamic[0][0].profiles) if dynamic else 1
    for k in range(count):
        if all(len(shape) == len(spec.profiles[k][0]) and all(
                lo <= d <= hi for lo, d, hi in zip(spec.profiles[k][0], shape, spec.profiles[k][2]))
               for spec, shape in dynamic):
            return k
    return None


def _describe_profiles(specs: Sequence[BoundarySpec]) -> str:
    """Each profile's (min)..(max) shapes of the dynamic inputs, for errors."""
    dynamic = [spec for spec in specs if spec.profiles]
    if not dynamic:
        return "none"
    return "; ".join(f"{k}: " + ", ".join(f"{spec.name} {spec.profiles[k][0]}..{spec.profiles[k][2]}"
                                          for spec in dynamic)
                     for k in range(len(dynamic[0].profiles)))


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
        if choose_profile(specs, [x.shape for x in inputs]) is None:
            shapes = ", ".join(f"{spec.name} {tuple(x.shape)}"
                               for x, spec in zip(inputs, specs) if spec.profiles)
            raise ValueError(f"engine {self.artifact.name} is called with shapes {shapes}, outside all its "
                             f"optimization profiles ({_describe_profiles(specs)})")
        feeds = [x.to(spec.engine_dtype).contiguous() for x, spec in zip(inputs, specs)]
        outputs = self.execute(feeds)
        # An engine placed by the ``device`` option may live on another GPU than its inputs:
        # results go back where eager PyTorch would have computed them.
        home = inputs[0].device if inputs else None
        return tuple(y.to(device=home, dtype=spec.model_dtype)
                     for y, spec in zip(outputs, self.artifact.outputs))

    def extra_repr(self) -> str:
        return f"engine={self.artifact.name}, layers={self.artifact.layer_count}"
