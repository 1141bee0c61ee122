"""Data-dependent output sizes through ``torch.compile`` with dynamo's
``capture_dynamic_output_shape_ops``: ``x[x > 0]``, ``nonzero``, ``masked_select``, boolean
``index_put``, and computation after them that uses the count (``u0``).

Each function is compiled once and called with a random, an all-False and an all-True mask, equal
to eager every time. Where the installed builder builds TensorRT's non-zero layer (full
TensorRT), everything is one engine with nothing left in PyTorch. TensorRT-RTX 1.7's builder has
no runner for that layer: there the counting op alone runs in PyTorch (with a warning saying
why), the graph is not cut around its size assertions, and the whole function still converts
into one network, which the reference runtime evaluates (only the build is skipped)."""
from __future__ import annotations

import logging

import pytest
import torch

from plugtrt.compiler import ContainedEngine
from plugtrt.converters import data_dependent

from .converters.data_dependent_support import BUILDABLE, convertible, masks_of, one_network
from .test_dynamic import compiled

COUNTING = {"aten.nonzero.default", "aten.index.Tensor", "aten.masked_select.default",
            "aten.index_put.default"}


def _put_scalar(x):
    y = x.clone()
    y[y > 0] = 3.0
    return y


def _put_values(x):
    y = x.clone()
    m = y > 0
    y[m] = y[m] * 2 - 1
    return y


def _put_accumulate(x):
    m = x > 0
    return torch.index_put(x, (m,), x[m] * 5, accumulate=True)


def _put_row(x):
    y = x.clone()
    y[y[:, 0] > 0] = torch.arange(5, dtype=x.dtype)
    return y


CASES = {
    "mask": lambda x: x[x > 0],
    "nonzero": lambda x: torch.nonzero(x > 0),
    "masked_select": lambda x: torch.masked_select(x, x > 0),
    "put_scalar": _put_scalar,
    "put_values": _put_values,
    "put_accumulate": _put_accumulate,
    "put_row": _put_row,
    "mask_sum": lambda x: x[x > 0].sum(),
    "mask_arith": lambda x: x[x > 0] * 2 + 1,
    "nonzero_mean": lambda x: torch.nonzero(x > 0).float().mean(0),
    "mask_view": lambda x: x[x > 0].view(-1, 1) * x[x > 0].view(1, -1).sum(),
    "mask_expand": lambda x: x[x > 0].unsqueeze(0).expand(3, -1) + 1,
}


def _inputs(seed: int = 0) -> list[torch.Tensor]:
    """Three inputs whose masks (``x > 0``) are random, all False and all True."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 5, generator=g)
    return [torch.where(m, x.abs() + 0.5, -x.abs() - 0.5) for m in masks_of((4, 5), seed)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiles_once_and_matches_eager_for_every_mask(name):
    fn = CASES[name]
    result, run = compiled(fn)
    with torch._dynamo.config.patch(capture_dynamic_output_shape_ops=True), torch.no_grad():
        for x in _inputs():
            got, want = run(x), fn(x)
            assert got.shape == want.shape and got.dtype == want.dtype
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5, equal_nan=True)
    assert result.builds == [1], "one graph, compiled once, for every mask"
    report = result.reports[0]
    assert not report.fallbacks
    if BUILDABLE:
        assert len(report.engines) == 1 and report.pytorch_ops == []
        return
    # TensorRT-RTX: only the counting ops stay in PyTorch; no size assertion splits the graph
    assert set(report.pytorch_ops) <= COUNTING, report.pytorch_ops


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_whole_function_converts_into_one_network(name):
    """What the backend puts in one engine where the builder takes the non-zero layer: the whole
    function as one network, one conversion for every mask."""
    fn = CASES[name]
    inputs = _inputs(1)
    with convertible():
        run, outputs, used = one_network(fn, inputs[:1])
    for x in inputs:
        got, want = run(x)[0], fn(x)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5, equal_nan=True)
    counted = any(s.shape and -1 in s.shape for s in outputs)
    assert [s.data_dependent for s in outputs] == [counted], \
        "an output sized by a count is data-dependent, one of static size is not"


def test_output_specs_mark_sizes_known_only_after_execution():
    with convertible():
        _, outputs, _ = one_network(lambda x: (x[x > 0], torch.nonzero(x > 0).float().mean(0), x + 1),
                                    [torch.randn(4, 5)])
    assert [(s.shape, s.data_dependent, s.profiles) for s in outputs] == [
        ((-1,), True, ()), ((2,), False, ()), ((4, 5), False, ())]


@pytest.mark.skipif(BUILDABLE, reason="the counting op is in the engine: no engine reads a count")
def test_an_engine_reading_a_count_gets_a_profile_from_its_range():
    """``x[mask].sum()`` with ``x[mask]`` in PyTorch: the engine after it takes a ``[u0]`` input,
    whose profile is u0's range, 0 to the mask's 20 elements; its outputs are static."""
    result, run = compiled(lambda x: x[x > 0].sum() + x.mean())
    with torch._dynamo.config.patch(capture_dynamic_output_shape_ops=True), torch.no_grad():
        for x in _inputs(2):
            torch.testing.assert_close(run(x), x[x > 0].sum() + x.mean())
    graph = result.graphs[0]
    module = next(iter(graph.modules.values()))
    engines = [m.engine for m in module.modules() if isinstance(m, ContainedEngine)]
    specs = [s for e in engines for s in e.artifact.inputs if -1 in s.shape]
    assert [(s.shape, s.profiles) for s in specs] == [((-1,), (((0,), (20,), (20,)),))]
    assert not any(s.data_dependent for e in engines for s in e.artifact.outputs)


def test_a_users_own_check_on_the_count_is_kept():
    """The lowering pass drops only what a count guarantees (``0 <= u0 <= 20`` for a mask of
    20 elements), not a user's ``torch._check(u0 <= 5)``, which stays, checked in PyTorch."""
    def fn(x):
        y = x[x > 0]
        torch._check(y.shape[0] <= 5)
        return y * 2

    result, run = compiled(fn)
    x = -torch.ones(4, 5)
    x[0, :3] = 1
    with torch._dynamo.config.patch(capture_dynamic_output_shape_ops=True), torch.no_grad():
        torch.testing.assert_close(run(x), fn(x))
    asserts = [op for op in result.reports[0].pytorch_ops if "assert" in op or "constrain" in op]
    assert asserts == ["aten._assert_scalar.default"], result.reports[0].pytorch_ops


def test_the_refusal_is_probed_once_and_warned_once(monkeypatch, caplog):
    reason = data_dependent.builder_refuses_non_zero()
    assert data_dependent.builder_refuses_non_zero() is reason  # cached
    monkeypatch.setattr(data_dependent, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="plugtrt"):
        assert [data_dependent._buildable() for _ in range(2)] == [BUILDABLE] * 2
    if not BUILDABLE:
        assert "TensorRT-RTX#32" in reason
        assert caplog.text.count("cannot build its non-zero layer") == 1


def test_the_graph_cache_restores_a_graph_with_a_count(engine_cache_dir):
    """Compiled again after a reset (as a new process would), the graph comes from the graph
    cache or is compiled anew, and still matches eager for every mask."""
    fn = CASES["mask_arith"]
    for _ in range(2):
        result, run = compiled(fn)
        with torch._dynamo.config.patch(capture_dynamic_output_shape_ops=True), torch.no_grad():
            for x in _inputs(3):
                torch.testing.assert_close(run(x), fn(x))
    assert result.builds == [1] and not result.reports[0].fallbacks
