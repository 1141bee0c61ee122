"""Activation converters through the whole backend: drawn shapes, dtypes, precisions, arguments
and a dynamic dim; NaN handling of the shrink and threshold ops; eval-mode rrelu; what the
validators decline runs in PyTorch and still matches eager."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from plugtrt.converters import activation
from plugtrt.testing import assert_converts

from .strategies import FAST, PER_OP, converter_names, precisions, seeds, shapes, tensor

ACTIVATIONS = {
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "hardtanh": lambda x: F.hardtanh(x, -0.5, 0.75),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
    "elu": lambda x: F.elu(x, 0.7),
    "softplus": lambda x: F.softplus(x, beta=2.0),
}


def test_registers_through_a_fresh_manager():
    assert converter_names(activation) == {
        "builtin.relu", "builtin.sigmoid", "builtin.tanh", "builtin.gelu", "builtin.silu",
        "builtin.hardtanh", "builtin.leaky_relu", "builtin.elu", "builtin.softplus",
        "builtin.hardsigmoid", "builtin.hardswish", "builtin.mish", "builtin.selu", "builtin.celu",
        "builtin.glu", "builtin.log_sigmoid_forward", "builtin._prelu_kernel", "builtin.prelu",
        "builtin.rrelu_with_noise", "builtin.rrelu_with_noise_functional", "builtin.softshrink",
        "builtin.hardshrink", "builtin.threshold"}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@settings(**PER_OP)
@given(shape=shapes(), dtype=st.sampled_from(
    [torch.float32, torch.float16]), precision=precisions, seed=seeds)
def test_activations(name, shape, dtype, precision, seed):
    x = tensor(shape, dtype, seed) * 3
    assert_converts(ACTIVATIONS[name], [x], {"precision": precision})


@settings(**FAST)
@given(shape=shapes(), dtype=st.sampled_from([torch.int32, torch.int64]), seed=seeds)
def test_integer_relu(shape, dtype, seed):
    assert_converts(torch.relu, [tensor(shape, dtype, seed)])


def test_softplus_its_converter_declines_is_decomposed():
    """TensorRT's SOFTPLUS has no threshold: the converter declines one that matters, and the
    node alone is decomposed, into ops that all convert (log1p through math_unary)."""
    x = tensor((2, 3), torch.float32, 0) * 4
    run = assert_converts(lambda x: F.softplus(x, threshold=1.0), [x], engines=1, pytorch_ops=[])
    assert "aten.softplus.default" not in str(run.reports)


FULL = {"require_full_compilation": True}


def _dynamic(x: torch.Tensor) -> dict[int, list[int]] | None:
    return {0: [0]} if x.dim() and x.shape[0] >= 2 else None


COMPOSED = {  # name: op taking (x, drawn argument)
    "hardsigmoid": lambda x, a: F.hardsigmoid(x),
    "hardswish": lambda x, a: F.hardswish(x),
    "mish": lambda x, a: F.mish(x),
    "selu": lambda x, a: F.selu(x),
    "celu": lambda x, a: F.celu(x, alpha=a),
    "logsigmoid": lambda x, a: F.logsigmoid(x * 10 * a),
    "softshrink": lambda x, a: F.softshrink(x, a),
    "hardshrink": lambda x, a: F.hardshrink(x, a),
    "threshold": lambda x, a: F.threshold(x, a, -a),
    "rrelu": lambda x, a: F.rrelu(x, a / 4, a, training=False) * 2,
}


@pytest.mark.parametrize("name", sorted(COMPOSED))
@settings(**PER_OP)
@given(shape=shapes(),
       dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]),
       argument=st.sampled_from([0.5, 1.0, 2.0, 0.1]), seed=seeds, dynamic=st.booleans())
def test_composed_activations(name, shape, dtype, argument, seed, dynamic):
    x = (tensor(shape, torch.float32, seed) * 4).to(dtype)
    op = COMPOSED[name]
    assert_converts(lambda x: op(x, argument), [x], FULL, dynamic=_dynamic(x) if dynamic else None)


@pytest.mark.parametrize("name", ["hardswish", "mish", "selu", "celu", "logsigmoid", "softshrink"])
@settings(**PER_OP)
@given(shape=shapes(), precision=precisions, seed=seeds)
def test_activations_under_precision(name, shape, precision, seed):
    x = tensor(shape, torch.float32, seed) * 3
    assert_converts(lambda x: COMPOSED[name](x, 0.5), [x], {**FULL, "precision": precision})


@pytest.mark.parametrize("name", ["softshrink", "hardshrink", "threshold", "logsigmoid", "hardswish"])
@settings(**PER_OP)
@given(shape=shapes(), seed=seeds)
def test_nan_and_infinities(name, shape, seed):
    x = tensor(shape, torch.float32, seed) * 3
    pick = torch.randint(0, 6, shape, generator=torch.Generator().manual_seed(seed))
    specials = torch.tensor([math.nan, math.inf, -math.inf, 0.5, -0.5])
    x = torch.where(pick < 5, specials[pick.clamp(max=4)], x)
    assert_converts(lambda x: COMPOSED[name](x, 0.5), [x], FULL)


@settings(**FAST)
@given(shape=shapes(min_rank=1), data=st.data(), dtype=st.sampled_from(
    [torch.float32, torch.float16, torch.bfloat16]), seed=seeds)
def test_glu(shape, data, dtype, seed):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    shape = list(shape)
    shape[dim] = 2 * data.draw(st.integers(1, 3))
    x = tensor(tuple(shape), dtype, seed)
    dynamic = {0: [0]} if shape[0] >= 2 and dim % len(shape) != 0 else None
    assert_converts(lambda x: F.glu(x, dim), [x], FULL, dynamic=dynamic)


@settings(**FAST)
@given(shape=shapes(min_rank=1), channels=st.booleans(), dtype=st.sampled_from(
    [torch.float32, torch.float16]), seed=seeds, frozen=st.booleans())
def test_prelu(shape, channels, dtype, seed, frozen):
    x = tensor(shape, dtype, seed)
    count = shape[1] if channels and len(shape) >= 2 else 1
    weight = (tensor((count,), torch.float32, seed + 1) * 0.5).to(dtype)
    if frozen:
        module = torch.nn.PReLU(count).to(dtype)
        module.weight.data.copy_(weight)
        assert_converts(module, [x], FULL, dynamic=_dynamic(x))
    else:
        assert_converts(F.prelu, [x, weight], FULL)


@settings(**FAST)
@given(shape=shapes(), seed=seeds, name=st.sampled_from(["glu_dynamic_dim", "int_softshrink"]))
def test_declined_cases_run_in_pytorch(shape, seed, name):
    """glu along a dynamic dim and a training-free op on integers are declined; eager matches."""
    if name == "glu_dynamic_dim":
        x = tensor((4,) + shape, torch.float32, seed)
        run = assert_converts(lambda x: F.glu(x, 0) * 2, [x], engines=None, pytorch_ops=None,
                              dynamic={0: [0]})
        assert "aten.glu.default" in run.pytorch_ops
    else:
        x = tensor(shape, torch.int32, seed)
        run = assert_converts(lambda x: F.hardshrink(x.float(), 0.5).int() + torch.threshold(
            x.double(), 1.0, 0.0).int(), [x], engines=None, pytorch_ops=None)
        assert "aten.threshold.default" in run.pytorch_ops


def test_declined_prelu_of_a_scalar_and_fractional_integer_threshold():
    """A 0-d prelu input (TensorRT would return 1-d) and an integer threshold at 1.5 (the
    engine would compare against 1) stay in PyTorch, and match eager."""
    run = assert_converts(lambda x, w: F.prelu(x, w) + 1, [torch.tensor(-2.0), torch.tensor([0.3])],
                          engines=None, pytorch_ops=None)
    assert "aten._prelu_kernel.default" in run.pytorch_ops
    x = torch.arange(-3, 4, dtype=torch.int32).reshape(1, 7)
    run = assert_converts(lambda x: F.threshold(x, 1.5, 0) + 1, [x], engines=None, pytorch_ops=None)
    assert "aten.threshold.default" in run.pytorch_ops
    assert_converts(lambda x: F.threshold(x, 1, -4) + 1, [x], FULL)
