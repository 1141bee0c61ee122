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


def test_a_weights_quantize_dequantize_is_not_folded_into_float32():
    """A constant's Q/DQ stays (so TensorRT stores the weight as int8), while what only reshapes
    the dequantized weight still reads it."""
    from plugtrt.quantization import quantized_decomposed_ops

    qd = quantized_decomposed_ops()
    weight = torch.randint(-127, 128, (4, 3), dtype=torch.int8)

    class Module(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("weight", weight)
            self.register_buffer("scales", torch.full((4,), 0.1))

        def forward(self, x):
            w = qd.dequantize_per_channel.default(self.weight, self.scales, None, 0, -127, 127, torch.int8)
            w = torch.fake_quantize_per_tensor_affine(w, 0.2, 0, -128, 127)
            return x @ w.t()

    module, x = Module(), torch.randn(2, 3)
    gm = make_fx(module)(x)  # real tracing: the buffers become get_attr constants
    folded = fold_constants(gm, CompilationSettings())
    assert {qd.dequantize_per_channel.default,
            aten.fake_quantize_per_tensor_affine_cachemask.default} <= _targets(folded), _targets(folded)
    torch.testing.assert_close(folded(x), module(x))
