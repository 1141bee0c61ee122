"""Shape converters through the whole backend. Each op reads a ``clone`` of the input (the
noops pass removes it): tracing refuses a graph whose output aliases its input."""
from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plugtrt.converters import shape
from plugtrt.testing import assert_converts

from .strategies import FAST, converter_names, seeds, shapes, tensor

DTYPES = st.sampled_from([torch.float32, torch.float16, torch.int32, torch.int64, torch.bool])


def test_registers_through_a_fresh_manager():
    assert {"builtin.view", "builtin._unsafe_view", "builtin.reshape", "builtin.permute",
            "builtin.transpose", "builtin.t", "builtin.unsqueeze", "builtin.squeeze.dim",
            "builtin.squeeze.dims", "builtin.expand", "builtin.cat", "builtin.slice",
            "builtin.select", "builtin.split", "builtin.clone"} <= converter_names(shape)


@settings(**FAST)
@given(shape=shapes(), dtype=DTYPES, data=st.data(), seed=seeds)
def test_view_flatten_and_permute(shape, dtype, data, seed):
    x = tensor(shape, dtype, seed)
    rank = len(shape)
    perm = data.draw(st.permutations(range(rank)))
    split = data.draw(st.integers(0, rank))
    target = (math.prod(shape[:split]), -1)
    start = data.draw(st.integers(-rank, rank - 1))
    assert_converts(lambda x: (x.view(target), x.flatten(start),
                               x.permute(perm).reshape(-1)), [x])


@settings(**FAST)
@given(shape=shapes(max_rank=3), dtype=DTYPES, data=st.data(), seed=seeds)
def test_transpose_squeeze_unsqueeze(shape, dtype, data, seed):
    x = tensor(shape, dtype, seed)
    rank = len(shape)
    a, b = data.draw(st.integers(-rank, rank - 1)), data.draw(st.integers(-rank, rank - 1))
    new = data.draw(st.integers(-rank - 1, rank))
    squeezed = tuple(d for d in range(rank) if shape[d] == 1)
    assert_converts(lambda x: (x.transpose(a, b), x.unsqueeze(new),
                               x.squeeze(squeezed) if squeezed else x.squeeze(0),
                               x.squeeze()), [x])


@settings(**FAST)
@given(shape=shapes(max_rank=3), lead=st.lists(st.integers(1, 3), max_size=2), dtype=DTYPES,
       data=st.data(), seed=seeds)
def test_expand(shape, lead, dtype, data, seed):
    x = tensor(tuple(1 if data.draw(st.booleans()) else d for d in shape), dtype, seed)
    target = (*lead, *[d if s == 1 and data.draw(st.booleans()) else (-1 if s != 1 else s)
                       for s, d in zip(x.shape, shape)])
    assert_converts(lambda x: x.expand(target), [x])


@settings(**FAST)
@given(shape=shapes(), parts=st.integers(1, 3), dtypes=st.lists(DTYPES, min_size=3, max_size=3),
       data=st.data(), seed=seeds)
def test_cat_promotes_and_takes_negative_dims(shape, parts, dtypes, data, seed):
    rank = len(shape)
    dim = data.draw(st.integers(-rank, rank - 1))
    inputs = []
    for i in range(parts):
        piece = list(shape)
        piece[dim] = data.draw(st.integers(1, 3))
        inputs.append(tensor(tuple(piece), dtypes[i], seed + i))
    assert_converts(lambda *xs: torch.cat(xs, dim), inputs)


@settings(**FAST)
@given(shape=shapes(), dtype=DTYPES, data=st.data(), seed=seeds)
def test_slice_and_select(shape, dtype, data, seed):
    x = tensor(shape, dtype, seed)
    rank = len(shape)
    dim = data.draw(st.integers(-rank, rank - 1))
    size = shape[dim]
    start = data.draw(st.integers(-size, size - 1))
    stop = data.draw(st.one_of(st.none(), st.integers(-size - 2, size + 2)))
    step = data.draw(st.integers(1, 3))
    index = data.draw(st.integers(-size, size - 1))
    key = [slice(None)] * rank
    key[dim] = slice(start, stop, step)
    if x[tuple(key)].numel() == 0:
        key[dim] = slice(start, None, step)
    pick = [slice(None)] * rank
    pick[dim] = index
    assert_converts(lambda x: (x[tuple(key)], x[tuple(pick)] if rank > 1 else
                               x[index:index + 1 or None]), [x])


@settings(**FAST)
@given(shape=shapes(), dtype=DTYPES, data=st.data(), seed=seeds)
def test_split_and_chunk(shape, dtype, data, seed):
    x = tensor(shape, dtype, seed)
    rank = len(shape)
    dim = data.draw(st.integers(-rank, rank - 1))
    size = data.draw(st.integers(1, shape[dim]))
    chunks = data.draw(st.integers(1, shape[dim]))
    assert_converts(lambda x: (*x.split(size, dim), *x.chunk(chunks, dim)), [x])


def test_split_with_sizes_and_t():
    x = tensor((2, 7), torch.float32, 0)
    assert_converts(lambda x: (*x.split([2, 5], 1), x.t()), [x])
