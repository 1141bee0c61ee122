"""Layers that combine elements along axes: REDUCE, SOFTMAX, TOPK, CUMULATIVE, NORMALIZATION,
MATRIX_MULTIPLY, EINSUM. Axes arrive as TensorRT's bitmask (bit i = axis i).
"""
from __future__ import annotations

import torch

from plugtrt.network_snapshot import LayerSnapshot
from plugtrt.runtimes.reference.layers.common import (
    Context,
    axes_from_mask,
    out_dtype,
    to_ints,
    unsupported,
)


def _reduce(op: str, x: torch.Tensor, axes: list[int], keep: bool) -> torch.Tensor | None:
    if op == "SUM":
        return x.sum(dim=axes, keepdim=keep, dtype=x.dtype)
    if op == "MAX":
        return x.amax(dim=axes, keepdim=keep)
    if op == "MIN":
        return x.amin(dim=axes, keepdim=keep)
    if op == "AVG":
        if x.dtype.is_floating_point:
            return x.mean(dim=axes, keepdim=keep)
        count = 1
        for axis in axes:
            count *= x.shape[axis]
        return torch.div(x.sum(dim=axes, keepdim=keep), count, rounding_mode="trunc").to(x.dtype)
    if op == "PROD":
        for axis in sorted(axes, reverse=True):
            x = x.prod(dim=axis, keepdim=keep)
        return x
    return None


def reduce(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    x = inputs[0]
    axes = axes_from_mask(layer.params["axes"], x.dim())
    op = layer.params["op"]
    if not axes:
        return [x.clone()]
    result = _reduce(op, x, axes, layer.params["keep_dims"])
    if result is None:
        raise unsupported(layer, f"reduce op {op}")
    return [result.to(x.dtype)]


def softmax(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    x = inputs[0]
    axes = axes_from_mask(layer.params["axes"], x.dim())
    if len(axes) != 1:
        raise unsupported(layer, f"softmax over axes {axes}")
    return [torch.softmax(x, dim=axes[0])]


def topk(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """Values and indices; ties keep the lower index first (a stable sort)."""
    x = inputs[0]
    axes = axes_from_mask(layer.params["axes"], x.dim())
    if len(axes) != 1:
        raise unsupported(layer, f"top-k over axes {axes}")
    k = to_ints(inputs[1])[0] if len(inputs) > 1 and inputs[1] is not None else layer.params["k"]
    values, indices = torch.sort(x, dim=axes[0], descending=layer.params["op"] == "MAX",
                                 stable=True)
    values = values.narrow(axes[0], 0, k)
    indices = indices.narrow(axes[0], 0, k)
    return [values, indices.to(out_dtype(layer, 1))]


def cumulative(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """ICumulativeLayer: running SUM along the axis given by input 1; exclusive and reverse."""
    x = inputs[0]
    axis = to_ints(inputs[1])[0]
    axis = axis + x.dim() if axis < 0 else axis
    if layer.params["op"] != "SUM":
        raise unsupported(layer, f"cumulative op {layer.params['op']}")
    if layer.params["reverse"]:
        x = x.flip(axis)
    result = torch.cumsum(x, dim=axis, dtype=x.dtype)
    if layer.params["exclusive"]:  # the sum of the elements before: shifted, not cumsum - x
        # (which is inexact for floats and NaN after an inf)
        zero = torch.zeros_like(result.narrow(axis, 0, 1))
        result = torch.cat([zero, result.narrow(axis, 0, result.shape[axis] - 1)], dim=axis)
    if layer.params["reverse"]:
        result = result.flip(axis)
    return [result]


def normalization(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """(x - mean) / sqrt(var + eps) * scale + bias over the axes; with groups, channel axis 1
    is split into ``num_groups`` groups that are normalised separately."""
    x, scale, bias = inputs[:3]
    axes = axes_from_mask(layer.params["axes"], x.dim())
    groups = layer.params["num_groups"]
    work = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    if groups > 1:
        shape = work.shape
        grouped = work.reshape(shape[0], groups, shape[1] // groups, *shape[2:])
        dims = [2] + [a + 1 for a in axes if a >= 2]
        mean = grouped.mean(dim=dims, keepdim=True)
        var = grouped.var(dim=dims, keepdim=True, unbiased=False)
        normed = ((grouped - mean) / torch.sqrt(var + layer.params["epsilon"])).reshape(shape)
    else:
        mean = work.mean(dim=axes, keepdim=True)
        var = work.var(dim=axes, keepdim=True, unbiased=False)
        normed = (work - mean) / torch.sqrt(var + layer.params["epsilon"])
    return [(normed * scale + bias).to(x.dtype)]


def _matmul_operand(x: torch.Tensor, op: str, first: bool) -> torch.Tensor:
    if op == "TRANSPOSE":
        return x.transpose(-1, -2)
    if op == "VECTOR":
        return x.unsqueeze(-2 if first else -1)
    return x


def matrix_multiply(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """Batched matmul with MatrixOperation NONE / TRANSPOSE / VECTOR per operand."""
    op0, op1 = layer.params["op0"], layer.params["op1"]
    a = _matmul_operand(inputs[0], op0, True)
    b = _matmul_operand(inputs[1], op1, False)
    if a.dtype.is_floating_point:
        result = torch.matmul(a, b)
    else:  # integer matmul, computed exactly in int64
        result = torch.matmul(a.to(torch.int64), b.to(torch.int64)).to(a.dtype)
    if op1 == "VECTOR":
        result = result.squeeze(-1)
    if op0 == "VECTOR":
        result = result.squeeze(-1 if op1 == "VECTOR" else -2)
    return [result]


def einsum(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    return [torch.einsum(layer.params["equation"], *inputs)]


LAYERS = {
    "REDUCE": reduce,
    "SOFTMAX": softmax,
    "TOPK": topk,
    "CUMULATIVE": cumulative,
    "NORMALIZATION": normalization,
    "MATRIX_MULTIPLY": matrix_multiply,
    "EINSUM": einsum,
}
