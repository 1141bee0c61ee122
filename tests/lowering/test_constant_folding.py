"""Input-free subgraphs become constants; random ops, inputs and weights are left alone."""
from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.fx.experimental.proxy_tensor import make_fx

from plugtrt import CompilationSettings
from plugtrt.lowering.constant_folding import fold_constants
from plugtrt.testing import assert_converts

aten = torch.ops.aten


def _targets(gm):
    return {n.target for n in gm.graph.nodes if n.op == "call_function"}


@given(n=st.integers(1, 6), offset=st.integers(-3, 3))
def test_causal_mask_and_positions_fold(n, offset):
    def f(x):
        mask = torch.ones(n, n, dtype=torch.bool).tril(offset)
        positions = torch.arange(n) + 1
        return x.masked_fill(~mask, 0.0) * positions
    gm = make_fx(f, tracing_mode="fake")(torch.randn(n, n))
    folded = fold_constants(gm, CompilationSettings())
    assert not _targets(folded) & {aten.ones.default, aten.tril.default, aten.arange.default}
    x = torch.randn(n, n)
    torch.testing.assert_close(folded(x), f(x))


def test_random_and_input_dependent_ops_stay():
    gm = make_fx(lambda x: x + torch.rand(3) + torch.arange(3), tracing_mode="fake")(torch.randn(3))
    folded = fold_constants(gm, CompilationSettings())
    assert aten.rand.default in _targets(folded) and aten.add.Tensor in _targets(folded)
    assert aten.arange.default not in _targets(folded)


def test_causal_attention_mask_runs_in_one_engine():
    def f(x):
        n = x.shape[-1]
        return torch.softmax(x.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), -1e4), -1)
    assert_converts(f, [torch.randn(2, 5, 5)])
