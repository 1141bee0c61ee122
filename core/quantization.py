"""Quantization vocabulary shared by the lowering passes and the converters (public API).

The FP8 scaled cast, ``(x / s).to(torch.float8_e4m3fn)`` and back, ``q.to(torch.float32) * s``,
is four aten ops in a traced graph, none of which says "quantize". The ``fp8_cast`` lowering
pass rewrites each half into one of the two ops defined here, so that a converter sees a
quantize or a dequantize with its scale, as TensorRT's Q/DQ layers take it. Their eager kernels
compute exactly the pattern they replace, so a node that stays in PyTorch (its block fell back)
computes what the model wrote.

``plugtrt::quantize_fp8(Tensor x, Tensor scale) -> Tensor`` (float8_e4m3fn) and
``plugtrt::dequantize_fp8(Tensor q, Tensor scale, ScalarType dtype) -> Tensor``; ``scale`` is a
0-d (or one-element) tensor, a frozen constant or one computed in the graph.
"""
from __future__ import annotations

import torch

FP8 = torch.float8_e4m3fn
FP8_MAX = float(torch.finfo(FP8).max)
"""448: torch's cast to float8_e4m3fn saturates there, as TensorRT's FP8 quantize does."""
INT8_RANGE = (-128, 127)
"""The integer window TensorRT's INT8 quantize rounds and saturates into (its zero point is 0)."""


@torch.library.custom_op("plugtrt::quantize_fp8", mutates_args=())
def quantize_fp8(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``(x / scale).to(float8_e4m3fn)``: the first half of an FP8 scaled cast."""
    return (x / scale).to(FP8)


@quantize_fp8.register_fake
def _quantize_fp8_fake(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x, dtype=FP8)


@torch.library.custom_op("plugtrt::dequantize_fp8", mutates_args=())
def dequantize_fp8(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``q.to(dtype) * scale``: the second half of an FP8 scaled cast (the pass rewrites only
    where the product keeps ``dtype``, as it does for a 0-d scale)."""
    return q.to(dtype) * scale


@dequantize_fp8.register_fake
def _dequantize_fp8_fake(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return torch.empty_like(q, dtype=dtype)


def quantized_decomposed_ops():
    """``torch.ops.quantized_decomposed``, with its ops defined: torch defines them in a module
    that PT2E's ``convert_pt2e`` imports, but a plain ``import torch`` does not."""
    import torch.ao.quantization.fx._decomposed  # noqa: F401  (defines the library's ops)

    return torch.ops.quantized_decomposed


def symmetric_int8_config(per_channel_weights: bool = True):
    """A torchao PT2E ``QuantizationConfig`` whose Q/DQ TensorRT computes: int8 activations
    quantized symmetrically per tensor (zero point 0) and int8 weights symmetric per output
    channel, calibrated with a histogram (activations) and min/max (weights) observer.

    Pass it to a PT2E quantizer's ``set_global``. The quantizers' own defaults are asymmetric
    (uint8 or int8 activations with a zero point), which TensorRT's Q/DQ layers cannot express;
    their ops then stay in PyTorch, with that reason in the coverage report. Needs torchao
    (``pip install plugtrt[quant]``)."""
    from torchao.quantization.pt2e import HistogramObserver, MinMaxObserver, PerChannelMinMaxObserver
    from torchao.quantization.pt2e.quantizer import QuantizationConfig, QuantizationSpec

    activation = QuantizationSpec(
        dtype=torch.int8, quant_min=INT8_RANGE[0], quant_max=INT8_RANGE[1],
        qscheme=torch.per_tensor_symmetric, is_dynamic=False,
        observer_or_fake_quant_ctr=HistogramObserver.with_args(eps=2**-12))
    weight = QuantizationSpec(
        dtype=torch.int8, quant_min=-127, quant_max=INT8_RANGE[1],
        qscheme=torch.per_channel_symmetric if per_channel_weights else torch.per_tensor_symmetric,
        ch_axis=0, is_dynamic=False,
        observer_or_fake_quant_ctr=(PerChannelMinMaxObserver if per_channel_weights
                                    else MinMaxObserver).with_args(eps=2**-12))
    return QuantizationConfig(activation, activation, weight, None, is_qat=False)
