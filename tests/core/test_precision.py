"""precision=half/bfloat16 never changes an answer eager gets right: explicit upcasts, sums of
squares and out-of-range constants, each at real magnitudes."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plugtrt.manager import PluginRegistry, load_entry_points, new_plugin_manager
from plugtrt.testing import assert_converts, run_through_backend


class LlamaRMSNorm(torch.nn.Module):
    """As Llama-family models write it: statistics in float32, the result back in the model dtype."""

    def __init__(self, width: int):
        super().__init__()
        self.proj = torch.nn.Linear(width, width)
        self.weight = torch.nn.Parameter(torch.rand(width) + 0.5)

    def forward(self, x):
        x = self.proj(x)
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)
        return self.weight * h.to(x.dtype)


@settings(max_examples=6, deadline=None)
@given(width=st.sampled_from([16, 64]), magnitude=st.sampled_from([30.0, 300.0]),
       dtype=st.sampled_from([torch.float16, torch.bfloat16]))
def test_explicit_float32_region_of_a_half_model_stays_float32(width, magnitude, dtype):
    torch.manual_seed(width)
    model = LlamaRMSNorm(width).to(dtype)
    with torch.no_grad():
        model.proj.weight.mul_(magnitude / 3)
    x = (torch.randn(2, 5, width) * magnitude).to(dtype)
    run = assert_converts(model, [x], {"precision": dtype})
    assert run.pytorch_ops == []


@settings(max_examples=6, deadline=None)
@given(magnitude=st.sampled_from([100.0, 300.0, 1000.0]), width=st.integers(4, 64))
def test_sum_of_squares_accumulates_in_float32_under_half_precision(magnitude, width):
    def rms(x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)

    x = torch.randn(3, width) * magnitude
    assert_converts(rms, [x], {"precision": torch.float16})


@pytest.mark.parametrize("precision", [torch.float16, torch.bfloat16])
def test_mask_constant_beyond_half_range_stays_finite(precision):
    """A mask of finfo(float32).min cast to half would be -inf, and a fully masked row NaN."""
    mask = torch.zeros(4, 4)
    mask[2] = torch.finfo(torch.float32).min
    mask[0, 1:] = torch.finfo(torch.float32).min

    class Masked(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mask", mask)

        def forward(self, scores):
            return torch.softmax(scores + self.mask, dim=-1)

    run = assert_converts(Masked(), [torch.randn(2, 4, 4)], {"precision": precision})
    assert not run.outputs.isnan().any()


def test_float32_model_under_half_still_runs_matmuls_in_half():
    run = run_through_backend(torch.nn.Linear(8, 8), [torch.randn(2, 8)], {"precision": torch.float16})
    (engine,) = run.reports[0].engines
    assert run.outputs.dtype == torch.float32 and engine.layer_types.get("CAST", 0) >= 1


def test_half_model_layer_norm_under_bfloat16_precision_builds():
    """Found by the fuzzer (before layer norm became TensorRT's normalization layer): a float16
    LayerNorm over one element, compiled with precision=bfloat16, failed to convert with
    "value cannot be converted to type c10::Half without overflow"."""
    norm = torch.nn.LayerNorm(1, dtype=torch.float16).eval()
    run = assert_converts(lambda x: norm(x), [torch.tensor([1.25], dtype=torch.float16)],
                          {"precision": torch.bfloat16})
    assert run.outputs.dtype == torch.float16


@pytest.mark.parametrize("model_dtype, precision", [(torch.float16, torch.bfloat16),
                                                    (torch.bfloat16, torch.float16)])
def test_weights_of_one_reduced_type_under_the_other_precision(model_dtype, precision):
    """Found by the fuzzer: clamping a float16 weight to bfloat16's range raised "value cannot be
    converted to type c10::Half without overflow" (bfloat16's limit is no float16)."""
    linear = torch.nn.Linear(3, 2, bias=False).to(model_dtype).eval()
    assert_converts(linear, [torch.randn(4, 3).to(model_dtype)], {"precision": precision})


def test_float32_statistics_cut_by_a_partition_boundary_stay_float32():
    """Found by the fuzzer: group norm through the experimental decompositions computes its
    scale and shift in one engine, reshapes them in PyTorch (as_strided) and applies them in
    the next; the shift (-mean * scale, about -3e5 here) left the first engine through float16
    and the answer was inf. Regions are now marked on the whole graph before partitioning."""
    norm = torch.nn.GroupNorm(1, 1).eval()
    x = torch.tensor([1000.0, -250.0]).reshape(2, 1, 1, 1)
    # group norm has its own converter now: without it, and with as_strided kept in PyTorch,
    # the graph is cut where the fuzzer found it
    pm = new_plugin_manager()
    pm.set_blocked("plugtrt.converters.normalization")
    load_entry_points(pm, distributions=frozenset({"plugtrt"}))
    run = run_through_backend(norm, [x], {"precision": torch.float16,
                                          "enable_experimental_decompositions": True,
                                          "torch_executed_ops": {"aten.as_strided.default"}},
                              registry=PluginRegistry(pm))
    assert run.engines == 2
    torch.testing.assert_close(run.outputs, run.expected, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("precision", [torch.float16, torch.bfloat16])
def test_mask_input_beyond_half_range_stays_finite(precision):
    """Issue 17, item 1: the same mask as an engine input was cast to half unsaturated, became
    -inf, and the fully masked row came out 0/0 = NaN where eager gives a uniform row."""
    mask = torch.zeros(4, 4)
    mask[2] = torch.finfo(torch.float32).min

    def masked(scores, mask):
        return torch.softmax(scores + mask, dim=-1)

    run = assert_converts(masked, [torch.randn(2, 4, 4), mask], {"precision": precision})
    assert not run.outputs.isnan().any()


def test_narrowed_inputs_keep_inf_and_nan():
    """Saturation clamps finite values only: inf, -inf and NaN cross into half unchanged."""
    x = torch.tensor([float("inf"), float("-inf"), float("nan"), 1e6, -1e6, 3.0])
    run = run_through_backend(torch.relu, [x], {"precision": torch.float16})
    torch.testing.assert_close(run.outputs, torch.tensor([float("inf"), 0.0, float("nan"), 65504.0,
                                                          0.0, 3.0]), equal_nan=True)


def test_float32_intermediate_crossing_into_half_stays_finite():
    """A float32 sum of squares (5.8e6) read by a matmul that runs in half: unsaturated it is
    inf, and inf * 0 is NaN where eager's product is 0."""
    def project(x, w):
        return x.pow(2).sum(-1, keepdim=True) @ w

    run = assert_converts(project, [torch.full((3, 64), 300.0), torch.zeros(1, 2)],
                          {"precision": torch.float16})
    assert not run.outputs.isnan().any()


@pytest.fixture
def matmul_precision():
    """Restores torch's float32 matmul precision (process-wide) after the test."""
    before = torch.get_float32_matmul_precision()
    yield torch.set_float32_matmul_precision
    torch.set_float32_matmul_precision(before)


@pytest.mark.parametrize("torch_setting, tf32", [("highest", False), ("high", True), ("medium", True)])
@pytest.mark.parametrize("precision", [torch.float32, torch.float16])
def test_engines_use_tf32_only_where_torch_allows_it(matmul_precision, torch_setting, tf32, precision):
    """Issue 17, item 4: a fresh builder config has BuilderFlag.TF32 set, so "float32" matmuls
    and convolutions ran in TF32 on a GPU although torch computes them in float32."""
    from plugtrt.engine import builder_config, new_network
    from plugtrt.settings import CompilationSettings
    from plugtrt.trt_adapter import trt

    matmul_precision(torch_setting)
    builder, _ = new_network()
    config = builder_config(builder, CompilationSettings.from_options({"precision": precision}))
    assert config.get_flag(trt.BuilderFlag.TF32) is tf32


def test_engines_use_tf32_where_torch_cuda_matmul_allows_it(matmul_precision):
    from plugtrt.engine import builder_config, new_network
    from plugtrt.settings import CompilationSettings
    from plugtrt.trt_adapter import trt

    torch.backends.cuda.matmul.allow_tf32 = True
    builder, _ = new_network()
    assert builder_config(builder, CompilationSettings()).get_flag(trt.BuilderFlag.TF32) is True
