"""Creation converters through the whole backend: full/zeros/ones/empty and their ``_like`` and
``new_*`` forms, fill, zero, arange, linspace, eye, tril/triu, lift_fresh_copy, and the inference
forms of dropout.

Static creation ops are usually folded into constants by the ``fold_constants`` lowering pass
before a converter sees them, so most tests here run with a registry without that pass: the
converters then take every node, and the engine must equal eager. Dynamic dims keep the nodes
anyway (their sizes are shape tensors in the engine).
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plugtrt.converters import creation
from plugtrt.testing import assert_converts, run_through_backend

from .strategies import FAST, PER_OP, converter_names, seeds, shapes, tensor, unfolded

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64, torch.bool]
FULL = {"precision": torch.float32, "require_full_compilation": True}


def _value(dtype: torch.dtype, draw_float: float, draw_int: int):
    if dtype == torch.bool:
        return bool(draw_int % 2)
    return draw_float if dtype.is_floating_point else draw_int


def _dynamic(shape, want: bool):
    return {0: [0]} if want and shape[0] >= 2 else None


def test_registers_through_a_fresh_manager():
    names = converter_names(creation)
    assert {"builtin.zeros", "builtin.ones", "builtin.full", "builtin.empty.memory_format",
            "builtin.empty_strided", "builtin.zeros_like", "builtin.ones_like", "builtin.full_like",
            "builtin.empty_like", "builtin.new_zeros", "builtin.new_ones", "builtin.new_full",
            "builtin.new_empty", "builtin.new_empty_strided", "builtin.zero", "builtin.fill.scalar",
            "builtin.fill.tensor", "builtin.arange", "builtin.arange.start",
            "builtin.arange.start_step", "builtin.linspace", "builtin.eye", "builtin.eye.m",
            "builtin.tril", "builtin.triu", "builtin.lift_fresh_copy"} <= names


def _beside(made, x):
    return torch.cat([made, x.reshape(x.shape[0], -1)[:, :1].to(made.dtype)], 1)


FILLS = {  # name -> fn(x, value, dtype)
    "zeros_like": lambda x, v, d: torch.zeros_like(x, dtype=d),
    "ones_like": lambda x, v, d: torch.ones_like(x),
    "full_like": lambda x, v, d: torch.full_like(x, v),
    "new_zeros": lambda x, v, d: x.new_zeros((x.shape[0], 3)),
    "new_ones": lambda x, v, d: x.new_ones((2, x.shape[0]), dtype=d),
    "new_full": lambda x, v, d: x.new_full((x.shape[0], 2), v),
    # the input's values too, or dynamo gives a graph of sizes alone (no engine input)
    "zeros": lambda x, v, d: _beside(torch.zeros(x.shape[0], 2, dtype=d), x),
    "ones": lambda x, v, d: _beside(torch.ones((x.shape[0], 1), dtype=d, device=x.device,
                                               pin_memory=False), x),
    "full": lambda x, v, d: _beside(torch.full((x.shape[0], 3), v, dtype=d, requires_grad=False), x),
    "fill": lambda x, v, d: x.clone().fill_(v),
    "zero": lambda x, v, d: x.clone().zero_(),
}


@pytest.mark.parametrize("name", sorted(FILLS))
@settings(**PER_OP)
@given(shape=shapes(1, 4), dtype=st.sampled_from(DTYPES),
       fval=st.sampled_from([2.5, -1e4, 0.1, 0.0, 3.0]), ival=st.integers(-300, 300),
       precision=st.sampled_from([torch.float32, torch.float16]), dynamic=st.booleans(), seed=seeds)
def test_fills_match_eager(name, shape, dtype, fval, ival, precision, dynamic, seed):
    value = _value(dtype, fval, ival)
    x = tensor(shape, dtype, seed)
    fn = FILLS[name]
    assert_converts(lambda x: fn(x, value, dtype), [x], {**FULL, "precision": precision},
                    registry=unfolded(), dynamic=_dynamic(shape, dynamic))


EMPTIES = {
    "empty": lambda x: torch.empty(x.shape[0], 2, dtype=x.dtype),
    "empty_like": lambda x: torch.empty_like(x),
    "empty_strided": lambda x: torch.empty_strided((x.shape[0], 3), (3, 1), dtype=x.dtype),
    "new_empty": lambda x: x.new_empty((2, x.shape[0])),
    "new_empty_strided": lambda x: x.new_empty_strided((x.shape[0], 2), (2, 1)),
}


@pytest.mark.parametrize("name", sorted(EMPTIES))
@settings(**PER_OP)
@given(shape=shapes(1, 3), dtype=st.sampled_from(DTYPES),
       dynamic=st.booleans(), folded=st.booleans(), seed=seeds)
def test_empty_makes_zeros_of_eagers_shape_and_dtype(name, shape, dtype, dynamic, folded, seed):
    """torch leaves empty's values undefined; plugtrt documents zeros, folded or converted."""
    x = tensor(shape, dtype, seed)
    run = run_through_backend(EMPTIES[name], [x], FULL, registry=None if folded else unfolded(),
                              dynamic=_dynamic(shape, dynamic))
    assert not run.pytorch_ops and not run.fallbacks
    assert run.outputs.dtype == run.expected.dtype and run.outputs.shape == run.expected.shape
    assert not run.outputs.any()


@settings(**FAST)
@given(shape=shapes(1, 3), dtype=st.sampled_from(DTYPES), index=st.integers(0, 100),
       dynamic=st.booleans(), seed=seeds)
def test_fill_tensor_takes_a_value_from_the_graph(shape, dtype, index, dynamic, seed):
    x = tensor(shape, dtype, seed)
    flat_index = index % x.numel()
    assert_converts(lambda x: x.clone().fill_(x.reshape(-1)[flat_index].to(torch.float32)), [x],
                    FULL, registry=unfolded(), dynamic=_dynamic(shape, dynamic))


ARANGE_DTYPES = [None, torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64]


@settings(**FAST)
@given(n=st.integers(2, 40), start=st.integers(-5, 5), step=st.sampled_from([1, 2, 3, -1]),
       dtype=st.sampled_from(ARANGE_DTYPES), form=st.sampled_from(["end", "start", "step"]),
       precision=st.sampled_from([torch.float32, torch.float16]), dynamic=st.booleans(), seed=seeds)
def test_arange_matches_eager(n, start, step, dtype, form, precision, dynamic, seed):
    """Sizes from a (dynamic) dim: int64 by default, the dtype asked for otherwise; the
    dynamic form is a FILL LINSPACE whose length is computed from the input's shape."""
    x = tensor((n, 2), torch.float32, seed)

    def fn(x):
        m = x.shape[0]
        if form == "end":
            r = torch.arange(m, dtype=dtype)
        elif form == "start":
            r = torch.arange(start, m + start, dtype=dtype)
        else:
            r = torch.arange(start, start + step * m, step, dtype=dtype)
        return r, x.sum(1)
    assert_converts(fn, [x], {**FULL, "precision": precision}, registry=unfolded(),
                    dynamic=_dynamic((n,), dynamic))


@settings(**FAST)
@given(start=st.sampled_from([0.5, -2.0, 0.0]), step=st.sampled_from([0.25, 0.5, 1.5]),
       count=st.integers(1, 30), seed=seeds)
def test_float_arange_and_linspace_fold_exactly(start, step, count, seed):
    """Static float ranges are constants computed as torch computes them (in double)."""
    x = tensor((count,), torch.float32, seed)
    fn = lambda x: (x + torch.arange(start, start + step * count - step / 2, step)[:count],  # noqa: E731
                    x * torch.linspace(start, start + step, count))
    assert_converts(fn, [x], FULL, registry=unfolded())


@settings(**FAST)
@given(n=st.integers(2, 6), m=st.integers(1, 6), dtype=st.sampled_from(DTYPES[:-1] + [torch.bool]),
       square=st.booleans(), dynamic=st.booleans(), seed=seeds)
def test_eye_matches_eager(n, m, dtype, square, dynamic, seed):
    x = tensor((n, m), torch.float32, seed)
    fn = (lambda x: torch.eye(x.shape[0], dtype=dtype) @ x.to(dtype) if dtype.is_floating_point
          else torch.eye(x.shape[0], dtype=dtype)) if square else \
        (lambda x: torch.eye(x.shape[0], x.shape[1], dtype=dtype))
    assert_converts(fn, [x], FULL, registry=unfolded(), dynamic=_dynamic((n,), dynamic),
                    pytorch_ops=None, engines=None)


@settings(**FAST)
@given(shape=shapes(2, 4, min_side=1, max_side=6), dtype=st.sampled_from(DTYPES),
       diagonal=st.integers(-4, 4), lower=st.booleans(), dynamic=st.sampled_from([None, 0, -1, -2]),
       precision=st.sampled_from([torch.float32, torch.float16]), seed=seeds)
def test_tril_triu_match_eager(shape, dtype, diagonal, lower, dynamic, precision, seed):
    x = tensor(shape, dtype, seed)
    fn = (lambda x: torch.tril(x, diagonal)) if lower else (lambda x: torch.triu(x, diagonal))
    dims = None
    if dynamic is not None and shape[dynamic] >= 2:
        dims = {0: [dynamic % len(shape)]}
    assert_converts(fn, [x], {**FULL, "precision": precision}, dynamic=dims)


DECLINED = {  # name -> (fn, the op that must stay in PyTorch)
    "arange_float64": (lambda x: x + torch.arange(0, x.shape[0] * 0.5, 0.5, dtype=torch.float64
                                                  ).to(x.dtype)[: x.shape[0]].reshape(-1, 1),
                       "aten.arange.start_step"),
    "full_float64": (lambda x: x + torch.full((x.shape[0], 1), 0.5, dtype=torch.float64).to(x.dtype),
                     "aten.full.default"),
    "zeros_like_float64": (lambda x: x + torch.zeros_like(x, dtype=torch.float64).to(x.dtype),
                           "aten.zeros_like.default"),
    "tril_float64": (lambda x: torch.tril(x.double(), 1).to(x.dtype), "aten.tril.default"),
    "eye_float64": (lambda x: x + torch.eye(x.shape[0], x.shape[1], dtype=torch.float64).to(x.dtype),
                    "aten.eye.m"),
}


@pytest.mark.parametrize("name", sorted(DECLINED))
@settings(**PER_OP)
@given(rows=st.integers(2, 5), cols=st.integers(1, 4),
       dtype=st.sampled_from([torch.float32, torch.int32]), dynamic=st.booleans(), seed=seeds)
def test_declined_cases_run_in_pytorch(name, rows, cols, dtype, dynamic, seed):
    """float64 results (without truncate_long_and_double) are declined: they stay in PyTorch,
    next to the engines, and the result still equals eager."""
    fn, op = DECLINED[name]
    x = tensor((rows, cols), dtype, seed)
    run = assert_converts(fn, [x], engines=None, pytorch_ops=None, registry=unfolded(),
                          dynamic=_dynamic((rows,), dynamic))
    assert op in run.pytorch_ops


def test_lift_fresh_copy_converts():
    from .corpus import CORPUS, run_entry
    index = next(i for i, (fn, _) in enumerate(CORPUS) if getattr(fn, "__name__", "") == "_corpus_lift_fresh_copy")
    result = run_entry(index)
    assert "builtin.lift_fresh_copy" in result.converters
    torch.testing.assert_close(result.outputs[0], result.expected[0])


TRUNCATED = {
    "arange": lambda x: torch.arange(x.shape[0]) * 3,
    "zeros_like_int64": lambda x: torch.zeros_like(x, dtype=torch.int64) + 2,
    "full_float64": lambda x: torch.full((x.shape[0], 2), 0.375, dtype=torch.float64),
    "ones_float64": lambda x: torch.ones(x.shape[0], dtype=torch.float64) * 2,
    "eye_float64": lambda x: torch.eye(x.shape[0], 3, dtype=torch.float64),
}


@pytest.mark.parametrize("name", sorted(TRUNCATED))
@settings(**PER_OP)
@given(rows=st.integers(2, 6), dynamic=st.booleans(), seed=seeds)
def test_int64_and_float64_results_under_truncate_long_and_double(name, rows, dynamic, seed):
    """int64 and float64 results are made in int32 and float32 inside the engine and come back
    in the model's dtypes."""
    x = tensor((rows, 3), torch.float32, seed)
    fn = TRUNCATED[name]
    assert_converts(lambda x: (fn(x), x.sum(1)), [x],
                    {**FULL, "truncate_long_and_double": True}, registry=unfolded(),
                    dynamic=_dynamic((rows,), dynamic))
