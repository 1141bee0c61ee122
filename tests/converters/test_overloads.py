"""Overloads that ordinary torch code does not always reach: an aten ``.Scalar`` form (dynamo
turns ``x + 2`` into ``add.Tensor``), a unary op no other test draws, a split with sizes. Each
is called explicitly inside the compiled function, with shapes, dtypes and scalars drawn."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plugtrt.testing import assert_converts

from .strategies import PER_OP, seeds, shapes, tensor

aten = torch.ops.aten
SCALAR_FORMS = {
    "add.Scalar": lambda x, s: aten.add.Scalar(x, s),
    "sub.Scalar": lambda x, s: aten.sub.Scalar(x, s),
    "mul.Scalar": lambda x, s: aten.mul.Scalar(x, s),
    "div.Scalar": lambda x, s: aten.div.Scalar(x, s),
    "div.Scalar_mode": lambda x, s: aten.div.Scalar_mode(x, s, rounding_mode="floor"),
    "pow.Scalar": lambda x, s: aten.pow.Scalar(abs(s) + 0.5, x),
    "lt.Scalar": lambda x, s: aten.lt.Scalar(x, s),
    "clamp_min": lambda x, s: aten.clamp_min.default(x, s),
    "clamp_max": lambda x, s: aten.clamp_max.default(x, s),
}
FLOAT_UNARY = {
    "ceil": torch.ceil, "cos": torch.cos, "reciprocal": torch.reciprocal, "rsqrt": torch.rsqrt,
    "mean": lambda x: x.mean(),
}
dtypes = st.sampled_from([torch.float32, torch.float16, torch.int32])


@pytest.mark.parametrize("name", sorted(SCALAR_FORMS))
@settings(**PER_OP)
@given(shape=shapes(), dtype=dtypes, scalar=st.sampled_from([2, -3, 0.5, 2.5]), seed=seeds)
def test_scalar_overloads(name, shape, dtype, scalar, seed):
    if name.startswith("div") or name == "pow.Scalar":
        scalar = scalar if scalar != 0 else 1
    x = tensor(shape, dtype, seed)
    assert_converts(lambda x: SCALAR_FORMS[name](x, scalar), [x],
                    {"require_full_compilation": True})


@pytest.mark.parametrize("name", sorted(FLOAT_UNARY))
@settings(**PER_OP)
@given(shape=shapes(), dtype=st.sampled_from([torch.float32, torch.float16]), seed=seeds)
def test_float_unary(name, shape, dtype, seed):
    x = tensor(shape, dtype, seed, positive=name in ("reciprocal", "rsqrt")) * 4
    assert_converts(FLOAT_UNARY[name], [x], {"require_full_compilation": True})


@settings(**PER_OP)
@given(shape=shapes(min_rank=2), dtype=st.sampled_from([torch.float32, torch.int64, torch.bool]),
       seed=seeds)
def test_ge_tensor_and_t(shape, dtype, seed):
    x, y = tensor(shape[-2:], dtype, seed), tensor(shape[-2:], dtype, seed + 1)
    assert_converts(lambda x, y: aten.ge.Tensor(x, y).t(), [x, y])


@settings(**PER_OP)
@given(shape=shapes(), dtype=st.sampled_from([torch.float32, torch.int32, torch.bool]),
       seed=seeds, data=st.data())
def test_split_with_sizes(shape, dtype, seed, data):
    dim = data.draw(st.integers(0, len(shape) - 1))
    first = data.draw(st.integers(1, shape[dim]))
    sizes = [first, shape[dim] - first] if first < shape[dim] else [first]
    x = tensor(shape, dtype, seed)
    assert_converts(lambda x: [~p if p.dtype == torch.bool else -p for p in torch.split(x, sizes, dim)],
                    [x])
