"""A compiled module called from several threads: right answers, each engine built once."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

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
