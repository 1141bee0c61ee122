"""Quantized models end to end: PT2E's int8 resnet18 and a fake-quantized MLP compile whole,
match the quantized model's eager output, and store their weights as int8."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from plugtrt.quantization import quantized_decomposed_ops, symmetric_int8_config
from plugtrt.testing import assert_close_to_eager, run_through_backend


def _pt2e_int8(model: nn.Module, example: torch.Tensor, calibration: int = 4) -> torch.fx.GraphModule:
    """``model`` quantized by torchao's PT2E flow with a symmetric int8 config, calibrated on
    random inputs shaped like ``example``."""
    pt2e = pytest.importorskip("torchao.quantization.pt2e")
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.testing.pt2e._xnnpack_quantizer import XNNPACKQuantizer

    exported = torch.export.export(model.eval(), (example,)).module()
    prepared = prepare_pt2e(exported, XNNPACKQuantizer().set_global(symmetric_int8_config()))
    for _ in range(calibration):
        prepared(torch.randn_like(example))
    converted = convert_pt2e(prepared)
    pt2e.allow_exported_model_train_eval(converted)
    return converted


def _output_scale(gm: torch.fx.GraphModule) -> float | None:
    """The scale of the DQ that produces the model's output, when one does."""
    (result,) = gm.graph.output_node().args[0]
    qd = quantized_decomposed_ops()
    if isinstance(result, torch.fx.Node) and result.target is qd.dequantize_per_tensor.default:
        return float(result.args[1])
    return None


@pytest.mark.filterwarnings("ignore:XNNPACKQuantizer is deprecated")
def test_pt2e_int8_resnet18_is_one_engine_matching_the_quantized_model():
    torchvision = pytest.importorskip("torchvision")
    """96x96 images: the final average pool averages 3x3 values. Over 2x2 (64x64 images) the
    mean of int8 multiples of the scale lands exactly on .5 of a step for some channels: TensorRT
    divides by the scale and rounds that tie to even, eager PyTorch multiplies by the rounded
    reciprocal of the scale and goes either way, and a one-step difference there moves every
    logit by a few steps (measured: 4 steps at most, on 1.6% of the pooled values)."""
    torch.manual_seed(0)
    example = torch.randn(1, 3, 96, 96)
    quantized = _pt2e_int8(torchvision.models.resnet18(weights=None), example)
    run = run_through_backend(quantized, [example])
    assert not run.fallbacks and run.engines == 1 and run.pytorch_ops == []
    layer_types = run.reports[0].engines[0].layer_types
    assert layer_types["QUANTIZE"] >= 20 and layer_types["DEQUANTIZE"] >= 40, layer_types
    scale = _output_scale(quantized)
    if scale is None:
        assert_close_to_eager(run, rtol=1e-2, atol=1e-2)
    else:
        assert float((run.outputs - run.expected).abs().max()) <= 2 * scale


class FakeQuantLinear(nn.Linear):
    """A linear layer whose weight is fake-quantized to int8 per output channel."""

    def forward(self, x):
        scale = self.weight.detach().abs().amax(dim=1) / 127
        zero = torch.zeros(self.out_features, dtype=torch.int32)
        weight = torch.fake_quantize_per_channel_affine(self.weight, scale, zero, 0, -128, 127)
        return nn.functional.linear(x, weight, self.bias)


def _mlp(linear: type[nn.Linear], width: int = 1024, layers: int = 4) -> nn.Sequential:
    blocks: list[nn.Module] = []
    for i in range(layers):
        blocks += [linear(width, width)] + ([nn.ReLU()] if i < layers - 1 else [])
    return nn.Sequential(*blocks)


def test_int8_weight_mlp_plan_is_at_most_035_of_float32():
    """Four 1024-wide layers: the float32 plan holds 16 MB of weights; with int8 per-channel
    weight fake quantization the builder stores int8 (a Q/DQ pair on each constant)."""
    torch.manual_seed(0)
    x = torch.randn(8, 1024)
    sizes = {}
    for name, linear in (("float32", nn.Linear), ("int8", FakeQuantLinear)):
        model = _mlp(linear)
        if name == "int8":
            model.load_state_dict(float_state)
        float_state = model.state_dict()
        run = run_through_backend(model, [x])
        assert not run.fallbacks and run.engines == 1 and run.pytorch_ops == []
        assert_close_to_eager(run, rtol=1e-4, atol=1e-4)
        sizes[name] = run.reports[0].engines[0].plan_bytes
    assert sizes["int8"] <= 0.35 * sizes["float32"], sizes
