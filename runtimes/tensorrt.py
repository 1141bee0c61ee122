"""The ``tensorrt`` runtime plugin: deserialises the engine and executes it on a CUDA GPU.

Inputs and outputs are torch CUDA tensors; outputs are allocated by torch, and the engine
is enqueued on the current torch stream (``execute_async_v3``), so it orders with the
PyTorch blocks around it without synchronising.

An output whose size depends on the data (``x[mask]``, ``nonzero``: its spec is
``data_dependent``) has no shape until the engine has computed it, so it cannot be allocated
beforehand. TensorRT asks for its memory during execution instead, through an
``IOutputAllocator`` set on the execution context for that output: ``reallocate_output_async``
(TensorRT 10; ``reallocate_output`` before it) hands it a torch buffer of the size it asks for,
allocated on the stream of the call, and ``notify_shape`` reports the shape, which TensorRT
knows by the time ``execute_async_v3`` returns. The output is that buffer viewed at that shape,
a new buffer per call, so an output handed to the caller is never written by a later call.

Because the call returns before the engine has run, every tensor the engine reads is
marked as in use on that stream (``record_stream``): a temporary such as an input copied to
the engine's GPU cannot be handed to another stream's allocation while the engine still
reads it. An execution context holds the engine's intermediate memory, so each thread gets
its own, and a context used on a new stream first waits for its previous enqueue.

An engine with several optimization profiles (:mod:`plugtrt.dynamic`) runs each call in the
one :func:`choose_profile` names for its shapes: the context switches to it with
``set_optimization_profile_async`` on the enqueue stream (TensorRT may copy data there, which
the enqueue then follows), before any input shape is set, since switching drops them.
"""
from __future__ import annotations

import functools
import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from plugtrt.errors import PlugtrtError
from plugtrt.hookspecs import hookimpl
from plugtrt.records import RuntimeSpec
from plugtrt.runtime import EngineModule, choose_profile, tensorrt_logger
from plugtrt.trt_adapter import flavour, load, trt

# Compute capabilities whose engines TensorRT-RTX can run (it has no SM90 target).
_RTX_CAPABILITIES = {(8, 0), (8, 6), (8, 9)}


@functools.cache
def output_allocator_class() -> type:
    """The ``trt.IOutputAllocator`` subclass that allocates data-dependent outputs with torch
    (made on first use: importing this module does not import TensorRT)."""

    class TorchOutputAllocator(trt.IOutputAllocator):
        """Allocates one output of one execution context, call by call.

        Before each execution :meth:`start` forgets the previous call's buffer (the caller owns
        it now); TensorRT then asks for memory (:meth:`reallocate_output_async`) and reports
        the shape (:meth:`notify_shape`); after it, :meth:`result` is the output tensor."""

        def __init__(self, device: torch.device, dtype: torch.dtype):
            trt.IOutputAllocator.__init__(self)  # pybind11 needs the base initialised explicitly
            self.device, self.dtype = device, dtype
            self.start()

        def start(self) -> None:
            self.buffer: torch.Tensor | None = None
            self.shape: tuple[int, ...] | None = None
            self.error: BaseException | None = None

        def reallocate_output_async(self, tensor_name: str, memory: Any, size: int, alignment: int,
                                    stream: Any) -> int | None:
            """A pointer to at least ``size`` bytes aligned to ``alignment``, or None when it
            cannot be had (TensorRT then fails the execution). The memory comes from torch's
            caching allocator on the current stream, the one the engine is enqueued on."""
            try:
                size, alignment = max(int(size), 1), max(int(alignment), 1)  # 0 bytes has no address
                if self.buffer is None or self.buffer.numel() < size or self.buffer.data_ptr() % alignment:
                    raw = torch.empty(size + alignment - 1, dtype=torch.uint8, device=self.device)
                    offset = -raw.data_ptr() % alignment
                    self.buffer = raw[offset:offset + size]
                return self.buffer.data_ptr()
            except Exception as exc:  # an exception must not unwind through TensorRT's C++
                self.error = exc
                return None

        def reallocate_output(self, tensor_name: str, memory: Any, size: int, alignment: int) -> int | None:
            """TensorRT before 10 calls this one, synchronously."""
            return self.reallocate_output_async(tensor_name, memory, size, alignment, None)

        def notify_shape(self, tensor_name: str, shape: Any) -> None:
            self.shape = tuple(int(d) for d in shape)

        def result(self, name: str) -> torch.Tensor:
            """This call's output: the buffer viewed at the shape TensorRT reported."""
            if self.error is not None:
                raise PlugtrtError(f"allocating data-dependent output {name} failed: {self.error!r}")
            if self.shape is None or any(d < 0 for d in self.shape):
                raise PlugtrtError(f"TensorRT reported no shape for data-dependent output {name}")
            count = math.prod(self.shape)
            if count == 0:
                return torch.empty(self.shape, dtype=self.dtype, device=self.device)
            nbytes = count * torch.empty((), dtype=self.dtype).element_size()
            if self.buffer is None or self.buffer.numel() < nbytes:
                raise PlugtrtError(f"TensorRT wrote data-dependent output {name} of shape {self.shape} "
                                   "without asking for memory enough for it")
            return self.buffer[:nbytes].view(self.dtype).view(self.shape)

    return TorchOutputAllocator


class _ThreadContext:
    """One thread's execution context, the event after its last enqueue, and an output
    allocator per data-dependent output (held here: TensorRT keeps only a pointer to it)."""

    def __init__(self, engine, artifact, device: torch.device):
        self.context = engine.create_execution_context()
        self.done: torch.cuda.Event | None = None
        self.stream: torch.cuda.Stream | None = None
        self.allocators: dict[str, Any] = {}
        for spec in artifact.outputs:
            if spec.data_dependent:
                allocator = output_allocator_class()(device, spec.engine_dtype)
                if not self.context.set_output_allocator(spec.name, allocator):
                    raise PlugtrtError(f"TensorRT refused an output allocator for {spec.name} of "
                                       f"engine {artifact.name}")
                self.allocators[spec.name] = allocator


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
                state = self._local.state = _ThreadContext(self._engine, self.artifact, self.device)
        return state

    def execute(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        state = self._thread_context()
        context = state.context
        stream = torch.cuda.current_stream(self.device)
        feeds = [x if x.device == self.device else x.to(self.device) for x in inputs]
        if state.done is not None and state.stream != stream:
            stream.wait_event(state.done)  # the context's memory is still in use there
        # forward() has refused shapes outside every profile
        profile = choose_profile(self.artifact.inputs, [x.shape for x in feeds])
        if profile != context.active_optimization_profile and \
                not context.set_optimization_profile_async(profile, stream.cuda_stream):
            raise PlugtrtError(f"TensorRT could not select optimization profile {profile} of engine "
                               f"{self.artifact.name}; see the TensorRT log above")
        for spec, x in zip(self.artifact.inputs, feeds):
            context.set_input_shape(spec.name, tuple(x.shape))
            context.set_tensor_address(spec.name, x.data_ptr())
        outputs: list[torch.Tensor | None] = []
        for spec in self.artifact.outputs:
            if spec.data_dependent:  # sized during execution, by its allocator
                state.allocators[spec.name].start()
                outputs.append(None)
                continue
            shape = tuple(context.get_tensor_shape(spec.name))
            out = torch.empty(shape, dtype=spec.engine_dtype, device=self.device)
            context.set_tensor_address(spec.name, out.data_ptr())
            outputs.append(out)
        for x in feeds:
            x.record_stream(stream)
        if not context.execute_async_v3(stream.cuda_stream):
            raise PlugtrtError(f"TensorRT failed to execute engine {self.artifact.name}; "
                               "see the TensorRT log above")
        state.stream = stream
        state.done = torch.cuda.Event()
        state.done.record(stream)
        return [out if out is not None else state.allocators[spec.name].result(spec.name)
                for spec, out in zip(self.artifact.outputs, outputs)]


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
