"""Engines belong to one device: the signature keeps the index, and options name real devices.

Without a GPU here, the device logic is checked on fake CUDA tensors; the gpu-marked test
runs it for real where there are two GPUs.
"""
from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from plugtrt import CompilationSettings, trt_adapter
from plugtrt.backend import _engine_settings, _signature
from plugtrt.testing import run_through_backend


def _on(*devices: str) -> list[torch.Tensor]:
    with FakeTensorMode():
        return [torch.empty(2, 3, device=d) for d in devices]


def test_signature_tells_gpus_apart():
    assert _signature(_on("cuda:0"), [0]) != _signature(_on("cuda:1"), [0])
    assert _signature(_on("cuda:1"), [0]) == _signature(_on("cuda:1"), [0])
    # input 1 is frozen: only input 0's placement counts
    assert _signature(_on("cpu", "cuda:1"), [0]) == _signature(_on("cpu", "cuda:0"), [0])


def test_engines_go_on_the_inputs_gpu_unless_the_option_says_otherwise():
    default, pinned = CompilationSettings(), CompilationSettings(device="cuda:0")
    assert _engine_settings(default, _on("cpu", "cuda:1")).device == torch.device("cuda", 1)
    assert _engine_settings(default, _on("cpu")).device is None
    assert _engine_settings(pinned, _on("cuda:1")).device == torch.device("cuda", 0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("device", ["cuda:0", 1, "cuda"])
def test_device_option_naming_a_missing_gpu_fails_at_compile_time(device):
    with pytest.raises(Exception, match=r"InvalidOptionError: option 'device' is cuda.*0 CUDA device\(s\).*one of: cpu"):
        run_through_backend(lambda x: x + 1, [torch.randn(2)], {"device": device})


@pytest.mark.gpu
def test_inputs_on_the_second_gpu_get_their_own_engine_and_results_there():
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two GPUs")
    try:
        trt_adapter.load()  # the engines are built here, then evaluated on each GPU
    except ImportError as exc:
        pytest.skip(str(exc))
    model = torch.nn.Linear(4, 4).eval()
    for index in (0, 1):
        model.to(f"cuda:{index}")
        run = run_through_backend(model, [torch.randn(2, 4, device=f"cuda:{index}")], {"runtime": "reference"})
        assert run.engines == 1 and run.outputs.device == torch.device("cuda", index)
        torch.testing.assert_close(run.outputs, run.expected)
