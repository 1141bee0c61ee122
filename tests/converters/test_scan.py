"""cumsum, cumprod, logcumsumexp, cummax and cummin through the whole backend: drawn shapes,
dims, dtypes (ints and bool widen to int64 as torch does), ties in cummax/cummin indices
(torch reports the last), infinities, a dynamic dim."""
from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plugtrt.converters import scan
from plugtrt.testing import assert_converts

from .reduce_support import ALL_DTYPES, FLOAT_DTYPES, FULL, shape_and_dynamic, with_zeros
from .strategies import FAST, converter_names, precisions, seeds, tensor


def test_registers_through_a_fresh_manager():
    assert converter_names(scan) == {"builtin.cumsum", "builtin.cumprod", "builtin.logcumsumexp",
                                     "builtin.cummax", "builtin.cummin"}


@st.composite
def _along(draw, max_side: int = 9, static_dim: bool = True):
    rank = draw(st.integers(1, 4))
    dim = draw(st.integers(-rank, rank - 1))
    shape, dynamic = draw(shape_and_dynamic(rank, rank, max_side,
                                            static=(dim,) if static_dim else ()))
    return shape, dim, dynamic


@settings(**FAST)
@given(case=_along(static_dim=False), dtype=st.sampled_from(ALL_DTYPES),
       out=st.sampled_from([None, torch.float32, torch.int64]), precision=precisions, seed=seeds)
def test_cumsum(case, dtype, out, precision, seed):
    shape, dim, dynamic = case
    x = tensor(shape, dtype, seed)
    if dtype.is_floating_point and out == torch.int64:
        out = None
    assert_converts(lambda x: torch.cumsum(x, dim, dtype=out), [x],
                    {**FULL, "precision": precision}, dynamic=dynamic)


@settings(**FAST)
@given(case=_along(), dtype=st.sampled_from(ALL_DTYPES), seed=seeds)
def test_cumprod(case, dtype, seed):
    shape, dim, dynamic = case
    x = tensor(shape, dtype, seed, low=-2, high=3)  # at most 9 factors: no integer overflow
    if dtype.is_floating_point:
        x = with_zeros((x.float() * 1.7).to(dtype), seed)
    assert_converts(lambda x: torch.cumprod(x, dim), [x], FULL, dynamic=dynamic)


@settings(**FAST)
@given(case=_along(), dtype=st.sampled_from(FLOAT_DTYPES), masked=st.booleans(),
       precision=precisions, seed=seeds)
def test_logcumsumexp(case, dtype, masked, precision, seed):
    shape, dim, dynamic = case
    x = (tensor(shape, dtype, seed).float() * 30).to(dtype)  # exp would overflow unshifted
    if masked:  # leading -inf runs stay -inf; later finite values take over
        x = x.masked_fill(with_zeros(torch.ones(shape), seed) == 0, float("-inf"))
    assert_converts(lambda x: torch.logcumsumexp(x, dim), [x], {**FULL, "precision": precision},
                    dynamic=dynamic)


@settings(**FAST)
@given(case=_along(), dtype=st.sampled_from(ALL_DTYPES), largest=st.booleans(),
       read=st.sampled_from(["both", "values", "indices"]), seed=seeds)
def test_cummax_cummin_with_ties(case, dtype, largest, read, seed):
    shape, dim, dynamic = case
    x = tensor(shape, dtype, seed, low=-2, high=2)
    if dtype.is_floating_point:
        x = x.round().to(dtype)  # repeated values: torch reports the last position

    def fn(x):
        result = torch.cummax(x, dim) if largest else torch.cummin(x, dim)
        return {"both": tuple(result), "values": result.values, "indices": result.indices}[read]
    assert_converts(fn, [x], FULL, dynamic=dynamic)


def test_scans_with_infinities():
    x = torch.tensor([[1.0, float("inf"), 2.0, -float("inf"), 3.0],
                      [-float("inf"), -float("inf"), 0.5, float("inf"), float("inf")]])
    for fn in (lambda x: torch.cumsum(x, 1), lambda x: torch.logcumsumexp(x, 1),
               lambda x: tuple(torch.cummax(x, 1)), lambda x: tuple(torch.cummin(x, 1))):
        assert_converts(fn, [x], FULL)


def test_unrolled_scans_decline_a_dynamic_or_overlong_dim():
    cases = [(lambda x: torch.cumprod(x, 0) * 2, tensor((5, 3), torch.float32, 0), {0: [0]},
              "aten.cumprod.default"),
             (lambda x: torch.cummax(x, 1).values * 2, tensor((2, 4097), torch.float32, 1), None,
              "aten.cummax.default")]
    for fn, x, dynamic, op in cases:
        run = assert_converts(fn, [x], dynamic=dynamic, engines=None, pytorch_ops=None)
        assert op in run.pytorch_ops
