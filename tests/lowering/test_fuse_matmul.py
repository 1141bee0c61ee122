"""Flattened linears and batched matmuls become one matrix multiply, with no shuffles."""
from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from plugtrt.testing import assert_converts

from ..converters.strategies import FAST, seeds, shapes, tensor


@settings(**FAST)
@given(lead=shapes(2, 3, 1, 4), features=st.tuples(st.integers(1, 6), st.integers(1, 6)),
       bias=st.booleans(), precision=st.sampled_from([torch.float32, torch.float16]), seed=seeds)
def test_linear_on_batched_input_is_one_matmul(lead, features, bias, precision, seed):
    torch.manual_seed(seed)
    model = nn.Linear(*features, bias=bias).eval()
    run = assert_converts(model, [tensor(lead + (features[0],), torch.float32, seed)],
                          {"precision": precision})
    types = run.reports[0].engines[0].layer_types
    assert types.get("MATRIX_MULTIPLY") == 1 and "SHUFFLE" not in types, types


@settings(**FAST)
@given(lead=shapes(2, 3, 1, 3), m=st.integers(1, 5), k=st.integers(1, 5), n=st.integers(1, 5),
       seed=seeds)
def test_batched_matmul_keeps_its_batch_dims(lead, m, k, n, seed):
    a, b = tensor(lead + (m, k), torch.float32, seed), tensor(lead + (k, n), torch.float32, seed + 1)
    run = assert_converts(lambda a, b: (a * 2) @ (b + 1), [a, b])
    types = run.reports[0].engines[0].layer_types
    assert types.get("MATRIX_MULTIPLY") == 1 and "SHUFFLE" not in types, types


def test_flattened_input_read_elsewhere_still_matches_eager():
    torch.manual_seed(0)
    linear = nn.Linear(4, 3).eval()
    assert_converts(lambda x: (linear(x), x.reshape(-1, 4) * 2), [torch.randn(2, 5, 4)])
