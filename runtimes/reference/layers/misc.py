"""Composite layers: ATTENTION_INPUT / ATTENTION_OUTPUT, ROTARY_EMBEDDING, KV_CACHE_UPDATE.

An ``IAttention`` appears as two boundary layers; the input layer receives Q, K, V (and an
optional mask) and the output layer returns the result, so the whole computation happens at the
input layer and the output layer passes it on. IAttention applies no 1/sqrt(d) scaling of its
own: importers fold the scale into Q and K beforehand.
"""
from __future__ import annotations

import torch

from plugtrt.network_snapshot import LayerSnapshot
from plugtrt.runtimes.reference.layers.common import Context, unsupported


def attention_input(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """softmax(Q K^T + mask) V on [batch, heads, seq, dim]; K/V heads repeat for grouped queries."""
    p = layer.params
    if p.get("attention.norm_op") != "SOFTMAX":
        raise unsupported(layer, f"attention normalization {p.get('attention.norm_op')}")
    if p.get("attention.query_form", "PADDED_BHND") != "PADDED_BHND" or p.get(
            "attention.key_value_form", "PADDED_BHND") != "PADDED_BHND":
        raise unsupported(layer, "attention forms other than PADDED_BHND")
    q, k, v = inputs[:3]
    mask = inputs[3] if len(inputs) > 3 else None
    if (mask is not None) != bool(p.get("attention.has_mask", mask is not None)):
        raise unsupported(layer, "a mask the snapshot did not wire as the fourth input")
    if k.shape[1] != q.shape[1]:
        k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
        v = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
    work = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
    scores = torch.matmul(q.to(work), k.to(work).transpose(-1, -2))
    kind = p.get("attention.causal_kind", "LOWER_RIGHT" if p.get("attention.causal") else "NONE")
    if kind != "NONE":
        if mask is not None:
            raise unsupported(layer, "a mask combined with a causal mask")  # TensorRT refuses it
        rows, cols = scores.shape[-2:]
        # UPPER_LEFT: query i sees keys j <= i (torch's alignment); LOWER_RIGHT: the last query
        # sees every key, j <= i + (cols - rows)
        diagonal = {"UPPER_LEFT": 0, "LOWER_RIGHT": cols - rows}.get(kind)
        if diagonal is None:
            raise unsupported(layer, f"causal mask kind {kind}")
        keep = torch.ones(rows, cols, dtype=torch.bool, device=q.device).tril(diagonal)
        scores = scores.masked_fill(~keep, float("-inf"))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else (
            scores + mask.to(work))
    return [torch.matmul(torch.softmax(scores, dim=-1), v.to(work)).to(q.dtype)]


def attention_output(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    return [inputs[0]]


def rotary_embedding(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """Rotate pairs of the first ``rotary_embedding_dim`` features of x [batch, heads, seq, dim]
    by the cached angles: halves (x1, x2) or, when interleaved, even/odd features.

    The caches are [batch, seq, dim/2], or [positions, dim/2] gathered with position ids.
    """
    x, cos, sin = inputs[:3]
    positions = inputs[3] if len(inputs) > 3 else None
    if x.dim() != 4:
        raise unsupported(layer, f"rotary embedding of a rank-{x.dim()} input")
    if positions is not None:
        cos, sin = cos[positions.to(torch.int64)], sin[positions.to(torch.int64)]
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # broadcast over heads
    rotary = layer.params["rotary_embedding_dim"] or x.shape[-1]
    rotated, passed = x[..., :rotary], x[..., rotary:]
    if layer.params["interleaved"]:
        first, second = rotated[..., 0::2], rotated[..., 1::2]
    else:
        first, second = rotated.chunk(2, dim=-1)
    real = cos * first - sin * second
    imag = sin * first + cos * second
    if layer.params["interleaved"]:
        out = torch.stack([real, imag], dim=-1).flatten(-2)
    else:
        out = torch.cat([real, imag], dim=-1)
    return [torch.cat([out.to(x.dtype), passed], dim=-1)]


def kv_cache_update(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """LINEAR mode, padded [batch, heads, seq, dim] updates: the cache with
    ``out[i, :, write[i] + s, :] = update[i, :, s, :]`` (TensorRT writes in place; the
    reference returns a new tensor, so the caller's cache is untouched)."""
    p = layer.params
    if p.get("cache_mode") != "LINEAR" or p.get("update_form", "PADDED_BHND") != "PADDED_BHND":
        raise unsupported(layer, f"cache mode {p.get('cache_mode')} with update form "
                                 f"{p.get('update_form')}")
    cache, update, write = inputs[:3]
    out = cache.clone()
    length = update.shape[2]
    for i, start in enumerate(write.tolist()):
        out[i, :, start:start + length, :] = update[i]
    return [out]


LAYERS = {
    "ATTENTION_INPUT": attention_input,
    "ATTENTION_OUTPUT": attention_output,
    "ROTARY_EMBEDDING": rotary_embedding,
    "KV_CACHE_UPDATE": kv_cache_update,
}
