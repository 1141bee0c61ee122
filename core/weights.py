"""Frozen weights: noticing that one changed, and being told so where it cannot be noticed.

Parameters and buffers are frozen into engine constants, so a weight changed after compiling
must rebuild the engines before the next call, or the engine would silently return the old
answer. Per call, :class:`FrozenWeights` reads two integers per frozen weight (no data is
read, so the cost does not depend on the weights' size):

- ``_version``, which every in-place write through the tensor or a view of it bumps:
  ``copy_``, ``mul_``, ``load_state_dict`` (it copies under ``no_grad``), optimizer steps;
- ``data_ptr()``, which ``p.data = other`` and a reassigned parameter change. The storage seen
  at the last build is held, so no new storage can reuse its address unnoticed.

The check is linear in the number of weights, and cannot be otherwise without missing writes:
PyTorch has no event for an in-place write, only the per-tensor version counter, so a check
that never misses one reads every counter. It is kept to C loops (``map`` over an
``attrgetter``, one C call for the addresses), about 0.1 µs per weight; dynamo's own guards
and argument passing for the same parameters cost more (``bench/call_overhead.py``).

``p.data.mul_(2)`` changes neither: ``.data`` is a new tensor with its own version counter
that shares the storage. That write, and writes through ``numpy()`` or DLPack, are invisible;
:func:`weights_changed` tells plugtrt about them, or ``options={"weights": "inputs"}`` keeps
weights as engine inputs that are read on every call.
"""
from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import Any

import torch

_VERSION = operator.attrgetter("_version")
_same_addresses = getattr(torch._C, "_tensors_data_ptrs_at_indices_equal", None)
"""One C call comparing many tensors' ``data_ptr()`` (what cudagraph trees use); absent on
builds that lack it, where a Python loop does the same."""


class FrozenWeights:
    """The frozen inputs of one graph and their state at the last build."""

    def __init__(self, args: Sequence[Any], indices: Sequence[int]):
        self.indices = list(indices)
        self._pick = (lambda a: ()) if not self.indices else \
            (lambda a, i=self.indices[0]: (a[i],)) if len(self.indices) == 1 else \
            operator.itemgetter(*self.indices)
        self._remember(args)

    def _remember(self, args: Sequence[Any]) -> None:
        tensors = self._pick(args)
        self._versions = list(map(_VERSION, tensors))
        self._addresses = [t.data_ptr() for t in tensors]
        self._by_position = [0] * len(args)
        """The addresses again, at the weights' positions among the graph's inputs: the
        layout the C comparison takes."""
        for i, address in zip(self.indices, self._addresses):
            self._by_position[i] = address
        self._held = [t.untyped_storage() for t in tensors]

    def _same_addresses(self, args: Sequence[Any]) -> bool:
        if _same_addresses is not None and len(args) == len(self._by_position):
            return _same_addresses(args if isinstance(args, list) else list(args), self._by_position,
                                   self.indices)
        return [t.data_ptr() for t in self._pick(args)] == self._addresses

    def changed(self, args: Sequence[Any]) -> tuple[int, ...]:
        """The inputs among the frozen weights written or replaced since the last call (empty
        if none); remembers their new state, as the caller rebuilds."""
        tensors = self._pick(args)
        if list(map(_VERSION, tensors)) == self._versions and self._same_addresses(args):
            return ()
        changed = tuple(i for i, t, version, address in zip(self.indices, tensors, self._versions,
                                                            self._addresses)
                        if t._version != version or t.data_ptr() != address)
        self._remember(args)
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
