"""Overloads that ordinary torch code does not always reach: an aten ``.Scalar`` form (dynamo
turns ``x + 2`` into ``add.Tensor``), a unary op no other test draws, a split with sizes. Each
is called explicitly inside the compiled function, with shapes, dtypes and scalars drawn."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plugtrt.testing import assert_converts

from .strategies import PER_OP, seeds, shapes, tensor

aten = torch.ops.aten
SCALAR_FORMS = {
    "add.Scalar": lambda x, s: aten.add.Scalar(x, s),
    "sub.Scalar": lambda x, s: aten.sub.Scalar(x, s),
    "mul.Scalar": lambda x, s: aten.mul.Scalar(x, s),
    "div.Scalar": lambda x, s: aten.div.Scalar(x, s),
    "div.Scalar_mode": lambda x, s: aten.div.Scalar_mode(x, s, rounding_mode="floor"),
    "pow.Scalar": lambda x, s: aten.pow.Scalar(abs(s) + 0.5, x),
    "lt.Scalar": lambda x, s: aten.lt.Scalar(x, s),
    "clamp_min": lambda x, s: aten.clamp_min.default(x, s),
    "clamp_max": lambda x, s: aten.clamp_max.default(x, s),
}
FLOAT_UNARY = {
    "ceil": torch.ceil, "cos": torch.cos, "reciprocal": torch.reciprocal, "rsqrt": torch.rsqrt,
    "mean": lambda x: x.mean(),
}
dtypes = st.sampled_from([torch.float32, torch.float16, torch.int32])


@pytest.mark.parametrize("name", sorted(SCALAR_FORMS))
@settings(**PER_OP)
@given(shape=shapes(), dtype=dtypes, scalar=st.sampled_from([2, -3, 0.5, 2.5]), seed=seeds)
def test_scalar_overloads(name, shape, dtype, scalar, seed):
    if name.startswith("div") or name == "pow.Scalar":
        scalar = scalar if scalar != 0 else 1
    x = tensor(shape, dtype, seed)
    assert_converts(lambda x: SCALAR_FORMS[name](x, scalar), [x],
                    {"require_full_compilation": True})


@pytest.mark.parametrize("name", sorted(FLOAT_UNARY))
@settings(**PER_OP)
@given(shape=shapes(), dtype=st.sampled_from([torch.float32, torch.float16]), seed=seeds)
def test_float_unary(name, shape, dtype, seed):
    x = tensor(shape, dtype, seed, positive=name in ("reciprocal", "rsqrt")) * 4
    assert_converts(FLOAT_UNARY[name], [x], {"require_full_compilation": True})


@settings(**PER_OP)
@given(shape=shapes(min_rank=2), dtype=st.sampled_from([torch.float32, torch.int64, torch.bool]),
       seed=seeds)
def test_ge_tensor_and_t(shape, dtype, seed):
    x, y = tensor(shape[-2:], dtype, seed), tensor(shape[-2:], dtype, seed + 1)
    assert_converts(lambda x, y: aten.ge.Tensor(x, y).t(), [x, y])


@settings(**PER_OP)
@given(shape=shapes(), dtype=st.sampled_from([torch.float32, torch.int32, torch.bool]),
       seed=seeds, data=st.data())
def test_split_with_sizes(shape, dtype, seed, data):
    dim = data.draw(st.integers(0, len(shape) - 1))
    first = data.draw(st.integers(1, shape[dim]))
    sizes = [first, shape[dim] - first] if first < shape[dim] else [first]
    x = tensor(shape, dtype, seed)
    assert_converts(lambda x: [~p if p.dtype == torch.bool else -p for p in torch.split(x, sizes, dim)],
                    [x])


# Forms other tracers produce (export's *_copy, unsafe_*), or that a model reaches only by
# calling the overload: each is called as such inside the compiled function.
LAYOUT_FORMS = {
    "t_copy": lambda x: aten.t_copy.default(x[0]),
    "squeeze_copy": lambda x: aten.squeeze_copy.default(x.unsqueeze(1)),
    "squeeze_copy.dim": lambda x: aten.squeeze_copy.dim(x.unsqueeze(-1), -1),
    "split_with_sizes_copy": lambda x: aten.split_with_sizes_copy.default(
        x, [1, x.shape[0] - 1], 0)[1] if x.shape[0] > 1 else x,
    "unsafe_split_with_sizes": lambda x: aten.unsafe_split_with_sizes.default(
        x, [1, x.shape[-1] - 1], -1)[0],
    "unfold_copy": lambda x: aten.unfold_copy.default(x, -1, 1, 1),
    "as_strided_copy": lambda x: aten.as_strided_copy.default(
        x.contiguous(), [x.shape[0], 1], [x.stride(0), 1]),
}


@pytest.mark.parametrize("name", sorted(LAYOUT_FORMS))
@settings(**PER_OP)
@given(shape=shapes(min_rank=2, max_rank=3, min_side=2), dtype=st.sampled_from(
    [torch.float32, torch.float16, torch.int32, torch.bool]), seed=seeds)
def test_export_and_unsafe_layout_forms(name, shape, dtype, seed):
    x = tensor(shape, dtype, seed)
    assert_converts(lambda x: LAYOUT_FORMS[name](x), [x], {"require_full_compilation": True})


BINARY_FORMS = {
    "addcdiv": lambda a, b, s: aten.addcdiv.default(a, b, b.abs() + 0.5, value=s),
    "copysign.Scalar": lambda a, b, s: aten.copysign.Scalar(a, s),
    "xlogy.Scalar_Other": lambda a, b, s: aten.xlogy.Scalar_Other(a, abs(s) + 0.5),
    "xlogy.Scalar_Self": lambda a, b, s: aten.xlogy.Scalar_Self(s, b.abs() + 0.1),
    "any.dims": lambda a, b, s: aten.any.dims(a > s, [0, -1]),
}


@pytest.mark.parametrize("name", sorted(BINARY_FORMS))
@settings(**PER_OP)
@given(shape=shapes(min_rank=2), dtype=st.sampled_from([torch.float32, torch.float16]),
       scalar=st.sampled_from([-1.5, 0.5, 2.0]), seed=seeds)
def test_direct_elementwise_forms(name, shape, dtype, scalar, seed):
    a, b = tensor(shape, dtype, seed) * 3, tensor(shape, dtype, seed + 1)
    assert_converts(lambda a, b: BINARY_FORMS[name](a, b, scalar), [a, b],
                    {"require_full_compilation": True})


@pytest.mark.parametrize("direction", ["left", "right"])
@settings(**PER_OP)
@given(shape=shapes(), dtype=st.sampled_from([torch.int32, torch.int64]),
       shift=st.integers(0, 6), seed=seeds)
def test_shifts_by_a_constant(direction, shape, dtype, shift, seed):
    op = aten.bitwise_left_shift.Tensor_Scalar if direction == "left" else aten.bitwise_right_shift.Tensor_Scalar
    x = tensor(shape, dtype, seed, low=-100, high=100)
    assert_converts(lambda x: op(x, shift), [x], {"require_full_compilation": True})


@settings(**PER_OP)
@given(batch=st.integers(1, 2), channels=st.integers(1, 3), sizes=st.lists(st.integers(2, 7), min_size=3,
       max_size=3), outs=st.lists(st.integers(1, 4), min_size=3, max_size=3),
       dtype=st.sampled_from([torch.float32, torch.float16]), seed=seeds)
def test_adaptive_avg_pool3d_of_any_output_size(batch, channels, sizes, outs, dtype, seed):
    x = tensor((batch, channels, *sizes), dtype, seed)
    assert_converts(lambda x: aten._adaptive_avg_pool3d.default(x, outs), [x],
                    {"require_full_compilation": True})


@pytest.mark.parametrize("name", ["nearest_exact3d", "linear1d"])
@settings(**PER_OP)
@given(size=st.integers(2, 6), out=st.integers(1, 12), align=st.booleans(),
       dtype=st.sampled_from([torch.float32, torch.float16]), seed=seeds)
def test_resize_overloads_called_directly(name, size, out, align, dtype, seed):
    if name == "linear1d":
        x = tensor((1, 2, size), dtype, seed)
        fn = lambda x: aten.upsample_linear1d.default(x, [out], align, None)  # noqa: E731
    else:
        x = tensor((1, 2, size, size, size), dtype, seed)
        fn = lambda x: aten._upsample_nearest_exact3d.default(x, [out] * 3, None, None, None)  # noqa: E731
    run = assert_converts(fn, [x], engines=None, pytorch_ops=None)
    assert run.engines == 1 or run.pytorch_ops  # a size TensorRT rounds differently is declined


@settings(**PER_OP)
@given(shape=shapes(min_rank=2, min_side=8, max_side=12), mean=st.sampled_from([-2.0, 0.0, 3.0]),
       std=st.sampled_from([0.5, 2.0]), seed=seeds)
def test_normal_with_a_tensor_mean_has_the_distribution_asked_for(shape, mean, std, seed):
    """Random values differ from torch's stream: compared by distribution, never by value."""
    from plugtrt.testing import run_through_backend

    means = torch.full(shape, mean) + tensor(shape, torch.float32, seed) * 0
    run = run_through_backend(lambda m: torch.normal(m, std), [means],
                              {"require_full_compilation": True, "random_ops_in_engines": True})
    assert run.engines == 1 and not run.pytorch_ops
    drawn = run.outputs
    assert drawn.shape == means.shape and drawn.dtype == torch.float32
    n = drawn.numel()
    assert abs(drawn.mean().item() - mean) < 6 * std / n ** 0.5
    assert abs(drawn.std().item() - std) < 0.35 * std


@settings(**PER_OP)
@given(shape=shapes(min_rank=2, min_side=3), dtype=st.sampled_from([torch.float32, torch.float16, torch.int32]),
       value_dtype=st.sampled_from([torch.float32, torch.int64, torch.bool]), row=st.booleans(),
       dynamic=st.booleans(), seed=seeds)
def test_slice_assignment_copies_a_broadcast_value(shape, dtype, value_dtype, row, dynamic, seed):
    """``y[:, 1:3] = v`` leaves ``copy(slice, v)`` and a ``slice_scatter``: ``v`` cast to ``y``'s
    dtype and broadcast (one row for all, or one value per element)."""
    x = tensor(shape, dtype, seed)
    v_shape = (2,) + (1,) * (len(shape) - 2) if row else (shape[0], 2, *shape[2:])
    v = tensor(v_shape, value_dtype, seed + 1)

    def assign(x, v):
        y = x * 2
        y[:, 1:3] = v
        return y
    marks = ({0: [0]} if row else {0: [0], 1: [0]}) if dynamic else None
    # with a symbolic batch the size arithmetic between them may split the graph in two engines
    assert_converts(assign, [x, v], {"require_full_compilation": True}, dynamic=marks,
                    engines=None if dynamic else 1)


@settings(**PER_OP)
@given(batch=st.integers(1, 2), rows=st.integers(1, 5), cols=st.integers(1, 5), dim=st.integers(1, 4),
       seed=seeds)
def test_cdist_by_matrix_products(batch, rows, cols, dim, seed):
    a, b = tensor((batch, rows, dim), torch.float32, seed), tensor((batch, cols, dim), torch.float32, seed + 1)
    assert_converts(lambda a, b: torch.cdist(a, b, compute_mode="use_mm_for_euclid_dist"), [a, b],
                    {"require_full_compilation": True}, rtol=1e-3, atol=1e-3)


@settings(**PER_OP)
@given(heads=st.integers(1, 3), length=st.integers(1, 6), width=st.sampled_from([4, 8]),
       causal=st.booleans(), dtype=st.sampled_from([torch.float32, torch.bfloat16]), seed=seeds)
def test_cpu_flash_attention_kernel(heads, length, width, causal, dtype, seed):
    q, k, v = (tensor((1, heads, length, width), dtype, seed + i) for i in range(3))
    assert_converts(lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal),
                    [q, k, v], {"require_full_compilation": True})


@settings(**PER_OP)
@given(size=st.integers(2, 6), out=st.integers(1, 12), dtype=st.sampled_from([torch.float32, torch.float16]),
       seed=seeds)
def test_nearest_exact_interpolation(size, out, dtype, seed):
    x = tensor((1, 2, size, size), dtype, seed)
    run = assert_converts(lambda x: torch.nn.functional.interpolate(x, size=(out, out), mode="nearest-exact"),
                          [x], engines=None, pytorch_ops=None)
    assert run.engines == 1 or run.pytorch_ops  # a size TensorRT rounds differently is declined


@settings(**PER_OP)
@given(shape=shapes(min_rank=2, min_side=8, max_side=12), low=st.integers(-5, 0), span=st.integers(1, 9),
       seed=seeds)
def test_randint_like_draws_in_its_range(shape, low, span, seed):
    """Random values differ from torch's stream: checked by range and dtype, never by value."""
    from plugtrt.testing import run_through_backend

    x = tensor(shape, torch.float32, seed)
    run = run_through_backend(lambda x: torch.randint_like(x, low, low + span, dtype=torch.int64) + 0, [x],
                              {"require_full_compilation": True, "random_ops_in_engines": True})
    assert run.engines == 1 and run.outputs.dtype == torch.int64 and run.outputs.shape == x.shape
    assert low <= run.outputs.min() and run.outputs.max() < low + span
    assert len(run.outputs.unique()) > 1 or span == 1


@settings(**PER_OP)
@given(shape=shapes(), dtype=st.sampled_from([torch.int32, torch.int64]), exponent=st.integers(0, 9),
       dynamic=st.booleans(), seed=seeds)
def test_integer_powers_by_repeated_products(shape, dtype, exponent, dynamic, seed):
    x = tensor(shape, dtype, seed, low=-6, high=6)
    assert_converts(lambda x: x ** exponent, [x], {"require_full_compilation": True},
                    dynamic={0: [0]} if dynamic and shape[0] > 1 else None)


@pytest.mark.parametrize("mode, rank", [("nearest", 2), ("trilinear", 3), ("bilinear", 2), ("nearest", 3)])
@settings(**PER_OP)
@given(size=st.integers(2, 5), scale=st.sampled_from([2, 3]), dtype=st.sampled_from([torch.float32, torch.float16]),
       seed=seeds)
def test_interpolation_by_mode(mode, rank, size, scale, dtype, seed):
    """Each mode every run (the resize tests draw modes): integer scales, which TensorRT's
    formula and torch's agree on, must convert."""
    x = tensor((1, 2) + (size,) * rank, dtype, seed)
    assert_converts(lambda x: torch.nn.functional.interpolate(x, scale_factor=scale, mode=mode), [x],
                    {"require_full_compilation": True})


@settings(**PER_OP)
@given(shape=shapes(min_rank=2), dtype=st.sampled_from([torch.float32, torch.int32, torch.bool]),
       keepdim=st.booleans(), seed=seeds)
def test_all_over_several_dims(shape, dtype, keepdim, seed):
    x = tensor(shape, dtype, seed, low=-1, high=2)
    assert_converts(lambda x: torch.ops.aten.all.dims(x, [0, -1], keepdim), [x],
                    {"require_full_compilation": True})


@pytest.mark.parametrize("kind, rank", [("avg", 1), ("avg", 2), ("avg", 3), ("max", 1), ("max", 2), ("max", 3)])
@settings(**PER_OP)
@given(sizes=st.lists(st.integers(2, 7), min_size=3, max_size=3), outs=st.lists(st.integers(1, 4), min_size=3,
       max_size=3), dtype=st.sampled_from([torch.float32, torch.float16]), seed=seeds)
def test_adaptive_pooling_of_any_output_size(kind, rank, sizes, outs, dtype, seed):
    """Every kind and rank in every run (the pooling tests draw them): output sizes that do not
    divide the input are windows of torch's floor/ceil bounds."""
    pool = getattr(torch.nn.functional, f"adaptive_{kind}_pool{rank}d")
    x = tensor((1, 2, *sizes[:rank]), dtype, seed)
    assert_converts(lambda x: pool(x, outs[:rank]), [x], {"require_full_compilation": True})
