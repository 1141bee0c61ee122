"""Elementwise converters through the whole backend: broadcasting, python scalars and torch's
dtype promotion (int / int is a float, int + 2.5 is a float, comparisons promote first)."""
from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from plugtrt.converters import elementwise
from plugtrt.testing import assert_converts

from .strategies import FAST, PER_OP, broadcast_pair, converter_names, seeds, tensor

DTYPES = [torch.float32, torch.float16, torch.int32, torch.int64]
ARITH = {
    "add": lambda a, b: a + b,
    "add_alpha": lambda a, b: torch.add(a, b, alpha=3),
    "sub": lambda a, b: a - b,
    "sub_alpha": lambda a, b: torch.sub(a, b, alpha=2),
    "mul": lambda a, b: a * b,
    "maximum": torch.maximum,
    "minimum": torch.minimum,
}
DIVISIONS = {
    "div": lambda a, b: a / b,
    "div_trunc": lambda a, b: torch.div(a, b, rounding_mode="trunc"),
    "div_floor": lambda a, b: torch.div(a, b, rounding_mode="floor"),
    "floor_divide": lambda a, b: a // b,
}
COMPARE = {"eq": torch.eq, "ne": torch.ne, "lt": torch.lt, "le": torch.le, "gt": torch.gt,
           "ge": torch.ge}


def test_registers_through_a_fresh_manager():
    names = converter_names(elementwise)
    assert {"builtin.add.tensor", "builtin.add.scalar", "builtin.sub.tensor", "builtin.mul.tensor",
            "builtin.div.tensor", "builtin.div.tensor_mode", "builtin.floor_divide",
            "builtin.pow.tensor_scalar", "builtin.maximum", "builtin.where", "builtin.clamp",
            "builtin.neg", "builtin.abs", "builtin.sqrt", "builtin.rsqrt", "builtin.exp",
            "builtin.log", "builtin.eq.tensor", "builtin.lt.scalar", "builtin._to_copy",
            "builtin.scalar_tensor", "builtin.masked_fill.scalar", "builtin.masked_fill.tensor"} <= names


def _maybe_maximum(name, a, b):
    if name in ("maximum", "minimum") and a.dtype != b.dtype:
        return b.to(a.dtype)  # torch.maximum promotes too, but keep one dtype per pair here
    return b


@pytest.mark.parametrize("name", sorted(ARITH))
@settings(**PER_OP)
@given(pair=broadcast_pair(), da=st.sampled_from(DTYPES),
       db=st.sampled_from(DTYPES), seed=seeds)
def test_arithmetic_broadcasts_and_promotes(name, pair, da, db, seed):
    a, b = tensor(pair[0], da, seed), tensor(pair[1], db, seed + 1)
    assert_converts(ARITH[name], [a, _maybe_maximum(name, a, b)])


@pytest.mark.parametrize("name", sorted(ARITH))
@settings(**PER_OP)
@given(shape=broadcast_pair().map(lambda p: p[0]),
       dtype=st.sampled_from(DTYPES), scalar=st.sampled_from([2, -3, 0.5, 2.5]),
       scalar_first=st.booleans(), seed=seeds)
def test_python_scalar_operands(name, shape, dtype, scalar, scalar_first, seed):
    if name in ("maximum", "minimum"):
        name = "mul"
    op = ARITH[name]
    x = tensor(shape, dtype, seed)
    assert_converts((lambda x: op(scalar, x)) if scalar_first else (lambda x: op(x, scalar)), [x])


@pytest.mark.parametrize("name", sorted(DIVISIONS))
@settings(**PER_OP)
@given(pair=broadcast_pair(),
       dtypes=st.sampled_from([(torch.float32, torch.float32), (torch.int32, torch.int32),
                               (torch.int64, torch.int32), (torch.int32, torch.float32),
                               (torch.float16, torch.float16)]),
       seed=seeds)
def test_division_matches_torch_semantics(name, pair, dtypes, seed):
    a = tensor(pair[0], dtypes[0], seed)
    b = tensor(pair[1], dtypes[1], seed + 1, nonzero=True)
    assert_converts(DIVISIONS[name], [a, b])


@pytest.mark.parametrize("name", sorted(COMPARE))
@settings(**PER_OP)
@given(pair=broadcast_pair(),
       dtypes=st.sampled_from([(torch.float32, torch.float32), (torch.int32, torch.int64),
                               (torch.int32, torch.float32), (torch.float16, torch.float16)]),
       scalar=st.one_of(st.none(), st.sampled_from([0, 1, 0.5, -2.5])), seed=seeds)
def test_comparisons(name, pair, dtypes, scalar, seed):
    a = tensor(pair[0], dtypes[0], seed, low=-3, high=3)
    b = tensor(pair[1], dtypes[1], seed, low=-3, high=3)  # same seed: equal values happen
    if scalar is None:
        assert_converts(COMPARE[name], [a, b])
    else:
        assert_converts(lambda x: COMPARE[name](x, scalar), [a])


UNARY = {
    "neg": (torch.neg, [torch.float32, torch.float16, torch.int32, torch.int64], False),
    "abs": (torch.abs, [torch.float32, torch.int32, torch.int64], False),
    "sqrt": (torch.sqrt, [torch.float32, torch.float16, torch.int32], True),
    "rsqrt": (torch.rsqrt, [torch.float32, torch.float16], True),
    "exp": (torch.exp, [torch.float32, torch.float16], False),
    "log": (torch.log, [torch.float32, torch.int64], True),
    "reciprocal": (torch.reciprocal, [torch.float32], True),
    "floor": (torch.floor, [torch.float32], False),
    "ceil": (torch.ceil, [torch.float32], False),
    "sin": (torch.sin, [torch.float32], False),
    "square": (lambda x: x ** 2, [torch.float32, torch.float16], False),
    "pow_tensor": (lambda x: torch.pow(x, x), [torch.float32], True),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@settings(**PER_OP)
@given(shape=broadcast_pair().map(lambda p: p[0]),
       data=st.data(), seed=seeds)
def test_unary(name, shape, data, seed):
    op, dtypes, positive = UNARY[name]
    x = tensor(shape, data.draw(st.sampled_from(dtypes)), seed, positive=positive)
    assert_converts(op, [x])


@settings(**FAST)
@given(pair=broadcast_pair(), dtype=st.sampled_from(DTYPES), other=st.sampled_from(["tensor", 0, 1.5]),
       seed=seeds)
def test_where(pair, dtype, other, seed):
    x, y = tensor(pair[0], dtype, seed), tensor(pair[1], dtype, seed + 1)
    if other == "tensor":
        assert_converts(lambda x, y: torch.where(x > 0, x, y), [x, y])
    else:
        assert_converts(lambda x: torch.where(x > 0, x, other), [x])


@settings(**FAST)
@given(pair=broadcast_pair(), dtype=st.sampled_from(DTYPES), value=st.sampled_from([0, -2, 1.5, "tensor"]),
       seed=seeds)
def test_masked_fill(pair, dtype, value, seed):
    x, mask = tensor(pair[0], dtype, seed), tensor(pair[1], torch.bool, seed + 1)
    if torch.broadcast_shapes(x.shape, mask.shape) != x.shape:
        x, mask = tensor(pair[1], dtype, seed), tensor(pair[0], torch.bool, seed + 1)
    assume(torch.broadcast_shapes(x.shape, mask.shape) == x.shape)  # only the mask broadcasts
    assume(dtype.is_floating_point or not isinstance(value, float))  # torch refuses that fill
    if value == "tensor":
        assert_converts(lambda x, m, v: x.masked_fill(m, v), [x, mask, tensor((), dtype, seed + 2)])
    else:
        assert_converts(lambda x, m: x.masked_fill(m, value), [x, mask])


@settings(**FAST)
@given(shape=broadcast_pair().map(lambda p: p[0]), dtype=st.sampled_from(DTYPES),
       bounds=st.sampled_from([(-1, 1), (None, 0), (0, None), (-0.5, 0.25), (2, -2)]), seed=seeds)
def test_clamp(shape, dtype, bounds, seed):
    x = tensor(shape, dtype, seed, low=-3, high=3)
    assert_converts(lambda x: torch.clamp(x, *bounds), [x])


@settings(**FAST)
@given(shape=broadcast_pair().map(lambda p: p[0]),
       source=st.sampled_from([torch.float32, torch.int32, torch.int64, torch.bool]),
       target=st.sampled_from([torch.float32, torch.float16, torch.int32, torch.int64, torch.bool]),
       seed=seeds)
def test_casts(shape, source, target, seed):
    x = tensor(shape, source, seed, low=-3, high=3)
    if source == target:
        return
    if source.is_floating_point:
        x = x * 3  # values beyond +-1 so that truncation toward zero shows
    assert_converts(lambda x: x.to(target), [x])


def test_division_by_a_float_tensor_of_ints_is_true_division():
    a = torch.tensor([[7, -7, 3]], dtype=torch.int32)
    b = torch.tensor([2, 2, -2], dtype=torch.int64)
    for op in DIVISIONS.values():
        assert_converts(op, [a, b])


@pytest.mark.parametrize("precision", [torch.float16, torch.bfloat16])
def test_reduced_precision(precision):
    x, y = tensor((3, 4), torch.float32, 0), tensor((4,), torch.float32, 1, nonzero=True)
    assert_converts(lambda x, y: (x + y * 2) / y - x.exp(), [x, y], {"precision": precision})


def test_float64_converts_under_truncate_long_and_double():
    x = tensor((2, 3), torch.float32, 0).double()
    assert_converts(lambda x: x * 2 + 1, [x], {"truncate_long_and_double": True}, rtol=1e-5,
                    atol=1e-5)
