"""Decomposition plugin: PyTorch's own decompositions for ops that have no converter.

Each turns an op into ones the built-in converters handle (``silu`` into ``sigmoid`` and
``mul``). The experimental ones change numerics slightly or produce larger networks.
Scaled dot-product attention is traced as PyTorch's math formulation (matmuls and a
softmax) instead of a device-specific fused kernel that no converter could take.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch._decomp import decomposition_table, get_decompositions

from plugtrt.hookspecs import hookimpl
from plugtrt.records import DecompositionSpec

aten = torch.ops.aten

_STABLE = [aten.silu.default, aten.hardsigmoid.default, aten.hardswish.default,
           aten.hardtanh.default, aten.leaky_relu.default, aten.elu.default, aten.mish.default,
           aten.softplus.default, aten.rsub.Scalar, aten.rsub.Tensor, aten.addcmul.default,
           aten.addcdiv.default, aten.linalg_vector_norm.default]
_EXPERIMENTAL = [aten.native_layer_norm.default, aten.native_group_norm.default,
                 aten._log_softmax.default]


def _var_mean(x, dim=None, *, correction=None, keepdim=False):
    """Variance and mean in aten ops that convert (PyTorch's own decomposition emits prims)."""
    mean = torch.mean(x, dim, keepdim=True)
    centred = x - mean
    count = x.numel() // max(mean.numel(), 1)
    divisor = count - (1 if correction is None else correction)
    var = torch.sum(centred * centred, dim, keepdim=keepdim) / divisor
    return var, (mean if keepdim else torch.mean(x, dim, keepdim=False))


def _var(x, dim=None, *, correction=None, keepdim=False):
    return _var_mean(x, dim, correction=correction, keepdim=keepdim)[0]


def _math_attention(query, key, value, attn_mask, is_causal, scale, enable_gqa=False):
    return aten._scaled_dot_product_attention_math.default(
        query, key, value, attn_mask, 0.0, is_causal, scale=scale, enable_gqa=enable_gqa)[0]


def _efficient(query, key, value, attn_bias, compute_log_sumexp, dropout_p=0.0, is_causal=False,
               *, scale=None):
    if dropout_p != 0.0 or compute_log_sumexp:
        return NotImplemented  # random, or statistics for a backward pass: PyTorch's kernel
    empty = query.new_empty(0)
    return _math_attention(query, key, value, attn_bias, is_causal, scale), empty, empty, empty


def _logsumexp(query, key, is_causal, scale):
    """Per query row, the log of the sum of its exponentiated scores, in float32: the statistic
    the flash kernel always returns beside its output (dead code, removed, where unread)."""
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    scores = torch.matmul(query.float(), key.float().transpose(-2, -1)) * scale
    if is_causal:
        rows, columns = scores.shape[-2:]
        keep = torch.ones(rows, columns, dtype=torch.bool, device=query.device).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
    return torch.logsumexp(scores, -1)


def _flash(query, key, value, dropout_p=0.0, is_causal=False, return_debug_mask=False, *, scale=None):
    if dropout_p != 0.0 or return_debug_mask:
        return NotImplemented
    empty = query.new_empty(0)
    out = _math_attention(query, key, value, None, is_causal, scale)
    return out, _logsumexp(query, key, is_causal, scale), empty, empty, 0, 0, empty, empty, empty


def _cudnn(query, key, value, attn_bias, compute_log_sumexp, dropout_p=0.0, is_causal=False,
           return_debug_mask=False, *, scale=None):
    if dropout_p != 0.0 or compute_log_sumexp or return_debug_mask:
        return NotImplemented
    empty = query.new_empty(0)
    out = _math_attention(query, key, value, attn_bias, is_causal, scale)
    return out, empty, empty, empty, 0, 0, empty, empty, empty


# Fused attention kernels, as dispatch picks them per device, computed the math way. The flash
# kernel's logsumexp is computed too; the other outputs are empty or zero as the kernels give
# them for dense inputs without a backward pass (a kernel asked for its statistics is kept).
_ATTENTION = {
    aten._scaled_dot_product_flash_attention_for_cpu.default:
        decomposition_table[aten._scaled_dot_product_flash_attention_for_cpu.default],
    aten._scaled_dot_product_efficient_attention.default: _efficient,
    aten._scaled_dot_product_flash_attention.default: _flash,
    aten._scaled_dot_product_cudnn_attention.default: _cudnn,
}


@hookimpl
def plugtrt_decompositions() -> Iterator[DecompositionSpec]:
    for op, fn in _ATTENTION.items():
        yield DecompositionSpec(name=f"builtin.{op.name().split('::')[1]}", target=op, fn=fn)
    yield DecompositionSpec(name="builtin.var_mean.correction", target=aten.var_mean.correction,
                            fn=_var_mean, experimental=True)
    yield DecompositionSpec(name="builtin.var.correction", target=aten.var.correction, fn=_var,
                            experimental=True)
    for experimental, ops in ((False, _STABLE), (True, _EXPERIMENTAL)):
        for op, fn in get_decompositions(ops).items():
            yield DecompositionSpec(name=f"builtin.{op.name().split('::')[1]}", target=op, fn=fn,
                                    experimental=experimental)
