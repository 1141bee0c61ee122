"""Dynamic graphs: which sizes are symbolic, where each is read at call time, and the profile.

Dynamo hands the backend a dynamic graph with symbolic sizes (``torch.compile(dynamic=True)``,
``torch._dynamo.mark_dynamic(x, 0, min=2, max=64)``, or automatically after a second shape),
and its shape environment knows each symbol's range. One engine then serves every size in its
optimization profile:

- **min** is the symbol's lower bound (dynamo specialises 0 and 1, so usually 2);
- **opt** is the size of the call being compiled (TensorRT tunes for it);
- **max** is the upper bound where dynamo knows one (``mark_dynamic(..., max=64)``); where it
  does not, it is the next power of two at or above twice the largest size seen, and at least
  16. A call beyond that rebuilds the engines once (logged) with the bound widened the same
  way, so N distinct sizes cost O(log N) builds, never one per size. The ``max_dynamic_size``
  setting gives those symbols an upper bound instead, so one build serves them all.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import sympy
import torch
import torch.fx
from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols

from plugtrt.errors import ConversionError

Bounds = dict[sympy.Symbol, tuple[int, int, int]]
_SMALLEST_MAX = 16


def _symbol(size: Any) -> sympy.Symbol | None:
    if isinstance(size, torch.SymInt):
        expr = size.node.expr
        return expr if isinstance(expr, sympy.Symbol) else None
    return None


def _finite(bound: sympy.Expr) -> int | None:
    """An int for a finite range bound; None for dynamo's unbounded ``int_oo``."""
    return int(bound) if bound.is_Integer else None


def _next_power_of_two(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


@attrs.define
class DynamicSizes:
    """The symbols of one dynamic graph and the profile policy applied to them."""

    sources: dict[sympy.Symbol, tuple[int, int | None]]
    """Symbol -> (argument index, dim) where a call carries its value (dim None: an int argument)."""
    ranges: dict[sympy.Symbol, tuple[int, int | None]]
    """Symbol -> (lower, upper or None) as dynamo's shape environment holds them."""
    largest: dict[sympy.Symbol, int] = attrs.Factory(dict)
    built: Bounds | None = None
    """The (min, opt, max) the current engines were built with."""

    @classmethod
    def of(cls, gm: torch.fx.GraphModule) -> DynamicSizes | None:
        """Read the symbols from the example values dynamo recorded on ``gm``'s placeholders;
        None when a size reaches the graph only as an int argument, never as a tensor's dim
        (a trace cannot follow it into the graph: such a graph is compiled per concrete size)."""
        sources: dict[sympy.Symbol, tuple[int, int | None]] = {}
        ranges: dict[sympy.Symbol, tuple[int, int | None]] = {}
        values = [n.meta.get("example_value") for n in gm.graph.nodes if n.op == "placeholder"]
        # a tensor's dim first: at compile time dynamo passes real tensors but symbolic ints
        carriers = [(i, d, s) for i, v in enumerate(values) if isinstance(v, torch.Tensor)
                    for d, s in enumerate(v.shape)]
        carriers += [(i, None, v) for i, v in enumerate(values) if not isinstance(v, torch.Tensor)]
        for index, dim, size in carriers:
            symbol = _symbol(size)
            if symbol is None or symbol in sources:
                continue
            sources[symbol] = (index, dim)
            known = size.node.shape_env.var_to_range.get(symbol)
            lower = _finite(known.lower) if known is not None else None
            upper = _finite(known.upper) if known is not None else None
            ranges[symbol] = (max(lower or 0, 1), upper)
        if any(dim is None for _, dim in sources.values()):
            return None
        return cls(sources=sources, ranges=ranges)

    def values(self, args: Sequence[Any]) -> dict[sympy.Symbol, int]:
        """Each symbol's value in this call."""
        out = {}
        for symbol, (index, dim) in self.sources.items():
            size = args[index].shape[dim] if dim is not None else args[index]
            # a SymInt argument (compile time) by its example value: int() would specialise it
            out[symbol] = int(size.node.hint) if isinstance(size, torch.SymInt) else int(size)
        return out

    def covers(self, values: dict[sympy.Symbol, int]) -> bool:
        """Whether the engines built so far take a call with these sizes."""
        return self.built is not None and all(
            self.built[s][0] <= v <= self.built[s][2] for s, v in values.items())

    def bounds_for(self, values: dict[sympy.Symbol, int], max_size: int | None = None) -> Bounds:
        """The profile for a build at these sizes, remembering them for the policy; ``max_size``
        (the ``max_dynamic_size`` setting) bounds the symbols dynamo leaves unbounded."""
        bounds: Bounds = {}
        for symbol, value in values.items():
            self.largest[symbol] = max(self.largest.get(symbol, 0), value)
            lower, upper = self.ranges[symbol]
            if upper is None and max_size is not None:
                upper = max_size
            if upper is None:
                upper = max(_SMALLEST_MAX, _next_power_of_two(2 * self.largest[symbol]))
            low = min(lower, value)
            bounds[symbol] = (low, min(max(value, low), upper), max(upper, value))
        self.built = bounds
        return bounds

    @staticmethod
    def describe(bounds: Bounds) -> str:
        return ", ".join(f"{s} in [{lo}, {hi}]" for s, (lo, _, hi) in sorted(bounds.items(), key=str))


def unbacked_bounds(values: Sequence[Any]) -> Bounds:
    """A profile for the data-dependent sizes (unbacked symbols such as ``u0``, the length of an
    ``x[mask]`` computed before the engine) among the dims of ``values``, an engine's input
    values: the range dynamo's shape environment holds for each, which for a count of True
    entries is ``[0, numel]`` (opt at the top: TensorRT sizes its memory for the largest case
    anyway). Raises ``ConversionError`` for a symbol without a finite upper bound."""
    bounds: Bounds = {}
    for value in values:
        for size in value.shape if isinstance(value, torch.Tensor) else ():
            if not isinstance(size, torch.SymInt):
                continue
            for symbol in free_unbacked_symbols(size.node.expr):
                known = size.node.shape_env.var_to_range.get(symbol)
                upper = _finite(known.upper) if known is not None else None
                if upper is None:
                    raise ConversionError(
                        f"engine input has a data-dependent size {symbol} with no known upper bound, "
                        "so TensorRT cannot be given an optimization profile for it; the ops reading "
                        "it stay in PyTorch (torch._check() an upper bound to convert them)")
                lower = max(_finite(known.lower) or 0, 0)
                bounds[symbol] = (lower, upper, upper)
    return bounds
