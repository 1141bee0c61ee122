"""The FP8 scaled-cast pass: each half of ``(x / s).to(fp8).to(float) * s`` becomes one op,
computing what it replaces; look-alikes are left alone."""
from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.fx.experimental.proxy_tensor import make_fx

from plugtrt import CompilationSettings
from plugtrt.lowering.fp8_cast import rewrite_fp8_casts

FP8 = torch.float8_e4m3fn
plugtrt_ops = torch.ops.plugtrt


def _targets(gm):
    return {n.target for n in gm.graph.nodes if n.op == "call_function"}


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(1e-3, 10.0), clamp=st.booleans(), dtype=st.sampled_from([torch.float32, torch.float16]),
       tensor_scale=st.booleans(), seed=st.integers(0, 2**16))
def test_scaled_casts_become_quantize_and_dequantize(scale, clamp, dtype, tensor_scale, seed):
    def f(x):
        s = x.abs().amax() / 448 + 1e-3 if tensor_scale else scale
        y = x / s
        if clamp:
            y = y.clamp(-448.0, 448.0)
        return y.to(FP8).to(dtype) * s

    x = (torch.randn(4, 5, generator=torch.Generator().manual_seed(seed)) * scale * 500).to(dtype)
    gm = rewrite_fp8_casts(make_fx(f)(x), CompilationSettings())
    assert {plugtrt_ops.quantize_fp8.default, plugtrt_ops.dequantize_fp8.default} <= _targets(gm)
    assert torch.ops.aten._to_copy.default not in _targets(gm)
    torch.testing.assert_close(gm(x), f(x), rtol=0, atol=0)


def test_look_alikes_stay():
    """A cast without a division, a promoting division and a narrow clamp are not the pattern."""
    def f(x):
        a = x.to(FP8).to(torch.float32)  # no scaling at all
        b = (x.half() / torch.ones(5)).to(FP8).to(torch.float32)  # the division promotes to float32
        c = (x / 2.0).clamp(-10, 10).to(FP8).to(torch.float32) * 2.0  # clamp narrower than 448
        return a + b + c

    x = torch.randn(4, 5) * 100
    gm = rewrite_fp8_casts(make_fx(f)(x), CompilationSettings())
    assert plugtrt_ops.quantize_fp8.default not in _targets(gm)
    torch.testing.assert_close(gm(x), f(x))
