"""Activation converters through the whole backend, in float32 and under fp16 precision."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

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
        "builtin.hardtanh", "builtin.leaky_relu", "builtin.elu", "builtin.softplus"}


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
