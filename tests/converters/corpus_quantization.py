"""Corpus entries for the quantization family: fake quantization, PT2E's quantize/dequantize
and plugtrt's FP8 casts, so that the QUANTIZE and DEQUANTIZE layers they emit are held to the
ONNX conformance proof like every other layer."""
from __future__ import annotations

import torch

from plugtrt.quantization import quantized_decomposed_ops

from .corpus import aten, x

qd = quantized_decomposed_ops()
fp8 = torch.ops.plugtrt
_SCALE, _ZERO, _ENABLED = torch.tensor(0.05), torch.tensor(0, dtype=torch.int32), torch.tensor(1)
_SCALES, _ZEROS = torch.tensor([0.02, 0.05, 0.1]), torch.zeros(3, dtype=torch.int32)
_WEIGHT = torch.randint(-127, 128, (3, 4), generator=torch.Generator().manual_seed(0), dtype=torch.int8)


def _q_dq(a):
    return qd.dequantize_per_tensor.default(qd.quantize_per_tensor.default(a, 0.05, 0, -128, 127, torch.int8),
                                            0.05, 0, -128, 127, torch.int8)


def _q_dq_tensor(a):
    q = qd.quantize_per_tensor.tensor(a, _SCALE, _ZERO, -127, 127, torch.int8)
    return qd.dequantize_per_tensor.tensor(q, _SCALE, _ZERO, -127, 127, torch.int8)


def _q_dq_channel(a):
    q = qd.quantize_per_channel.default(a, _SCALES, _ZEROS, 1, -128, 127, torch.int8)
    return qd.dequantize_per_channel.default(q, _SCALES, _ZEROS, 1, -128, 127, torch.int8)


def _int8_weight(a):
    return a @ qd.dequantize_per_channel.default(_WEIGHT, _SCALES, None, 0, -127, 127, torch.int8)


def _fp8(a):
    return fp8.dequantize_fp8.default(fp8.quantize_fp8.default(a, _SCALE), _SCALE, torch.float32)


STATIC_ONLY = [  # torch has no meta kernel for fake quantization: no symbolic sizes
    (lambda a: aten.fake_quantize_per_tensor_affine.default(a, 0.05, 0, -128, 127), (x(2, 3),)),
    (lambda a: aten.fake_quantize_per_tensor_affine.tensor_qparams(a, _SCALE, _ZERO, -8, 7), (x(2, 3),)),
    (lambda a: aten.fake_quantize_per_tensor_affine_cachemask.default(a, 0.05, 3, -100, 100)[0], (x(2, 3),)),
    (lambda a: aten._fake_quantize_per_tensor_affine_cachemask_tensor_qparams.default(
        a, _SCALE, _ZERO, _ENABLED, -128, 127)[0], (x(2, 3),)),
    (lambda a: aten.fake_quantize_per_channel_affine.default(a, _SCALES, _ZEROS, 1, -128, 127), (x(2, 3, 4),)),
    (lambda a: aten.fake_quantize_per_channel_affine_cachemask.default(a, _SCALES, _ZEROS, 0, -127, 127)[0],
     (x(3, 2),)),
]
CORPUS = [
    (_q_dq, (x(2, 3),)), (_q_dq_tensor, (x(2, 3),)), (_q_dq_channel, (x(2, 3),)), (_int8_weight, (x(2, 3),)),
    (_fp8, (x(2, 3),)),
]


def _q_dq_channel_axis0(a):
    q = qd.quantize_per_channel.default(a, _SCALES, _ZEROS, 0, -128, 127, torch.int8)
    return qd.dequantize_per_channel.default(q, _SCALES, _ZEROS, 0, -128, 127, torch.int8)


DYNAMIC_EXTRA = [(_q_dq_channel_axis0, (x(3, 2, 4),))]
"""Per channel along a static axis 0, so that the trailing dims can be symbolic."""

try:  # ModelOpt defines tensorrt::quantize_op on import, and plugtrt then converts it
    import modelopt.torch.quantization  # noqa: F401
except ImportError:
    pass
else:
    _AMAX = torch.tensor(2.0)
    CORPUS.append((lambda a: torch.ops.tensorrt.quantize_op.default(a, _AMAX, 8, 4, False, False), (x(2, 3),)))
