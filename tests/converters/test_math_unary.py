"""math_unary converters through the whole backend: drawn shapes, float32/float16/bfloat16 and
integer inputs, drawn arguments, one dynamic dim, and the special values (NaN, infinities,
signed zeros, halves) where torch's semantics are easy to get wrong."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plugtrt.converters import math_unary
from plugtrt.testing import assert_converts

from .strategies import FAST, PER_OP, converter_names, dynamic_dim0, seeds, shapes, tensor

FULL = {"require_full_compilation": True}
FLOAT_DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def _options(precision: torch.dtype) -> dict:
    return {**FULL, "precision": precision}


def test_registers_through_a_fresh_manager():
    assert {"builtin.tan", "builtin.atanh", "builtin.expm1", "builtin.log1p", "builtin.round.decimals",
            "builtin.isposinf", "builtin.nan_to_num", "builtin.logit"} <= converter_names(math_unary)


# -- unary ---------------------------------------------------------------------------------------
def _unit(x):
    return torch.tanh(x.float())


def _scales(x):
    """Powers of ten from 1e-8 to 10, drawn from ``x``'s digits: where expm1 and log1p would
    lose everything to cancellation if computed naively."""
    return 10.0 ** ((x * 1000).remainder(10).floor() - 8)


UNARY = {  # name: (op, input transform in float32, dtypes the input may take)
    "tan": (torch.tan, lambda x: x, FLOAT_DTYPES + [torch.int32]),
    "asin": (torch.asin, _unit, FLOAT_DTYPES),
    "acos": (torch.acos, _unit, FLOAT_DTYPES),
    "atan": (torch.atan, lambda x: x * 5, FLOAT_DTYPES + [torch.int64]),
    "sinh": (torch.sinh, lambda x: x * 2, FLOAT_DTYPES),
    "cosh": (torch.cosh, lambda x: x * 2, FLOAT_DTYPES),
    "asinh": (torch.asinh, lambda x: x * 10, FLOAT_DTYPES),
    "acosh": (torch.acosh, lambda x: x.abs() * 5 + 1, FLOAT_DTYPES),
    "atanh": (torch.atanh, lambda x: _unit(x) * 0.99, FLOAT_DTYPES),
    "expm1": (torch.expm1, lambda x: x * _scales(x), FLOAT_DTYPES),
    "log1p": (torch.log1p, lambda x: x.abs() * _scales(x) - 0.5 * (x < -1.5), FLOAT_DTYPES),
    "log2": (torch.log2, lambda x: x.abs() * 100, FLOAT_DTYPES + [torch.int32]),
    "log10": (torch.log10, lambda x: x.abs() * 100, FLOAT_DTYPES),
    "exp2": (torch.exp2, lambda x: x * 4, FLOAT_DTYPES + [torch.int32]),
    "trunc": (torch.trunc, lambda x: x * 4, FLOAT_DTYPES + [torch.int32, torch.int64]),
    "round": (torch.round, lambda x: (x * 4).round() / 2, FLOAT_DTYPES + [torch.int32]),  # halves
    "frac": (torch.frac, lambda x: x * 4, FLOAT_DTYPES),
    "sign": (torch.sign, lambda x: x * (x.abs() > 0.3), FLOAT_DTYPES + [torch.int32, torch.bool]),
    "sgn": (torch.sgn, lambda x: x, FLOAT_DTYPES + [torch.int64]),
    "logical_not": (torch.logical_not, lambda x: x * (x.abs() > 0.5),
                    FLOAT_DTYPES + [torch.int32, torch.bool]),
    "bitwise_not": (torch.bitwise_not, lambda x: x, [torch.int32, torch.int64, torch.bool]),
    "square": (torch.square, lambda x: x * 3, FLOAT_DTYPES + [torch.int32]),
    "logit": (torch.logit, torch.sigmoid, FLOAT_DTYPES),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@settings(**PER_OP)
@given(shape=shapes(), data=st.data(), seed=seeds,
       dynamic=st.booleans())
def test_unary(name, shape, data, seed, dynamic):
    op, transform, dtypes = UNARY[name]
    dtype = data.draw(st.sampled_from(dtypes))
    x = transform(tensor(shape, torch.float32, seed))
    x = x.to(dtype) if dtype.is_floating_point or dtype == torch.bool else (x * 3).round().to(dtype)
    assert_converts(op, [x], FULL, dynamic=dynamic_dim0(x) if dynamic else None)


@settings(**FAST)
@given(name=st.sampled_from(["round", "logit", "expm1", "asin", "log1p", "tan"]), shape=shapes(),
       precision=st.sampled_from([torch.float16, torch.bfloat16]), seed=seeds)
def test_unary_in_reduced_precision(name, shape, precision, seed):
    op, transform, _ = UNARY[name]
    x = transform(tensor(shape, torch.float32, seed))
    if name in ("expm1", "log1p"):  # past half's range the float32 model and a half engine differ
        x = x.clamp(-5, 5)
    if name == "tan":  # near pi/2 tan magnifies the input's rounding to half past any tolerance
        x = x.clamp(-1.2, 1.2)
    assert_converts(op, [x], _options(precision))


@settings(**FAST)
@given(shape=shapes(), decimals=st.integers(-2, 3), dtype=st.sampled_from(FLOAT_DTYPES),
       seed=seeds)
def test_round_decimals(shape, decimals, dtype, seed):
    x = (tensor(shape, torch.float32, seed) * 10.0 ** (2 - decimals)).to(dtype)
    assert_converts(lambda x: torch.round(x, decimals=decimals), [x], FULL, dynamic=dynamic_dim0(x))


@settings(**FAST)
@given(eps=st.sampled_from([None, 0.0, 1e-6, 0.2, -0.5]), shape=shapes(), seed=seeds)
def test_logit_eps(eps, shape, seed):
    x = torch.sigmoid(tensor(shape, torch.float32, seed) * 4)
    x = torch.where(tensor(shape, torch.bool, seed), x, x.round())  # exact 0 and 1 too
    assert_converts(lambda x: torch.logit(x, eps), [x], FULL, dynamic=dynamic_dim0(x))


def test_expm1_and_log1p_keep_relative_precision_near_zero():
    """exp(x) - 1 and log(1 + x) would lose every digit here; eager's relative precision holds."""
    x = torch.tensor([1e-10, -3e-9, 2.5e-7, -1e-5, 3e-4, -0.02, 0.7, 30.0, -30.0, 80.0])
    assert_converts(torch.expm1, [x], FULL, rtol=1e-5, atol=0)
    assert_converts(torch.log1p, [x.abs()], FULL, rtol=1e-5, atol=0)


def _special(shape, dtype, seed):
    """Values with NaN, +-inf, +-0 and ordinary numbers mixed in."""
    x = tensor(shape, torch.float32, seed) * 3
    pick = torch.randint(0, 8, shape, generator=torch.Generator().manual_seed(seed + 1))
    specials = torch.tensor([math.nan, math.inf, -math.inf, 0.0, -0.0])
    x = torch.where(pick < 5, specials[pick.clamp(max=4)], x)
    return x.to(dtype)


CLASSES = {
    "isnan": torch.isnan, "isinf": torch.isinf, "isfinite": torch.isfinite,
    "isposinf": torch.isposinf, "isneginf": torch.isneginf,
    "nan_to_num": torch.nan_to_num,
    "nan_to_num_args": lambda x: torch.nan_to_num(x, nan=1.5, posinf=7.0, neginf=-9.0),
    "trunc": torch.trunc, "sign": torch.sign, "round": torch.round, "frac": torch.frac,
    "expm1": torch.expm1, "log1p": torch.log1p, "logical_not": torch.logical_not,
}


@pytest.mark.parametrize("name", sorted(CLASSES))
@settings(**PER_OP)
@given(shape=shapes(), dtype=st.sampled_from(FLOAT_DTYPES),
       seed=seeds)
def test_special_values(name, shape, dtype, seed):
    x = _special(shape, dtype, seed)
    assert_converts(CLASSES[name], [x], FULL, dynamic=dynamic_dim0(x))


def test_nan_to_num_defaults_follow_each_dtype():
    for dtype in FLOAT_DTYPES:
        x = torch.tensor([[math.nan, math.inf, -math.inf, 1.0]], dtype=dtype)
        assert_converts(torch.nan_to_num, [x], FULL)


@settings(**FAST)
@given(shape=shapes(), dtype=st.sampled_from([torch.int32, torch.int64]), seed=seeds)
def test_integer_class_tests_and_rounding(shape, dtype, seed):
    x = tensor(shape, dtype, seed)
    assert_converts(lambda x: (torch.trunc(x) * 2, torch.round(x) + 1,
                               torch.nan_to_num(x) - 1, torch.sign(x)), [x], FULL)


def test_nan_to_num_with_default_limits_stays_in_pytorch_when_precision_narrows():
    """float32's limits do not exist in a half engine: the node runs in PyTorch, still exact."""
    x = torch.tensor([[math.nan, math.inf, -math.inf, 2.0]])
    run = assert_converts(lambda x: torch.nan_to_num(x * 2), [x], {"precision": torch.float16},
                          engines=None, pytorch_ops=None)
    assert "aten.nan_to_num.default" in run.pytorch_ops


@settings(**FAST)
@given(shape=shapes(), dtype=st.sampled_from([torch.int32, torch.int64]), seed=seeds)
def test_rejected_unary_run_in_pytorch(shape, dtype, seed):
    """logit and frac of integers, isnan of integers: declined, and eager still matches."""
    x = tensor(shape, dtype, seed)
    run = assert_converts(lambda x: torch.logit(x * 0) + torch.isnan(x), [x], engines=None,
                          pytorch_ops=None)
    assert "aten.logit.default" in run.pytorch_ops and "aten.isnan.default" in run.pytorch_ops
