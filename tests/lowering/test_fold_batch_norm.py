"""conv + batch norm folded into one convolution, checked against eager through the backend."""
from __future__ import annotations

import copy

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from plugtrt.testing import assert_converts

from ..converters.strategies import FAST, seeds, tensor


def _conv_bn(nd: int, channels: tuple[int, int], groups: int, bias: bool, affine: bool,
             eps: float, var_scale: float, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[nd](
        channels[0] * groups, channels[1] * groups, 3, padding=1, groups=groups, bias=bias)
    bn = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[nd](
        channels[1] * groups, eps=eps, affine=affine)
    bn.running_mean.normal_()
    # running variances spread over decades around var_scale: tiny ones make large scales
    bn.running_var.copy_(var_scale * torch.exp(torch.randn_like(bn.running_var) * 2))
    if affine:
        nn.init.normal_(bn.weight)
        nn.init.normal_(bn.bias)
    return nn.Sequential(conv, bn, nn.ReLU()).eval()


@settings(**FAST)
@given(nd=st.sampled_from([1, 2, 3]), channels=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       groups=st.sampled_from([1, 2]), bias=st.booleans(), affine=st.booleans(),
       eps=st.sampled_from([1e-5, 1e-3, 0.1]), var_scale=st.sampled_from([1e-6, 1.0, 1e3]),
       seed=seeds)
def test_folded_batch_norm_matches_eager(nd, channels, groups, bias, affine, eps, var_scale, seed):
    model = _conv_bn(nd, channels, groups, bias, affine, eps, var_scale, seed)
    x = tensor((2, channels[0] * groups) + (5,) * nd, torch.float32, seed)
    run = assert_converts(model, [x], rtol=1e-4, atol=1e-4 * _magnitude(model, x))
    (engine,) = run.reports[0].engines
    assert "SCALE" not in engine.layer_types and "CONSTANT" not in engine.layer_types


@settings(**FAST)
@given(var_scale=st.sampled_from([1e-4, 1.0, 1e2]), precision=st.sampled_from(
    [torch.float16, torch.bfloat16]), half_model=st.booleans(), seed=seeds)
def test_folded_batch_norm_in_reduced_precision(var_scale, precision, half_model, seed):
    model = _conv_bn(2, (3, 4), 1, True, True, 1e-5, var_scale, seed)
    x = tensor((1, 3, 6, 6), torch.float32, seed)
    if half_model and precision == torch.float16:
        model, x = model.half(), x.half()
    rtol = 1e-2 if precision == torch.float16 else 5e-2
    assert_converts(model, [x], {"precision": precision}, rtol=rtol,
                    atol=rtol * _magnitude(model, x))


def _magnitude(model: nn.Module, x: torch.Tensor) -> float:
    """The size of the outputs, so that absolute tolerances scale with them (a running
    variance of 1e-6 multiplies outputs by up to 1e3)."""
    with torch.no_grad():
        return max(1.0, copy.deepcopy(model).float()(x.float()).abs().max().item())


def test_conv_read_elsewhere_is_not_folded():
    class Both(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y

    torch.manual_seed(0)
    model = Both().eval()
    model.bn.running_var.uniform_(0.5, 2)
    run = assert_converts(model, [torch.randn(1, 3, 8, 8)])
    assert run.reports[0].engines[0].layer_types.get("SCALE") == 1  # the batch norm, once


def test_transposed_conv_keeps_its_batch_norm():
    torch.manual_seed(0)
    model = nn.Sequential(nn.ConvTranspose2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
    model[1].running_var.uniform_(0.5, 2)
    run = assert_converts(model, [torch.randn(1, 3, 8, 8)])
    assert run.reports[0].engines[0].layer_types.get("SCALE") == 1
