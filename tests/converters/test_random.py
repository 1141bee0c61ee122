"""Random converters through the whole backend, checked by shape, dtype and distribution.

TensorRT draws from its own generator, so values never equal torch's: each test runs a large
sample through the backend (the reference runtime evaluates the FILL layer's RANDOM_UNIFORM or
RANDOM_NORMAL with the layer's own parameters) and compares its range, mean and spread with the
distribution torch documents, within a few standard errors.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import plugtrt
from plugtrt.converters import random as random_converters
from plugtrt.testing import assert_converts, run_through_backend

from .strategies import FAST, PER_OP, converter_names, seeds, shapes, tensor, unfolded

FULL = {"require_full_compilation": True, "random_ops_in_engines": True}
FLOATS = [torch.float32, torch.float16, torch.bfloat16]
COLUMNS = 512
SIGMAS = 6.0  # a check fails by chance about once in 10**9 runs


def sample(fn, inputs, options=None, dynamic=None):
    """``fn`` through the backend, everything in one engine: its result (float64), after checking
    its shape and dtype against eager's."""
    run = run_through_backend(fn, inputs, {**FULL, **(options or {})}, dynamic=dynamic)
    assert not run.fallbacks and not run.pytorch_ops and run.engines >= 1, run.pytorch_ops
    got, want = run.outputs, run.expected
    if isinstance(want, tuple):
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype and g.shape == w.shape
        return tuple(g.double() for g in got)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype, got.shape)
    return got.double()


def _rounding(dtype: torch.dtype, scale: float) -> float:
    return scale * (torch.finfo(dtype).eps if dtype.is_floating_point else 0.0)


def check_uniform(values, low, high, dtype):
    slack = _rounding(dtype, max(abs(low), abs(high)))
    assert values.min() >= low - slack and values.max() <= high + slack
    n = values.numel()
    width = high - low
    assert abs(values.mean() - (low + high) / 2) <= SIGMAS * width / math.sqrt(12 * n) + slack
    assert abs(values.std() - width / math.sqrt(12)) <= 0.05 * width + slack


def check_normal(values, mean, std, dtype):
    n = values.numel()
    slack = _rounding(dtype, abs(mean) + 4 * std)
    assert abs(values.mean() - mean) <= SIGMAS * std / math.sqrt(n) + slack
    assert abs(values.std() - std) <= 0.05 * std + slack


def _dynamic(want):
    return {0: [0]} if want else None


def test_registers_through_a_fresh_manager():
    assert {"builtin.rand", "builtin.randn", "builtin.randint", "builtin.randint.low",
            "builtin.rand_like", "builtin.randn_like", "builtin.randint_like",
            "builtin.randint_like.low_dtype", "builtin.bernoulli", "builtin.bernoulli.p",
            "builtin.uniform", "builtin.normal_functional", "builtin.normal.tensor_float",
            "builtin.normal.float_tensor", "builtin.normal.tensor_tensor", "builtin.normal.float_float",
            "builtin.native_dropout.train", "builtin.dropout.train", "builtin.dropout",
            "builtin.alpha_dropout", "builtin.feature_dropout", "builtin.feature_alpha_dropout",
            "builtin.native_dropout"} <= converter_names(random_converters)


@pytest.mark.parametrize("form", ["rand", "rand_like", "uniform"])
@settings(**PER_OP)
@given(dtype=st.sampled_from(FLOATS),
       bounds=st.sampled_from([(0.0, 1.0), (-2.0, 3.0), (5.0, 5.5), (-100.0, -10.0)]),
       rows=st.integers(24, 40), precision=st.sampled_from([torch.float32, torch.float16]),
       dynamic=st.booleans(), seed=seeds)
def test_uniform_draws(form, dtype, bounds, rows, precision, dynamic, seed):
    low, high = (0.0, 1.0) if form != "uniform" else bounds
    x = tensor((rows, COLUMNS), dtype, seed)
    fn = {"rand": lambda x: torch.rand(x.shape[0], COLUMNS, dtype=dtype) + x * 0,
          "rand_like": lambda x: torch.rand_like(x),
          "uniform": lambda x: torch.empty_like(x).uniform_(low, high)}[form]
    worst = torch.float16 if precision == torch.float16 and dtype == torch.float32 else dtype
    check_uniform(sample(fn, [x], {"precision": precision}, dynamic=_dynamic(dynamic)), low, high, worst)


@pytest.mark.parametrize("form", ["randn", "randn_like", "normal_", "normal_scalar", "normal_tensor_float",
                                  "normal_float_tensor", "normal_tensor_tensor"])
@settings(**PER_OP)
@given(dtype=st.sampled_from(FLOATS), mean=st.sampled_from([0.0, 1.5, -20.0]),
       std=st.sampled_from([1.0, 0.25, 3.0]), rows=st.integers(24, 40), dynamic=st.booleans(),
       seed=seeds)
def test_normal_draws(form, dtype, mean, std, rows, dynamic, seed):
    """normal with tensor arguments: ``(draw - mean) / std`` is N(0, 1) element by element."""
    x = tensor((rows, COLUMNS), dtype, seed)
    fns = {
        "randn": (lambda x: torch.randn(x.shape[0], COLUMNS, dtype=dtype) + x * 0, 0.0, 1.0),
        "randn_like": (lambda x: torch.randn_like(x), 0.0, 1.0),
        "normal_": (lambda x: torch.empty_like(x).normal_(mean, std), mean, std),
        "normal_scalar": (lambda x: torch.normal(mean, std, (x.shape[0], COLUMNS), dtype=dtype) + x * 0,
                          mean, std),
        "normal_tensor_float": (lambda x: torch.normal(x, std) - x, 0.0, std),
        "normal_float_tensor": (lambda x: torch.normal(mean, x.abs() + std) / (x.abs() + std),
                                mean, None),
        "normal_tensor_tensor": (lambda x: torch.normal(x + mean, torch.full_like(x, std)), mean, std),
    }
    fn, want_mean, want_std = fns[form]
    values = sample(fn, [x], dynamic=_dynamic(dynamic))
    if form == "normal_float_tensor":  # N(mean, s) / s: mean / s + N(0, 1)
        values = values - mean / (x.double().abs() + std)
        want_mean, want_std = 0.0, 1.0
    if form == "normal_tensor_tensor":
        values = values - x.double()
    check_normal(values, want_mean, want_std, dtype)


@pytest.mark.parametrize("form", ["randint", "randint_low", "randint_like", "randint_like_low"])
@settings(**PER_OP)
@given(dtype=st.sampled_from([torch.int64, torch.int32, torch.float32, torch.float16]),
       low=st.integers(-50, 50), width=st.integers(1, 9), rows=st.integers(24, 40),
       dynamic=st.booleans(), seed=seeds)
def test_randint_draws_every_integer_in_range_equally(form, dtype, low, width, rows, dynamic, seed):
    high = low + width
    if form in ("randint", "randint_like"):
        low = 0
        high = width
    x = tensor((rows, COLUMNS), dtype, seed)
    fns = {
        "randint": lambda x: torch.randint(high, (x.shape[0], COLUMNS), dtype=dtype) + x * 0,
        "randint_low": lambda x: torch.randint(low, high, (x.shape[0], COLUMNS), dtype=dtype) + x * 0,
        "randint_like": lambda x: torch.randint_like(x, high),
        "randint_like_low": lambda x: torch.randint_like(x, low, high),
    }
    values = sample(fns[form], [x], dynamic=_dynamic(dynamic))
    assert torch.equal(values, values.round()) and values.min() >= low and values.max() <= high - 1
    counts = torch.bincount((values - low).long().flatten(), minlength=high - low)
    n, k = values.numel(), high - low
    expected = n / k
    assert (counts - expected).abs().max() <= SIGMAS * math.sqrt(expected * (1 - 1 / k)) + 1


@pytest.mark.parametrize("form", ["tensor", "p"])
@settings(**PER_OP)
@given(dtype=st.sampled_from(FLOATS),
       p=st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), rows=st.integers(24, 40), dynamic=st.booleans(),
       seed=seeds)
def test_bernoulli_hits_with_chance_p(form, dtype, p, rows, dynamic, seed):
    x = tensor((rows, COLUMNS), dtype, seed)
    fn = (lambda x: torch.bernoulli(torch.full_like(x, p) + x * 0)) if form == "tensor" else \
        (lambda x: torch.ones_like(x).bernoulli_(p))
    values = sample(fn, [x], dynamic=_dynamic(dynamic))
    assert set(values.unique().tolist()) <= {0.0, 1.0}
    n = values.numel()
    assert abs(values.mean() - p) <= SIGMAS * math.sqrt(p * (1 - p) / n) + 1e-9


@settings(**FAST)
@given(dtype=st.sampled_from(FLOATS), p=st.sampled_from([0.1, 0.5, 0.8]), rows=st.integers(24, 40),
       dynamic=st.booleans(), seed=seeds)
def test_dropout_in_training_mode_keeps_1_minus_p_scaled(dtype, p, rows, dynamic, seed):
    """``F.dropout(training=True)`` (native_dropout): kept elements are ``x / (1 - p)``."""
    x = tensor((rows, COLUMNS), dtype, seed, nonzero=True)
    out = sample(lambda x: torch.nn.functional.dropout(x, p, training=True), [x],
                 dynamic=_dynamic(dynamic))
    kept = out != 0
    scale = x.double() / (1 - p)
    torch.testing.assert_close(out[kept], scale[kept], rtol=1e-2 if dtype != torch.float32 else 1e-5,
                               atol=1e-2 if dtype != torch.float32 else 1e-5)
    n = out.numel()
    assert abs(kept.double().mean() - (1 - p)) <= SIGMAS * math.sqrt(p * (1 - p) / n)


def test_native_dropout_mask_marks_what_was_kept():
    x = tensor((32, COLUMNS), torch.float32, 0, nonzero=True)
    out, mask = sample(lambda x: torch.ops.aten.native_dropout.default(x, 0.3, True), [x])
    assert torch.equal(out != 0, mask.bool())


def test_composite_dropout_in_training_mode_converts():
    """aten.dropout.default(train=True), as pre-dispatch tracers keep it (the corpus traces so)."""
    from .corpus import CORPUS, run_entry
    index = next(i for i, (fn, _) in enumerate(CORPUS)
                 if getattr(fn, "__name__", "") == "_corpus_dropout_train")
    result = run_entry(index)
    assert "builtin.dropout.train" in result.converters


@settings(**FAST)
@given(case=st.sampled_from(["wide_randint", "float64", "generator"]), seed=seeds)
def test_declined_cases_stay_in_pytorch(case, seed):
    """What cannot match torch's distribution or dtype runs in PyTorch, next to the engine."""
    x = tensor((8, 4), torch.float32, seed)
    fns = {
        "wide_randint": (lambda x: x + torch.randint(0, 2**30, (8, 4)), "aten.randint.low"),
        "float64": (lambda x: x + torch.rand(8, 4, dtype=torch.float64), "aten.rand.default"),
        "generator": (lambda x: x + torch.rand(8, 4, generator=torch.Generator().manual_seed(0)), None),
    }
    fn, op = fns[case]
    run = run_through_backend(fn, [x], {"random_ops_in_engines": True})
    assert run.outputs.shape == run.expected.shape and run.outputs.dtype == run.expected.dtype
    if op is not None:
        assert op in run.pytorch_ops


@settings(**FAST)
@given(form=st.sampled_from(["rand", "randn", "randint"]), rows=st.integers(24, 40), seed=seeds)
def test_float64_and_int64_draws_under_truncate_long_and_double(form, rows, seed):
    """float64 and int64 results are drawn in float32 (int32) inside the engine and come back
    in the model's dtypes."""
    x = tensor((rows, COLUMNS), torch.float32, seed)
    fns = {"rand": lambda x: torch.rand(x.shape[0], COLUMNS, dtype=torch.float64) + x * 0,
           "randn": lambda x: torch.randn(x.shape[0], COLUMNS, dtype=torch.float64) + x * 0,
           "randint": lambda x: torch.randint(-3, 4, (x.shape[0], COLUMNS)) + x.long() * 0}
    values = sample(fns[form], [x], {"truncate_long_and_double": True})
    if form == "rand":
        check_uniform(values, 0.0, 1.0, torch.float32)
    elif form == "randn":
        check_normal(values, 0.0, 1.0, torch.float32)
    else:
        assert set(values.unique().tolist()) == set(range(-3, 4))


def _noisy(x):
    noise = torch.randn_like(x) + torch.rand(x.shape) + torch.bernoulli(torch.full_like(x, 0.5))
    return torch.nn.functional.dropout((x + noise).relu() * 2, 0.3, training=True)


def test_manual_seed_reproduces_a_compiled_model_by_default():
    """Issue 17, item 8: random ops in engines drew from TensorRT's generator, which
    torch.manual_seed does not reach. By default they run in PyTorch: a seeded program gives
    eager's values, call after call."""
    compiled = torch.compile(_noisy, backend="plugtrt", dynamic=False,
                             options={"runtime": "reference", "min_block_size": 1})
    x = torch.randn(16, 32)
    results = []
    with torch.no_grad():
        for run in (compiled, compiled, _noisy):
            torch.manual_seed(0)
            results.append(run(x))
    torch.testing.assert_close(results[0], results[2], rtol=0, atol=0)
    torch.testing.assert_close(results[1], results[2], rtol=0, atol=0)
    report = plugtrt.compile_reports()[-1]
    assert report.engines and "aten.randn_like.default" in report.pytorch_ops


# -- dropout that drops nothing: the identity ---------------------------------------------------
STRICT = {"precision": torch.float32, "require_full_compilation": True}
DROPOUTS = {
    "dropout": lambda x: F.dropout(x, 0.4, training=False),
    "alpha_dropout": lambda x: F.alpha_dropout(x, 0.4, training=False),
    "feature_dropout": lambda x: F.dropout2d(x, 0.4, training=False),
    "feature_alpha_dropout": lambda x: F.feature_alpha_dropout(x, 0.4, training=False),
    "module": lambda x: torch.nn.Dropout(0.5).eval()(x) * 2,
}


@pytest.mark.parametrize("name", sorted(DROPOUTS))
@settings(**PER_OP)
@given(shape=shapes(4, 4), seed=seeds)
def test_dropout_in_eval_is_identity(name, shape, seed):
    """In eval mode dropout vanishes before the backend; the result still equals eager."""
    x = tensor(shape, torch.float32, seed)
    assert_converts(DROPOUTS[name], [x], STRICT, engines=None)


@pytest.mark.parametrize("target", [torch.ops.aten.dropout.default, torch.ops.aten.alpha_dropout.default,
                                    torch.ops.aten.feature_dropout.default,
                                    torch.ops.aten.feature_alpha_dropout.default])
def test_composite_dropout_overloads_convert_as_identity(target):
    """What tracers that keep composite ops produce (pre-dispatch make_fx, export)."""
    from .corpus import CORPUS, run_entry
    index = next(i for i, (fn, _) in enumerate(CORPUS) if getattr(fn, "__name__", "") == f"_corpus_{target._opname}")
    result = run_entry(index)
    assert f"builtin.{target._opname}" in result.converters
    torch.testing.assert_close(result.outputs[0], result.expected[0])


@settings(**FAST)
@given(shape=shapes(1, 3), dtype=st.sampled_from([torch.float32, torch.float16]),
       p=st.sampled_from([0.0, 0.3]), seed=seeds)
def test_native_dropout_not_training_is_identity_with_a_mask_of_ones(shape, dtype, p, seed):
    x = tensor(shape, dtype, seed)
    fn = lambda x: torch.ops.aten.native_dropout.default(x * 2, p, p == 0.0 or False)  # noqa: E731
    run = assert_converts(fn, [x], STRICT, registry=unfolded())
    assert run.outputs[1].all()
