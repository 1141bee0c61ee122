"""Reduction converters through the whole backend: sums, means, extremes and their first indices
(ties), logical and counting reductions, logsumexp, softmax, moments and vector norms; drawn
shapes, dims, keepdim, dtypes (bool included), precisions and a dynamic dim."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given, settings, strategies as st

from plugtrt.converters import reduction
from plugtrt.testing import assert_converts

from .strategies import FAST, PER_OP, converter_names, precisions, seeds, shapes, tensor
from .reduce_support import (
    ALL_DTYPES, FLOAT_DTYPES, FULL, NUMBERS, dims_of, shape_and_dynamic, with_zeros,
)


def test_registers_through_a_fresh_manager():
    assert converter_names(reduction) == {
        "builtin._log_softmax", "builtin._safe_softmax", "builtin._softmax", "builtin.all",
        "builtin.all.dim", "builtin.all.dims", "builtin.amax", "builtin.amin",
        "builtin.aminmax", "builtin.any", "builtin.any.dim", "builtin.any.dims",
        "builtin.argmax", "builtin.argmin", "builtin.count_nonzero",
        "builtin.count_nonzero.dim_intlist", "builtin.linalg_vector_norm",
        "builtin.log_softmax.int", "builtin.logsumexp", "builtin.max", "builtin.max.dim",
        "builtin.mean", "builtin.mean.dim", "builtin.min", "builtin.min.dim",
        "builtin.norm.scalar", "builtin.norm.scalaropt_dim", "builtin.prod",
        "builtin.prod.dim_int", "builtin.softmax.int", "builtin.std.correction",
        "builtin.std.dim", "builtin.std_mean.correction", "builtin.sum",
        "builtin.sum.dim_intlist", "builtin.var.correction", "builtin.var.dim",
        "builtin.var_mean.correction"}


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


@settings(**FAST)
@given(sd=shape_and_dynamic(max_rank=3, max_side=3), dtype=st.sampled_from(ALL_DTYPES),
       keepdim=st.booleans(), whole=st.booleans(), out=st.sampled_from([None, torch.float32]),
       data=st.data(), seed=seeds)
def test_prod(sd, dtype, keepdim, whole, out, data, seed):
    shape, dynamic = sd
    x = tensor(shape, dtype, seed, low=-2, high=3)  # at most 27 factors of |x| <= 2: no overflow
    if dtype.is_floating_point:
        x = (x.float() * 1.5).to(dtype)
    if whole:
        fn = lambda x: x.prod(dtype=out)
    else:
        dim = data.draw(st.integers(-len(shape), len(shape) - 1))
        fn = lambda x: x.prod(dim, keepdim=keepdim, dtype=out)
    assert_converts(fn, [x], FULL, dynamic=dynamic)


@settings(**FAST)
@given(sd=shape_and_dynamic(), dtype=st.sampled_from(ALL_DTYPES), largest=st.booleans(),
       precision=precisions, seed=seeds)
def test_max_min_of_everything(sd, dtype, largest, precision, seed):
    shape, dynamic = sd
    x = tensor(shape, dtype, seed) * (3 if dtype != torch.bool else 1)
    fn = (lambda x: x.max()) if largest else (lambda x: x.min())
    assert_converts(fn, [x], {**FULL, "precision": precision}, dynamic=dynamic)


@st.composite
def _reduced(draw, max_rank: int = 4):
    """(shape, dim, dynamic): any dim may be dynamic, the reduced one too (a LINSPACE iota)."""
    rank = draw(st.integers(1, max_rank))
    dim = draw(st.integers(-rank, rank - 1))
    shape, dynamic = draw(shape_and_dynamic(rank, rank))
    return shape, dim, dynamic


@settings(**FAST)
@given(case=_reduced(), dtype=st.sampled_from(ALL_DTYPES), largest=st.booleans(),
       keepdim=st.booleans(), read=st.sampled_from(["both", "values", "indices"]), seed=seeds)
def test_max_min_along_a_dim_with_first_index_ties(case, dtype, largest, keepdim, read, seed):
    shape, dim, dynamic = case
    x = tensor(shape, dtype, seed, low=-2, high=2)  # few distinct values: ties everywhere
    if dtype.is_floating_point:
        x = x.round().to(dtype)

    def fn(x):
        result = torch.max(x, dim, keepdim) if largest else torch.min(x, dim, keepdim)
        return {"both": tuple(result), "values": result.values, "indices": result.indices}[read]
    assert_converts(fn, [x], FULL, dynamic=dynamic)


@settings(**FAST)
@given(case=_reduced(), dtype=st.sampled_from(NUMBERS), largest=st.booleans(),
       keepdim=st.booleans(), whole=st.booleans(), seed=seeds)
def test_argmax_argmin(case, dtype, largest, keepdim, whole, seed):
    shape, dim, dynamic = case
    if whole:
        dim, dynamic = None, None  # a flattened tensor: every dim static
    x = tensor(shape, dtype, seed, low=-2, high=2)
    if dtype.is_floating_point:
        x = x.round().to(dtype)  # ties: torch's first index
    op = torch.argmax if largest else torch.argmin
    assert_converts(lambda x: op(x, dim, keepdim), [x], FULL, dynamic=dynamic)


def test_argmax_of_a_scalar_and_of_a_flattened_dynamic_tensor():
    assert_converts(lambda x: torch.argmax(x * 2), [torch.tensor(3.0)], FULL)
    run = assert_converts(lambda x: torch.argmax(x) + 1, [tensor((3, 4), torch.float32, 0)],
                          dynamic={0: [1]}, engines=None, pytorch_ops=None)
    assert "aten.argmax.default" in run.pytorch_ops


@settings(**FAST)
@given(sd=shape_and_dynamic(), dtype=st.sampled_from(ALL_DTYPES), keepdim=st.booleans(),
       data=st.data(), seed=seeds)
def test_aminmax(sd, dtype, keepdim, data, seed):
    shape, dynamic = sd
    dim = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    x = tensor(shape, dtype, seed)
    assume(dtype != torch.bool)  # torch has no bool aminmax kernel
    assert_converts(lambda x: tuple(torch.aminmax(x, dim=dim, keepdim=keepdim)), [x], FULL,
                    dynamic=dynamic)


@pytest.mark.parametrize("is_any", [True, False], ids=["any", "all"])
@pytest.mark.parametrize("form", ["all", "dim", "dims"])  # every overload, every run
@settings(**PER_OP)
@given(sd=shape_and_dynamic(), dtype=st.sampled_from(ALL_DTYPES), keepdim=st.booleans(), data=st.data(),
       seed=seeds)
def test_any_all(is_any, form, sd, dtype, keepdim, data, seed):
    shape, dynamic = sd
    x = with_zeros(tensor(shape, dtype, seed), seed)
    if data.draw(st.booleans()):
        x = x != 0 if is_any else x == 0  # mostly-False / mostly-True rows too
    op = torch.any if is_any else torch.all
    if form == "all":
        fn = lambda x: op(x)
    elif form == "dim":
        dim = data.draw(st.integers(-len(shape), len(shape) - 1))
        fn = lambda x: op(x, dim, keepdim=keepdim)
    else:
        dims = data.draw(dims_of(len(shape)))
        fn = lambda x: op(x, dims, keepdim=keepdim)
    assert_converts(fn, [x], FULL, dynamic=dynamic)


def test_empty_dims_lists():
    """any/all.dims reduce nothing for [], count_nonzero reduces everything: as torch."""
    x = with_zeros(tensor((3, 4), torch.int32, 0), 0)
    assert_converts(lambda x: torch.ops.aten.any.dims(x, []), [x], FULL)
    assert_converts(lambda x: torch.ops.aten.all.dims(x.float(), [], True), [x], FULL)
    assert_converts(lambda x: torch.ops.aten.count_nonzero.dim_IntList(x, []), [x], FULL)


@settings(**FAST)
@given(sd=shape_and_dynamic(), dtype=st.sampled_from(ALL_DTYPES), data=st.data(), seed=seeds)
def test_count_nonzero(sd, dtype, data, seed):
    shape, dynamic = sd
    x = with_zeros(tensor(shape, dtype, seed), seed)
    dim = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                              dims_of(len(shape))))
    assert_converts(lambda x: torch.count_nonzero(x, dim), [x], FULL, dynamic=dynamic)


@settings(**FAST)
@given(sd=shape_and_dynamic(), dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16,
                                                      torch.int32]),
       keepdim=st.booleans(), masked=st.booleans(), precision=precisions, data=st.data(), seed=seeds)
def test_logsumexp(sd, dtype, keepdim, masked, precision, data, seed):
    shape, dynamic = sd
    dims = data.draw(dims_of(len(shape)))
    x = tensor(shape, dtype, seed) * (8 if dtype.is_floating_point else 1)
    if masked and dtype.is_floating_point:  # whole rows of -inf give -inf, not NaN
        x = x.masked_fill(with_zeros(torch.ones(shape), seed) == 0, float("-inf"))
    assert_converts(lambda x: torch.logsumexp(x, dims, keepdim), [x],
                    {**FULL, "precision": precision}, dynamic=dynamic)


def test_logsumexp_of_large_logits_and_inf():
    x = torch.tensor([[1000.0, 1000.0, -5.0], [float("inf"), 1.0, 2.0], [-float("inf")] * 3])
    assert_converts(lambda x: torch.logsumexp(x, 1), [x], FULL)


aten = torch.ops.aten


@st.composite
def _reduced_moments(draw):
    """(shape, dims or None, dynamic): the reduced dims static (N is a constant)."""
    rank = draw(st.integers(1, 4))
    dims = draw(st.one_of(st.none(), dims_of(rank)))
    shape, dynamic = draw(shape_and_dynamic(rank, rank, static=dims or range(rank)))
    return shape, dims, dynamic


MOMENTS = {
    "var": lambda x, d, c, k: torch.var(x, d, correction=c, keepdim=k),
    "std": lambda x, d, c, k: torch.std(x, d, correction=c, keepdim=k),
    "var_mean": lambda x, d, c, k: tuple(torch.var_mean(x, d, correction=c, keepdim=k)),
    "std_mean": lambda x, d, c, k: tuple(torch.std_mean(x, d, correction=c, keepdim=k)),
}


@settings(**FAST)
@given(case=_reduced_moments(), name=st.sampled_from(sorted(MOMENTS)), dtype=st.sampled_from(FLOAT_DTYPES),
       correction=st.sampled_from([None, 0, 1, 2, 0.5]), keepdim=st.booleans(),
       precision=precisions, seed=seeds)
def test_moments(case, name, dtype, correction, keepdim, precision, seed):
    shape, dims, dynamic = case
    x = (tensor(shape, dtype, seed).float() * 30 + 100).to(dtype)  # an offset the mean removes
    assert_converts(lambda x: MOMENTS[name](x, dims, correction, keepdim), [x],
                    {**FULL, "precision": precision}, dynamic=dynamic)


def test_var_dim_overloads_and_a_divisor_of_zero():
    x = tensor((3, 4), torch.float32, 0)
    assert_converts(lambda x: aten.var.dim(x, [1], False, True), [x], FULL)
    assert_converts(lambda x: aten.std.dim(x, [0, 1]), [x], FULL)
    assert_converts(lambda x: torch.var(x, 0, correction=1), [tensor((1, 4), torch.float32, 1)], FULL)
    # torch's divisor is max(0, N - correction): NaN for equal rows, inf otherwise, never negative
    assert_converts(lambda x: torch.var(x, 1, correction=5), [tensor((2, 3), torch.float32, 2)], FULL)
    assert_converts(lambda x: torch.std(x, 0, correction=2), [tensor((1, 3), torch.float32, 3)], FULL)


def test_variance_over_a_dynamic_dim_stays_in_pytorch():
    run = assert_converts(lambda x: torch.var(x, 0) * 2, [tensor((5, 3), torch.float32, 0)],
                          dynamic={0: [0]}, engines=None, pytorch_ops=None)
    assert "aten.var.correction" in run.pytorch_ops


ORDS = [2, 1, 3, 0.5, -1, math.inf, -math.inf, 0]


@settings(**FAST)
@given(sd=shape_and_dynamic(), dtype=st.sampled_from(FLOAT_DTYPES), ord=st.sampled_from(ORDS),
       keepdim=st.booleans(), out=st.sampled_from([None, torch.float32]), precision=precisions,
       data=st.data(), seed=seeds)
def test_linalg_vector_norm(sd, dtype, ord, keepdim, out, precision, data, seed):
    shape, dynamic = sd
    dims = data.draw(st.one_of(st.none(), dims_of(len(shape))))
    x = (tensor(shape, dtype, seed, nonzero=ord < 0).float() * 20).to(dtype)
    if ord == 0:
        x = with_zeros(x, seed)
    if out is not None and dtype == torch.float32:
        out = None  # dtype= must not narrow
    assert_converts(lambda x: torch.linalg.vector_norm(x, ord, dims, keepdim, dtype=out), [x],
                    {**FULL, "precision": precision}, dynamic=dynamic)


@settings(**FAST)
@given(sd=shape_and_dynamic(), dtype=st.sampled_from(FLOAT_DTYPES),
       p=st.sampled_from([None, 2, 1, 3, math.inf]), keepdim=st.booleans(), data=st.data(),
       seed=seeds)
def test_norm_overloads(sd, dtype, p, keepdim, data, seed):
    shape, dynamic = sd
    x = tensor(shape, dtype, seed)
    if data.draw(st.booleans()):
        dims = list(data.draw(dims_of(len(shape))))
        fn = lambda x: aten.norm.ScalarOpt_dim(x, p, dims, keepdim)
    else:
        fn = lambda x: aten.norm.Scalar(x, 2 if p is None else p)
    assert_converts(fn, [x], FULL, dynamic=dynamic)
