"""A decomposition: ``aten.logaddexp`` has no converter, so tracing rewrites it into ops that
have one, ``max(a, b) + log(1 + exp(-|a - b|))``, and the model stays in one engine."""
from __future__ import annotations

from collections.abc import Iterator

import torch

import plugtrt


def logaddexp(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.maximum(a, b) + torch.log(1 + torch.exp(-torch.abs(a - b)))


@plugtrt.hookimpl
def plugtrt_decompositions() -> Iterator[plugtrt.DecompositionSpec]:
    yield plugtrt.DecompositionSpec(name="example.logaddexp", target=torch.ops.aten.logaddexp.default,
                                    fn=logaddexp)
