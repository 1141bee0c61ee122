"""Network size: each small model's engine holds at most the layers stated here.

The bounds are what the lean conversion produces (constants folded in torch, batch norm
folded into the convolution, no do-nothing shuffles, casts or identities): a change that
makes networks bigger fails here, naming the layer types it added.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from plugtrt.testing import assert_converts


class ConvBnRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class Attention(nn.Module):
    """Self-attention written out the way Hugging Face models write it."""

    def __init__(self, dim: int = 32, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        b, s, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)
        q, k, v = (t.view(b, s, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, d)
        return self.norm(x + self.out(context))


class SharedWeight(nn.Module):
    """One weight read by two layers, and view/permute/view chains."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(16))

    def forward(self, x):
        y = x * self.w + x / self.w  # mul, div and add, around one weight constant
        a = y.view(2, 4, 4, 4).permute(0, 2, 1, 3)  # one shuffle: reshape, then transpose
        b = y.permute(0, 2, 1).reshape(2, 64)  # one shuffle: transpose, then reshape
        return a, b


# model, input, most layers: the first converting layer of each kind, and what it needs
CASES = {
    # one convolution (batch norm folded into its weights) and one activation
    "conv_bn_relu": (ConvBnRelu, (1, 3, 16, 16), 2),
    # a constant weight, a matrix multiply, a bias constant and the add
    "linear_with_bias": (lambda: nn.Linear(16, 8), (4, 16), 4),
    # one normalization layer and its two affine constants
    "layer_norm": (lambda: nn.LayerNorm(16), (2, 5, 16), 3),
    # the weight once (1), mul, div, add (3), one shuffle per view/permute chain (2)
    "shared_weight_and_shuffles": (SharedWeight, (2, 4, 16), 6),
    # two linears as batched matmuls (constant, matmul, bias constant, add: 8), 3 split
    # slices, one shuffle per head reshape + transpose (3) and one to merge the heads, the
    # two attention matmuls, the scale (constant + divide), softmax, residual add, and the
    # layer norm (3): 24, none of them a do-nothing layer or a transformed constant
    "attention_block": (Attention, (2, 8, 32), 24),
}


@pytest.mark.parametrize("name", list(CASES))
def test_network_stays_small(name):
    factory, shape, most = CASES[name]
    torch.manual_seed(0)
    run = assert_converts(factory().eval(), [torch.randn(shape)])
    (engine,) = run.reports[0].engines
    assert engine.layers <= most, (
        f"{name}: {engine.layers} layers, at most {most} expected: {engine.layer_types}")


def test_shuffle_read_by_another_node_is_not_extended():
    """Merging a reshape into the permute before it would change what ``b`` reads."""
    def f(x):
        p = (x * 2).permute(0, 2, 1)
        return p.clone().reshape(2, 64), p + 1

    run = assert_converts(f, [torch.randn(2, 4, 16)])
    assert run.reports[0].engines[0].layer_types["SHUFFLE"] == 2
