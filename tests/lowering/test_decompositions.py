"""Built-in decompositions: attention reaches TensorRT as matmuls and a softmax."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from plugtrt.manager import default_registry
from plugtrt.testing import assert_converts, run_through_backend, assert_close_to_eager

aten = torch.ops.aten


@settings(max_examples=10, deadline=None)
@given(batch=st.integers(1, 2), heads=st.integers(1, 3), q_len=st.integers(1, 5), kv_len=st.integers(1, 5),
       dim=st.sampled_from([4, 8]), masked=st.booleans(), scale=st.sampled_from([None, 0.5]),
       precision=st.sampled_from([torch.float32, torch.float16]))
def test_attention_converts_whole(batch, heads, q_len, kv_len, dim, masked, scale, precision):
    g = torch.Generator().manual_seed(batch * 100 + q_len * 10 + kv_len)
    q, k, v = (torch.randn(batch, heads, n, dim, generator=g) for n in (q_len, kv_len, kv_len))
    inputs = [q, k, v] + ([torch.randn(q_len, kv_len, generator=g)] if masked else [])

    def attention(q, k, v, mask=None):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    assert_converts(attention, inputs, {"precision": precision})


def test_causal_attention_matches_eager():
    q, k, v = (torch.randn(1, 2, 4, 8) for _ in range(3))
    run = run_through_backend(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                              [q, k, v])
    assert run.engines >= 1 and not run.fallbacks
    assert_close_to_eager(run)


def test_every_fused_attention_kernel_has_a_stable_decomposition():
    kernels = {aten._scaled_dot_product_flash_attention_for_cpu.default,
               aten._scaled_dot_product_efficient_attention.default,
               aten._scaled_dot_product_flash_attention.default,
               aten._scaled_dot_product_cudnn_attention.default}
    found = {r.record.target: r for r in default_registry().decompositions if r.record.target in kernels}
    assert set(found) == kernels
    assert all(not r.record.experimental and r.plugin == "plugtrt.lowering.decompositions"
               for r in found.values())
