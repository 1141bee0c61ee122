"""Hypothesis strategies and helpers the converter tests share."""
from __future__ import annotations

import functools

import torch
from hypothesis import settings
from hypothesis import strategies as st

from plugtrt.manager import PluginRegistry, load_entry_points, new_plugin_manager, registry_from


def _examples(dev: int, ci: int) -> int:
    """A property test's example budget. Local runs draw fresh examples every time, so their
    budget keeps finding new cases over time. CI's profile is derandomized: it replays the same
    fixed examples on every run, a regression set that more examples of the same draws widen
    little, while every example costs a whole compile (dynamo, tracing, a TensorRT build)."""
    return ci if settings.get_current_profile_name() == "ci" else dev


FAST = dict(max_examples=_examples(dev=25, ci=12), deadline=None)
PER_OP = dict(max_examples=_examples(dev=8, ci=5), deadline=None)
"""For a test parametrized over ops: every op runs in every session (the property-coverage check
needs each converter exercised, which an op drawn with ``sampled_from`` is not, always)."""


def shapes(min_rank: int = 1, max_rank: int = 4, min_side: int = 1, max_side: int = 5):
    return st.lists(st.integers(min_side, max_side), min_size=min_rank, max_size=max_rank).map(tuple)


@st.composite
def broadcast_pair(draw, min_rank: int = 1, max_rank: int = 4):
    """Two shapes torch broadcasts: the second drops leading dims and sets some to 1."""
    a = draw(shapes(min_rank, max_rank))
    keep = draw(st.integers(1, len(a)))
    b = tuple(1 if draw(st.booleans()) else d for d in a[len(a) - keep:])
    return (a, b) if draw(st.booleans()) else (b, a)


def tensor(shape, dtype: torch.dtype, seed: int, low: int = -20, high: int = 20,
           nonzero: bool = False, positive: bool = False) -> torch.Tensor:
    """Random values of ``dtype``: normal floats, integers in [low, high)."""
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        x = torch.randn(shape, generator=g)
        if positive:
            x = x.abs() + 0.1
        elif nonzero:
            x = torch.where(x.abs() < 0.1, torch.full_like(x, 0.5), x)
        return x.to(dtype)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    x = torch.randint(1 if positive else low, high, shape, generator=g)
    if nonzero:
        x = torch.where(x == 0, torch.ones_like(x), x)
    return x.to(dtype)


seeds = st.integers(0, 2**16)
float_dtypes = st.sampled_from([torch.float32, torch.float16])
precisions = st.sampled_from([torch.float32, torch.float16])


def converter_names(module) -> set[str]:
    """The converter names ``module`` registers through a fresh manager."""
    registry = registry_from(module)
    return {reg.record.name for regs in registry.converters.values() for reg in regs}


def options(precision: torch.dtype) -> dict:
    return {"precision": precision}


@functools.cache
def unfolded() -> PluginRegistry:
    """The built-in plugins without the constant-folding pass."""
    pm = new_plugin_manager()
    load_entry_points(pm, strict=True, distributions=frozenset({"plugtrt"}))
    pm.unregister(name="plugtrt.lowering.constant_folding")
    return PluginRegistry(pm)


def dynamic_dim0(*inputs: torch.Tensor) -> dict[int, list[int]] | None:
    """Mark the broadcast result's dim 0 dynamic on every input that has it at size >= 2 (dynamo
    specialises sizes 0 and 1); None when none does."""
    rank = max(t.dim() for t in inputs)
    marked = {i: [0] for i, t in enumerate(inputs) if t.dim() == rank and rank and t.shape[0] >= 2}
    return marked or None
