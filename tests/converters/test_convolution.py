"""aten.convolution through the whole backend: frozen nn.Conv weights become engine constants."""
from __future__ import annotations

import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from plugtrt.converters import convolution
from plugtrt.testing import assert_converts

from .strategies import FAST, converter_names, precisions, seeds, tensor

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
DECONV = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def test_registers_through_a_fresh_manager():
    assert converter_names(convolution) == {"builtin.convolution"}


@st.composite
def conv_case(draw, transposed: bool):
    nd = draw(st.sampled_from([1, 2, 2, 3]))
    groups = draw(st.sampled_from([1, 2]))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 3))
    kernel = draw(st.integers(1, 3))
    stride, dilation = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    padding = draw(st.integers(0, kernel // 2 if not transposed else kernel - 1))
    reach = kernel * dilation  # the input must cover one dilated window
    size = draw(st.integers(reach, max(reach, 6 if nd < 3 else 4)))
    extra = {}
    if transposed:
        extra["output_padding"] = draw(st.integers(0, min(stride - 1, padding, dilation)))
    return nd, dict(in_channels=cin, out_channels=cout, kernel_size=kernel, stride=stride,
                    padding=padding, dilation=dilation, groups=groups,
                    bias=draw(st.booleans()), **extra), (draw(st.integers(1, 2)), cin, *[size] * nd)


@settings(**FAST)
@given(case=conv_case(transposed=False), precision=precisions, seed=seeds)
def test_convolution(case, precision, seed):
    nd, kwargs, shape = case
    torch.manual_seed(seed)
    assert_converts(CONV[nd](**kwargs), [tensor(shape, torch.float32, seed)], {"precision": precision})


@settings(**FAST)
@given(case=conv_case(transposed=True), seed=seeds)
def test_transposed_convolution(case, seed):
    nd, kwargs, shape = case
    assume(nd != 3)
    torch.manual_seed(seed)
    if kwargs["stride"] > 1 and kwargs["dilation"] > 1:  # TensorRT cannot build these: declined
        expect = dict(engines=0, pytorch_ops=["aten.convolution.default"])
    else:
        expect = dict(engines=1, pytorch_ops=())
    assert_converts(DECONV[nd](**kwargs), [tensor(shape, torch.float32, seed)], **expect)


def test_output_padding_beyond_padding_stays_in_pytorch():
    model = nn.ConvTranspose2d(2, 2, 3, stride=2, padding=0, output_padding=1)
    assert_converts(model, [tensor((1, 2, 4, 4), torch.float32, 0)], engines=0,
                    pytorch_ops=["aten.convolution.default"])
