"""Decomposition plugin: PyTorch's own decompositions for ops that have no converter.

Each turns an op into ones the built-in converters handle (``silu`` into ``sigmoid`` and
``mul``). The experimental ones change numerics slightly or produce larger networks.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch._decomp import get_decompositions

from plugtrt.hookspecs import hookimpl
from plugtrt.records import DecompositionSpec

aten = torch.ops.aten

_STABLE = [aten.silu.default, aten.hardsigmoid.default, aten.hardswish.default,
           aten.hardtanh.default, aten.leaky_relu.default, aten.elu.default, aten.mish.default,
           aten.softplus.default, aten.rsub.Scalar, aten.rsub.Tensor, aten.addcmul.default,
           aten.addcdiv.default, aten.linalg_vector_norm.default]
_EXPERIMENTAL = [aten.native_layer_norm.default, aten.native_group_norm.default,
                 aten.var_mean.correction, aten.var.correction, aten._log_softmax.default]


@hookimpl
def plugtrt_decompositions() -> Iterator[DecompositionSpec]:
    for experimental, ops in ((False, _STABLE), (True, _EXPERIMENTAL)):
        for op, fn in get_decompositions(ops).items():
            yield DecompositionSpec(name=f"builtin.{op.name().split('::')[1]}", target=op, fn=fn,
                                    experimental=experimental)
