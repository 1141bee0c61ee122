"""Layout and shape converters through the whole backend. Ops whose result is a view of
their input end in ``clone``: tracing hands a graph whose output aliases its input back to
PyTorch instead of to the backend. Composite ops that torch.compile always expands (``chunk``,
``narrow``, ``movedim`` ...) are traced as export's pre-dispatch tracer keeps them."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from plugtrt.converters import layout, shape
from plugtrt.testing import assert_converts

from .pre_dispatch import convert_pre_dispatch
from .strategies import FAST, converter_names, seeds, shapes, tensor

aten = torch.ops.aten
ALL = st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64, torch.bool])
STRICT = {"require_full_compilation": True}


def _dynamic(shape, data) -> dict | None:
    """Dim 0 of the first input dynamic, drawn, where dynamo can keep it symbolic (size >= 2)."""
    return {0: [0]} if shape[0] >= 2 and data.draw(st.booleans(), label="dynamic") else None


def _layers(run) -> dict[str, int]:
    return run.reports[0].engines[0].layer_types


def test_registers_through_fresh_managers():
    assert {"builtin.roll", "builtin.flip", "builtin.repeat", "builtin.tile", "builtin.unfold",
            "builtin.pixel_shuffle", "builtin.pixel_unshuffle", "builtin.stack", "builtin.unbind",
            "builtin.diag_embed", "builtin.as_strided", "builtin.alias",
            "builtin.repeat_interleave.self_int"} <= converter_names(layout)
    assert {"builtin.narrow", "builtin.movedim.int", "builtin.slice_copy", "builtin.chunk",
            "builtin.tensor_split.sections", "builtin.tensor_split.indices",
            "builtin.swapaxes", "builtin.view_copy", "builtin.expand_copy",
            "builtin.split_copy"} <= converter_names(shape)


@settings(**FAST)
@given(shape=shapes(), dtype=ALL, data=st.data(), seed=seeds)
def test_roll_is_one_wrap_slice(shape, dtype, data, seed):
    rank = len(shape)
    count = data.draw(st.integers(0, 3))
    shifts = [data.draw(st.integers(-9, 9)) for _ in range(max(count, 1))]
    dims = [data.draw(st.integers(-rank, rank - 1)) for _ in range(count)]
    dynamic = _dynamic(shape, data)
    x = tensor(shape, dtype, seed)
    fn = (lambda x: torch.roll(x, shifts, dims)) if dims else (lambda x: torch.roll(x, shifts[0]))
    run = assert_converts(fn, [x], STRICT, dynamic=dynamic)
    assert "builtin.roll" in run.converters
    if not dynamic and dims:
        # one slice, or none when every rolled dim has one element (the input passes through)
        assert _layers(run).get("SLICE", 0) <= 1 and set(_layers(run)) <= {"SLICE", "IDENTITY"}


@settings(**FAST)
@given(shape=shapes(), dtype=ALL, data=st.data(), seed=seeds)
def test_flip(shape, dtype, data, seed):
    rank = len(shape)
    dims = data.draw(st.lists(st.integers(0, rank - 1), unique=True, min_size=1))
    dims = [d - rank if data.draw(st.booleans()) else d for d in dims]
    x = tensor(shape, dtype, seed)
    run = assert_converts(lambda x: torch.flip(x, dims), [x], STRICT, dynamic=_dynamic(shape, data))
    assert "builtin.flip" in run.converters


@settings(**FAST)
@given(shape=shapes(max_rank=3), dtype=ALL, data=st.data(), seed=seeds)
def test_repeat_and_tile(shape, dtype, data, seed):
    rank = len(shape)
    reps = [data.draw(st.integers(1, 3)) for _ in range(rank + data.draw(st.integers(0, 2)))]
    tiles = [data.draw(st.integers(1, 3)) for _ in range(data.draw(st.integers(1, rank + 1)))]
    x = tensor(shape, dtype, seed)
    run = assert_converts(lambda x: (x.repeat(reps), x.tile(tiles)), [x], STRICT,
                          dynamic=_dynamic(shape, data))
    assert "builtin.repeat" in run.converters


@settings(**FAST)
@given(shape=shapes(), dtype=ALL, data=st.data(), seed=seeds)
def test_unfold_windows(shape, dtype, data, seed):
    rank = len(shape)
    dim = data.draw(st.integers(-rank, rank - 1))
    size = data.draw(st.integers(1, shape[dim]))
    step = data.draw(st.integers(1, 3))
    dynamic = _dynamic(shape, data) if dim % rank != 0 else None
    x = tensor(shape, dtype, seed)
    run = assert_converts(lambda x: x.unfold(dim, size, step).clone(), [x], STRICT, dynamic=dynamic)
    assert "builtin.unfold" in run.converters


@settings(**FAST)
@given(lead=st.lists(st.integers(1, 3), max_size=2), channels=st.integers(1, 3), r=st.integers(1, 3),
       hw=st.tuples(st.integers(1, 3), st.integers(1, 3)), dtype=ALL, data=st.data(), seed=seeds)
def test_pixel_shuffle_and_unshuffle(lead, channels, r, hw, dtype, data, seed):
    small = tensor((*lead, channels * r * r, *hw), dtype, seed)
    large = tensor((*lead, channels, hw[0] * r, hw[1] * r), dtype, seed + 1)
    dynamic = {0: [0], 1: [0]} if lead and lead[0] >= 2 and data.draw(st.booleans()) else None
    run = assert_converts(lambda a, b: (F.pixel_shuffle(a, r), F.pixel_unshuffle(b, r)),
                          [small, large], STRICT, dynamic=dynamic)
    assert {"builtin.pixel_shuffle", "builtin.pixel_unshuffle"} <= run.converters or r == 1


@settings(**FAST)
@given(shape=shapes(max_rank=3), parts=st.integers(1, 3), dtypes=st.lists(ALL, min_size=3, max_size=3),
       data=st.data(), seed=seeds)
def test_stack_promotes_and_unbind(shape, parts, dtypes, data, seed):
    rank = len(shape)
    dim = data.draw(st.integers(-rank - 1, rank))
    axis = data.draw(st.integers(-rank, rank - 1))
    inputs = [tensor(shape, dtypes[i], seed + i) for i in range(parts)]
    dynamic = ({i: [0] for i in range(parts)} if shape[0] >= 2 and axis % rank and data.draw(st.booleans())
               else None)  # unbinding a dynamic dim would pin its size
    run = assert_converts(lambda *xs: (torch.stack(xs, dim), *(t.clone() for t in xs[0].unbind(axis))),
                          inputs, STRICT, dynamic=dynamic)
    assert {"builtin.stack", "builtin.unbind"} <= run.converters


@settings(**FAST)
@given(shape=shapes(max_rank=3), dtype=ALL, data=st.data(), seed=seeds)
def test_diag_embed(shape, dtype, data, seed):
    x = tensor(shape, dtype, seed)
    if dtype.is_floating_point and data.draw(st.booleans()):
        x.view(-1)[0] = float("inf")  # stays on the diagonal: 0 elsewhere, as eager has it
    swap = data.draw(st.booleans())
    run = assert_converts(lambda x: torch.diag_embed(x, 0, -1, -2) if swap else torch.diag_embed(x),
                          [x], STRICT, dynamic=_dynamic(shape, data) if len(shape) > 1 else None)
    assert "builtin.diag_embed" in run.converters


@settings(**FAST)
@given(shape=shapes(max_rank=3), dtype=ALL, data=st.data(), seed=seeds)
def test_as_strided_slices_and_gathers(shape, dtype, data, seed):
    numel = math.prod(shape)
    rank = data.draw(st.integers(1, 3))
    size = [data.draw(st.integers(1, 3)) for _ in range(rank)]
    stride = [data.draw(st.integers(0, 4)) for _ in range(rank)]
    reach = sum((s - 1) * t for s, t in zip(size, stride))
    assume(reach < numel)
    offset = data.draw(st.integers(0, numel - 1 - reach))
    x = tensor(shape, dtype, seed)
    run = assert_converts(lambda x: x.as_strided(size, stride, offset).clone(), [x], STRICT)
    assert "builtin.as_strided" in run.converters


@settings(**FAST)
@given(shape=shapes(min_rank=2), dtype=ALL, data=st.data(), seed=seeds)
def test_functional_view_forms_called_directly(shape, dtype, data, seed):
    """export's ``*_copy`` ops: torch.compile keeps them when the model calls them."""
    rank = len(shape)
    perm = data.draw(st.permutations(range(rank)))
    a, b = data.draw(st.integers(-rank, rank - 1)), data.draw(st.integers(-rank, rank - 1))
    dim = data.draw(st.integers(-rank, rank - 1))
    size = shape[dim]
    start = data.draw(st.integers(0, size - 1))
    length = data.draw(st.integers(1, size - start))
    index = data.draw(st.integers(-size, size - 1))
    split = data.draw(st.integers(1, size))
    x = tensor(shape, dtype, seed)

    def fn(x):
        return (aten.view_copy.default(x, [-1]), aten.permute_copy.default(x, perm),
                aten.transpose_copy.int(x, a, b), aten.unsqueeze_copy.default(x, dim),
                aten.squeeze_copy.dims(aten.unsqueeze_copy.default(x, 0), [0]),
                aten.expand_copy.default(x, [2, *x.shape]), aten._reshape_copy.default(x, [x.shape[0], -1]),
                aten.slice_copy.Tensor(x, dim, start, start + length, 1),
                aten.select_copy.int(x, dim, index), aten.narrow_copy.default(x, dim, start, length),
                *aten.split_copy.Tensor(x, split, dim), *aten.unbind_copy.int(x, dim),
                *aten.unsafe_split.Tensor(x, split, dim), aten.flip.default(aten.alias_copy.default(x), [0]))
    run = assert_converts(fn, [x], STRICT, dynamic=_dynamic(shape, data) if dim % rank else None)
    assert {"builtin.view_copy", "builtin.permute_copy", "builtin.slice_copy", "builtin.select_copy",
            "builtin.split_copy", "builtin.unbind_copy", "builtin.narrow_copy",
            "builtin.unsafe_split"} <= run.converters


@settings(**FAST)
@given(shape=shapes(), dtype=ALL, data=st.data(), seed=seeds)
def test_composite_forms_as_export_keeps_them(shape, dtype, data, seed):
    """chunk, tensor_split, narrow, movedim, swapaxes, expand_as, tile and repeat_interleave
    never reach the backend through torch.compile (composite ops): traced as export keeps them."""
    rank = len(shape)
    dim = data.draw(st.integers(-rank, rank - 1))
    size = shape[dim]
    chunks = data.draw(st.integers(1, size))
    sections = data.draw(st.integers(1, size))
    cuts = sorted(data.draw(st.lists(st.integers(1, size - 1), unique=True, max_size=2))) if size > 1 else []
    start = data.draw(st.integers(-size, size - 1))
    length = data.draw(st.integers(1, size - start % size))
    src = data.draw(st.lists(st.integers(0, rank - 1), unique=True, min_size=1))
    dst = data.draw(st.permutations(range(rank)))[:len(src)]
    repeats = data.draw(st.integers(1, 3))
    x, y = tensor(shape, dtype, seed), tensor((2, *shape), dtype, seed + 1)

    def fn(x, y):
        return (*aten.chunk.default(x, chunks, dim), *aten.unsafe_chunk.default(x, chunks, dim),
                *aten.tensor_split.sections(x, sections, dim), *aten.tensor_split.indices(x, cuts, dim),
                aten.narrow.default(x, dim, start, length), aten.movedim.intlist(x, src, dst),
                aten.movedim.int(x, src[0], dst[0]), aten.swapaxes.default(x, dim, 0),
                aten.swapdims.default(x, 0, dim), aten.expand_as.default(x, y),
                aten.tile.default(x, [2]), aten.repeat_interleave.self_int(x, repeats, dim),
                aten.flip.default(aten.alias.default(x), [0]))
    try:
        eager = fn(x, y)
    except RuntimeError:
        assume(False)
    assume(all(t.numel() for t in eager))  # empty pieces are declined: TensorRT has no empty tensors
    used = convert_pre_dispatch(fn, [x, y])
    assert {"builtin.chunk", "builtin.tensor_split.sections", "builtin.narrow", "builtin.movedim.intlist",
            "builtin.swapaxes", "builtin.expand_as", "builtin.tile",
            "builtin.repeat_interleave.self_int"} <= used


@settings(**FAST)
@given(shape=shapes(max_rank=3), dtype=ALL, data=st.data(), seed=seeds)
def test_empty_results_stay_in_pytorch(shape, dtype, data, seed):
    """A repeat by 0 or an empty input makes an empty tensor, which TensorRT cannot hold."""
    rank = len(shape)
    reps = [1] * rank
    reps[data.draw(st.integers(0, rank - 1))] = 0
    x = tensor(shape, dtype, seed)
    empty = tensor((0, *shape[1:]), dtype, seed)
    run = assert_converts(lambda x, e: (x.repeat(reps), torch.roll(e, 1, 0), torch.flip(e, [0])),
                          [x, empty], engines=None, pytorch_ops=None)
    assert {"aten.repeat.default", "aten.roll.default", "aten.flip.default"} <= set(run.pytorch_ops)
