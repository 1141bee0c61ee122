"""Normalization converters through the whole backend: inference batch norm, group norm,
instance norm (batch statistics), RMS norm and layer norm, accumulating in float32 whatever the
engine's precision."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch import nn

from plugtrt.converters import normalization
from plugtrt.testing import assert_converts

from .strategies import FAST, converter_names, seeds, tensor
from .pre_dispatch import assert_pre_dispatch_converts


def test_registers_through_a_fresh_manager():
    assert converter_names(normalization) == {
        "builtin._native_batch_norm_legit_no_training", "builtin.native_batch_norm",
        "builtin.batch_norm", "builtin.native_layer_norm", "builtin.native_group_norm",
        "builtin._native_batch_norm_legit.no_stats", "builtin.rms_norm", "builtin._fused_rms_norm",
        "builtin.layer_norm"}


@settings(**FAST)
@given(nd=st.sampled_from([1, 2, 3]), channels=st.integers(1, 4), affine=st.booleans(),
       eps=st.sampled_from([1e-5, 1e-3, 0.1]), precision=st.sampled_from(
           [torch.float32, torch.float16, torch.bfloat16]), seed=seeds)
def test_batch_norm(nd, channels, affine, eps, precision, seed):
    torch.manual_seed(seed)
    model = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[nd](channels, eps=eps,
                                                                          affine=affine)
    model.running_mean.normal_()
    model.running_var.uniform_(0.5, 2.0)
    if affine:
        nn.init.normal_(model.weight)
        nn.init.normal_(model.bias)
    shape = (2, channels, *[3] * nd) if nd > 1 else (2, channels, 3)
    assert_converts(model.eval(), [tensor(shape, torch.float32, seed)], {"precision": precision})


def test_half_model_keeps_its_dtype():
    model = nn.BatchNorm2d(3).eval().half()
    model.running_var.fill_(4.0)
    assert_converts(model, [tensor((1, 3, 2, 2), torch.float16, 0)], {"precision": torch.float16})


@settings(**FAST)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), normalized=st.integers(1, 4),
       affine=st.booleans(), bias=st.booleans(), eps=st.sampled_from([1e-5, 1e-2]),
       precision=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]), seed=seeds)
def test_layer_norm(shape, normalized, affine, bias, eps, precision, seed):
    torch.manual_seed(seed)
    normalized_shape = shape[-min(normalized, len(shape)):]
    model = nn.LayerNorm(normalized_shape, eps=eps, elementwise_affine=affine, bias=bias)
    if affine:
        nn.init.normal_(model.weight)
        if bias:
            nn.init.normal_(model.bias)
    assert_converts(model.eval(), [tensor(shape, torch.float32, seed)], {"precision": precision})


aten = torch.ops.aten


FULL = {"require_full_compilation": True}


precisions = st.sampled_from([torch.float32, torch.float16, torch.bfloat16])


model_dtypes = st.sampled_from([torch.float32, torch.float16, torch.bfloat16])


def _data(shape, dtype, seed):
    """Values with an offset and spread, so a normalization that skips a step is visible."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * 3 + 2).to(dtype)


@settings(**FAST)
@given(groups_channels=st.sampled_from([(1, 3), (2, 4), (3, 6), (4, 4), (2, 2)]),
       spatial=st.lists(st.integers(1, 4), min_size=0, max_size=3), batch=st.integers(1, 3),
       affine=st.booleans(), eps=st.sampled_from([1e-5, 1e-2]), dtype=model_dtypes,
       precision=precisions, seed=seeds)
def test_group_norm(groups_channels, spatial, batch, affine, eps, dtype, precision, seed):
    groups, channels = groups_channels
    if channels // groups * math.prod(spatial) == 1:
        spatial = [*spatial, 2]  # eager refuses groups of one value
    torch.manual_seed(seed)
    model = nn.GroupNorm(groups, channels, eps=eps, affine=affine)
    if affine:
        nn.init.normal_(model.weight)
        nn.init.normal_(model.bias)
    model = model.to(dtype)
    run = assert_converts(model, [_data((batch, channels, *spatial), dtype, seed)],
                          {**FULL, "precision": precision})
    assert "NORMALIZATION" in run.reports[0].engines[0].layer_types


@settings(**FAST)
@given(batch=st.integers(2, 4), affine=st.booleans(), seed=seeds)
def test_group_norm_dynamic_batch(batch, affine, seed):
    """The batch is symbolic; the fast partitioner keeps a tuple-returning node that reads a size
    computed in PyTorch out of TensorRT, so the global partitioner runs this one."""
    model = nn.GroupNorm(2, 4, affine=affine)
    if affine:
        nn.init.normal_(model.weight)
    assert_converts(model, [_data((batch, 4, 3, 2), torch.float32, seed)],
                    {**FULL, "partitioner": "global"}, dynamic={0: [0]})


def test_group_norm_statistics_outputs_fall_back():
    """mean and rstd (outputs 1, 2) are not built: a graph that reads them runs in PyTorch."""
    def fn(x, w, b):
        return aten.native_group_norm.default(x, w, b, 2, 4, 6, 2, 1e-5)[1] + 1
    run = assert_converts(fn, [_data((2, 4, 6), torch.float32, 0), torch.randn(4), torch.randn(4)],
                          engines=None, pytorch_ops=None)
    assert "aten.native_group_norm.default" in run.pytorch_ops


@settings(**FAST)
@given(nd=st.sampled_from([1, 2, 3]), batch=st.integers(1, 3), channels=st.integers(1, 4),
       dtype=model_dtypes, precision=precisions, seed=seeds)
def test_instance_norm(nd, batch, channels, dtype, precision, seed):
    model = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[nd](channels)
    shape = (batch, channels) + (3,) * nd
    # over as few as 3 values, eager's bfloat16 kernel (which rounds its intermediates) and the
    # engine's float32 statistics can differ by more than bfloat16's usual tolerance
    loose = 0.1 if dtype == torch.bfloat16 else None
    assert_converts(model.to(dtype), [_data(shape, dtype, seed)], {**FULL, "precision": precision},
                    rtol=loose, atol=loose)


@settings(**FAST)
@given(batch=st.integers(1, 3), channels=st.integers(1, 4), seed=seeds)
def test_instance_norm_affine_dynamic_batch(batch, channels, seed):
    """The affine weight is repeated per sample (``repeat``, not this family's) and applied to
    a channel axis of symbolic size ``batch * channels``."""
    model = nn.InstanceNorm2d(channels, affine=True)
    nn.init.normal_(model.weight)
    nn.init.normal_(model.bias)
    run = assert_converts(model, [_data((batch + 1, channels, 3, 4), torch.float32, seed)],
                          engines=None, pytorch_ops=None, dynamic={0: [0]})
    assert "aten._native_batch_norm_legit.no_stats" not in run.pytorch_ops


@settings(**FAST)
@given(nd=st.sampled_from([0, 1, 2]), batch=st.integers(2, 4), channels=st.integers(1, 4),
       affine=st.booleans(), precision=precisions, seed=seeds)
def test_batch_norm_without_running_stats(nd, batch, channels, affine, precision, seed):
    """A batch norm with ``track_running_stats=False`` normalises with the batch's own
    statistics, over the batch axis too."""
    model = {0: nn.BatchNorm1d, 1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[nd](
        channels, affine=affine, track_running_stats=False)
    if affine:
        nn.init.normal_(model.weight)
        nn.init.normal_(model.bias)
    shape = (batch, channels) + (3,) * nd
    assert_converts(model, [_data(shape, torch.float32, seed)], {**FULL, "precision": precision},
                    dynamic={0: [0]})


@settings(**FAST)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), normalized=st.integers(1, 3),
       affine=st.booleans(), eps=st.sampled_from([None, 1e-5, 0.1]), dtype=model_dtypes,
       fused=st.booleans(), seed=seeds)
def test_rms_norm(shape, normalized, affine, eps, dtype, fused, seed):
    """``rms_norm`` is a composite that torch.compile decomposes; pre-dispatch tracers keep it,
    and CUDA's decomposition calls ``_fused_rms_norm``."""
    normalized_shape = shape[-min(normalized, len(shape)):]
    weight = tensor(normalized_shape, dtype, seed + 1) if affine else None
    if fused:
        def fn(x, *w):
            return aten._fused_rms_norm.default(x, normalized_shape, w[0] if w else None, eps)[0]
    else:
        def fn(x, *w):
            return aten.rms_norm.default(x, normalized_shape, w[0] if w else None, eps)
    inputs = [_data(shape, dtype, seed)] + ([weight] if affine else [])
    assert_pre_dispatch_converts(fn, inputs, "builtin._fused_rms_norm" if fused else "builtin.rms_norm")


@settings(**FAST)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), normalized=st.integers(1, 3),
       weight=st.booleans(), bias=st.booleans(), dtype=model_dtypes, seed=seeds)
def test_layer_norm_composite(shape, normalized, weight, bias, dtype, seed):
    normalized_shape = shape[-min(normalized, len(shape)):]
    params = [tensor(normalized_shape, dtype, seed + 1 + i) for i in range(weight + bias)]

    def fn(x, *p):
        w = p[0] if weight else None
        b = p[-1] if bias else None
        return F.layer_norm(x, normalized_shape, w, b, 1e-3)
    assert_pre_dispatch_converts(fn, [_data(shape, dtype, seed)] + params, "builtin.layer_norm")


def test_rms_norm_through_compile_stays_in_float32_for_half():
    """torch.compile decomposes RMSNorm; the pieces still match eager for a half model."""
    model = nn.RMSNorm(8).half()
    nn.init.normal_(model.weight)
    assert_converts(model, [_data((3, 8), torch.float16, 1) * 40], {**FULL, "precision": torch.half})
