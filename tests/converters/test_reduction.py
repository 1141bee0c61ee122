"""Reductions and softmax through the whole backend: dims, keepdim, dtype, fp16 accumulation."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plugtrt.converters import reduction
from plugtrt.testing import assert_converts

from .strategies import FAST, PER_OP, converter_names, precisions, seeds, shapes, tensor


def test_registers_through_a_fresh_manager():
    assert converter_names(reduction) == {
        "builtin.sum.dim_intlist", "builtin.sum", "builtin.mean.dim", "builtin.mean",
        "builtin.amax", "builtin.amin", "builtin._softmax", "builtin.softmax.int",
        "builtin._log_softmax", "builtin.log_softmax.int", "builtin._safe_softmax"}


@st.composite
def dims_of(draw, rank: int):
    picked = draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank,
                           unique_by=lambda d: d % rank))
    return tuple(picked)


REDUCE = {
    "sum": lambda x, d, k: x.sum(d, keepdim=k),
    "mean": lambda x, d, k: x.mean(d, keepdim=k),
    "amax": lambda x, d, k: x.amax(d, keepdim=k),
    "amin": lambda x, d, k: x.amin(d, keepdim=k),
}


@pytest.mark.parametrize("name", sorted(REDUCE))
@settings(**PER_OP)
@given(shape=shapes(), keepdim=st.booleans(),
       dtype=st.sampled_from([torch.float32, torch.float16, torch.int32, torch.int64]),
       precision=precisions, data=st.data(), seed=seeds)
def test_reductions(name, shape, keepdim, dtype, precision, data, seed):
    if name == "mean" and not dtype.is_floating_point:
        dtype = torch.float32
    dims = data.draw(dims_of(len(shape)))
    x = tensor(shape, dtype, seed)
    assert_converts(lambda x: REDUCE[name](x, dims, keepdim), [x], {"precision": precision})


@settings(**FAST)
@given(shape=shapes(), dtype=st.sampled_from([torch.float32, torch.int32, torch.bool]),
       out=st.sampled_from([None, torch.float32, torch.int64]), seed=seeds)
def test_full_sum_and_dtype_argument(shape, dtype, out, seed):
    x = tensor(shape, dtype, seed)
    assert_converts(lambda x: x.sum(dtype=out), [x])


@settings(**FAST)
@given(shape=shapes(), log=st.booleans(), dtype=st.sampled_from([torch.float32, torch.float16]),
       precision=precisions, data=st.data(), seed=seeds)
def test_softmax(shape, log, dtype, precision, data, seed):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = tensor(shape, dtype, seed) * 4
    op = torch.log_softmax if log else torch.softmax
    assert_converts(lambda x: op(x, dim), [x], {"precision": precision})


def test_softmax_with_dtype_and_large_logits():
    x = tensor((2, 5), torch.float16, 0) * 30
    assert_converts(lambda x: torch.softmax(x, -1, dtype=torch.float32), [x])
    assert_converts(lambda x: torch.log_softmax(x, 0), [x], {"precision": torch.float16})


def test_mean_of_all_dims():
    x = tensor((2, 3, 4), torch.float32, 0)
    assert_converts(lambda x: x.mean(), [x])
    assert_converts(lambda x: x.sum([]), [x])


@settings(**FAST)
@given(shape=shapes(1, 3), data=st.data(), precision=precisions, seed=seeds)
def test_safe_softmax_zeroes_fully_masked_rows(shape, data, precision, seed):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    mask = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) > 0.5
    assert_converts(lambda x, m: torch.ops.aten._safe_softmax.default(x.masked_fill(m, float("-inf")), dim),
                    [tensor(shape, torch.float32, seed), mask], {"precision": precision})
