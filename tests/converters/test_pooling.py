"""Pooling converters through the whole backend: max, average and adaptive pooling in 1d, 2d and
3d, adaptive pooling to any output size, divisor_override."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from plugtrt.converters import pooling
from plugtrt.testing import assert_converts

from .strategies import FAST, converter_names, precisions, seeds, tensor


def test_registers_through_a_fresh_manager():
    assert {"builtin.max_pool2d_with_indices", "builtin.max_pool3d_with_indices",
            "builtin.avg_pool2d", "builtin.avg_pool3d", "builtin._adaptive_avg_pool2d",
            "builtin._adaptive_avg_pool3d", "builtin.max_pool2d"} <= converter_names(pooling)


@st.composite
def window(draw, nd: int):
    kernel = draw(st.integers(1, 3))
    return dict(kernel_size=kernel, stride=draw(st.integers(1, 3)),
                padding=draw(st.integers(0, kernel // 2)), ceil_mode=draw(st.booleans()))


@st.composite
def pool_input(draw, nd: int, seed):
    lead = draw(st.sampled_from([(1, 2), (2, 3), (3,)]))  # batched, or one unbatched channel dim
    size = draw(st.integers(3, 7 if nd < 3 else 4))
    return tensor((*lead, *[size] * nd), torch.float32, seed)


MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


@settings(**FAST)
@given(nd=st.sampled_from([1, 2, 3]), data=st.data(), precision=precisions, seed=seeds)
def test_max_pool(nd, data, precision, seed):
    args, x = data.draw(window(nd)), data.draw(pool_input(nd, seed))
    run = assert_converts(lambda x: MAX[nd](x, **args), [x], {"precision": precision},
                          engines=None, pytorch_ops=None)
    assert not run.pytorch_ops or args["ceil_mode"]  # only ceil windows may be declined


@settings(**FAST)
@given(nd=st.sampled_from([1, 2, 3]), data=st.data(), count_include_pad=st.booleans(),
       precision=precisions, seed=seeds)
def test_avg_pool(nd, data, count_include_pad, precision, seed):
    args, x = data.draw(window(nd)), data.draw(pool_input(nd, seed))
    if nd == 3:  # the reference runtime's torch CPU kernel has no float16 avg_pool3d
        precision = torch.float32
    run = assert_converts(lambda x: AVG[nd](x, **args, count_include_pad=count_include_pad), [x],
                          {"precision": precision}, engines=None, pytorch_ops=None)
    assert not run.pytorch_ops or args["ceil_mode"]


@settings(**FAST)
@given(nd=st.sampled_from([1, 2, 3]), divisor=st.sampled_from([1, 2]), data=st.data(), seed=seeds)
def test_adaptive_avg_pool(nd, divisor, data, seed):
    out = data.draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd))
    x = tensor((2, 3, *[o * divisor for o in out]), torch.float32, seed)
    op = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}[nd]
    assert_converts(lambda x: op(x, out), [x])


def test_floor_and_ceil_sizes_that_agree_convert():
    x = tensor((1, 2, 7, 7), torch.float32, 0)
    assert_converts(lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True), [x])
    assert_converts(lambda x: F.avg_pool2d(x, 2, 2, 0, ceil_mode=True), [x])


def test_used_indices_stay_in_pytorch():
    x = tensor((1, 2, 4, 4), torch.float32, 0)
    assert_converts(lambda x: F.max_pool2d(x, 2, return_indices=True), [x], engines=0,
                    pytorch_ops=["aten.max_pool2d_with_indices.default"])


ADAPTIVE_AVG = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}


ADAPTIVE_MAX = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}


FULL = {"require_full_compilation": True}


def test_registers_the_any_size_and_1d_forms():
    names = converter_names(pooling)
    assert {f"builtin.{op}{nd}d.any_size" for op in ("adaptive_avg_pool", "adaptive_max_pool")
            for nd in (1, 2, 3)} <= names
    assert {"builtin.avg_pool2d.divisor_override", "builtin.avg_pool3d.divisor_override",
            "builtin.avg_pool1d", "builtin.max_pool1d", "builtin.max_pool1d_with_indices",
            "builtin._adaptive_avg_pool2d.any_size", "builtin._adaptive_avg_pool3d.any_size"} <= names


@st.composite
def adaptive_case(draw):
    nd = draw(st.sampled_from([1, 2, 3]))
    lead = draw(st.sampled_from([(2, 3), (1, 2), (3,)]))  # batched, or unbatched channels
    size_in = [draw(st.integers(1, 9 if nd < 3 else 5)) for _ in range(nd)]
    # any output size: larger, smaller, dividing or not, and None (keep the input's)
    size_out = [draw(st.one_of(st.integers(1, 7), st.none())) for _ in range(nd)]
    return nd, (*lead, *size_in), size_out


@settings(**FAST)
@given(case=adaptive_case(), op=st.sampled_from(["avg", "max"]),
       dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]), precision=precisions,
       dynamic=st.booleans(), seed=seeds)
def test_adaptive_pool_any_output_size(case, op, dtype, precision, dynamic, seed):
    nd, shape, size_out = case
    x = tensor(shape, dtype, seed) * 10
    fn = (ADAPTIVE_AVG if op == "avg" else ADAPTIVE_MAX)[nd]
    if nd == 3 and dtype != torch.float32:  # torch's CPU kernels lack reduced-precision 3d pooling
        x = x.float()
    output = size_out if nd > 1 else size_out[0]
    if output is None:
        output = shape[-1]
    dynamic = dynamic and len(shape) == nd + 2 and min(shape) > 1
    run = assert_converts(lambda x: fn(x, output), [x], {"precision": precision, **FULL},
                          dynamic={0: [0]} if dynamic else None)
    assert run.engines == 1


def test_uneven_windows_overlap_like_torch():
    """in=5, out=3: windows [0,2), [1,4), [3,5) overlap and differ in length."""
    x = torch.arange(2 * 5 * 7, dtype=torch.float32).reshape(1, 2, 5, 7) ** 1.5
    assert_converts(lambda x: F.adaptive_avg_pool2d(x, (3, 4)), [x], FULL)
    assert_converts(lambda x: F.adaptive_max_pool2d(x, (3, 4)), [x], FULL)


def test_adaptive_max_with_used_indices_stays_in_pytorch():
    x = tensor((1, 2, 5, 5), torch.float32, 0)
    run = assert_converts(lambda x: F.adaptive_max_pool2d(x, 3, return_indices=True), [x],
                          engines=None, pytorch_ops=None)
    assert "aten.adaptive_max_pool2d.default" in run.pytorch_ops


def test_float64_adaptive_pool_stays_in_pytorch():
    x = tensor((1, 2, 5, 5), torch.float32, 0)
    run = assert_converts(lambda x: F.adaptive_avg_pool2d(x.double(), 3), [x], engines=None,
                          pytorch_ops=None)
    assert "aten._adaptive_avg_pool2d.default" in run.pytorch_ops


@st.composite
def window1d(draw):
    kernel = draw(st.integers(1, 4))
    return dict(kernel_size=kernel, stride=draw(st.integers(1, 3)),
                padding=draw(st.integers(0, kernel // 2)), ceil_mode=draw(st.booleans()))


@settings(**FAST)
@given(args=window1d(), kind=st.sampled_from(["avg", "max"]), count_include_pad=st.booleans(),
       lead=st.sampled_from([(2, 3), (1, 1), (3,)]), length=st.integers(4, 10),
       dtype=st.sampled_from([torch.float32, torch.float16]), precision=precisions, seed=seeds)
def test_pool1d(args, kind, count_include_pad, lead, length, dtype, precision, seed):
    x = tensor((*lead, length), dtype, seed) * 10
    if kind == "avg":
        fn = lambda x: F.avg_pool1d(x, **args, count_include_pad=count_include_pad)  # noqa: E731
    else:
        fn = lambda x: F.max_pool1d(x, **args)  # noqa: E731
    run = assert_converts(fn, [x], {"precision": precision}, engines=None, pytorch_ops=None)
    assert not run.pytorch_ops or args["ceil_mode"]  # only ceil windows torch sizes differently


@settings(**FAST)
@given(nd=st.sampled_from([2, 3]), kernel=st.integers(1, 3), stride=st.integers(1, 3),
       data=st.data(), divisor=st.sampled_from([1, 2, 5, -3]), unbatched=st.booleans(),
       precision=precisions, dynamic=st.booleans(), seed=seeds)
def test_avg_pool_divisor_override(nd, kernel, stride, data, divisor, unbatched, precision,
                                   dynamic, seed):
    padding = data.draw(st.integers(0, kernel // 2))
    ceil_mode = data.draw(st.booleans())
    size = data.draw(st.integers(max(kernel, 2), 7 if nd == 2 else 4))
    shape = ((3,) if unbatched else (2, 3)) + (size,) * nd
    x = tensor(shape, torch.float32, seed) * 10
    op = F.avg_pool2d if nd == 2 else F.avg_pool3d
    if nd == 3:
        precision = torch.float32  # torch's CPU kernel has no float16 avg_pool3d
    run = assert_converts(lambda x: op(x, kernel, stride, padding, ceil_mode, divisor_override=divisor),
                          [x], {"precision": precision}, engines=None, pytorch_ops=None,
                          dynamic={0: [0]} if dynamic and not unbatched else None)
    assert not run.pytorch_ops or ceil_mode  # only ceil sizes that differ from floor ones decline
