"""Elementwise converters through the whole backend: arithmetic, comparisons, where, clamp, casts
and the named binary math functions, with drawn shapes (size-1 and broadcast dims),
float32/float16/bfloat16 and integer inputs, drawn arguments, one dynamic dim, and the special
values (NaN, infinities, signed zeros) where torch's semantics are easy to get wrong."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given, settings, strategies as st

from plugtrt.converters import elementwise
from plugtrt.testing import assert_converts

from .strategies import FAST, PER_OP, broadcast_pair, converter_names, dynamic_dim0, seeds, shapes, tensor


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
            "builtin.scalar_tensor", "builtin.masked_fill.scalar", "builtin.masked_fill.tensor",
            "builtin.atan2", "builtin.remainder.scalar_tensor", "builtin.fmod.tensor",
            "builtin.bitwise_xor.scalar_tensor", "builtin.mul.tensor_bool", "builtin.where.scalarself",
            "builtin.lerp.tensor", "builtin.xlogy.scalar_self", "builtin.fmax"} <= names


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


@pytest.mark.parametrize("fill", ["scalar", "tensor"])  # masked_fill.Scalar, masked_fill.Tensor
@settings(**FAST)
@given(pair=broadcast_pair(), dtype=st.sampled_from(DTYPES), scalar=st.sampled_from([0, -2, 1.5]), seed=seeds)
def test_masked_fill(fill, pair, dtype, scalar, seed):
    value = "tensor" if fill == "tensor" else scalar
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


FULL = {"require_full_compilation": True}


FLOAT_DTYPES = [torch.float32, torch.float16, torch.bfloat16]


# -- binary --------------------------------------------------------------------------------------
BINARY = {  # name: (op, dtype pairs, divisor nonzero)
    "atan2": (torch.atan2, "float", False),
    "hypot": (torch.hypot, "float", False),
    "copysign": (torch.copysign, "mixed", False),
    "remainder": (torch.remainder, "mixed", True),
    "fmod": (torch.fmod, "mixed", True),
    "fmax": (torch.fmax, "same", False),
    "fmin": (torch.fmin, "same", False),
    "xlogy": (torch.xlogy, "float", False),
    "rsub": (lambda a, b: torch.rsub(a, b, alpha=2), "mixed", False),
    "true_divide": (torch.true_divide, "float", True),
    "clamp_min": (torch.clamp_min, "same", False),
    "clamp_max": (torch.clamp_max, "same", False),
    "lerp": (lambda a, b: torch.lerp(a, b, 0.3), "same_float", False),
    "lerp_far": (lambda a, b: torch.lerp(a, b, -1.25), "same_float", False),
}


_PAIRS = {
    "float": [(torch.float32, torch.float32), (torch.float16, torch.float16),
              (torch.bfloat16, torch.bfloat16), (torch.float32, torch.int32), (torch.int64, torch.int32)],
    "mixed": [(torch.float32, torch.float32), (torch.float16, torch.float16), (torch.int32, torch.int32),
              (torch.int64, torch.int32), (torch.int32, torch.float32), (torch.bfloat16, torch.bfloat16)],
    "same": [(torch.float32, torch.float32), (torch.float16, torch.float16), (torch.int32, torch.int32),
             (torch.int64, torch.int64), (torch.bfloat16, torch.bfloat16)],
    "same_float": [(torch.float32, torch.float32), (torch.float16, torch.float16),
                   (torch.bfloat16, torch.bfloat16)],
}


@pytest.mark.parametrize("name", sorted(BINARY))
@settings(**PER_OP)
@given(pair=broadcast_pair(), data=st.data(), seed=seeds,
       dynamic=st.booleans())
def test_binary(name, pair, data, seed, dynamic):
    op, kind, nonzero = BINARY[name]
    da, db = data.draw(st.sampled_from(_PAIRS[kind]))
    if name in ("copysign", "xlogy", "true_divide", "hypot") and da == torch.int64:
        da = torch.float32
    a = tensor(pair[0], da, seed)
    b = tensor(pair[1], db, seed + 1, nonzero=nonzero)
    if name == "xlogy":
        a = a * (tensor(pair[0], torch.bool, seed + 2))  # exact zeros in x
        b = b.abs() if db.is_floating_point else b.abs() + 1
    if name in ("remainder", "fmod") and da.is_floating_point:
        a = a * 4
    assert_converts(op, [a, b], FULL, dynamic=dynamic_dim0(a, b) if dynamic else None)


@pytest.mark.parametrize("name", ["remainder", "fmod"])
@settings(**PER_OP)
@given(shape=shapes(), divisor=st.sampled_from(
    [3, -3, 2.5, -0.75]), dtype=st.sampled_from([torch.float32, torch.int32, torch.int64]),
    scalar_first=st.booleans(), seed=seeds)
def test_remainder_and_fmod_with_scalars(name, shape, divisor, dtype, scalar_first, seed):
    """remainder takes the divisor's sign, fmod the dividend's; int tensor % float is a float."""
    op = getattr(torch, name)
    x = tensor(shape, dtype, seed, low=-20, high=20) * 3
    if scalar_first:
        assume(name == "remainder")  # only remainder has a Scalar_Tensor overload
        x = tensor(shape, dtype, seed, nonzero=True)
        assert_converts(lambda x: op(divisor, x), [x], FULL, dynamic=dynamic_dim0(x))
    else:
        assert_converts(lambda x: op(x, divisor), [x], FULL, dynamic=dynamic_dim0(x))


def test_atan2_quadrants_axes_and_zeros():
    y = torch.tensor([1.0, 1.0, -1.0, -1.0, 0.0, 0.0, 2.0, -2.0, 0.0, -0.0, 3.0, math.nan])
    x = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 0.0, 0.0, 0.0, 1.0, -0.0, 1.0])
    assert_converts(torch.atan2, [y, x], FULL)


def test_copysign_reads_the_sign_of_zero_and_infinity():
    a = torch.tensor([1.0, -2.0, 3.0, -4.0, 5.0, 0.0, -0.0, math.inf])
    b = torch.tensor([-0.0, 0.0, -math.inf, math.inf, -1.0, -2.0, 3.0, -0.0])
    assert_converts(torch.copysign, [a, b], FULL)
    assert_converts(lambda a: (torch.copysign(a, -0.0), torch.copysign(a, 2)), [a], FULL)


def test_fmax_fmin_ignore_one_nan_and_keep_two():
    a = torch.tensor([math.nan, 1.0, math.nan, -math.inf, 2.0])
    b = torch.tensor([3.0, math.nan, math.nan, 1.0, -1.0])
    assert_converts(lambda a, b: (torch.fmax(a, b), torch.fmin(a, b)), [a, b], FULL)


def test_xlogy_zero_and_nan():
    x = torch.tensor([0.0, 0.0, 0.0, 2.0, 1.5, math.nan])
    y = torch.tensor([0.0, math.nan, 3.0, 0.0, math.inf, 1.0])
    assert_converts(lambda x, y: (torch.xlogy(x, y), torch.xlogy(x, 2.0), torch.xlogy(0.0, y),
                                  torch.xlogy(2, y)), [x, y], FULL)


BOOL_OPS = {
    "bitwise_and": torch.bitwise_and, "bitwise_or": torch.bitwise_or,
    "bitwise_xor": torch.bitwise_xor, "mul": torch.mul, "logical_and": torch.logical_and,
    "logical_or": torch.logical_or, "logical_xor": torch.logical_xor,
}


@pytest.mark.parametrize("name, form", [
    (name, form) for name in sorted(BOOL_OPS)
    for form in (("tensors", "scalar_first", "scalar_last") if name.startswith("bitwise") else ("tensors",))])
@settings(**PER_OP)
@given(pair=broadcast_pair(), scalar=st.booleans(), seed=seeds)
def test_bool_logic(name, form, pair, scalar, seed):
    """Each bitwise op's Tensor, Scalar and Scalar_Tensor overloads, every run."""
    op = BOOL_OPS[name]
    a, b = tensor(pair[0], torch.bool, seed), tensor(pair[1], torch.bool, seed + 1)
    if form == "tensors":
        assert_converts(op, [a, b], FULL, dynamic=dynamic_dim0(a, b))
    elif form == "scalar_first":
        assert_converts(lambda a: op(scalar, a), [a], FULL)
    else:
        assert_converts(lambda a: op(a, scalar), [a], FULL)


@settings(**FAST)
@given(name=st.sampled_from(["logical_and", "logical_or", "logical_xor"]), pair=broadcast_pair(),
       dtypes=st.sampled_from([(torch.float32, torch.int32), (torch.int64, torch.bool),
                               (torch.float16, torch.float16), (torch.bfloat16, torch.int32)]),
       seed=seeds)
def test_logical_of_numbers(name, pair, dtypes, seed):
    a = tensor(pair[0], dtypes[0], seed, low=-1, high=2)
    b = tensor(pair[1], dtypes[1], seed + 1, low=-1, high=2)
    if a.dtype.is_floating_point:
        a = a * (a.abs() > 0.5)
    assert_converts(BOOL_OPS[name], [a, b], FULL, dynamic=dynamic_dim0(a, b))


@settings(**FAST)
@given(shape=shapes(), dtype=st.sampled_from([torch.int32, torch.int64]), shift=st.integers(0, 30),
       left=st.booleans(), seed=seeds)
def test_shifts_by_a_constant(shape, dtype, shift, left, seed):
    x = tensor(shape, dtype, seed, low=-1000, high=1000)
    op = (lambda x: x << shift) if left else (lambda x: x >> shift)
    assert_converts(op, [x], FULL, dynamic=dynamic_dim0(x))


@settings(**FAST)
@given(shape=shapes(), seed=seeds, name=st.sampled_from(["and", "shift"]))
def test_rejected_integer_bitwise_runs_in_pytorch(shape, seed, name):
    """Integer bitwise and, and a shift past the bit width, are declined; eager still matches."""
    x = tensor(shape, torch.int32, seed, low=-1000, high=1000)
    op = (lambda x: (x & 6) + 1) if name == "and" else (lambda x: (x.long() << 63) + 1)
    run = assert_converts(op, [x], engines=None, pytorch_ops=None)
    target = "aten.bitwise_and.Scalar" if name == "and" else "aten.__lshift__.Scalar"
    assert target in run.pytorch_ops


# -- ternary and scalar forms --------------------------------------------------------------------
@settings(**FAST)
@given(pair=broadcast_pair(), dtype=st.sampled_from([torch.float32, torch.float16, torch.int32]),
       bounds=st.sampled_from(["both", "min", "max", "crossed"]), seed=seeds)
def test_clamp_with_tensor_bounds(pair, dtype, bounds, seed):
    x, low = tensor(pair[0], dtype, seed), tensor(pair[1], dtype, seed + 1)
    high = low + (-2 if bounds == "crossed" else 3)
    if bounds in ("both", "crossed"):
        op, args = (lambda x, lo, hi: torch.clamp(x, lo, hi)), [x, low, high]
    elif bounds == "min":
        op, args = (lambda x, lo: torch.clamp(x, min=lo)), [x, low]
    else:
        op, args = (lambda x, hi: torch.clamp(x, max=hi)), [x, high]
    assert_converts(op, args, FULL, dynamic=dynamic_dim0(*args))


@settings(**FAST)
@given(pair=broadcast_pair(), dtype=st.sampled_from(FLOAT_DTYPES), seed=seeds,
       far=st.booleans())
def test_lerp_with_tensor_weight(pair, dtype, seed, far):
    a, b = tensor(pair[0], dtype, seed), tensor(pair[1], dtype, seed + 1)
    w = tensor(pair[0], dtype, seed + 2) * (3 if far else 0.5)
    assert_converts(torch.lerp, [a, b, w], FULL, dynamic=dynamic_dim0(a, b, w))


@settings(**FAST)
@given(pair=broadcast_pair(), dtype=st.sampled_from([torch.float32, torch.float16, torch.int32,
                                                      torch.int64]),
       value=st.sampled_from([1, 2, -3]), divide=st.booleans(), seed=seeds)
def test_addcmul_addcdiv(pair, dtype, value, divide, seed):
    assume(not (divide and not dtype.is_floating_point))  # torch refuses integer addcdiv
    a, b = tensor(pair[0], dtype, seed), tensor(pair[1], dtype, seed + 1)
    c = tensor(pair[0], dtype, seed + 2, nonzero=True)
    op = torch.addcdiv if divide else torch.addcmul
    assert_converts(lambda a, b, c: op(a, b, c, value=value), [a, b, c], FULL,
                    dynamic=dynamic_dim0(a, b, c))


@settings(**FAST)
@given(shape=shapes(), dtype=st.sampled_from([torch.float32, torch.int32, torch.int64]),
       scalar=st.sampled_from([2, -1, 0.5]), seed=seeds)
def test_rsub_scalar(shape, dtype, scalar, seed):
    x = tensor(shape, dtype, seed)
    assert_converts(lambda x: torch.rsub(x, scalar), [x], FULL, dynamic=dynamic_dim0(x))
