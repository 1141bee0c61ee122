"""The ``tensorrt`` runtime plugin: deserialises the engine and executes it on a CUDA GPU.

Inputs and outputs are torch CUDA tensors; outputs are allocated by torch, and the engine
is enqueued on the current torch stream (``execute_async_v3``), so it orders with the
PyTorch blocks around it without synchronising.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from plugtrt.errors import PlugtrtError
from plugtrt.hookspecs import hookimpl
from plugtrt.records import RuntimeSpec
from plugtrt.runtime import EngineModule, tensorrt_logger
from plugtrt.trt_adapter import flavour, load, trt

# Compute capabilities whose engines TensorRT-RTX can run (it has no SM90 target).
_RTX_CAPABILITIES = {(8, 0), (8, 6), (8, 9)}


class TensorRTEngineModule(EngineModule):
    """Executes the serialized engine with TensorRT."""

    def __init__(self, artifact, device: torch.device):
        super().__init__(artifact)
        self.device = device
        with torch.cuda.device(device):
            self._runtime = trt.Runtime(tensorrt_logger())
            self._engine = self._runtime.deserialize_cuda_engine(artifact.plan)
            if self._engine is None:
                raise PlugtrtError(f"TensorRT could not deserialise engine {artifact.name} on {device}; "
                                   "see the TensorRT log above, or use runtime='reference'")
            self._context = self._engine.create_execution_context()

    def execute(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        for spec, x in zip(self.artifact.inputs, inputs):
            if x.device != self.device:
                x = x.to(self.device)
            self._context.set_input_shape(spec.name, tuple(x.shape))
            self._context.set_tensor_address(spec.name, x.data_ptr())
        outputs = []
        for spec in self.artifact.outputs:
            shape = tuple(self._context.get_tensor_shape(spec.name))
            out = torch.empty(shape, dtype=spec.engine_dtype, device=self.device)
            self._context.set_tensor_address(spec.name, out.data_ptr())
            outputs.append(out)
        stream = torch.cuda.current_stream(self.device)
        if not self._context.execute_async_v3(stream.cuda_stream):
            raise PlugtrtError(f"TensorRT failed to execute engine {self.artifact.name}; "
                               "see the TensorRT log above")
        return outputs


def _device(settings) -> torch.device:
    if settings.device is not None:
        return settings.device
    return torch.device("cuda", torch.cuda.current_device())


def _available(settings) -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible"
    try:
        load()
    except ImportError as exc:
        return str(exc)
    device = _device(settings)
    if device.type != "cuda":
        return f"device={device} is not a CUDA device"
    capability = torch.cuda.get_device_capability(device)
    if flavour() == "tensorrt_rtx" and capability not in _RTX_CAPABILITIES and capability[0] != 12:
        return (f"TensorRT-RTX cannot run engines on compute capability {capability[0]}.{capability[1]} "
                "(it supports 8.0, 8.6, 8.9 and 12.x); install full TensorRT: pip install 'plugtrt[tensorrt]'")
    return None


def _create(artifact, settings, registry) -> TensorRTEngineModule:
    return TensorRTEngineModule(artifact, _device(settings))


@hookimpl
def plugtrt_runtimes() -> Iterator[RuntimeSpec]:
    yield RuntimeSpec(name="tensorrt", create=_create, available=_available)
