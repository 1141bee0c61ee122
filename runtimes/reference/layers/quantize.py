"""QUANTIZE and DEQUANTIZE: TensorRT's explicit-quantization layers.

``IQuantizeLayer`` computes ``saturate(round_half_to_even(x / scale) + zero_point)`` in its
output type; ``IDequantizeLayer`` computes ``(q - zero_point) * scale``. The scale (and zero
point) is a scalar (per tensor), a vector along ``axis`` (per channel) or, for block
quantization, a tensor of x's rank whose dims divide x's (each scale covers a block). Integer
outputs saturate to the type's range; FP8 (e4m3fn, no infinities) rounds to nearest even and
saturates to +-448, which is what torch's cast does too, made explicit here. These readings are
proven against ONNX's QuantizeLinear/DequantizeLinear cases (``conformance``).
"""
from __future__ import annotations

import torch

from plugtrt.network_snapshot import LayerSnapshot
from plugtrt.runtimes.reference.layers.common import Context, out_dtype, unsupported

_INT_RANGES = {torch.int8: (-128, 127), torch.uint8: (0, 255)}


def _per_axis(scale: torch.Tensor, x: torch.Tensor, axis: int) -> torch.Tensor:
    """A scalar scale as is; a 1-D scale along ``axis``; a block scale expanded to x's shape."""
    if scale.dim() == 0 or scale.numel() == 1:
        return scale.reshape(())
    if scale.dim() == 1:
        view = [1] * x.dim()
        view[axis % x.dim()] = scale.shape[0]
        return scale.reshape(view)
    for dim, (have, want) in enumerate(zip(scale.shape, x.shape)):
        if have != want:
            scale = scale.repeat_interleave(want // have, dim=dim)
    return scale


def quantize(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """round-half-even(x / scale) + zero point, saturated to the output type."""
    x, scale = inputs[0], inputs[1]
    zero = inputs[2] if len(inputs) > 2 else None
    target = out_dtype(layer)
    axis = layer.params.get("axis", 0)
    value = x.float() / _per_axis(scale.float(), x, axis)
    if target in _INT_RANGES:
        value = torch.round(value)
        if zero is not None:
            value = value + _per_axis(zero.float(), x, axis)
        low, high = _INT_RANGES[target]
        return [value.clamp(low, high).to(target)]
    if target == torch.float8_e4m3fn:
        if zero is not None:
            value = value + _per_axis(zero.float(), x, axis)
        limit = torch.finfo(target).max
        return [value.clamp(-limit, limit).to(target)]
    raise unsupported(layer, f"quantize to {target}")


def dequantize(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """(x - zero point) * scale, in the output type."""
    x, scale = inputs[0], inputs[1]
    zero = inputs[2] if len(inputs) > 2 else None
    axis = layer.params.get("axis", 0)
    value = x.float()
    if zero is not None:
        value = value - _per_axis(zero.float(), x, axis)
    return [(value * _per_axis(scale.float(), x, axis)).to(out_dtype(layer))]


LAYERS = {
    "QUANTIZE": quantize,
    "DEQUANTIZE": dequantize,
}
