"""Scaled dot-product attention in each of its aten forms: masks (bool, float, broadcast, rows
removed entirely), is_causal, scale, grouped query heads, half precision."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from plugtrt.converters import attention
from plugtrt.testing import assert_converts

from .pre_dispatch import assert_pre_dispatch_converts
from .strategies import converter_names, seeds

FAST = dict(max_examples=12, deadline=None)  # each example traces, builds and evaluates

aten = torch.ops.aten
dtypes = st.sampled_from([torch.float32, torch.float16, torch.bfloat16])


def test_registers_through_a_fresh_manager():
    assert converter_names(attention) == {
        "builtin.scaled_dot_product_attention", "builtin._scaled_dot_product_attention_math",
        "builtin._scaled_dot_product_flash_attention_for_cpu",
        "builtin._scaled_dot_product_efficient_attention",
        "builtin._scaled_dot_product_cudnn_attention",
        "builtin._scaled_dot_product_flash_attention"}


@st.composite
def problems(draw, gqa: bool = False, mask_kinds=("none", "bool", "float", "-inf"),
             same_head: bool = False):
    """q, k, v (and a mask broadcastable to the scores) with drawn sizes and dtype."""
    batch, heads, lq, lk = (draw(st.integers(1, 3)), draw(st.sampled_from([1, 2, 4])),
                            draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    kv_heads = draw(st.sampled_from([h for h in (1, 2, 4) if heads % h == 0])) if gqa else heads
    e = draw(st.sampled_from([4, 8, 16]))
    ev = e if same_head else draw(st.sampled_from([3, 8]))
    dtype = draw(dtypes)
    g = torch.Generator().manual_seed(draw(seeds))
    spread = draw(st.sampled_from([1.0, 3.0]))
    q = (torch.randn(batch, heads, lq, e, generator=g) * spread).to(dtype)
    k = (torch.randn(batch, kv_heads, lk, e, generator=g) * spread).to(dtype)
    v = torch.randn(batch, kv_heads, lk, ev, generator=g).to(dtype)
    kind = draw(st.sampled_from(mask_kinds))
    mask = None
    if kind != "none":
        shape = [batch, heads, lq, lk]
        for i in range(4):
            if draw(st.booleans()):
                shape[i] = 1
        shape = shape[draw(st.integers(0, 2)):]
        keep = torch.rand(shape, generator=g) > 0.4
        if draw(st.booleans()):  # a row with nothing to attend to
            keep[..., 0, :] = False
        mask = {"bool": keep, "float": torch.randn(shape, generator=g).to(dtype),
                "-inf": torch.zeros(shape).masked_fill(~keep, -math.inf).to(dtype)}[kind]
    return q, k, v, mask


def _reference(q, k, v, mask=None, causal=False, scale=None, gqa=False, bool_adds=False):
    """Attention in float64, fully masked rows 0: what the fused kernels give."""
    if gqa and k.shape[-3] != q.shape[-3]:
        k = k.repeat_interleave(q.shape[-3] // k.shape[-3], -3)
        v = v.repeat_interleave(q.shape[-3] // v.shape[-3], -3)
    s = q.double() @ k.double().mT * (scale if scale is not None else 1 / math.sqrt(q.shape[-1]))
    if causal:
        s = s.masked_fill(~torch.ones(s.shape[-2:], dtype=torch.bool).tril(), -math.inf)
    if mask is not None:
        s = s + mask.double() if mask.dtype != torch.bool or bool_adds else \
            s.masked_fill(~mask, -math.inf)
    w = torch.softmax(s, -1).nan_to_num(0.0)
    return (w @ v.double()).to(q.dtype)


@settings(**FAST)
@given(problem=problems(gqa=True), causal=st.booleans(), scale=st.sampled_from([None, 0.3]),
       gqa=st.booleans())
def test_scaled_dot_product_attention(problem, causal, scale, gqa):
    q, k, v, mask = problem
    if not gqa:
        k, v = k[:, :1].expand(-1, q.shape[1], -1, -1), v[:, :1].expand(-1, q.shape[1], -1, -1)
    if causal:
        mask = None  # eager refuses both

    def fn(q, k, v, *m):
        return aten.scaled_dot_product_attention.default(q, k, v, m[0] if m else None, 0.0, causal,
                                                         scale=scale, enable_gqa=gqa)
    inputs = [q, k, v] + ([mask] if mask is not None else [])
    assert_pre_dispatch_converts(fn, inputs, "builtin.scaled_dot_product_attention")


@settings(**FAST)
@given(problem=problems(gqa=True), causal=st.booleans(), scale=st.sampled_from([None, 2.0]))
def test_math_kernel(problem, causal, scale):
    """The math kernel adds a bool mask as 0/1 (its composite converted real masks before)."""
    q, k, v, mask = problem
    mask = None if causal else mask

    def fn(q, k, v, *m):
        return aten._scaled_dot_product_attention_math.default(
            q, k, v, m[0] if m else None, 0.0, causal, scale=scale, enable_gqa=True)[0]
    inputs = [q, k, v] + ([mask] if mask is not None else [])
    # eager computes a half kernel's scores in half: there, compare with float64 instead
    reference = None if q.dtype == torch.float32 else \
        (lambda *t: _reference(q, k, v, mask, causal, scale, gqa=True, bool_adds=True))
    assert_pre_dispatch_converts(fn, inputs, "builtin._scaled_dot_product_attention_math",
                                 expected=reference)


@settings(**FAST)
@given(problem=problems(same_head=True), causal=st.booleans(), scale=st.sampled_from([None, 0.5]))
def test_flash_attention_for_cpu(problem, causal, scale):
    q, k, v, mask = problem
    mask = None if causal else mask
    if mask is not None and mask.dtype == torch.bool:  # the CPU kernel wants the query's dtype
        mask = torch.zeros(mask.shape).masked_fill(~mask, -math.inf)
    mask = mask.to(q.dtype) if mask is not None else None
    if mask is not None and mask.dim() == 3:  # the CPU kernel takes 2-D or 4-D masks
        mask = mask[None]

    def fn(q, k, v, *m):
        return aten._scaled_dot_product_flash_attention_for_cpu.default(
            q, k, v, 0.0, causal, attn_mask=m[0] if m else None, scale=scale)[0]
    inputs = [q, k, v] + ([mask] if mask is not None else [])
    assert_pre_dispatch_converts(fn, inputs, "builtin._scaled_dot_product_flash_attention_for_cpu")


@settings(**FAST)
@given(problem=problems(mask_kinds=("none", "float", "-inf")), causal=st.booleans(),
       scale=st.sampled_from([None, 0.5]), cudnn=st.booleans())
def test_cuda_kernels_with_bias(problem, causal, scale, cudnn):
    """efficient and cuDNN exist only on CUDA: traced here on CPU through their meta functions
    and compared with attention in float64 (fully masked rows 0, as both kernels give on an
    H200 for -inf masks)."""
    q, k, v, mask = problem
    mask = None if causal else mask
    if mask is not None:
        mask = mask.to(q.dtype).expand(q.shape[0], q.shape[1], q.shape[2], k.shape[2])
    op = aten._scaled_dot_product_cudnn_attention.default if cudnn else \
        aten._scaled_dot_product_efficient_attention.default

    def fn(q, k, v, *m):
        return op(q, k, v, m[0] if m else None, False, 0.0, causal, scale=scale)[0]
    inputs = [q, k, v] + ([mask] if mask is not None else [])
    name = "builtin." + op.name().split("::")[1]
    assert_pre_dispatch_converts(fn, inputs, name, expected=lambda *t: _reference(
        q, k, v, mask, causal, scale))


@settings(**FAST)
@given(problem=problems(mask_kinds=("none",), same_head=True), causal=st.booleans())
def test_flash_kernel(problem, causal):
    q, k, v, _ = problem

    def fn(q, k, v):
        return aten._scaled_dot_product_flash_attention.default(q, k, v, 0.0, causal)[0]
    assert_pre_dispatch_converts(fn, [q, k, v], "builtin._scaled_dot_product_flash_attention",
                                 expected=lambda *t: _reference(q, k, v, None, causal))


def test_efficient_kernel_zeroes_rows_masked_with_the_lowest_float():
    """On an H200, float32: a row masked with finfo(float32).min is 0 under the efficient
    kernel (the CPU kernels average it uniformly)."""
    q, k, v = torch.randn(1, 2, 4, 8), torch.randn(1, 2, 8, 8), torch.randn(1, 2, 8, 8)
    mask = torch.zeros(1, 2, 4, 8)
    mask[:, :, 1] = torch.finfo(torch.float32).min

    def fn(q, k, v, m):
        return aten._scaled_dot_product_efficient_attention.default(q, k, v, m, False)[0]
    expected = _reference(q, k, v, mask)
    expected[:, :, 1] = 0
    assert_pre_dispatch_converts(fn, [q, k, v, mask], "builtin._scaled_dot_product_efficient_attention",
                                 expected=lambda *t: expected)


def test_flash_for_cpu_averages_rows_masked_with_the_lowest_float():
    q, k, v = torch.randn(1, 2, 4, 8), torch.randn(1, 2, 8, 8), torch.randn(1, 2, 8, 8)
    mask = torch.zeros(1, 2, 4, 8)
    mask[:, :, 1] = torch.finfo(torch.float32).min

    def fn(q, k, v, m):
        return aten._scaled_dot_product_flash_attention_for_cpu.default(q, k, v, attn_mask=m)[0]
    assert_pre_dispatch_converts(fn, [q, k, v, mask], "builtin._scaled_dot_product_flash_attention_for_cpu")


@settings(**FAST)
@given(problem=problems(mask_kinds=("none", "bool", "-inf")), causal=st.booleans(),
       precision=st.sampled_from([torch.float32, torch.float16]))
def test_through_compile(problem, causal, precision):
    """torch.compile on CPU tensors: attention arrives as PyTorch's math formulation and
    converts whole, in float32 softmax under half precision."""
    q, k, v, mask = problem
    mask = None if causal else mask
    if mask is not None and mask.dtype != torch.bool:
        mask = mask.to(q.dtype)

    def fn(q, k, v, *m):
        return F.scaled_dot_product_attention(q, k, v, m[0] if m else None, is_causal=causal)
    inputs = [q, k, v] + ([mask] if mask is not None else [])
    assert_converts(fn, inputs, {"require_full_compilation": True, "precision": precision},
                    engines=None)


def _validator_accepts(fn, *inputs) -> bool:
    from torch.fx.experimental.proxy_tensor import make_fx

    from plugtrt.manager import default_registry
    from plugtrt.settings import CompilationSettings
    gm = make_fx(fn, tracing_mode="fake", pre_dispatch=True)(*inputs)
    gm.graph.eliminate_dead_code()
    node = next(n for n in gm.graph.nodes if "attention" in str(n.target))
    return default_registry().converter_for(node, CompilationSettings()) is not None


def test_dropout_and_read_statistics_are_declined():
    q, k, v = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 4)
    cpu = aten._scaled_dot_product_flash_attention_for_cpu.default
    assert _validator_accepts(lambda q, k, v: cpu(q, k, v)[0], q, k, v)
    assert not _validator_accepts(lambda q, k, v: cpu(q, k, v, 0.1)[0], q, k, v)
    assert not _validator_accepts(lambda q, k, v: cpu(q, k, v)[1], q, k, v)  # logsumexp
    sdpa = aten.scaled_dot_product_attention.default
    assert not _validator_accepts(lambda q, k, v: sdpa(q, k, v, None, 0.5), q, k, v)


def test_dropout_runs_in_pytorch_through_compile():
    """A training-mode dropout is PyTorch's to draw: nothing of it is converted."""
    q, k, v = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 4)
    torch.manual_seed(0)

    def fn(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=1.0)  # all dropped: 0, deterministic
    run = assert_converts(fn, [q, k, v], engines=None, pytorch_ops=None)
    assert run.pytorch_ops


def _layer_types(run) -> dict[str, int]:
    counts: dict[str, int] = {}
    for report in run.reports:
        for engine in report.engines:
            for kind, n in engine.layer_types.items():
                counts[kind] = counts.get(kind, 0) + n
    return counts


@settings(**FAST)
@given(precision=st.sampled_from([torch.float32, torch.float16]), causal=st.booleans(),
       scale=st.sampled_from([None, 0.3]))
def test_unmasked_grouped_attention_uses_tensorrts_attention_layer(precision, causal, scale):
    """Causal (torch's top-left alignment, with more keys than queries) or unmasked sdpa with
    grouped-query heads becomes TensorRT's own IAttention (ATTENTION_INPUT / ATTENTION_OUTPUT),
    builds, and matches eager."""
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, 5, 16), torch.randn(2, 2, 7, 16), torch.randn(2, 2, 7, 16)

    def fn(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale, enable_gqa=True)
    run = assert_converts(fn, [q, k, v], {"require_full_compilation": True, "precision": precision})
    types = run.reports[0].engines[0].layer_types
    assert types.get("ATTENTION_INPUT") == 1 and types.get("ATTENTION_OUTPUT") == 1, types
    assert "SOFTMAX" not in types, types


@settings(**FAST)
@given(kind=st.sampled_from(["bool", "float"]))
def test_masked_attention_keeps_the_matmul_form(kind):
    """With a mask, IAttention is not used (a fully masked row is unspecified there; torch
    gives 0): the matmul + softmax form, which zeroes such rows."""
    torch.manual_seed(0)
    q, k, v = torch.randn(1, 4, 5, 8), torch.randn(1, 2, 5, 8), torch.randn(1, 2, 5, 8)
    mask = torch.rand(1, 1, 5, 5) > 0.3
    mask[..., 0, :] = False  # one fully masked row
    if kind == "float":
        mask = torch.zeros(mask.shape).masked_fill(~mask, -math.inf)

    def fn(q, k, v, m):
        return F.scaled_dot_product_attention(q, k, v, m, enable_gqa=True)
    run = assert_converts(fn, [q, k, v, mask], {"require_full_compilation": True})
    types = _layer_types(run)
    assert "ATTENTION_INPUT" not in types and "ATTENTION_OUTPUT" not in types, types
    assert types.get("SOFTMAX") == 1, types
