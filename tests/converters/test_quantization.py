"""Quantization converters through the whole backend: fake quantization, PT2E's
``quantized_decomposed`` ops and FP8 scaled casts become TensorRT Q/DQ layers, match eager, and
leave nothing in PyTorch; the forms TensorRT cannot compute stay in PyTorch with their reason."""
from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from plugtrt.converters import quantization
from plugtrt.quantization import quantized_decomposed_ops
from plugtrt.testing import assert_converts, run_through_backend

from .strategies import FAST, PER_OP, converter_names, seeds, shapes, tensor

qd = quantized_decomposed_ops()


def _layer_types(run) -> set[str]:
    return {kind for report in run.reports for engine in report.engines for kind in engine.layer_types}


def _assert_qdq(run, quantize: bool = True) -> None:
    kinds = _layer_types(run)
    assert "DEQUANTIZE" in kinds and ("QUANTIZE" in kinds) == quantize, kinds


def _step_tolerance(scale: float) -> dict:
    """Eager multiplies by the reciprocal of the scale, TensorRT divides: a value within an ulp of
    a rounding tie may land one step apart; everything else is exact."""
    return {"rtol": 0.0, "atol": float(scale) * 1.0001}


@st.composite
def windows(draw):
    """A quantization range and zero point whose window ``[lo - z, hi - z]`` TensorRT's int8 Q/DQ
    computes: int8's own, a narrower signed one (4 bit), or uint8's with zero point 128."""
    low, high, zero = draw(st.sampled_from([(-128, 127, 0), (-127, 127, 0), (-8, 7, 0),
                                            (0, 255, 128), (-128, 127, 0), (-100, 100, 3)]))
    return low, high, zero


def test_registers_through_a_fresh_manager():
    assert {"builtin.fake_quantize_per_tensor", "builtin.fake_quantize_per_channel_cachemask",
            "builtin.quantize_per_tensor_tensor", "builtin.dequantize_per_channel",
            "builtin.quantize_fp8", "builtin.dequantize_fp8"} <= converter_names(quantization)


@settings(**FAST)
@given(shape=shapes(), window=windows(), scale=st.floats(1e-3, 0.5), tensor_qparams=st.booleans(),
       precision=st.sampled_from([torch.float32, torch.float16]), seed=seeds)
def test_fake_quantize_per_tensor(shape, window, scale, tensor_qparams, precision, seed):
    """Under ``precision=half`` the Q still quantizes in float32 (its scale unrounded); the DQ
    and what follows compute in half."""
    low, high, zero = window
    x = tensor(shape, torch.float32, seed) * scale * 60

    class FakeQuant(nn.Module):
        def forward(self, x):
            if tensor_qparams:
                return torch.fake_quantize_per_tensor_affine(
                    x, torch.tensor(scale), torch.tensor(zero, dtype=torch.int32), low, high)
            return torch.fake_quantize_per_tensor_affine(x, scale, zero, low, high)

    tolerance = _step_tolerance(scale) if precision == torch.float32 else {"rtol": 1e-2, "atol": scale * 1.01}
    run = assert_converts(FakeQuant(), [x], {"precision": precision}, **tolerance)
    _assert_qdq(run)


@settings(**FAST)
@given(shape=shapes(min_rank=2), data=st.data(), constant=st.booleans(), seed=seeds)
def test_fake_quantize_per_channel(shape, data, constant, seed):
    """Per-channel scales and zero points along any axis, on an activation or on a frozen
    weight (quantized to an int8 constant with torch's rounding: exact)."""
    axis = data.draw(st.integers(0, len(shape) - 1))  # torch takes no negative axis
    channels = shape[axis]
    low, high = data.draw(st.sampled_from([(-128, 127), (-127, 127), (-8, 7)]))
    scales = torch.tensor(data.draw(st.lists(st.floats(1e-3, 0.2), min_size=channels, max_size=channels)))
    zeros = torch.tensor(data.draw(st.lists(st.integers(0, 0 if low == -128 else 1),
                                            min_size=channels, max_size=channels)), dtype=torch.int32)
    values = tensor(shape, torch.float32, seed) * scales.max() * 40

    class FakeQuant(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("scale", scales)
            self.register_buffer("zero", zeros)
            self.register_buffer("weight", values)

        def forward(self, x):
            source = self.weight if constant else x
            y = torch.fake_quantize_per_channel_affine(source, self.scale, self.zero, axis, low, high)
            return y + x if constant else y

    run = assert_converts(FakeQuant(), [values.clone()], **_step_tolerance(scales.max()))
    _assert_qdq(run, quantize=not constant)


def test_weight_and_activation_fake_quantization_convert_as_one_engine():
    """The "Done when" network: a conv and a linear with fake-quantized activations and
    per-channel weights builds one engine of Q/DQ layers, nothing left in PyTorch."""
    torch.manual_seed(0)

    class ConvLinear(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8 * 8 * 8, 10)

        @staticmethod
        def qweight(weight):
            scale = weight.detach().abs().amax(dim=tuple(range(1, weight.dim()))) / 127
            zero = torch.zeros(weight.shape[0], dtype=torch.int32)
            return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, -127, 127)

        def forward(self, x):
            x = torch.fake_quantize_per_tensor_affine(x, 0.03, 0, -128, 127)
            x = torch.relu(nn.functional.conv2d(x, self.qweight(self.conv.weight), self.conv.bias, padding=1))
            x = torch.fake_quantize_per_tensor_affine(x, 0.02, 0, -128, 127).flatten(1)
            return nn.functional.linear(x, self.qweight(self.fc.weight), self.fc.bias)

    run = assert_converts(ConvLinear(), [torch.randn(2, 3, 8, 8)], rtol=1e-4, atol=1e-4)
    kinds = _layer_types(run)
    assert {"QUANTIZE", "DEQUANTIZE", "CONVOLUTION", "MATRIX_MULTIPLY"} <= kinds, kinds


@settings(**FAST)
@given(shape=shapes(), scale=st.floats(1e-3, 0.5), overload=st.sampled_from(["default", "tensor", "dynamic"]),
       seed=seeds)
def test_quantized_decomposed_per_tensor(shape, scale, overload, seed):
    """PT2E's Q then DQ: the scale a number, a constant tensor, or computed from the input."""
    x = tensor(shape, torch.float32, seed) * scale * 60

    def qdq(x):
        if overload == "default":
            q = qd.quantize_per_tensor.default(x, scale, 0, -128, 127, torch.int8)
            return qd.dequantize_per_tensor.default(q, scale, 0, -128, 127, torch.int8)
        s = torch.tensor(scale) if overload == "tensor" else x.abs().amax() / 127 + 1e-3
        z = torch.tensor(0, dtype=torch.int64)
        q = qd.quantize_per_tensor.tensor(x, s, z, -128, 127, torch.int8)
        return qd.dequantize_per_tensor.tensor(q, s, z, -128, 127, torch.int8)

    run = assert_converts(qdq, [x], **_step_tolerance(max(scale, float(x.abs().max()) / 127 + 1e-3)))
    _assert_qdq(run)


@settings(**FAST)
@given(shape=shapes(min_rank=2), data=st.data(), seed=seeds)
def test_quantized_decomposed_per_channel(shape, data, seed):
    """PT2E's per-channel Q then DQ of an activation, along any axis, int8's range or narrower."""
    axis = data.draw(st.integers(0, len(shape) - 1))
    low = data.draw(st.sampled_from([-128, -127]))
    scales = torch.tensor(data.draw(st.lists(st.floats(1e-3, 0.2), min_size=shape[axis], max_size=shape[axis])))
    x = tensor(shape, torch.float32, seed) * scales.max() * 60

    class PerChannel(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("scales", scales)
            self.register_buffer("zeros", torch.zeros(shape[axis], dtype=torch.int64))

        def forward(self, x):
            q = qd.quantize_per_channel.default(x, self.scales, self.zeros, axis, low, 127, torch.int8)
            return qd.dequantize_per_channel.default(q, self.scales, self.zeros, axis, low, 127, torch.int8)

    run = assert_converts(PerChannel(), [x], **_step_tolerance(scales.max()))
    _assert_qdq(run)


@settings(**FAST)
@given(out_features=st.integers(1, 6), in_features=st.integers(1, 6), seed=seeds)
def test_quantized_decomposed_per_channel_weight(out_features, in_features, seed):
    """PT2E stores a weight as int8 with per-channel scales: it stays int8, behind a DQ."""
    g = torch.Generator().manual_seed(seed)
    weight = torch.randint(-127, 128, (out_features, in_features), generator=g, dtype=torch.int8)
    scales = torch.rand(out_features, generator=g) * 0.1 + 1e-3

    class Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("weight", weight)
            self.register_buffer("scales", scales)
            self.register_buffer("zeros", torch.zeros(out_features, dtype=torch.int64))

        def forward(self, x):
            w = qd.dequantize_per_channel.default(self.weight, self.scales, self.zeros, 0, -127, 127, torch.int8)
            return nn.functional.linear(x, w)

    x = tensor((3, in_features), torch.float32, seed)
    run = assert_converts(Linear(), [x], rtol=1e-4, atol=1e-4)
    _assert_qdq(run, quantize=False)


@settings(**PER_OP)
@given(shape=shapes(), scale=st.floats(1e-3, 4.0), form=st.sampled_from(["number", "constant", "computed", "clamped"]),
       seed=seeds)
def test_fp8_scaled_cast(shape, scale, form, seed):
    """``(x / s).to(float8_e4m3fn).to(float32) * s`` is one Q/DQ pair, saturating at 448 s."""
    x = tensor(shape, torch.float32, seed) * scale * 300

    def cast(x):
        s = {"number": scale, "constant": torch.tensor(scale), "computed": x.abs().amax() / 448 + 1e-6,
             "clamped": scale}[form]
        scaled = x / s
        if form == "clamped":
            scaled = scaled.clamp(-448.0, 448.0)
        return scaled.to(torch.float8_e4m3fn).to(torch.float32) * s

    run = assert_converts(cast, [x], rtol=0.0, atol=0.0)
    _assert_qdq(run)


def test_fp8_scaled_cast_matmul():
    """The "Done when" FP8 network: both operands of a matmul through a scaled FP8 cast, the
    weight's a Q/DQ pair on a constant."""
    torch.manual_seed(0)

    class Fp8Matmul(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(16, 8))

        @staticmethod
        def fp8(t, s):
            return (t / s).to(torch.float8_e4m3fn).to(torch.float32) * s

        def forward(self, x):
            return self.fp8(x, x.abs().amax() / 448) @ self.fp8(self.weight, 0.01)

    run = assert_converts(Fp8Matmul(), [torch.randn(4, 16)], rtol=0.0, atol=0.0)
    types = run.reports[0].engines[0].layer_types
    assert types["QUANTIZE"] == 2 and types["DEQUANTIZE"] == 2, types


def test_forms_tensorrt_cannot_compute_stay_in_pytorch_with_the_reason():
    def asymmetric(x):
        q = qd.quantize_per_tensor.default(x, 0.1, 3, 0, 255, torch.uint8)
        return qd.dequantize_per_tensor.default(q, 0.1, 3, 0, 255, torch.uint8) + 1

    run = run_through_backend(asymmetric, [torch.randn(4, 4)])
    assert sorted(run.pytorch_ops) == ["quantized_decomposed.dequantize_per_tensor.default",
                                       "quantized_decomposed.quantize_per_tensor.default"]
    torch.testing.assert_close(run.outputs, run.expected)
    unsupported = run.reports[0].coverage["unsupported"]
    assert "int8" in unsupported["quantized_decomposed.quantize_per_tensor.default"]["reason"]

    def wide(x):
        return torch.fake_quantize_per_tensor_affine(x, 0.1, 0, 0, 255) + 1

    run = run_through_backend(wide, [torch.randn(4, 4)])
    reason = run.reports[0].coverage["unsupported"]["aten.fake_quantize_per_tensor_affine_cachemask.default"]
    assert "[-128, 127]" in reason["reason"]
