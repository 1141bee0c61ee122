"""The ``tensorrt`` runtime plugin: deserialises the engine and executes it on a CUDA GPU.

Inputs and outputs are torch CUDA tensors; outputs are allocated by torch, and the engine
is enqueued on the current torch stream (``execute_async_v3``), so it orders with the
PyTorch blocks around it without synchronising.

Because the call returns before the engine has run, every tensor the engine reads is
marked as in use on that stream (``record_stream``): a temporary such as an input copied to
the engine's GPU cannot be handed to another stream's allocation while the engine still
reads it. An execution context holds the engine's intermediate memory, so each thread gets
its own, and a context used on a new stream first waits for its previous enqueue.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import torch

from plugtrt.errors import PlugtrtError
from plugtrt.hookspecs import hookimpl
from plugtrt.records import RuntimeSpec
from plugtrt.runtime import EngineModule, tensorrt_logger
from plugtrt.trt_adapter import flavour, load, trt

# Compute capabilities whose engines TensorRT-RTX can run (it has no SM90 target).
_RTX_CAPABILITIES = {(8, 0), (8, 6), (8, 9)}


class _ThreadContext:
    """One thread's execution context, and the event after its last enqueue."""

    def __init__(self, engine):
        self.context = engine.create_execution_context()
        self.done: torch.cuda.Event | None = None
        self.stream: torch.cuda.Stream | None = None


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
        self._local = threading.local()

    def _thread_context(self) -> _ThreadContext:
        state = getattr(self._local, "state", None)
        if state is None:
            with torch.cuda.device(self.device):
                state = self._local.state = _ThreadContext(self._engine)
        return state

    def execute(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        state = self._thread_context()
        context = state.context
        stream = torch.cuda.current_stream(self.device)
        feeds = [x if x.device == self.device else x.to(self.device) for x in inputs]
        for spec, x in zip(self.artifact.inputs, feeds):
            context.set_input_shape(spec.name, tuple(x.shape))
            context.set_tensor_address(spec.name, x.data_ptr())
        outputs = []
        for spec in self.artifact.outputs:
            shape = tuple(context.get_tensor_shape(spec.name))
            out = torch.empty(shape, dtype=spec.engine_dtype, device=self.device)
            context.set_tensor_address(spec.name, out.data_ptr())
            outputs.append(out)
        if state.done is not None and state.stream != stream:
            stream.wait_event(state.done)  # the context's memory is still in use there
        for x in feeds:
            x.record_stream(stream)
        if not context.execute_async_v3(stream.cuda_stream):
            raise PlugtrtError(f"TensorRT failed to execute engine {self.artifact.name}; "
                               "see the TensorRT log above")
        state.stream = stream
        state.done = torch.cuda.Event()
        state.done.record(stream)
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
    yield RuntimeSpec(name="tensorrt", create=_create, available=_available, reads={"plan"})
