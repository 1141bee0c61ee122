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

**Several profiles per engine** (:func:`engine_profiles`). TensorRT picks each kernel for a
profile's opt and must keep it valid from min to max, so one profile over 1..256 runs batch 1
with kernels tuned for batch 37. Where a symbol's range spans more than :data:`PROFILE_SPAN`
(8×), the engine gets one profile per bucket of that range instead, and the runtime selects the
bucket holding each call (:func:`plugtrt.runtime.choose_profile`). One build still serves the
whole range; the union of the buckets is exactly the range, so a call outside them all is
outside the range and rebuilds as above, with the widened range bucketed the same way.

- **Buckets** (:func:`buckets`) end at powers of two: a bucket starting at ``a`` reaches the
  largest power of two at or below ``8·a`` (or the range's max). After the first, buckets are
  ``[2^k + 1, 2^(k+3)]``, so each spans at most 8× and the count grows with the range's
  octaves divided by three: 1..256 is ``[1, 8] [9, 64] [65, 256]``, 2..4096 four buckets. A
  last bucket that fits within 8× of the one before joins it (1..65 is two buckets, not
  three). The count is capped at :data:`MAX_PROFILES` (reached only beyond a span of about
  8^8, 16 million), the last bucket then taking the rest of the range. Edges at powers of two
  keep a size in the same bucket when a rebuild widens the range's max, and put each bucket's
  end on the sizes kernels tile best.
- **opt**: the bucket holding the compiling call's size keeps that size (as the single profile
  does). TensorRT checks the network's shape constraints at every profile's opt, and a model
  takes only some sizes (a UNet that pools twice, multiples of 4), so each other bucket takes
  the size nearest its geometric middle (no size in the bucket more than about √8 ≈ 2.8× from
  it) among the multiples of the call size's power-of-two factor (call 32, bucket [3, 16]: 16;
  bucket [65, 128]: 96), or of the largest smaller power of two the bucket holds a multiple of.
  Where TensorRT still refuses the profiles, the engine is built again with one profile over
  the whole range (:func:`plugtrt.compiler`'s ``_build``, logged at debug).
- **Only the widest-ranging symbol is bucketed** (largest max/min, ties by name); the others keep
  their whole (min, opt, max) in every profile. A product of buckets over several symbols would
  multiply the profiles (three symbols of three buckets: 27), and the build time grows with the
  number of profiles (TensorRT-RTX on this CPU: about 0.045 s per profile for four 256-wide
  matmuls); the widest symbol (usually the batch) is where one set of kernels fits worst. The
  symbols are those of the engine's own inputs: an engine whose inputs do not carry the widest
  symbol of the graph buckets its own widest, or keeps one profile. A data-dependent size
  (:func:`unbacked_bounds`, 0 to all elements) is never bucketed: its range is a worst case.

Sizes 0 and 1: dynamo specialises them. With ``mark_dynamic(x, 0, min=1, max=256)`` a call at
batch 1 fails dynamo's constraint check ("marked ... as dynamic but your code specialized it to
be a constant (1)"); with ``dynamic=True`` it compiles a graph of its own. With
``torch.fx.experimental._config.backed_size_oblivious = True`` (torch 2.14), dynamo keeps the
marked range 1..256 as one symbol, and one graph with one build serves batch 1 too.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import sympy
import torch
import torch.fx
from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols

from plugtrt.errors import ConversionError

Bounds = dict[sympy.Symbol, tuple[int, int, int]]
"""One optimization profile: each symbol's (min, opt, max)."""
_SMALLEST_MAX = 16
PROFILE_SPAN = 8
"""The widest max/min ratio one profile covers before the range is split into buckets."""
MAX_PROFILES = 8
"""The most profiles one engine gets; the last bucket takes the rest of a wider range."""


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


def buckets(low: int, high: int) -> list[tuple[int, int]]:
    """``[low, high]`` split into consecutive buckets, each spanning at most
    :data:`PROFILE_SPAN` (max/min), ending at powers of two (see the module's docstring)."""
    if high <= PROFILE_SPAN * low:
        return [(low, high)]
    out: list[tuple[int, int]] = []
    start = low
    while start <= high:
        # the largest power of two at or below 8·start
        end = min(high, 1 << (PROFILE_SPAN * max(start, 1)).bit_length() - 1)
        if len(out) == MAX_PROFILES - 1:
            end = high
        out.append((start, end))
        start = end + 1
    if len(out) > 1 and out[-1][1] <= PROFILE_SPAN * out[-2][0]:
        out[-2:] = [(out[-2][0], out[-1][1])]
    return out


def _opt_in(low: int, high: int, opt: int) -> int:
    """The compiling call's size where it lies in ``[low, high]``; else the size nearest the
    bucket's geometric middle among the multiples of the call size's power-of-two factor (of the
    largest power of two below it that has a multiple in the bucket)."""
    if low <= opt <= high:
        return opt
    step = opt & -opt or 1
    while step > 1 and high // step * step < low:
        step //= 2
    first, last = -(-low // step) * step, high // step * step
    return min(last, max(first, round(math.sqrt(low * high) / step) * step))


def split_profiles(bounds: Mapping[sympy.Symbol, tuple[int, int, int]], split: bool = True
                   ) -> tuple[Bounds, ...]:
    """The optimization profiles for ``bounds``: one where every symbol spans at most
    :data:`PROFILE_SPAN` (or ``split`` is False), else one per bucket of the widest-ranging
    symbol."""
    # a data-dependent size's range (unbacked_bounds: 0 to all elements) is a worst case, not a
    # range of calls: it stays whole
    backed = [s for s in sorted(bounds, key=str) if not free_unbacked_symbols(s)]
    if not backed or not split:
        return (dict(bounds),) if bounds else ()
    widest = max(backed, key=lambda s: bounds[s][2] / max(bounds[s][0], 1))
    low, opt, high = bounds[widest]
    return tuple({**bounds, widest: (lo, _opt_in(lo, hi, opt), hi)} for lo, hi in buckets(low, high))


def engine_profiles(bounds: Mapping[sympy.Symbol, tuple[int, int, int]] | None,
                    values: Sequence[Any], split: bool = True) -> tuple[Bounds, ...]:
    """The profiles of one engine whose inputs have these (fake) ``values``: ``bounds``
    restricted to the symbols in their shapes, split by :func:`split_profiles` (one profile
    with ``split`` False); () for an engine with static inputs."""
    symbols: set[sympy.Symbol] = set()
    for value in values:
        if isinstance(value, torch.Tensor):
            for size in value.shape:
                if isinstance(size, torch.SymInt):
                    symbols |= size.node.expr.free_symbols
    return split_profiles({s: b for s, b in (bounds or {}).items() if s in symbols}, split)


def by_name(profiles: Sequence[Mapping[Any, tuple[int, int, int]]]
            ) -> tuple[dict[str, tuple[int, int, int]], ...]:
    """``profiles`` keyed by each symbol's name (``"s0"``): what an engine artifact keeps."""
    return tuple({str(s): tuple(b) for s, b in sorted(p.items(), key=lambda item: str(item[0]))}
                 for p in profiles)


def describe_profiles(profiles: Sequence[Mapping[Any, tuple[int, int, int]]]) -> str:
    """``s1 in [2, 64] opt 5; s0 in [1, 8] opt 8 | [9, 64] opt 24``: the symbols every profile
    shares, then the bucketed one's range per profile."""
    if not profiles:
        return "static"
    symbols = sorted(profiles[0], key=str)
    varying = [s for s in symbols if any(p[s] != profiles[0][s] for p in profiles)]
    shared = [f"{s} in [{lo}, {hi}] opt {opt}" for s in symbols if s not in varying
              for lo, opt, hi in [profiles[0][s]]]
    per_profile = [f"{s} in " + " | ".join(f"[{p[s][0]}, {p[s][2]}] opt {p[s][1]}" for p in profiles)
                   for s in varying]
    return "; ".join(shared + per_profile)
