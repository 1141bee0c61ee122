"""The ``tensorrt`` runtime: real engines on a GPU that TensorRT can run (skipped elsewhere)."""
from __future__ import annotations

import pytest
import torch

from plugtrt import CompilationSettings
from plugtrt.manager import default_registry
from plugtrt.testing import assert_converts

from ..models import mlp, small_cnn


def _skip_unless_runnable() -> None:
    reason = default_registry().runtimes["tensorrt"].record.available(CompilationSettings())
    if reason is not None:
        pytest.skip(reason)


def test_unavailable_here_says_why():
    reason = default_registry().runtimes["tensorrt"].record.available(CompilationSettings())
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    assert reason == "no CUDA GPU is visible"


@pytest.mark.gpu
@pytest.mark.parametrize("make, shape", [(mlp, (8, 16)), (small_cnn, (2, 3, 32, 32))])
@pytest.mark.parametrize("precision", [torch.float32, torch.float16])
def test_engines_execute_on_the_current_stream_and_match_eager(make, shape, precision):
    _skip_unless_runnable()
    model = make().cuda()
    run = assert_converts(model, [torch.randn(shape, device="cuda")],
                          {"runtime": "tensorrt", "precision": precision},
                          rtol=1e-2 if precision == torch.float16 else None,
                          atol=1e-2 if precision == torch.float16 else None)
    assert run.reports[0].engines[0].runtime == "tensorrt"
    assert run.outputs.device.type == "cuda"
