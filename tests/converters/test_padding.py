"""Padding converters through the whole backend: every pad is one SLICE layer whose sample
mode (FILL / REFLECT / CLAMP / WRAP) gives what lies outside the input."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from plugtrt.converters import padding
from plugtrt.testing import assert_converts

from .pre_dispatch import convert_pre_dispatch
from .strategies import FAST, PER_OP, converter_names, seeds, shapes, tensor

ALL = st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64, torch.bool])
FLOATS = st.sampled_from([torch.float32, torch.float16, torch.bfloat16])
STRICT = {"require_full_compilation": True}


def test_registers_through_a_fresh_manager():
    assert {"builtin.constant_pad_nd", "builtin.reflection_pad1d", "builtin.reflection_pad2d",
            "builtin.reflection_pad3d", "builtin.replication_pad1d", "builtin.replication_pad2d",
            "builtin.replication_pad3d", "builtin._pad_circular", "builtin.pad"} <= converter_names(padding)


def _value(dtype, data):
    if dtype == torch.bool:
        return data.draw(st.sampled_from([0, 1]))
    if dtype.is_floating_point:
        return data.draw(st.sampled_from([0.0, 1.5, -2.25, 100.0, float("-inf")]))
    return data.draw(st.integers(-5, 5))


@settings(**FAST)
@given(shape=shapes(max_rank=4), dtype=ALL, data=st.data(), seed=seeds)
def test_constant_pad_any_dims_negative_pads_and_values(shape, dtype, data, seed):
    rank = len(shape)
    padded = data.draw(st.integers(1, rank))
    pad = []
    for dim in reversed(range(rank - padded, rank)):  # torch's order: last dim first
        before = data.draw(st.integers(-(shape[dim] - 1), 3))
        after = data.draw(st.integers(-(shape[dim] + min(before, 0) - 1), 3))  # torch crops first
        pad += [before, after]
    value = _value(dtype, data)
    dynamic = rank > padded and shape[0] >= 2 and data.draw(st.booleans())
    x = tensor(shape, dtype, seed)
    run = assert_converts(lambda x: F.pad(x, pad, value=value), [x], STRICT,
                          dynamic={0: [0]} if dynamic else None)
    assert "builtin.constant_pad_nd" in run.converters
    if not dynamic and value == 0:
        assert run.reports[0].engines[0].layer_types == {"SLICE": 1}


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
@pytest.mark.parametrize("spatial", [1, 2, 3])
@settings(**PER_OP)
@given(batch=st.booleans(), dtype=FLOATS, data=st.data(), seed=seeds)
def test_reflection_and_replication_pads(spatial, batch, mode, dtype, data, seed):
    sizes = [data.draw(st.integers(2, 5)) for _ in range(spatial)]
    shape = ((data.draw(st.integers(2, 3)),) if batch else ()) + (data.draw(st.integers(1, 3)),) + tuple(sizes)
    pad = []
    for size in reversed(sizes):
        top = size - 1 if mode == "reflect" else 4  # torch: a reflected pad is shorter than the dim
        pad += [data.draw(st.integers(0, top)), data.draw(st.integers(0, top))]
    x = tensor(shape, dtype, seed)
    dynamic = batch and data.draw(st.booleans())
    run = assert_converts(lambda x: F.pad(x, pad, mode=mode), [x], STRICT,
                          dynamic={0: [0]} if dynamic else None)
    kind = "reflection" if mode == "reflect" else "replication"
    assert f"builtin.{kind}_pad{spatial}d" in run.converters
    if not dynamic:
        assert run.reports[0].engines[0].layer_types == {"SLICE": 1}


@settings(**FAST)
@given(shape=shapes(min_rank=2, max_rank=4, min_side=2), mode=st.sampled_from(
    ["constant", "reflect", "replicate", "circular"]), dtype=ALL, data=st.data(), seed=seeds)
def test_pad_and_pad_circular_as_other_tracers_keep_them(shape, mode, dtype, data, seed):
    """``pad`` and ``_pad_circular`` are composite: torch.compile expands them, make_fx with
    pre_dispatch (export's tracer) keeps them whole."""
    assume(mode not in ("reflect", "replicate") or dtype.is_floating_point)
    spatial = data.draw(st.integers(1, min(len(shape) - 1, 3)))
    # eager pads 1-3 dims of a tensor with one or two leading (batch, channel) dims only
    assume(mode == "constant" or len(shape) - spatial in (1, 2))
    pad = []
    for size in reversed(shape[-spatial:]):
        top = size - 1 if mode == "reflect" else size
        pad += [data.draw(st.integers(0, top)), data.draw(st.integers(0, top))]
    x = tensor(shape, dtype, seed)
    if mode == "circular" and data.draw(st.booleans()):
        used = convert_pre_dispatch(lambda x: torch.ops.aten._pad_circular.default(x, pad), [x])
        assert "builtin._pad_circular" in used
    else:
        used = convert_pre_dispatch(lambda x: torch.ops.aten.pad.default(x, pad, mode), [x])
        assert "builtin.pad" in used


@settings(**FAST)
@given(shape=shapes(max_rank=3), dtype=ALL, data=st.data(), seed=seeds)
def test_empty_results_stay_in_pytorch(shape, dtype, data, seed):
    """A crop of a whole dim makes an empty tensor, which TensorRT cannot hold: declined."""
    rank = len(shape)
    dim = data.draw(st.integers(0, rank - 1))
    pad = [0, 0] * (rank - 1 - dim) + [-shape[dim], 0]
    x = tensor(shape, dtype, seed)
    assume(math.prod(F.pad(x, pad).shape) == 0)
    run = assert_converts(lambda x: F.pad(x, pad), [x], engines=None, pytorch_ops=None)
    assert "aten.constant_pad_nd.default" in run.pytorch_ops
