"""nonzero, x[mask], masked_select and x[mask] = v (one value per selected element): each
converted once for drawn shapes and dtypes, then run on a random, an all-False and an all-True
mask, equal to eager. Through the whole backend (one engine, nothing left in PyTorch) where the
installed builder builds the non-zero layer; elsewhere (TensorRT-RTX 1.7) through one real
network of the whole function, evaluated by the reference runtime (see data_dependent_support)."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plugtrt.converters import data_dependent
from plugtrt.testing import assert_converts

from .data_dependent_support import BUILDABLE, convertible, masks_of, one_network
from .strategies import FAST, broadcast_pair, converter_names, seeds, shapes, tensor

DATA = [torch.float32, torch.float16, torch.int32, torch.int64, torch.bool]


def _check(fn, cases: list[list[torch.Tensor]], converter: str) -> None:
    """``fn`` on every case equals eager, converted once (the first case's shapes)."""
    if BUILDABLE:
        with torch._dynamo.config.patch(capture_dynamic_output_shape_ops=True):
            run = assert_converts(fn, cases[0], engines=1, pytorch_ops=())
            with torch.no_grad():
                for case in cases[1:]:
                    torch.testing.assert_close(run.compiled(*case), fn(*case), rtol=0, atol=0)
        return
    with convertible():
        run, _, used = one_network(fn, cases[0])
    assert converter in used
    for case in cases:
        got, want = run(*case)[0], fn(*case)
        assert got.shape == want.shape and got.dtype == want.dtype
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_registers_its_converters():
    assert converter_names(data_dependent) == {
        "builtin.nonzero", "builtin.masked_select", "builtin.index_mask",
        "builtin.index_put_counted", "builtin.unsafe_index_put_counted"}


@settings(**FAST)
@given(shape=shapes(1, 4), dtype=st.sampled_from(DATA), seed=seeds)
def test_nonzero(shape, dtype, seed):
    x = tensor(shape, dtype, seed)
    cases = [[torch.where(m, x, torch.zeros((), dtype=dtype))] for m in masks_of(shape, seed)]
    _check(torch.nonzero, cases, "builtin.nonzero")


@st.composite
def masked_dims(draw):
    """A shape, and where a mask over some of its dims starts and how many it covers."""
    shape = draw(shapes(1, 4))
    position = draw(st.integers(0, len(shape) - 1))
    return shape, position, draw(st.integers(1, len(shape) - position))


@settings(**FAST)
@given(geometry=masked_dims(), dtype=st.sampled_from(DATA), seed=seeds)
def test_index_by_a_mask(geometry, dtype, seed):
    shape, position, covered = geometry
    x = tensor(shape, dtype, seed)
    lead = (slice(None),) * position
    cases = [[x, m] for m in masks_of(shape[position:position + covered], seed)]
    _check(lambda x, m: x[lead + (m,)], cases, "builtin.index_mask")


@settings(**FAST)
@given(pair=broadcast_pair(), dtype=st.sampled_from(DATA), seed=seeds)
def test_masked_select(pair, dtype, seed):
    x_shape, mask_shape = pair
    x = tensor(x_shape, dtype, seed)
    cases = [[x, m] for m in masks_of(mask_shape, seed)]
    _check(torch.masked_select, cases, "builtin.masked_select")


@settings(**FAST)
@given(geometry=masked_dims(), dtype=st.sampled_from([torch.float32, torch.float16, torch.int32]),
       accumulate=st.booleans(), seed=seeds)
def test_index_put_of_values_per_selected_element(geometry, dtype, seed, accumulate):
    """``x[mask] = f(x[mask])``: the values' length is the mask's count, which the graph proves
    (the values come from indexing by the same mask)."""
    shape, position, covered = geometry
    x = tensor(shape, dtype, seed)
    indices = [None] * position

    def put(x, m):
        values = x[(slice(None),) * position + (m,)] * 2 + 1
        return torch.ops.aten.index_put(x, indices + [m], values, accumulate)

    cases = [[x, m] for m in masks_of(shape[position:position + covered], seed)]
    _check(put, cases, "builtin.index_put_counted")


def test_values_of_another_length_stay_in_pytorch():
    """Values whose length merely equals the count at compile time may not match it at run time
    (eager raises then): that put is not converted."""
    x, mask = torch.randn(4, 5), torch.zeros(4, 5, dtype=torch.bool)
    mask[0, :3] = True
    with convertible(), pytest.raises(Exception, match="no converter accepts aten.index_put"):
        one_network(lambda x, m, v: torch.index_put(x, (m,), v), [x, mask, torch.ones(3)])
