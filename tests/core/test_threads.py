"""A compiled module called from several threads: right answers, each engine built once."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from torch import nn

import plugtrt

OPTIONS = {"runtime": "reference", "min_block_size": 1}
THREADS = 4


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).eval()


def _call_together(compiled, inputs):
    """Each thread waits for the others, then calls ``compiled`` on its own input."""
    barrier = threading.Barrier(len(inputs))

    def call(x):
        barrier.wait()
        with torch.no_grad():
            return compiled(x)

    with ThreadPoolExecutor(len(inputs)) as pool:
        return list(pool.map(call, inputs))


def _new_engines(start: int) -> int:
    new = plugtrt.compile_count() - start
    return sum(len(r.engines) for r in plugtrt.compile_reports()[-new:]) if new else 0


def test_threads_after_a_weight_change_rebuild_once_and_get_right_answers():
    model = _model()
    compiled = torch.compile(model, backend="plugtrt", dynamic=False, options=OPTIONS)
    with torch.no_grad():
        compiled(torch.randn(2, 8))
        model[0].weight.mul_(-1)
    _assert_threads_compile_once(compiled, model, [torch.randn(2, 8) for _ in range(THREADS)])


def test_threads_with_a_size_beyond_a_dynamic_graph_profile_rebuild_it_once():
    model = _model()
    compiled = torch.compile(model, backend="plugtrt", options=OPTIONS)
    with torch.no_grad():
        for batch in (2, 3):  # dynamo makes the graph dynamic at the second shape
            compiled(torch.randn(batch, 8))
    # beyond the unbounded profile's 16
    _assert_threads_compile_once(compiled, model, [torch.randn(40, 8) for _ in range(THREADS)])


def _assert_threads_compile_once(compiled, model, inputs):
    """Called from several threads at once: one compilation, one engine, eager's answers."""
    start = plugtrt.compile_count()
    results = _call_together(compiled, inputs)
    assert plugtrt.compile_count() == start + 1 and _new_engines(start) == 1
    with torch.no_grad():
        for x, got in zip(inputs, results):
            torch.testing.assert_close(got, model(x))


def _interpolate(x):
    return nn.functional.interpolate(x, scale_factor=2)


def _traced_ops(fn, x) -> set[str]:
    """The aten ops of ``fn`` traced with the python dispatcher, as plugtrt and AOT trace."""
    from torch._dispatch.python import enable_python_dispatcher
    from torch.fx.experimental.proxy_tensor import make_fx

    with enable_python_dispatcher():
        graph = make_fx(fn, tracing_mode="fake")(x).graph
    return {str(n.target) for n in graph.nodes if n.op == "call_function"}


def test_keeping_upsample_whole_in_one_thread_leaves_other_threads_traces_alone():
    """Issue 17, item 7: the tracing thread bypassed torch's Python upsample kernels by removing
    them from the op for the whole process, so another thread tracing at the same time (a
    symbolic trace, dynamo, export) got the C++ kernel and the op whole."""
    from plugtrt.tracing import _python_decompositions_suspended

    upsample = torch.ops.aten.upsample_nearest2d
    x = torch.randn(1, 2, 3, 3)
    inside, done = threading.Event(), threading.Event()
    seen = {}

    def tracer():
        with _python_decompositions_suspended([upsample.vec, upsample.default]):
            seen["tracer"] = _traced_ops(_interpolate, x)
            inside.set()
            done.wait(30)

    thread = threading.Thread(target=tracer)
    thread.start()
    try:
        assert inside.wait(30)
        seen["other"] = _traced_ops(_interpolate, x)
    finally:
        done.set()
        thread.join()
    assert seen["tracer"] == {"aten.upsample_nearest2d.default"}
    assert "aten.upsample_nearest2d.default" not in seen["other"]
    assert "aten._unsafe_index.Tensor" in seen["other"]


def test_suspension_ends_with_an_exception():
    from plugtrt.tracing import _python_decompositions_suspended

    upsample = torch.ops.aten.upsample_nearest2d
    with pytest.raises(KeyError), _python_decompositions_suspended([upsample.vec, upsample.default]):
        raise KeyError("tracing failed")
    assert "aten.upsample_nearest2d.default" not in _traced_ops(_interpolate, torch.randn(1, 2, 3, 3))


def test_a_build_failure_names_only_its_own_tensorrt_errors():
    """Issue 17, item 7: the TensorRT logger's error list was one for the process, so a build's
    failure message could hold another thread's errors, or lose its own when another build
    cleared the list."""
    from plugtrt.engine import build, new_network, tensorrt_logger
    from plugtrt.errors import EngineBuildError
    from plugtrt.settings import CompilationSettings
    from plugtrt.trt_adapter import trt

    stop = threading.Event()

    def load_garbage():  # another thread's TensorRT errors, logged while the builds run
        runtime = trt.Runtime(tensorrt_logger())
        while not stop.is_set():
            runtime.deserialize_cuda_engine(b"not a plan" * 8)

    other = threading.Thread(target=load_garbage)
    other.start()
    messages = []
    try:
        for _ in range(20):
            builder, network = new_network()
            network.add_input("x", trt.float32, (2, 3))  # no output: TensorRT refuses to build
            with pytest.raises(EngineBuildError) as failure:
                build("no_output", builder, network, CompilationSettings(), (), ())
            messages.append(str(failure.value))
    finally:
        stop.set()
        other.join()
    assert all("at least one output" in m for m in messages)
    assert not [m for m in messages if "deserializeCudaEngine" in m or "Cuda" in m]
