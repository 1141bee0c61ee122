"""Quantized engines against float32: plan size, layers, Q/DQ layers, build time, accuracy.

For resnet18 and a BERT-style encoder (2 layers, hidden 768), each in float32 and quantized:

- ``int8``: every ``Linear``/``Conv2d`` input fake-quantized per tensor (scale from a
  calibration run) and its weight per output channel (``torch.fake_quantize_*``);
- ``int8-pt2e`` (resnet18): torchao's PT2E flow with ``plugtrt.quantization.symmetric_int8_config``;
- ``fp8``: the same layers' inputs and weights through FP8 scaled casts,
  ``(x / s).to(torch.float8_e4m3fn).to(torch.float32) * s``.

``max |diff|`` is against the quantized model's own eager output (eager fake quantization):
how far TensorRT's Q/DQ layers (evaluated by the reference runtime) are from what PyTorch
computes for the same quantized model. Weights are random, nothing is downloaded.

    .venv/bin/python bench/quant.py                 # both models, every variant
    .venv/bin/python bench/quant.py --models resnet18 --image-size 128

Prints a table and writes ``bench/results/quant.json``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import torch
from torch import nn

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(RESULTS.parents[1]))  # tests/models.py
FP8 = torch.float8_e4m3fn


class QuantizedLayer(nn.Module):
    """A ``Linear`` or ``Conv2d`` whose input and weight are fake-quantized (int8) or go through
    FP8 scaled casts, with the input's scale from calibration."""

    def __init__(self, inner: nn.Module, input_amax: float, mode: str):
        super().__init__()
        self.inner, self.mode = inner, mode
        weight = inner.weight.detach()
        if mode == "int8":
            self.input_scale = max(input_amax, 1e-8) / 127
            channel_amax = weight.abs().reshape(weight.shape[0], -1).amax(1).clamp_min(1e-8)
            self.register_buffer("weight_scale", channel_amax / 127)
            self.register_buffer("weight_zero", torch.zeros(weight.shape[0], dtype=torch.int32))
        else:
            self.input_scale = max(input_amax, 1e-8) / 448
            self.weight_scale = max(float(weight.abs().max()), 1e-8) / 448

    def forward(self, x):
        if self.mode == "int8":
            x = torch.fake_quantize_per_tensor_affine(x, self.input_scale, 0, -128, 127)
            weight = torch.fake_quantize_per_channel_affine(
                self.inner.weight, self.weight_scale, self.weight_zero, 0, -127, 127)
        else:
            x = (x / self.input_scale).to(FP8).to(x.dtype) * self.input_scale
            weight = (self.inner.weight / self.weight_scale).to(FP8).to(x.dtype) * self.weight_scale
        if isinstance(self.inner, nn.Linear):
            return nn.functional.linear(x, weight, self.inner.bias)
        conv = self.inner
        return nn.functional.conv2d(x, weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)


def quantize_layers(model: nn.Module, inputs: list, mode: str) -> nn.Module:
    """``model`` with every Linear/Conv2d wrapped in a ``QuantizedLayer``, calibrated on ``inputs``."""
    amax: dict[str, float] = {}
    layers = {name: m for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    hooks = [m.register_forward_pre_hook(
        lambda m, args, name=name: amax.__setitem__(name, float(args[0].abs().max())))
        for name, m in layers.items()]
    with torch.no_grad():
        model(*inputs)
    for hook in hooks:
        hook.remove()
    for name, layer in layers.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, QuantizedLayer(layer, amax[name], mode))
    return model


def pt2e_int8(model: nn.Module, inputs: list) -> nn.Module:
    """torchao's PT2E int8 flow, symmetric (TensorRT's Q/DQ), calibrated on ``inputs``."""
    from torchao.quantization.pt2e import allow_exported_model_train_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.testing.pt2e._xnnpack_quantizer import XNNPACKQuantizer

    from plugtrt.quantization import symmetric_int8_config

    prepared = prepare_pt2e(torch.export.export(model, tuple(inputs)).module(),
                            XNNPACKQuantizer().set_global(symmetric_int8_config()))
    prepared(*inputs)
    converted = convert_pt2e(prepared)
    allow_exported_model_train_eval(converted)
    return converted


def build(name: str, variant: str, image_size: int) -> tuple[nn.Module, list]:
    torch.manual_seed(0)
    if name == "bert_2l":
        import transformers

        from tests.models import LastHiddenState

        model = LastHiddenState(transformers.BertModel(transformers.BertConfig(num_hidden_layers=2)).eval())
        inputs = [torch.randint(0, model.model.config.vocab_size, (1, 128))]
    else:
        import torchvision

        model = getattr(torchvision.models, name)(weights=None)
        inputs = [torch.randn(1, 3, image_size, image_size)]
    model = model.eval()
    if variant in ("int8", "fp8"):
        model = quantize_layers(model, inputs, variant)
    elif variant == "int8-pt2e":
        model = pt2e_int8(model, inputs)
    return model, inputs


def measure(name: str, variant: str, image_size: int) -> dict:
    from plugtrt.testing import run_through_backend

    model, inputs = build(name, variant, image_size)
    start = time.perf_counter()
    run = run_through_backend(model, inputs, {"min_block_size": 5})
    seconds = time.perf_counter() - start
    engines = [e for r in run.reports for e in r.engines]
    types = [e.layer_types for e in engines]
    got, want = run.outputs, run.expected
    return {
        "model": name, "variant": variant, "engines": len(engines),
        "pytorch_ops": len(run.pytorch_ops), "fallbacks": len(run.fallbacks),
        "plan_mb": sum(e.plan_bytes for e in engines) / 2**20,
        "layers": sum(e.layers for e in engines),
        "qdq_layers": sum(t.get("QUANTIZE", 0) + t.get("DEQUANTIZE", 0) for t in types),
        "build_s": sum(e.build_seconds for e in engines), "compile_s": seconds,
        "max_abs_diff": float((got.float() - want.float()).abs().max()),
        "max_abs_output": float(want.float().abs().max()),
    }


VARIANTS = {"resnet18": ("float32", "int8", "int8-pt2e", "fp8"), "bert_2l": ("float32", "int8", "fp8")}
COLUMNS = (("model", "{:<9}"), ("variant", "{:<10}"), ("plan_mb", "{:>8.2f}"), ("layers", "{:>6}"),
           ("qdq_layers", "{:>5}"), ("build_s", "{:>7.2f}"), ("pytorch_ops", "{:>6}"),
           ("max_abs_diff", "{:>10.3g}"), ("max_abs_output", "{:>9.3g}"))
HEADERS = ("model", "variant", "plan MB", "layers", "Q/DQ", "build s", "torch", "max |diff|", "max |out|")


def table(rows: list[dict]) -> str:
    widths = [len(fmt.format(rows[0][key])) if rows else len(h) for (key, fmt), h in zip(COLUMNS, HEADERS)]
    lines = ["  ".join(h.rjust(w) if i > 1 else h.ljust(w) for i, (h, w) in enumerate(zip(HEADERS, widths)))]
    for row in rows:
        lines.append("  ".join(fmt.format(row[key]) for key, fmt in COLUMNS))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(VARIANTS), help="comma-separated: resnet18,bert_2l")
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args()
    rows = []
    for name in args.models.split(","):
        for variant in VARIANTS[name]:
            rows.append(measure(name, variant, args.image_size))
            print(f"measured {name} {variant}", file=sys.stderr)
    print(table(rows))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "quant.json"
    out.write_text(json.dumps({
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(), "machine": platform.node(),
        "torch": torch.__version__, "image_size": args.image_size, "rows": rows}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
