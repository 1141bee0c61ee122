"""Frozen weights: noticing that one changed, and being told so where it cannot be noticed.

Parameters and buffers are frozen into engine constants, so a weight changed after compiling
must rebuild the engines before the next call, or the engine would silently return the old
answer. Per call, :class:`FrozenWeights` reads two integers per frozen weight (no data is
read, so the cost does not depend on the weights' size):

- ``_version``, which every in-place write through the tensor or a view of it bumps:
  ``copy_``, ``mul_``, ``load_state_dict`` (it copies under ``no_grad``), optimizer steps;
- ``data_ptr()``, which ``p.data = other`` and a reassigned parameter change. The storage seen
  at the last build is held, so no new storage can reuse its address unnoticed.

``p.data.mul_(2)`` changes neither: ``.data`` is a new tensor with its own version counter
that shares the storage. That write, and writes through ``numpy()`` or DLPack, are invisible;
:func:`weights_changed` tells plugtrt about them, or ``options={"weights": "inputs"}`` keeps
weights as engine inputs that are read on every call.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch


class FrozenWeights:
    """The frozen inputs of one graph and their state at the last build."""

    def __init__(self, args: Sequence[Any], indices: Sequence[int]):
        self.indices = tuple(indices)
        self._stamps = self._read(args)
        self._held = [args[i].untyped_storage() for i in self.indices]

    def _read(self, args: Sequence[Any]) -> list[tuple[int, int]]:
        return [(args[i]._version, args[i].data_ptr()) for i in self.indices]

    def changed(self, args: Sequence[Any]) -> tuple[int, ...]:
        """The inputs among the frozen weights written or replaced since the last call (empty
        if none); remembers their new state, as the caller rebuilds."""
        stamps = self._read(args)
        if stamps == self._stamps:
            return ()
        changed = tuple(i for i, old, new in zip(self.indices, self._stamps, stamps) if old != new)
        self._stamps = stamps
        self._held = [args[i].untyped_storage() for i in self.indices]
        return changed


def weights_changed(weights: torch.nn.Module | torch.Tensor | Iterable[torch.Tensor]) -> None:
    """Tell plugtrt that weights changed in a way it cannot see (``p.data.mul_(2)``, a write
    through ``p.numpy()``): the engines that froze them rebuild before their next call.

    ``weights`` is a module (all its parameters and buffers), a tensor, or tensors. Costs
    one counter increment per tensor; compiled modules need not be known.
    """
    if isinstance(weights, torch.nn.Module):
        tensors: Iterable[torch.Tensor] = (*weights.parameters(), *weights.buffers())
    elif isinstance(weights, torch.Tensor):
        tensors = (weights,)
    else:
        tensors = weights
    for tensor in tensors:
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"plugtrt.weights_changed takes a module, a tensor or tensors; got "
                            f"{type(tensor).__name__}")
        torch.autograd.graph.increment_version(tensor)
