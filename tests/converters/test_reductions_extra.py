"""prod, max/min, argmax/argmin, aminmax, any/all, count_nonzero and logsumexp through the whole
backend: drawn shapes, dims, keepdim, dtypes (bool included), a dynamic dim, ties in indices."""
from __future__ import annotations

import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from plugtrt.converters import reduction_extra
from plugtrt.testing import assert_converts

from .reduce_support import ALL_DTYPES, FULL, NUMBERS, dims_of, shape_and_dynamic, with_zeros
from .strategies import FAST, converter_names, precisions, seeds, tensor


def test_registers_through_a_fresh_manager():
    assert converter_names(reduction_extra) == {
        "builtin.prod", "builtin.prod.dim_int", "builtin.max", "builtin.min", "builtin.max.dim",
        "builtin.min.dim", "builtin.argmax", "builtin.argmin", "builtin.aminmax", "builtin.any",
        "builtin.any.dim", "builtin.any.dims", "builtin.all", "builtin.all.dim", "builtin.all.dims",
        "builtin.count_nonzero", "builtin.count_nonzero.dim_intlist", "builtin.logsumexp"}


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


@settings(**FAST)
@given(sd=shape_and_dynamic(), dtype=st.sampled_from(ALL_DTYPES), is_any=st.booleans(),
       form=st.sampled_from(["all", "dim", "dims"]), keepdim=st.booleans(), data=st.data(),
       seed=seeds)
def test_any_all(sd, dtype, is_any, form, keepdim, data, seed):
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
