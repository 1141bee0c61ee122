"""Strategies shared by the reduction, scan and sorting tests."""
from __future__ import annotations

import torch
from hypothesis import strategies as st

from .strategies import shapes

ALL_DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64, torch.bool]
NUMBERS = [torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64]
FLOAT_DTYPES = [torch.float32, torch.float16, torch.bfloat16]
FULL = {"require_full_compilation": True}


@st.composite
def dims_of(draw, rank: int, min_size: int = 1):
    """Distinct dims of a ``rank``-dim tensor, negative ones included."""
    return tuple(draw(st.lists(st.integers(-rank, rank - 1), min_size=min_size, max_size=rank,
                               unique_by=lambda d: d % rank)))


@st.composite
def shape_and_dynamic(draw, min_rank: int = 1, max_rank: int = 4, max_side: int = 5,
                      static: tuple[int, ...] = ()):
    """A shape (size-1 dims included) and, half the time, one dim to mark dynamic (sized >= 2:
    dynamo specialises 0 and 1), never one in ``static`` (dims as a function of the rank may be
    given by a callable)."""
    shape = list(draw(shapes(min_rank, max_rank, max_side=max_side)))
    rank = len(shape)
    keep = {d % rank for d in (static(rank) if callable(static) else static)}
    free = [d for d in range(rank) if d not in keep]
    if not free or not draw(st.booleans()):
        return tuple(shape), None
    dim = draw(st.sampled_from(free))
    shape[dim] = max(shape[dim], draw(st.integers(2, max(2, max_side))))
    return tuple(shape), {0: [dim]}


def with_zeros(x: torch.Tensor, seed: int) -> torch.Tensor:
    """``x`` with about a third of its elements zero (for any/all/count_nonzero/norm 0)."""
    g = torch.Generator().manual_seed(seed + 7)
    mask = torch.rand(x.shape, generator=g) < 0.35
    return x.masked_fill(mask, 0)
