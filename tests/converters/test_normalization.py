"""Inference batch norm through the whole backend, accumulating in float32 under fp16/bf16."""
from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from plugtrt.converters import normalization
from plugtrt.testing import assert_converts

from .strategies import FAST, converter_names, seeds, tensor


def test_registers_through_a_fresh_manager():
    assert converter_names(normalization) == {
        "builtin._native_batch_norm_legit_no_training", "builtin.native_batch_norm",
        "builtin.batch_norm", "builtin.native_layer_norm"}


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
