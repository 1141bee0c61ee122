"""embedding, index_select and gather through the whole backend."""
from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from plugtrt.converters import indexing
from plugtrt.testing import assert_converts

from .strategies import FAST, converter_names, precisions, seeds, shapes, tensor

index_dtypes = st.sampled_from([torch.int64, torch.int32])


def test_registers_through_a_fresh_manager():
    assert converter_names(indexing) == {"builtin.embedding", "builtin.index_select", "builtin.gather"}


@settings(**FAST)
@given(num=st.integers(1, 10), dim=st.integers(1, 6), index_shape=shapes(1, 3),
       index_dtype=index_dtypes, precision=precisions, seed=seeds)
def test_embedding(num, dim, index_shape, index_dtype, precision, seed):
    torch.manual_seed(seed)
    model = nn.Embedding(num, dim).eval()
    indices = torch.randint(0, num, index_shape, generator=torch.Generator().manual_seed(seed))
    assert_converts(model, [indices.to(index_dtype)], {"precision": precision})


@settings(**FAST)
@given(shape=shapes(1, 4), data=st.data(), dtype=st.sampled_from([torch.float32, torch.int32]),
       index_dtype=index_dtypes, seed=seeds)
def test_index_select(shape, data, dtype, index_dtype, seed):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    count = data.draw(st.integers(1, 6))
    index = torch.randint(0, shape[dim], (count,), generator=torch.Generator().manual_seed(seed))
    assert_converts(lambda x, i: torch.index_select(x, dim, i),
                    [tensor(shape, dtype, seed), index.to(index_dtype)])


@settings(**FAST)
@given(shape=shapes(1, 4), data=st.data(), seed=seeds)
def test_gather(shape, data, seed):
    """The index may be smaller than the input outside ``dim`` and of any size along it."""
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    axis = dim % len(shape)
    index_shape = tuple(data.draw(st.integers(1, 6)) if d == axis else data.draw(st.integers(1, n))
                        for d, n in enumerate(shape))
    index = torch.randint(0, shape[dim], index_shape, generator=torch.Generator().manual_seed(seed))
    assert_converts(lambda x, i: torch.gather(x, dim, i),
                    [tensor(shape, torch.float32, seed), index.to(torch.int64)],
                    {"require_full_compilation": True})


def test_gather_of_bool_stays_in_pytorch():
    x, index = torch.randn(3, 4) > 0, torch.zeros(2, 3, dtype=torch.int64)
    run = assert_converts(lambda a, i: torch.gather(a, 0, i).int() * 2, [x, index], engines=None,
                          pytorch_ops=None)
    assert "aten.gather.default" in run.pytorch_ops


def test_index_select_with_a_scalar_index_stays_in_pytorch():
    x, index = torch.randn(3, 4), torch.tensor(1)
    run = assert_converts(lambda a, i: torch.index_select(a, 1, i) * 2, [x, index], engines=None,
                          pytorch_ops=None)
    assert "aten.index_select.default" in run.pytorch_ops
