"""topk, sort, argsort and kthvalue through the whole backend.

TensorRT does not document the order TopK gives equal values, and torch promises none for
topk, kthvalue and unstable sorts: their values must equal eager's, their indices must pick
those values from the input, and they must equal eager's indices wherever the input has no
ties along the dim. Stable int32/bool sorts claim torch's exact order, ties included.
"""
from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plugtrt.converters import sorting
from plugtrt.testing import assert_converts, run_through_backend, tolerance

from .reduce_support import FULL, NUMBERS, shape_and_dynamic
from .strategies import FAST, converter_names, seeds, tensor

aten = torch.ops.aten


def test_registers_through_a_fresh_manager():
    assert converter_names(sorting) == {
        "builtin.topk", "builtin.sort", "builtin.sort.stable", "builtin.argsort",
        "builtin.argsort.stable", "builtin.kthvalue"}


def _no_ties(x: torch.Tensor, dim: int) -> bool:
    ordered = x.sort(dim).values
    return bool((ordered.diff(dim=dim) != 0).all()) if x.shape[dim] > 1 else True


def check_selection(fn, x: torch.Tensor, dim: int, dynamic=None, unique_order: bool = False):
    """``fn(x)`` returns (values, indices) along ``dim``: converted whole, values equal to eager,
    indices that gather those values, and eager's indices where ``x`` has no ties (always with
    ``unique_order``)."""
    run = run_through_backend(fn, [x], FULL, dynamic=dynamic)
    assert not run.fallbacks and run.pytorch_ops == [] and run.engines == 1
    assert all(r.dynamic for r in run.reports) or not dynamic
    (values, indices), (want_values, want_indices) = run.outputs, run.expected
    for got, want in ((values, want_values), (indices, want_indices)):
        assert got.dtype == want.dtype and got.shape == want.shape
    rtol, atol = tolerance(want_values.dtype)
    torch.testing.assert_close(values, want_values, rtol=rtol, atol=atol)
    taken = x.gather(dim, indices if indices.dim() == x.dim() else indices.unsqueeze(dim))
    assert torch.equal(taken.reshape(values.shape), values), "indices do not pick the values"
    if unique_order or _no_ties(x, dim):
        assert torch.equal(indices, want_indices)


@st.composite
def _along(draw, max_rank: int = 4, max_side: int = 6, static_dim: bool = True):
    rank = draw(st.integers(1, max_rank))
    dim = draw(st.integers(-rank, rank - 1))
    shape, dynamic = draw(shape_and_dynamic(rank, rank, max_side, static=(dim,) if static_dim else ()))
    return shape, dim, dynamic


def _input(shape, dtype, seed, ties: bool):
    if ties:
        x = tensor(shape, dtype, seed, low=-2, high=2)
        return x.round().to(dtype) if dtype.is_floating_point else x
    return tensor(shape, dtype, seed, low=-1000, high=1000)


@settings(**FAST)
@given(case=_along(static_dim=False), dtype=st.sampled_from(NUMBERS), largest=st.booleans(),
       sorted_=st.booleans(), ties=st.booleans(), data=st.data(), seed=seeds)
def test_topk(case, dtype, largest, sorted_, ties, data, seed):
    shape, dim, dynamic = case
    k = data.draw(st.integers(1, shape[dim]))
    x = _input(shape, dtype, seed, ties)
    if sorted_:
        check_selection(lambda x: tuple(torch.topk(x, k, dim, largest)), x, dim, dynamic)
    else:  # torch's order is unspecified: compare the values sorted
        run = run_through_backend(lambda x: torch.topk(x, k, dim, largest, False).values, [x],
                                  FULL, dynamic=dynamic)
        assert not run.fallbacks and run.pytorch_ops == [] and run.engines == 1
        assert torch.equal(run.outputs.sort(dim).values, run.expected.sort(dim).values)


@settings(**FAST)
@given(case=_along(), dtype=st.sampled_from(NUMBERS + [torch.bool]), descending=st.booleans(),
       ties=st.booleans(), seed=seeds)
def test_sort_and_argsort(case, dtype, descending, ties, seed):
    shape, dim, dynamic = case
    x = _input(shape, dtype, seed, ties)
    check_selection(lambda x: tuple(torch.sort(x, dim, descending)), x, dim, dynamic)
    run = run_through_backend(lambda x: torch.argsort(x, dim, descending), [x], FULL,
                              dynamic=dynamic)
    taken = x.gather(dim, run.outputs)
    assert torch.equal(taken, x.gather(dim, run.expected))
    if _no_ties(x, dim):
        assert torch.equal(run.outputs, run.expected)


@settings(**FAST)
@given(case=_along(), dtype=st.sampled_from([torch.int32, torch.bool]), descending=st.booleans(),
       seed=seeds)
def test_stable_sort_keeps_torch_order_of_ties(case, dtype, descending, seed):
    shape, dim, dynamic = case
    x = _input(shape, dtype, seed, ties=True)
    check_selection(lambda x: tuple(torch.sort(x, dim=dim, descending=descending, stable=True)),
                    x, dim, dynamic, unique_order=True)
    assert_converts(lambda x: torch.argsort(x, dim=dim, descending=descending, stable=True), [x],
                    FULL, dynamic=dynamic)


def test_direct_argsort_overloads():
    x = _input((3, 5), torch.int32, 0, ties=True)
    run = run_through_backend(lambda x: aten.argsort.default(x, 1, True), [x], FULL)
    assert torch.equal(x.gather(1, run.outputs), x.gather(1, run.expected))
    assert_converts(lambda x: aten.argsort.stable(x, stable=True, dim=0), [x], FULL)


@settings(**FAST)
@given(case=_along(static_dim=False), dtype=st.sampled_from(NUMBERS), keepdim=st.booleans(),
       ties=st.booleans(), data=st.data(), seed=seeds)
def test_kthvalue(case, dtype, keepdim, ties, data, seed):
    shape, dim, dynamic = case
    k = data.draw(st.integers(1, shape[dim]))
    x = _input(shape, dtype, seed, ties)
    check_selection(lambda x: tuple(torch.kthvalue(x, k, dim, keepdim)), x, dim, dynamic)


def test_beyond_topk_limits_stays_in_pytorch():
    """k > 3840, a sorted axis longer than 3840, a dim before the last four, a stable float sort."""
    long = tensor((2, 3900), torch.float32, 0)
    cases = [
        (lambda x: torch.topk(x, 3841, 1).values * 2, long, "aten.topk.default"),
        (lambda x: torch.sort(x, 1).values * 2, long, "aten.sort.default"),
        (lambda x: torch.topk(x, 1, 0).values * 2, tensor((2, 1, 1, 1, 3), torch.float32, 1),
         "aten.topk.default"),
        (lambda x: torch.sort(x, dim=1, stable=True).values * 2, tensor((3, 4), torch.float32, 2),
         "aten.sort.stable"),
        (lambda x: torch.sort(x, dim=0, stable=True).values * 2, tensor((3, 4), torch.int64, 3),
         "aten.sort.stable"),
    ]
    for fn, x, op in cases:
        run = assert_converts(fn, [x], engines=None, pytorch_ops=None)
        assert op in run.pytorch_ops


def test_sort_of_a_dynamic_axis_stays_in_pytorch():
    run = assert_converts(lambda x: torch.sort(x, 0).values * 2, [tensor((5, 3), torch.float32, 0)],
                          dynamic={0: [0]}, engines=None, pytorch_ops=None)
    assert "aten.sort.default" in run.pytorch_ops
