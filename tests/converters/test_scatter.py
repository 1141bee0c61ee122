"""scatter, the reducing scatters, index_add/copy/fill and slice/select/diagonal_scatter
through the whole backend."""
from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plugtrt.converters import scatter
from plugtrt.testing import assert_converts

from .strategies import FAST, converter_names, seeds, shapes, tensor

FULL = {"require_full_compilation": True}
aten = torch.ops.aten
all_dtypes = st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64,
                              torch.bool])
numeric = st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64])
floats = st.sampled_from([torch.float32, torch.float16, torch.bfloat16])


def _dyn(dim):
    return {0: [dim]} if dim is not None else None


def test_registers_through_a_fresh_manager():
    assert converter_names(scatter) == {
        "builtin.scatter_src", "builtin.scatter_value", "builtin.scatter_add", "builtin.scatter_reduce",
        "builtin.scatter_reduce_src", "builtin.scatter_reduce_value", "builtin.index_add",
        "builtin.index_copy", "builtin.index_fill_scalar", "builtin.index_fill_tensor",
        "builtin.slice_scatter", "builtin.select_scatter", "builtin.diagonal_scatter",
        "builtin.masked_scatter"}


@st.composite
def scattering(draw, distinct: bool, narrower: bool = True):
    """x's shape, dim, an index no larger than x outside dim (when ``narrower``), and a src at
    least as large as the index; with ``distinct``, no two index entries along dim collide."""
    shape = draw(shapes(1, 3, 1, 5))
    rank = len(shape)
    dim = draw(st.integers(-rank, rank - 1))
    axis = dim % rank
    seed = draw(seeds)
    g = torch.Generator().manual_seed(seed)
    index_shape = [draw(st.integers(1, n)) if narrower else n for n in shape]
    index_shape[axis] = draw(st.integers(1, shape[axis] if distinct else 6))
    lines = torch.stack([torch.randperm(shape[axis], generator=g)[:index_shape[axis]]
                         if distinct else torch.randint(0, shape[axis], (index_shape[axis],), generator=g)
                         for _ in range(max(1, torch.Size(index_shape).numel() // index_shape[axis]))], -1)
    index = lines.reshape([index_shape[axis], *[n for d, n in enumerate(index_shape) if d != axis]])
    index = index.movedim(0, axis).contiguous()
    src_shape = [n + draw(st.integers(0, 1)) for n in index_shape]
    free = [d for d in range(rank) if d != axis and shape[d] >= 2 and index_shape[d] == shape[d]
            and src_shape[d] == shape[d]]
    dynamic = draw(st.sampled_from(free)) if free and draw(st.booleans()) else None
    return tuple(shape), dim, index, tuple(src_shape), dynamic, seed


@settings(**FAST)
@given(case=scattering(distinct=True), dtype=all_dtypes, use_value=st.booleans())
def test_scatter(case, dtype, use_value):
    """scatter.src (src larger than the index: only its leading block is read) and scatter.value."""
    shape, dim, index, src_shape, dynamic, seed = case
    x = tensor(shape, dtype, seed)
    if use_value:
        value = True if dtype == torch.bool else (3 if dtype in (torch.int32, torch.int64) else -2.5)
        assert_converts(lambda a, i: torch.scatter(a, dim, i, value), [x, index], FULL)
        return
    src = tensor(src_shape, dtype, seed + 1)
    assert_converts(lambda a, i, s: torch.scatter(a, dim, i, s), [x, index, src], FULL, dynamic=_dyn(dynamic))


@settings(**FAST)
@given(case=scattering(distinct=False, narrower=False), dtype=numeric,
       mode=st.sampled_from(["sum", "prod", "amax", "amin", "mean"]), include_self=st.booleans())
def test_scatter_reduce(case, dtype, mode, include_self):
    """Duplicate indices reduced as torch does, through the one-hot REDUCE."""
    shape, dim, index, src_shape, _, seed = case
    if mode == "mean" and dtype not in (torch.float32, torch.float16, torch.bfloat16):
        dtype = torch.float32
    x = tensor(shape, dtype, seed, low=-3, high=4)
    src = tensor(src_shape, dtype, seed + 1, low=-3, high=4)
    assert_converts(lambda a, i, s: torch.scatter_reduce(a, dim, i, s, mode, include_self=include_self),
                    [x, index, src], FULL)


@settings(**FAST)
@given(case=scattering(distinct=False, narrower=False), dtype=numeric, legacy=st.sampled_from(
    [None, "add", "multiply"]), scalar=st.booleans())
def test_scatter_add_and_legacy_reduce(case, dtype, legacy, scalar):
    shape, dim, index, src_shape, _, seed = case
    x = tensor(shape, dtype, seed, low=-3, high=4)
    src = tensor(src_shape, dtype, seed + 1, low=-3, high=4)
    if legacy is None:
        fn, inputs = (lambda a, i, s: torch.scatter_add(a, dim, i, s)), [x, index, src]
    elif scalar:
        value = 2 if dtype in (torch.int32, torch.int64) else 1.5
        fn, inputs = (lambda a, i: torch.scatter(a, dim, i, value, reduce=legacy)), [x, index]
    else:
        fn, inputs = (lambda a, i, s: torch.scatter(a, dim, i, s, reduce=legacy)), [x, index, src]
    assert_converts(fn, inputs, FULL)


def test_scatter_add_with_a_narrower_index_runs_in_pytorch():
    """An index narrower than x outside dim would need the reduced block padded: declined."""
    x, index, src = torch.randn(4, 5), torch.randint(0, 4, (3, 2)), torch.randn(3, 2)
    run = assert_converts(lambda a, i, s: torch.scatter_add(a, 0, i, s) * 2, [x, index, src],
                          engines=None, pytorch_ops=None)
    assert "aten.scatter_add.default" in run.pytorch_ops


def test_scatter_add_with_a_dynamic_dim_runs_in_pytorch():
    """The one-hot positions are folded from a static size."""
    x, index, src = torch.randn(4, 5), torch.randint(0, 4, (3, 5)), torch.randn(3, 5)
    run = assert_converts(lambda a, i, s: torch.scatter_add(a, 0, i, s) * 2, [x, index, src],
                          engines=None, pytorch_ops=None, dynamic={0: [1], 1: [1], 2: [1]})
    assert "aten.scatter_add.default" in run.pytorch_ops


@st.composite
def along(draw, distinct: bool):
    shape = draw(shapes(1, 3, 1, 5))
    rank = len(shape)
    dim = draw(st.integers(-rank, rank - 1))
    n = shape[dim]
    seed = draw(seeds)
    g = torch.Generator().manual_seed(seed)
    if distinct:
        index = torch.randperm(n, generator=g)[:draw(st.integers(1, n))]
    else:
        index = torch.randint(0, n, (draw(st.integers(1, 6)),), generator=g)
    index = index.to(draw(st.sampled_from([torch.int64, torch.int32])))
    free = [d for d in range(rank) if d != dim % rank and shape[d] >= 2]
    dynamic = draw(st.sampled_from(free)) if free and draw(st.booleans()) else None
    return shape, dim, index, dynamic, seed


@settings(**FAST)
@given(case=along(distinct=False), dtype=numeric, alpha=st.sampled_from([1, 2, -1]))
def test_index_add(case, dtype, alpha):
    """Repeated indices add up (one-hot REDUCE/SUM)."""
    shape, dim, index, _, seed = case
    src_shape = list(shape)
    src_shape[dim] = index.numel()
    x = tensor(shape, dtype, seed, low=-3, high=4)
    src = tensor(src_shape, dtype, seed + 1, low=-3, high=4)
    assert_converts(lambda a, i, s: torch.index_add(a, dim, i, s, alpha=alpha), [x, index, src], FULL)


@settings(**FAST)
@given(case=along(distinct=True), dtype=all_dtypes)
def test_index_copy(case, dtype):
    shape, dim, index, dynamic, seed = case
    index = index.long()  # torch's index_copy takes int64 indices only
    src_shape = list(shape)
    src_shape[dim] = index.numel()
    x, src = tensor(shape, dtype, seed), tensor(src_shape, dtype, seed + 1)
    assert_converts(lambda a, i, s: torch.index_copy(a, dim, i, s), [x, index, src], FULL,
                    dynamic={0: [dynamic], 2: [dynamic]} if dynamic is not None else None)


@settings(**FAST)
@given(case=along(distinct=False), dtype=all_dtypes, as_tensor=st.booleans(), negative=st.booleans())
def test_index_fill(case, dtype, as_tensor, negative):
    """Scalar and 0-d tensor values; negative indices wrap."""
    shape, dim, index, dynamic, seed = case
    index = index.long()  # torch's index_fill takes int64 indices only
    if negative:
        index = index - shape[dim]
    value = True if dtype == torch.bool else (7 if dtype in (torch.int32, torch.int64) else -1.5)
    x = tensor(shape, dtype, seed)
    if as_tensor:
        assert_converts(lambda a, i, v: torch.index_fill(a, dim, i, v),
                        [x, index, torch.tensor(value, dtype=dtype)], FULL, dynamic=_dyn(dynamic))
    else:
        assert_converts(lambda a, i: torch.index_fill(a, dim, i, value), [x, index], FULL,
                        dynamic=_dyn(dynamic))


@settings(**FAST)
@given(shape=shapes(1, 4, 1, 6), data=st.data(), dtype=all_dtypes, seed=seeds)
def test_slice_scatter(shape, data, dtype, seed):
    """Step 1 (a concatenation of untouched pieces and src) and larger steps (SCATTER/ELEMENT)."""
    rank = len(shape)
    dim = data.draw(st.integers(-rank, rank - 1))
    n = shape[dim]
    start = data.draw(st.integers(0, n - 1))
    end = data.draw(st.integers(start + 1, n + 2))
    step = data.draw(st.integers(1, 3))
    count = len(range(start, min(end, n), step))
    src_shape = list(shape)
    src_shape[dim] = count
    free = [d for d in range(rank) if d != dim % rank and shape[d] >= 2]
    dynamic = data.draw(st.sampled_from(free)) if free and step == 1 and data.draw(st.booleans()) else None
    assert_converts(lambda a, s: torch.slice_scatter(a, s, dim, start, end, step),
                    [tensor(shape, dtype, seed), tensor(src_shape, dtype, seed + 1)], FULL,
                    dynamic=_dyn(dynamic))


@settings(**FAST)
@given(shape=shapes(1, 4, 1, 5), data=st.data(), dtype=all_dtypes, seed=seeds)
def test_select_scatter(shape, data, dtype, seed):
    rank = len(shape)
    dim = data.draw(st.integers(-rank, rank - 1))
    index = data.draw(st.integers(-shape[dim], shape[dim] - 1))
    src_shape = [n for d, n in enumerate(shape) if d != dim % rank]
    assert_converts(lambda a, s: torch.select_scatter(a, s, dim, index),
                    [tensor(shape, dtype, seed), tensor(src_shape, dtype, seed + 1)], FULL)


@settings(**FAST)
@given(shape=shapes(2, 4, 1, 5), data=st.data(), dtype=all_dtypes, seed=seeds)
def test_diagonal_scatter(shape, data, dtype, seed):
    rank = len(shape)
    dim1, dim2 = data.draw(st.lists(st.integers(-rank, rank - 1), min_size=2, max_size=2,
                                    unique_by=lambda d: d % rank))
    offset = data.draw(st.integers(-(shape[dim1] - 1), shape[dim2] - 1))
    src_shape = torch.diagonal(torch.empty(shape), offset, dim1, dim2).shape
    assert_converts(lambda a, s: torch.diagonal_scatter(a, s, offset, dim1, dim2),
                    [tensor(shape, dtype, seed), tensor(src_shape, dtype, seed + 1)], FULL)


@settings(**FAST)
@given(shapes_=st.data(), dtype=all_dtypes, seed=seeds, extra=st.integers(0, 3))
def test_masked_scatter(shapes_, dtype, seed, extra):
    """A mask from the graph (broadcast onto x, any number of set elements) takes the source's
    elements in row-major order (exclusive CUMULATIVE + GATHER + SELECT)."""
    shape = shapes_.draw(shapes(1, 4, 1, 5))
    keep = shapes_.draw(st.integers(1, len(shape)))
    mask_shape = tuple(1 if shapes_.draw(st.booleans()) else d for d in shape[len(shape) - keep:])
    mask = tensor(mask_shape, torch.bool, seed)
    count = int(torch.broadcast_to(mask, shape).sum())
    src = tensor((max(count + extra, 1),), dtype, seed + 1)
    assert_converts(lambda a, m, s: a.masked_scatter(m, s), [tensor(shape, dtype, seed + 2), mask, src], FULL)
