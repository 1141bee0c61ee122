"""Indexing converters through the whole backend: embedding, embedding_bag, index_select, gather,
index / _unsafe_index, index_put / _unsafe_index_put and diagonal."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from plugtrt.converters import indexing
from plugtrt.testing import assert_converts

from .strategies import FAST, converter_names, precisions, seeds, shapes, tensor


index_dtypes = st.sampled_from([torch.int64, torch.int32])


def test_registers_through_a_fresh_manager():
    assert converter_names(indexing) == {
        "builtin.embedding", "builtin.index_select", "builtin.gather", "builtin.index",
        "builtin.unsafe_index", "builtin.index_put", "builtin.unsafe_index_put", "builtin.diagonal",
        "builtin.embedding_bag_forward_only", "builtin.embedding_bag"}


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


FULL = {"require_full_compilation": True}


data_dtypes = st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64,
                               torch.bool])


precisions = st.sampled_from([torch.float32, torch.float16])


@st.composite
def subscript_case(draw, min_rank: int = 1):
    """A shape, the dims it is indexed on (possibly not adjacent), index tensors whose shapes
    broadcast (some dims 1, some leading dims dropped), with negative entries, and a dim free to
    mark dynamic (not indexed, size >= 2) or None."""
    shape = draw(shapes(min_rank, 4, min_side=1, max_side=5))
    rank = len(shape)
    dims = sorted(draw(st.sets(st.integers(0, rank - 1), min_size=1, max_size=min(rank, 3))))
    base = draw(shapes(0, 2, 1, 4))
    seed = draw(seeds)
    g = torch.Generator().manual_seed(seed)
    indices = []
    for d in dims:
        keep = draw(st.integers(0, len(base)))
        own = tuple(1 if draw(st.booleans()) else s for s in base[len(base) - keep:])
        indices.append(torch.randint(-shape[d], shape[d], own, generator=g))
    if len(indices) > 1 and indices[-1].dim() == 0 and max(i.dim() for i in indices) > 0:
        indices[-1] = indices[-1].reshape(1)  # torch's fake kernel mis-shapes this (test below)
    free = [d for d in range(rank) if d not in dims and shape[d] >= 2]
    dynamic = draw(st.sampled_from(free)) if free and draw(st.booleans()) else None
    return shape, dims, indices, dynamic


@settings(**FAST)
@given(case=subscript_case(), dtype=data_dtypes, index_dtype=index_dtypes, precision=precisions,
       unsafe=st.booleans(), seed=seeds)
def test_index(case, dtype, index_dtype, precision, unsafe, seed):
    """x[i], x[:, i], x[i, :, j] (result dims in front), broadcast index shapes, negative
    indices; a dynamic non-indexed dim where drawn."""
    shape, dims, indices, dynamic = case
    op = torch.ops.aten._unsafe_index.Tensor if unsafe else torch.ops.aten.index.Tensor

    def fn(x, *idx):
        key = [None] * (max(dims) + 1)
        for d, i in zip(dims, idx):
            key[d] = i
        return op(x, key)
    x = tensor(shape, dtype, seed)
    assert_converts(fn, [x, *(i.to(index_dtype) for i in indices)], {**FULL, "precision": precision},
                    dynamic={0: [dynamic]} if dynamic is not None else None)


@settings(**FAST)
@given(shape=shapes(2, 4, 2, 5), data=st.data(), seed=seeds)
def test_index_with_constant_indices_and_masks(shape, data, seed):
    """A frozen index tensor (negative entries folded at conversion) and a frozen boolean mask
    (folded to its integer indices)."""
    g = torch.Generator().manual_seed(seed)
    dim = data.draw(st.integers(0, len(shape) - 1))
    mask = torch.rand(shape[dim], generator=g) > 0.5
    mask[data.draw(st.integers(0, shape[dim] - 1))] = True
    index = torch.randint(-shape[dim], shape[dim], (data.draw(st.integers(1, 4)),), generator=g)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mask", mask)
            self.register_buffer("index", index)

        def forward(self, x):
            key = (slice(None),) * dim
            return x[key + (self.mask,)] * 2 + x[key + (self.index,)].sum()
    assert_converts(Model(), [tensor(shape, torch.float32, seed)], FULL)


def test_boolean_mask_from_the_graph_is_left_to_pytorch():
    """A mask input has a data-dependent number of True entries: dynamo splits the graph there
    and the masked read runs in PyTorch; the rest still converts."""
    x, mask = torch.randn(4, 3), torch.tensor([True, False, True, True])
    assert_converts(lambda a, m: a[m] * 2, [x, mask], engines=None, pytorch_ops=None)


@st.composite
def putting(draw):
    shape, dims, indices, dynamic = draw(subscript_case())
    # distinct positions keep the result defined (torch leaves duplicates unspecified)
    broadcast = torch.broadcast_tensors(*indices)
    key = torch.zeros_like(broadcast[0])
    for d, i in zip(dims, broadcast):
        key = key * shape[d] + i % shape[d]
    if key.unique().numel() != key.numel():
        indices = [i.reshape(-1)[:1] for i in indices]
    return shape, dims, indices, dynamic


@settings(**FAST)
@given(case=putting(), dtype=data_dtypes, index_dtype=index_dtypes, seed=seeds, unsafe=st.booleans(),
       broadcast_values=st.booleans())
def test_index_put(case, dtype, index_dtype, seed, unsafe, broadcast_values):
    """x[i, :, j] = v with values broadcast onto the indexed block; negative indices wrap."""
    shape, dims, indices, dynamic = case
    op = torch.ops.aten._unsafe_index_put.default if unsafe else torch.ops.aten.index_put.default
    x = tensor(shape, dtype, seed)
    key = [None] * (max(dims) + 1)
    for d, i in zip(dims, indices):
        key[d] = i
    block = torch.ops.aten.index.Tensor(x, key).shape  # python's x[...] reads 0-d tensors as ints
    value_shape = block[-1:] if broadcast_values and block else block

    def fn(a, v, *idx):
        key = [None] * (max(dims) + 1)
        for d, i in zip(dims, idx):
            key[d] = i
        return op(a, key, v)
    values = tensor(value_shape, dtype, seed + 1)
    if dynamic is not None and len(value_shape) < len(block):
        dynamic = None  # values fixed in size where the dim is would specialise it
    assert_converts(fn, [x, values, *(i.to(index_dtype) for i in indices)], FULL,
                    dynamic={0: [dynamic]} if dynamic is not None else None)


@settings(**FAST)
@given(shape=shapes(1, 3, 2, 5), data=st.data(), seed=seeds,
       dtype=st.sampled_from([torch.float32, torch.float16, torch.int32]))
def test_index_put_accumulate_with_constant_distinct_indices(shape, data, seed, dtype):
    """accumulate=True with frozen indices proven distinct: gather + add + scatter."""
    g = torch.Generator().manual_seed(seed)
    count = data.draw(st.integers(1, shape[0]))
    index = torch.randperm(shape[0], generator=g)[:count] - shape[0] * data.draw(st.integers(0, 1))

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("index", index)

        def forward(self, x, v):
            return torch.ops.aten.index_put.default(x, [self.index], v, True)
    values = tensor((count, *shape[1:]), dtype, seed + 1)
    assert_converts(Model(), [tensor(shape, dtype, seed), values], FULL)


@settings(**FAST)
@given(shape=shapes(1, 3, 2, 5), seed=seeds)
def test_index_put_accumulate_with_graph_indices_runs_in_pytorch(shape, seed):
    """TensorRT's scatter has no reduction: indices from the graph may repeat, so the
    accumulating put is declined and still matches eager (duplicates summed)."""
    index = torch.randint(0, shape[0], (4,), generator=torch.Generator().manual_seed(seed))
    values = tensor((4, *shape[1:]), torch.float32, seed)
    run = assert_converts(lambda x, v, i: torch.ops.aten.index_put.default(x, [i], v, True) * 2,
                          [tensor(shape, torch.float32, seed), values, index], engines=None,
                          pytorch_ops=None)
    assert "aten.index_put.default" in run.pytorch_ops


def test_index_put_with_a_constant_mask():
    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mask", torch.tensor([True, False, True, True]))

        def forward(self, x, v):
            x = x.clone()
            x[:, self.mask] = v
            return x
    assert_converts(Model(), [torch.randn(3, 4), torch.randn(3, 3)], FULL)


@settings(**FAST)
@given(shape=shapes(2, 4, 1, 5), data=st.data(), dtype=data_dtypes, seed=seeds)
def test_diagonal(shape, data, dtype, seed):
    rank = len(shape)
    dim1, dim2 = data.draw(st.lists(st.integers(-rank, rank - 1), min_size=2, max_size=2,
                                    unique_by=lambda d: d % rank))
    n1, n2 = shape[dim1], shape[dim2]
    offset = data.draw(st.integers(-(n1 - 1), n2 - 1))
    free = [d for d in range(rank) if d not in (dim1 % rank, dim2 % rank) and shape[d] >= 2]
    dynamic = data.draw(st.sampled_from(free)) if free and data.draw(st.booleans()) else None
    assert_converts(lambda x: torch.diagonal(x, offset, dim1, dim2), [tensor(shape, dtype, seed)], FULL,
                    dynamic={0: [dynamic]} if dynamic is not None else None)


def test_diagonal_over_a_dynamic_dim_runs_in_pytorch():
    run = assert_converts(lambda x: torch.diagonal(x, 0, 0, 1) * 2, [torch.randn(4, 3)], engines=None,
                          pytorch_ops=None, dynamic={0: [0]})
    assert "aten.diagonal.default" in run.pytorch_ops


@settings(**FAST)
@given(num=st.integers(1, 8), dim=st.integers(1, 4), n=st.integers(1, 8), data=st.data(),
       mode=st.sampled_from(["sum", "mean", "max"]), precision=precisions, seed=seeds,
       dtype=st.sampled_from([torch.float32, torch.float16]))
def test_embedding_bag(num, dim, n, data, mode, precision, seed, dtype):
    """Bags from offsets (empty bags included), include_last_offset, padding_idx and per-sample
    weights (sum mode), and the 2-D form without offsets."""
    g = torch.Generator().manual_seed(seed)
    weight = (torch.randn(num, dim, generator=g) * 3).to(dtype)
    indices = torch.randint(0, num, (n,), generator=g)
    include_last = mode == "sum" and data.draw(st.booleans())  # see the test below
    padding_idx = None if include_last or not data.draw(st.booleans()) else data.draw(st.integers(0, num - 1))
    bags = data.draw(st.integers(1, 4))
    offsets = torch.sort(torch.randint(0, n + 1, (bags + int(include_last),), generator=g)).values
    offsets[0] = 0
    if data.draw(st.booleans()):  # the 2-D form: equal bags, offsets implied
        rows = data.draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))
        assert_converts(lambda w, i: torch.nn.functional.embedding_bag(i, w, mode=mode),
                        [weight, indices.reshape(rows, -1)], {**FULL, "precision": precision})
        return
    psw = tensor((n,), dtype, seed + 1) if mode == "sum" and data.draw(st.booleans()) else None

    def fn(w, i, o, *p):
        return torch.nn.functional.embedding_bag(
            i, w, o, mode=mode, include_last_offset=include_last, padding_idx=padding_idx,
            per_sample_weights=p[0] if p else None)
    assert_converts(fn, [weight, indices, offsets] + ([psw] if psw is not None else []),
                    {**FULL, "precision": precision})


@pytest.mark.parametrize("mode, padding_idx", [("sum", 1), ("mean", None), ("max", None)])
def test_embedding_bag_reading_past_the_last_offset_runs_in_pytorch(mode, padding_idx):
    """With include_last_offset, torch's kernel reads past the last offset for max, mean (its
    count) and padding_idx: declined, and still eager's numbers."""
    def fn(w, i, o):
        return torch.nn.functional.embedding_bag(i, w, o, mode=mode, include_last_offset=True,
                                                 padding_idx=padding_idx) * 2
    run = assert_converts(fn, [torch.randn(5, 2), torch.tensor([0, 1, 2, 3, 4]), torch.tensor([0, 2, 3])],
                          engines=None, pytorch_ops=None)
    assert "aten._embedding_bag_forward_only.default" in run.pytorch_ops


@settings(**FAST)
@given(shape=shapes(1, 4, 1, 5), data=st.data(), dtype=data_dtypes, seed=seeds, accumulate=st.booleans())
def test_index_put_with_a_mask_from_the_graph(shape, data, dtype, seed, accumulate):
    """x[m] = v, x[:, m] = v with a mask input and values that broadcast over the selected
    elements: a SELECT (an add of one when accumulating), whatever the mask holds."""
    rank = len(shape)
    position = data.draw(st.integers(0, rank - 1))
    mask_rank = data.draw(st.integers(1, rank - position))
    mask = tensor(shape[position:position + mask_rank], torch.bool, seed)
    block = list(shape[:position]) + [1] + list(shape[position + mask_rank:])
    keep = data.draw(st.integers(0, len(block)))
    value_shape = tuple(1 if data.draw(st.booleans()) else d for d in block[len(block) - keep:])
    if accumulate and dtype == torch.bool:
        dtype = torch.int32
    values = tensor(value_shape, dtype, seed + 1)

    def fn(a, m, v):
        return torch.ops.aten.index_put.default(a, [None] * position + [m], v, accumulate)
    assert_converts(fn, [tensor(shape, dtype, seed + 2), mask, values], FULL)


def test_index_put_of_one_value_per_masked_element_runs_in_pytorch():
    """Values with one row per selected element: their number is data-dependent."""
    x, mask, values = torch.randn(3, 4), torch.tensor([True, False, True]), torch.randn(2, 4)
    run = assert_converts(lambda a, m, v: torch.ops.aten.index_put.default(a, [m], v) * 2,
                          [x, mask, values], engines=None, pytorch_ops=None)
    assert "aten.index_put.default" in run.pytorch_ops


def test_index_whose_recorded_shape_is_wrong_runs_in_pytorch():
    """torch 2.14's fake index.Tensor records x[i, j] with a 1-d i and a 0-d last j as 0-d (eager
    gives i's shape): declined, so no engine is built to the wrong shape."""
    op = torch.ops.aten.index.Tensor
    run = assert_converts(lambda x, i, j: op(x, [i, j]),
                          [torch.randn(3, 4), torch.tensor([-1, 0]), torch.tensor(2)], engines=None,
                          pytorch_ops=None)
    assert "aten.index.Tensor" in run.pytorch_ops
