"""Pooling converters through the whole backend (max, average, adaptive average)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

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
