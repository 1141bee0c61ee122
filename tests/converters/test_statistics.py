"""var/std (and with the mean), vector norms through the whole backend: drawn dims, correction,
keepdim, float dtypes and precision, a dynamic dim outside the reduced ones."""
from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plugtrt.converters import statistics
from plugtrt.testing import assert_converts

from .reduce_support import FLOAT_DTYPES, FULL, dims_of, shape_and_dynamic, with_zeros
from .strategies import FAST, converter_names, precisions, seeds, tensor

aten = torch.ops.aten


def test_registers_through_a_fresh_manager():
    assert converter_names(statistics) == {
        "builtin.var.correction", "builtin.std.correction", "builtin.var_mean.correction",
        "builtin.std_mean.correction", "builtin.var.dim", "builtin.std.dim",
        "builtin.linalg_vector_norm", "builtin.norm.scalar", "builtin.norm.scalaropt_dim"}


@st.composite
def _reduced(draw):
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
@given(case=_reduced(), name=st.sampled_from(sorted(MOMENTS)), dtype=st.sampled_from(FLOAT_DTYPES),
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
