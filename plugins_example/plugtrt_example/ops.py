"""The custom operator this package ships: ``torch.ops.plugtrt_example.zero_border``.

Defined with ``torch.library``: an eager kernel for PyTorch and a fake kernel that tells
tracing the result's shape and dtype, so ``torch.compile`` captures it as one node instead of
breaking the graph. Importing this module (or loading the package's plugins) defines it.
"""
from __future__ import annotations

import torch


@torch.library.custom_op("plugtrt_example::zero_border", mutates_args=())
def zero_border(x: torch.Tensor, width: int) -> torch.Tensor:
    """``x`` with a frame ``width`` elements wide along its last two dims set to zero (masking
    the edges of a feature map, say)."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2], x.shape[-1]
    out[..., width:h - width, width:w - width] = x[..., width:h - width, width:w - width]
    return out


@zero_border.register_fake
def _(x: torch.Tensor, width: int) -> torch.Tensor:
    return torch.empty_like(x)
