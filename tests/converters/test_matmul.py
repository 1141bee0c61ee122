"""Matrix-product converters through the whole backend: mm, bmm, mv, addmm, linear."""
from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from plugtrt.converters import matmul
from plugtrt.testing import assert_converts

from .strategies import FAST, converter_names, precisions, seeds, tensor

dims = st.integers(1, 6)


def test_registers_through_a_fresh_manager():
    assert converter_names(matmul) == {"builtin.mm", "builtin.bmm", "builtin.mv", "builtin.matmul",
                                       "builtin.addmm", "builtin.linear"}


@settings(**FAST)
@given(batch=st.lists(st.integers(1, 3), max_size=2), m=dims, k=dims, n=dims,
       broadcast=st.booleans(), precision=precisions, seed=seeds)
def test_matmul(batch, m, k, n, broadcast, precision, seed):
    """mm (no batch), bmm (one batch dim), broadcast batch dims (view + bmm after tracing)."""
    a = tensor((*batch, m, k), torch.float32, seed)
    b = tensor((*(batch[-1:] if broadcast else batch), k, n), torch.float32, seed + 1)
    assert_converts(torch.matmul, [a, b], {"precision": precision})


@settings(**FAST)
@given(m=dims, k=dims, vector_first=st.booleans(), seed=seeds)
def test_matrix_vector(m, k, vector_first, seed):
    a, v = tensor((m, k), torch.float32, seed), tensor((m if vector_first else k,), torch.float32, seed)
    assert_converts((lambda a, v: v @ a) if vector_first else (lambda a, v: a @ v), [a, v])


@settings(**FAST)
@given(m=dims, k=dims, n=dims, bias_shape=st.sampled_from(["row", "full", "scalar"]),
       beta=st.sampled_from([1, 0, 0.5]), alpha=st.sampled_from([1, 2, -0.5]),
       precision=precisions, seed=seeds)
def test_addmm(m, k, n, bias_shape, beta, alpha, precision, seed):
    shape = {"row": (n,), "full": (m, n), "scalar": ()}[bias_shape]
    bias = tensor(shape, torch.float32, seed)
    if beta == 0:
        bias = bias.fill_(float("nan"))  # torch ignores the input when beta is 0
    a, b = tensor((m, k), torch.float32, seed + 1), tensor((k, n), torch.float32, seed + 2)
    assert_converts(lambda bias, a, b: torch.addmm(bias, a, b, beta=beta, alpha=alpha),
                    [bias, a, b], {"precision": precision})


@settings(**FAST)
@given(lead=st.lists(st.integers(1, 3), max_size=2), k=dims, n=dims, bias=st.booleans(),
       precision=precisions, seed=seeds)
def test_linear_module(lead, k, n, bias, precision, seed):
    """nn.Linear with frozen weights (constants in the engine), any number of leading dims."""
    torch.manual_seed(seed)
    model = nn.Linear(k, n, bias=bias)
    assert_converts(model, [tensor((*lead, k), torch.float32, seed)], {"precision": precision})


def test_functional_linear_with_weight_inputs():
    x, w, b = tensor((2, 3, 4), torch.float32, 0), tensor((5, 4), torch.float32, 1), tensor(
        (5,), torch.float32, 2)
    assert_converts(torch.nn.functional.linear, [x, w, b])
