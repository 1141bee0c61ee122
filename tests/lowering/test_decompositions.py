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


@settings(max_examples=8, deadline=None)
@given(sizes=st.tuples(*[st.integers(1, 5)] * 4), head=st.sampled_from([4, 8]), causal=st.booleans(),
       scale=st.sampled_from([None, 0.5]), dtype=st.sampled_from([torch.float32, torch.float16]))
def test_flash_decomposition_returns_the_kernels_logsumexp(sizes, head, causal, scale, dtype):
    """The CUDA flash kernel returns its logsumexp beside the output; code that reads it (merging
    partial attentions) gets what the kernel's CPU twin computes, not a placeholder."""
    batch, heads, queries, keys = sizes
    q = torch.randn(batch, heads, queries, head, dtype=dtype)
    k, v = (torch.randn(batch, heads, keys, head, dtype=dtype) for _ in range(2))
    (flash,) = [r.record.fn for r in default_registry().decompositions
                if r.record.target is aten._scaled_dot_product_flash_attention.default]
    out, logsumexp = flash(q, k, v, 0.0, causal, scale=scale)[:2]
    want_out, want_logsumexp = aten._scaled_dot_product_flash_attention_for_cpu.default(
        q, k, v, 0.0, causal, scale=scale)
    rtol, atol = (1e-5, 1e-5) if dtype == torch.float32 else (1e-2, 1e-2)
    torch.testing.assert_close(out, want_out, rtol=rtol, atol=atol)
    torch.testing.assert_close(logsumexp, want_logsumexp, rtol=1e-4, atol=1e-4)


@settings(max_examples=8, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), low=st.integers(-5, 0),
       span=st.integers(0, 6), dtype=st.sampled_from([torch.int32, torch.int64]))
def test_node_its_converter_declines_is_decomposed_and_converts(shape, low, span, dtype):
    """The hardtanh converter takes floats only; on integers the node alone is decomposed (into a
    clamp), and the result goes to TensorRT instead of PyTorch."""
    x = torch.randint(-9, 9, shape, dtype=dtype)
    run = assert_converts(lambda x: F.hardtanh(x * 3, low, low + span) + 1, [x])
    used = {c for r in run.reports for e in r.engines for c in e.converters}
    assert "builtin.clamp" in used and "builtin.hardtanh" not in used


def test_node_a_converter_accepts_stays_whole():
    run = assert_converts(lambda x: F.hardtanh(x * 3, -1.5, 2.0), [torch.randn(4, 5)])
    assert "builtin.hardtanh" in {c for r in run.reports for e in r.engines for c in e.converters}


def _layer_norm_with_statistics(x, w, b):
    out, mean, rstd = torch.native_layer_norm(x, (x.shape[-1],), w, b, 1e-5)
    return out * 2, mean + 1, rstd * 3


@settings(max_examples=6, deadline=None)
@given(rows=st.integers(1, 4), width=st.integers(2, 9), magnitude=st.sampled_from([1.0, 300.0]))
def test_experimental_decompositions_take_declined_layer_norm_to_tensorrt(rows, width, magnitude):
    """The layer-norm converter declines a node whose mean and rstd outputs are read; only with
    enable_experimental_decompositions=True is it decomposed (through var_mean) and converted."""
    g = torch.Generator().manual_seed(rows * 10 + width)
    inputs = [torch.randn(rows, 3, width, generator=g) * magnitude, torch.randn(width, generator=g),
              torch.randn(width, generator=g)]
    off = run_through_backend(_layer_norm_with_statistics, inputs)
    assert off.pytorch_ops == ["aten.native_layer_norm.default"]
    on = assert_converts(_layer_norm_with_statistics, inputs,
                         {"enable_experimental_decompositions": True}, rtol=1e-4, atol=1e-4)
    assert on.pytorch_ops == []


@settings(max_examples=8, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), correction=st.sampled_from([0, 1, None]),
       keepdim=st.booleans(), data=st.data())
def test_experimental_var_mean_decomposition_matches_eager(shape, correction, keepdim, data):
    dims = data.draw(st.one_of(st.none(), st.lists(st.integers(0, len(shape) - 1), min_size=1,
                                                   max_size=len(shape), unique=True)))
    x = torch.randn(shape) * 10
    assert_converts(lambda x: torch.var_mean(x + 1, dims, correction=correction, keepdim=keepdim), [x],
                    {"enable_experimental_decompositions": True}, rtol=1e-4, atol=1e-4)
