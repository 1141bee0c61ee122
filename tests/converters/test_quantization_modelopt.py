"""NVIDIA ModelOpt's ``tensorrt::quantize_op`` becomes a Q/DQ pair with its kernels' semantics.

ModelOpt defines the op when ``modelopt.torch.quantization`` is imported, and plugtrt registers
its converter only if the op exists when the plugins load, so these checks run in a fresh
process that imports ModelOpt first (in this one, whether the op exists would depend on which
tests ran before). ModelOpt's integer kernel exists only in its CUDA extension: on this CPU eager
runs the kernel's formula instead (``tensor_quant_gpu.cu``: ``rint(x * bound / amax)``,
clamped, divided by ``bound / amax``), patched in where ModelOpt's dispatch calls its
extension; its FP8 path runs as ModelOpt wrote it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("modelopt.torch.quantization")

_SCRIPT = r"""
import json, warnings
warnings.simplefilter("ignore")
import torch
import modelopt.torch.quantization  # defines tensorrt::quantize_op
from plugtrt.manager import PluginRegistry, load_entry_points, new_plugin_manager
from plugtrt.testing import run_through_backend

pm = new_plugin_manager()
load_entry_points(pm, strict=True, distributions=frozenset({"plugtrt"}))
registry = PluginRegistry(pm)
op = torch.ops.tensorrt.quantize_op

def kernel(x, amax, bits, narrow):
    bound = 2 ** (bits - 1) - 1
    scale = bound / amax
    return torch.clamp(torch.round(x * scale), -bound - (0 if narrow else 1), bound) / scale

# the CUDA extension's integer kernel, on CPU: eager calls this, the op's dispatch is ModelOpt's
from modelopt.torch.quantization import tensor_quant
tensor_quant.fake_quant_impl = lambda inputs, amax, num_bits=8, unsigned=False, narrow_range=True: (
    kernel(inputs, amax, num_bits, narrow_range))

class Quantized(torch.nn.Module):
    def __init__(self, amax, bits, exponent, narrow, weight):
        super().__init__()
        self.register_buffer("amax", amax)
        self.register_buffer("weight", weight)
        self.args = (bits, exponent, False, narrow)
    def forward(self, x):
        return op(x, self.amax, *self.args) + op(self.weight, self.amax, *self.args)

results = []
for seed, (bits, exponent, narrow, per_channel) in enumerate(
        [(8, 0, True, False), (8, 0, False, True), (4, 0, True, True), (8, 4, True, False), (8, 4, True, True)]):
    g = torch.Generator().manual_seed(seed)
    x, weight = torch.randn(4, 6, generator=g) * 3, torch.randn(4, 6, generator=g) * 3
    amax = torch.rand(4, 1, generator=g) * 2 + 0.5 if per_channel else torch.tensor(2.0)
    module = Quantized(amax, bits, exponent, narrow, weight)
    run = run_through_backend(module, [x], registry=registry)
    expected = run.expected
    kinds = {k for r in run.reports for e in r.engines for k in e.layer_types}
    results.append({"case": [bits, exponent, narrow, per_channel], "pytorch_ops": run.pytorch_ops,
                    "fallbacks": run.fallbacks, "qdq": sorted(kinds & {"QUANTIZE", "DEQUANTIZE"}),
                    "diff": float((run.outputs - expected).abs().max()),
                    "step": float(amax.max() / (2 ** (bits - 1) - 1 if exponent == 0 else 448))})
print(json.dumps(results))
"""


@pytest.mark.slow  # a fresh process importing ModelOpt: ~40 s here
def test_quantize_op_converts_with_the_kernels_semantics(tmp_path):
    done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PLUGTRT_CACHE_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    for result in json.loads(done.stdout.strip().splitlines()[-1]):
        assert result["pytorch_ops"] == [] and not result["fallbacks"], result
        assert result["qdq"] == ["DEQUANTIZE", "QUANTIZE"], result
        # the kernel multiplies by bound / amax, TensorRT divides by amax / bound: a value on a
        # rounding tie may land one step apart
        assert result["diff"] <= 2 * result["step"] * 1.0001, result
