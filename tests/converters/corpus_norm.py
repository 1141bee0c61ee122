"""Corpus entries for the normalization, attention and linalg families."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .corpus import aten, x

F, B = torch.float32, torch.bool
_sdpa = torch.nn.functional.scaled_dot_product_attention


def _cuda_only(kernel: Callable[..., Any]) -> Callable[..., Any]:
    """An entry for a kernel that exists only on CUDA: traced (fake tensors, its meta function)
    as itself; run eagerly on CPU as the attention it computes."""
    from torch._subclasses.fake_tensor import is_fake

    def call(q, k, v, *mask):
        if is_fake(q):
            return kernel(q, k, v, *mask)
        return _sdpa(q, k, v, mask[0] if mask else None, is_causal=kernel is _flash_causal)
    return call


def _flash_causal(q, k, v):
    return aten._scaled_dot_product_flash_attention.default(q, k, v, 0.0, True)[0]


Q, K, V = x(2, 2, 3, 4), x(2, 2, 5, 4), x(2, 2, 5, 4)
CORPUS: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
    # normalization
    (lambda t, w, b: aten.native_group_norm.default(t, w, b, 2, 4, 6, 2, 1e-5)[0],
     (x(2, 4, 2, 3), x(4), x(4))),
    (lambda t: aten._native_batch_norm_legit.no_stats(t, None, None, True, 0.1, 1e-5)[0],
     (x(1, 6, 3, 3),)),
    (lambda t, w: aten.rms_norm.default(t, [4], w, None), (x(2, 3, 4), x(4))),
    (lambda t, w: aten._fused_rms_norm.default(t, [3, 4], w, 1e-6)[0], (x(2, 3, 4), x(3, 4))),
    (lambda t, w, b: aten.layer_norm.default(t, [4], w, b, 1e-5), (x(2, 3, 4), x(4), x(4))),
    # attention
    (lambda q, k, v, m: aten.scaled_dot_product_attention.default(q, k, v, m), (Q, K, V, x(3, 5, dtype=B))),
    (lambda q, k, v: aten.scaled_dot_product_attention.default(q, k, v, is_causal=True, enable_gqa=True),
     (x(2, 4, 3, 4), K, V)),
    (lambda q, k, v, m: aten._scaled_dot_product_attention_math.default(q, k, v, m)[0], (Q, K, V, x(2, 1, 3, 5))),
    (lambda q, k, v, m: aten._scaled_dot_product_flash_attention_for_cpu.default(q, k, v, attn_mask=m)[0],
     (Q, K, V, x(3, 5))),
    (_cuda_only(lambda q, k, v, m: aten._scaled_dot_product_efficient_attention.default(q, k, v, m, False)[0]),
     (Q, K, V, x(2, 2, 3, 5))),
    (_cuda_only(lambda q, k, v, m: aten._scaled_dot_product_cudnn_attention.default(q, k, v, m, False)[0]),
     (Q, K, V, x(2, 2, 3, 5))),
    (_cuda_only(_flash_causal), (Q, K, V)),
    # linalg
    (lambda c, a, b: aten.baddbmm.default(c, a, b, beta=0.5, alpha=2.0), (x(2, 3, 5), x(2, 3, 4), x(2, 4, 5))),
    (lambda c, a, b: aten.addbmm.default(c, a, b, alpha=-1.0), (x(3, 5), x(2, 3, 4), x(2, 4, 5))),
    (lambda c, a, b: aten.addmv.default(c, a, b, beta=0.0), (x(3), x(3, 4), x(4))),
    (aten.dot.default, (x(5), x(5))), (aten.vdot.default, (x(5), x(5))),
    (aten.outer.default, (x(3), x(4, dtype=torch.int32))),
    (lambda c, a, b: aten.addr.default(c, a, b, beta=2, alpha=3), (x(3, 4, dtype=torch.int32), x(3, dtype=torch.int32), x(4, dtype=torch.int32))),
    (lambda a, b: aten.linalg_cross.default(a, b, dim=1), (x(2, 3, 4), x(2, 3, 1))),
    (lambda a, b: aten.cross.default(a, b), (x(3, 4), x(3, 4))),
    (lambda a, b: aten._cdist_forward.default(a, b, 2.0, None), (x(2, 5, 3), x(2, 4, 3))),
    (lambda a, b: aten._cdist_forward.default(a, b, 1.5, None), (x(5, 3), x(4, 3))),
    (aten._euclidean_dist.default, (x(5, 3), x(4, 3))),
    (lambda a: aten._pdist_forward.default(a, 1.0), (x(4, 3),)),
    (lambda a, b: aten.einsum.default("bij,bkj->bik", [a, b]), (x(2, 3, 4), x(2, 5, 4))),
]

DYNAMIC_EXTRA: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
    (lambda t, w, b: aten.native_group_norm.default(t, w, b, t.shape[0], 4, 6, 2, 1e-5)[0],
     (x(2, 4, 2, 3), x(4), x(4))),
    (lambda t, w, b: aten._native_batch_norm_legit.no_stats(t, w, b, True, 0.1, 1e-5)[0],
     (x(3, 4, 3), x(4), x(4))),
    # attention: keys and values made from the queries, so every batch dim is the one symbol
    (lambda q: aten._scaled_dot_product_flash_attention_for_cpu.default(q, q * 0.5, q)[0], (Q,)),
    (lambda q: _cuda_only(lambda *t: aten._scaled_dot_product_efficient_attention.default(
        *t, None, False)[0])(q, q * 0.5, q), (Q,)),
    (lambda q: _cuda_only(lambda *t: aten._scaled_dot_product_cudnn_attention.default(
        *t, None, False)[0])(q, q * 0.5, q), (Q,)),
    (lambda q: _cuda_only(_flash_causal)(q, q * 0.5, q), (Q,)),
    # linalg: the second operand made from the first, so that they share the symbol
    (lambda a: aten.dot.default(a, a * 0.5), (x(5),)),
    (lambda a: aten.vdot.default(a, a * 0.5), (x(5),)),
    (lambda a: aten.outer.default(a, a), (x(5),)),
    (lambda a: aten.addr.default(a, a, a), (x(4),)),
    (lambda a: aten.addmv.default(a, a.unsqueeze(1).expand(-1, 3), torch.ones(3)), (x(4),)),
    (lambda a: aten.linalg_cross.default(a, a * a), (x(2, 3),)),
    (lambda a: aten.cross.default(a, a * a, 1), (x(2, 3),)),
    (lambda a: aten._cdist_forward.default(a, a * 0.5, 2.0, None), (x(2, 5, 3),)),
    (lambda a: aten._euclidean_dist.default(a, a * 0.5), (x(5, 3),)),
    (lambda a: aten.einsum.default("ij,kj->ik", [a, a * 0.5]), (x(3, 4),)),
]

