"""The ``tensorrt`` runtime: real engines on a GPU that TensorRT can run (skipped elsewhere)."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from plugtrt import CompilationSettings
from plugtrt.manager import default_registry
from plugtrt.testing import assert_converts

from ..models import mlp, small_cnn


def _skip_unless_runnable() -> None:
    reason = default_registry().runtimes["tensorrt"].record.available(CompilationSettings())
    if reason is not None:
        pytest.skip(reason)


def test_unavailable_here_says_why():
    reason = default_registry().runtimes["tensorrt"].record.available(CompilationSettings())
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    assert reason == "no CUDA GPU is visible"


@pytest.mark.gpu
@pytest.mark.parametrize("make, shape", [(mlp, (8, 16)), (small_cnn, (2, 3, 32, 32))])
@pytest.mark.parametrize("precision", [torch.float32, torch.float16])
def test_engines_execute_on_the_current_stream_and_match_eager(make, shape, precision):
    _skip_unless_runnable()
    model = make().cuda()
    run = assert_converts(model, [torch.randn(shape, device="cuda")],
                          {"runtime": "tensorrt", "precision": precision},
                          rtol=1e-2 if precision == torch.float16 else None,
                          atol=1e-2 if precision == torch.float16 else None)
    assert run.reports[0].engines[0].runtime == "tensorrt"
    assert run.outputs.device.type == "cuda"


@pytest.mark.gpu
def test_threads_on_their_own_streams_with_temporary_inputs_match_eager():
    """Each thread runs on its own stream with a CPU input, which the runtime copies to the GPU:
    the copy must outlive the call (the engine reads it later, on that stream)."""
    _skip_unless_runnable()
    model = mlp().cuda()
    compiled = torch.compile(model, backend="plugtrt", dynamic=False,
                             options={"runtime": "tensorrt", "min_block_size": 1})
    inputs = [torch.randn(8, 16) for _ in range(4)]
    barrier = threading.Barrier(len(inputs))

    def call(x):
        stream = torch.cuda.Stream()
        barrier.wait()
        with torch.cuda.stream(stream), torch.no_grad():
            out = compiled(x.cuda(non_blocking=True))
            torch.cuda.empty_cache()  # freed blocks would be handed out again here
            noise = [torch.randn(8, 16, device="cuda") for _ in range(8)]  # noqa: F841
        stream.synchronize()
        return out

    with ThreadPoolExecutor(len(inputs)) as pool:
        results = list(pool.map(call, inputs))
    with torch.no_grad():
        for x, got in zip(inputs, results):
            torch.testing.assert_close(got, model(x.cuda()), rtol=1e-4, atol=1e-4)


def test_data_dependent_output_allocator_hands_out_a_fresh_buffer_per_call():
    """The IOutputAllocator of data-dependent outputs, called as TensorRT calls it (on CPU memory
    here): an aligned buffer of the size asked, viewed at the reported shape; empty outputs
    need no memory; the next call never reuses a buffer the caller now owns."""
    from plugtrt.runtimes.tensorrt import output_allocator_class
    from plugtrt.trt_adapter import trt

    allocator = output_allocator_class()(torch.device("cpu"), torch.float32)
    address = allocator.reallocate_output_async("output_0", 0, 40, 256, 0)
    assert address % 256 == 0
    allocator.notify_shape("output_0", trt.Dims([2, 5]))
    first = allocator.result("output_0")
    assert first.shape == (2, 5) and first.data_ptr() == address
    allocator.start()
    allocator.notify_shape("output_0", trt.Dims([0, 2]))
    assert allocator.result("output_0").shape == (0, 2)
    allocator.start()
    assert allocator.reallocate_output("output_0", address, 40, 16) != address


@pytest.mark.gpu
def test_an_engine_with_several_profiles_switches_to_each_calls_bucket():
    """Batch 1..256 gives three profiles; calls alternating between buckets (and back) each
    select theirs before setting shapes, on one context, and match eager."""
    _skip_unless_runnable()
    import torch.fx.experimental._config as fx_config

    model = mlp().cuda()
    compiled = torch.compile(model, backend="plugtrt",
                             options={"runtime": "tensorrt", "min_block_size": 1})
    with fx_config.patch(backed_size_oblivious=True), torch.no_grad():
        for size in (37, 1, 256, 8, 9, 65, 1):
            x = torch.randn(size, 16, device="cuda")
            torch._dynamo.mark_dynamic(x, 0, min=1, max=256)
            torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-4)
