"""grid_sampler_2d (converters/grid_sample.py) through the whole backend: one GRID_SAMPLE layer
for each of torch's interpolations, paddings and align_corners."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from plugtrt.converters import grid_sample
from plugtrt.testing import assert_converts

from .strategies import FAST, converter_names, seeds, tensor


def test_registers():
    assert "builtin.grid_sampler_2d" in converter_names(grid_sample)


@settings(**FAST)
@given(mode=st.sampled_from(["bilinear", "nearest", "bicubic"]),
       padding=st.sampled_from(["zeros", "border", "reflection"]), align_corners=st.booleans(),
       n=st.integers(1, 3), c=st.integers(1, 3), size_in=st.tuples(st.integers(1, 6), st.integers(1, 6)),
       size_out=st.tuples(st.integers(1, 5), st.integers(1, 5)), reach=st.sampled_from([0.9, 1.0, 1.6]),
       dtype=st.sampled_from([torch.float32, torch.float16]), dynamic=st.booleans(), seed=seeds)
def test_grid_sample(mode, padding, align_corners, n, c, size_in, size_out, reach, dtype, dynamic, seed):
    x = tensor((n, c, *size_in), torch.float32, seed) * 5
    # grid points inside [-1, 1] and (reach > 1) outside, where the padding mode decides
    grid = (torch.rand((n, *size_out, 2), generator=torch.Generator().manual_seed(seed)) * 2 - 1) * reach
    x, grid = x.to(dtype), grid.to(dtype)
    dynamic = dynamic and n > 1 and c > 1 and min(size_in) > 1 and min(size_out) > 1
    run = assert_converts(lambda x, g: F.grid_sample(x, g, mode, padding, align_corners), [x, grid],
                          {"require_full_compilation": True},
                          dynamic={0: [0], 1: [0]} if dynamic else None)
    assert run.reports[0].engines[0].layer_types.get("GRID_SAMPLE") == 1


def test_mixed_dtypes_stay_in_pytorch():
    x = tensor((1, 2, 4, 4), torch.float32, 0)
    grid = torch.zeros(1, 3, 3, 2, dtype=torch.float64)
    run = assert_converts(lambda x, g: F.grid_sample(x.double(), g, align_corners=False), [x, grid],
                          engines=None, pytorch_ops=None)
    assert "aten.grid_sampler_2d.default" in run.pytorch_ops


def test_volumetric_grid_sample_stays_in_pytorch():
    """TensorRT's GRID_SAMPLE takes rank 4 only."""
    x = tensor((1, 2, 3, 4, 4), torch.float32, 0)
    grid = torch.rand(1, 2, 3, 3, 3) * 2 - 1
    run = assert_converts(lambda x, g: F.grid_sample(x, g, align_corners=False), [x, grid],
                          engines=None, pytorch_ops=None)
    assert "aten.grid_sampler_3d.default" in run.pytorch_ops
