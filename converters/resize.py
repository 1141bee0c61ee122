"""Built-in converters for interpolation: ``upsample_*`` (nearest, nearest-exact, linear,
bilinear, trilinear, bicubic, and antialiased bilinear where it equals bilinear), each one
TensorRT RESIZE layer.

How torch's arithmetic maps onto TensorRT's (its documented formulas, which the reference
runtime implements):

- ``nearest``: ``src = floor(dst * scale)`` with ``scale = 1/s`` for a given scale factor,
  else ``in/out``: ASYMMETRIC coordinates, FLOOR rounding. torch computes it in float32 (and
  takes ``dst >> 1`` when ``out == 2 * in``); the validator computes torch's indices and
  TensorRT's and declines a node where one differs.
- ``nearest-exact``: ``src = floor((dst + 0.5) * scale)``: HALF_PIXEL, HALF_UP rounding
  (``floor((dst + 0.5) / t - 0.5 + 0.5)``).
- ``linear`` family, ``align_corners=False``: HALF_PIXEL (torch clamps a negative source
  coordinate to 0, which equals TensorRT's edge clamping of the two taps);
  ``align_corners=True``: ALIGN_CORNERS, UPPER selector for a one-pixel output (torch samples
  pixel 0 there; the formula would divide by zero).
- ``bicubic``: CUBIC with coefficient -0.75, taps clamped to the edge (``exclude_outside``
  off), the same two coordinate transformations without the clamp.

torch uses a *given* scale factor in the coordinate transformation, not ``out/in``: where a
given factor differs from ``out/in`` the layer gets ``scales`` (TensorRT then sizes the output
``floor(in * scale)``; a node where that is not torch's size is declined), else its output
shape. Every dim may be symbolic: the output shape then comes from a shape tensor, or from
scales exact in float32 (see :func:`_dynamic_plan` for the cases that hold for every size).
(Through torch.compile, graphs with dynamic sizes reach the backend with upsample ops already
split by torch into index arithmetic that converts too, see plugtrt.tracing; export and
pre-dispatch traces keep them whole.) A node every converter declines is decomposed into gathers
(torch's own decomposition, applied per node).
"""
from __future__ import annotations

import fractions
import math
from collections.abc import Iterator

import numpy as np
import sympy
import torch
import torch.fx
from torch.utils._sympy.functions import FloorDiv, FloorToInt, ToFloat, TruncToInt

from plugtrt.conversion import FLOATS, aten, arg, is_dynamic, out_dtype, shape_tensor, \
    sizes_computable, typed, val
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec, DecompositionSpec
from plugtrt.trt_adapter import trt

_FLOAT_OK = typed(FLOATS)

# (op name, spatial rank, kind, takes align_corners)
_OPS = [
    ("upsample_nearest1d", 1, "nearest", False),
    ("upsample_nearest2d", 2, "nearest", False),
    ("upsample_nearest3d", 3, "nearest", False),
    ("_upsample_nearest_exact1d", 1, "exact", False),
    ("_upsample_nearest_exact2d", 2, "exact", False),
    ("_upsample_nearest_exact3d", 3, "exact", False),
    ("upsample_linear1d", 1, "linear", True),
    ("upsample_bilinear2d", 2, "linear", True),
    ("upsample_trilinear3d", 3, "linear", True),
    ("upsample_bicubic2d", 2, "cubic", True),
    ("_upsample_bilinear2d_aa", 2, "aa", True),
]


def _arguments(node: torch.fx.Node, vec: bool, nd: int, align: bool
               ) -> tuple[bool, list[float | None]]:
    """``(align_corners, per-axis given scale or None)`` of an upsample node."""
    align_corners = bool(arg(node.args, node.kwargs, 2, "align_corners", False)) if align else False
    if vec:
        factors = arg(node.args, node.kwargs, 3 if align else 2, "scale_factors")
        scales = list(factors) if factors is not None else [None] * nd
        if len(scales) == 1 and nd > 1:
            scales = scales * nd
    else:
        names = {1: ("scales",), 2: ("scales_h", "scales_w"),
                 3: ("scales_d", "scales_h", "scales_w")}[nd]
        first = 3 if align else 2
        scales = [arg(node.args, node.kwargs, first + i, name) for i, name in enumerate(names)]
    return align_corners, [float(s) if s is not None and s > 0 else None for s in scales]


def _torch_nearest(size_in: int, size_out: int, given: float | None, exact: bool) -> np.ndarray:
    """torch's nearest source indices (its CPU kernel's float32 arithmetic)."""
    scale = np.float32(1.0 / given) if given else np.float32(size_in) / np.float32(size_out)
    dst = np.arange(size_out, dtype=np.float32)
    if exact:
        src = np.floor((dst + np.float32(0.5)) * scale)
    elif size_out == size_in:
        src = dst
    elif size_out == 2 * size_in:
        src = np.floor(dst / 2)
    else:
        src = np.floor(dst * scale)
    return np.minimum(src.astype(np.int64), size_in - 1)


def _trt_nearest(size_in: int, size_out: int, scale: float, exact: bool) -> np.ndarray:
    """TensorRT's documented nearest source indices for an axis resized by ``scale``."""
    dst = np.arange(size_out, dtype=np.float64)
    src = np.floor((dst + 0.5) / scale) if exact else np.floor(dst / scale)
    return np.clip(src.astype(np.int64), 0, size_in - 1)


def _plan(node: torch.fx.Node, vec: bool, nd: int, kind: str, align: bool) -> dict | None:
    """The layer's parameters, or None where TensorRT cannot compute torch's result."""
    x, out = val(node.args[0]), val(node)
    if not isinstance(x, torch.Tensor) or x.dim() != nd + 2:
        return None
    sizes_in, sizes_out = list(x.shape[-nd:]), list(out.shape[-nd:])
    align_corners, given = _arguments(node, vec, nd, align)
    if len(given) != nd:
        return None
    if is_dynamic(sizes_in) or is_dynamic(sizes_out):
        return _dynamic_plan(sizes_in, out, kind, align_corners, given)
    if min(sizes_out) < 1:
        return None
    if kind == "aa" and (align_corners or any(o < i for i, o in zip(sizes_in, sizes_out))):
        return None  # antialiasing changes the result only when it shrinks: decline that
    plan = {"mode": {"nearest": "NEAREST", "exact": "NEAREST", "linear": "LINEAR", "aa": "LINEAR",
                     "cubic": "CUBIC"}[kind],
            "transform": "ASYMMETRIC" if kind == "nearest" else "HALF_PIXEL",
            "rounding": "HALF_UP" if kind == "exact" else "FLOOR", "selector": "FORMULA",
            "scales": None}
    if align_corners:
        plan["transform"] = "ALIGN_CORNERS"
        if 1 in sizes_out:
            plan["selector"] = "UPPER"
        return plan  # torch ignores given scales here, as ALIGN_CORNERS does
    differs = [s is not None and s * i != o for s, i, o in zip(given, sizes_in, sizes_out)]
    scales = [float(np.float32(s)) if d else o / i
              for s, d, i, o in zip(given, differs, sizes_in, sizes_out)]
    if any(differs):
        for i, o, t in zip(sizes_in, sizes_out, scales):
            t32 = np.float32(t)
            if int(np.floor(i * t32)) != o or int(np.floor(np.float32(i) * t32)) != o:
                return None  # TensorRT would size this axis differently from torch
        plan["scales"] = [1.0, 1.0] + [float(np.float32(t)) for t in scales]
    if kind in ("nearest", "exact"):
        for i, o, s, t in zip(sizes_in, sizes_out, given, scales):
            if not np.array_equal(_torch_nearest(i, o, s, kind == "exact"),
                                  _trt_nearest(i, o, t, kind == "exact")):
                return None
    return plan


def _dyadic(scale: float, nearest: bool) -> bool:
    """``scale`` times any size is exact in float32 (a power of two for nearest modes, whose
    source index ``floor(dst / scale)`` must not round across an integer; a few binary digits
    otherwise), so TensorRT's ``floor(in * scale)`` output size is torch's for every size."""
    if nearest:
        return scale > 0 and math.log2(scale).is_integer() and abs(math.log2(scale)) <= 8
    return scale > 0 and (scale * 256).is_integer() and scale <= 256


def _scaled_size(size_in, size_out, scale: float) -> bool:
    """``size_out`` is ``floor(size_in * scale)`` as an expression, which TensorRT's output for
    ``scales`` then equals for every size (a given output size that is not is declined)."""
    if not (isinstance(size_in, torch.SymInt) and isinstance(size_out, torch.SymInt)):
        return False
    a, b = size_in.node.expr, size_out.node.expr
    ratio = fractions.Fraction(scale)
    forms = [FloorDiv(ratio.numerator * a, ratio.denominator),
             TruncToInt(sympy.Float(scale) * ToFloat(a)), FloorToInt(sympy.Float(scale) * ToFloat(a))]
    if ratio.denominator == 1:
        forms.append(sympy.expand(ratio.numerator * a))
    return sympy.expand(b) in forms or b in forms


def _dynamic_plan(sizes_in: list, out: torch.Tensor, kind: str, align_corners: bool, given: list
                  ) -> dict | None:
    """The layer's parameters for symbolic sizes, where they hold for every size: the output
    from a shape tensor (align_corners, or linear and cubic modes resized to a given size,
    whose coordinates torch also maps by ``in/out``), or from given scales that are exact in
    float32 (:func:`_dyadic`). Nearest modes to a given size, whose ``in/out`` source indices
    can round differently in TensorRT, and antialiasing, which depends on shrinking, decline."""
    nearest = kind in ("nearest", "exact")
    if kind == "aa" or (align_corners and nearest) or not sizes_computable(out.shape):
        return None
    plan = {"mode": {"nearest": "NEAREST", "exact": "NEAREST", "linear": "LINEAR",
                     "cubic": "CUBIC"}[kind],
            "transform": "ASYMMETRIC" if kind == "nearest" else "HALF_PIXEL",
            "rounding": "HALF_UP" if kind == "exact" else "FLOOR", "selector": "FORMULA",
            "scales": None}
    if align_corners:  # a one-pixel output samples pixel 0, as torch does
        return {**plan, "transform": "ALIGN_CORNERS", "selector": "UPPER"}
    if all(s is None for s in given) and not nearest:
        return plan
    sizes_out = list(out.shape[-len(given):])
    if any(s is None or not _dyadic(s, nearest) or not _scaled_size(i, o, s)
           for s, i, o in zip(given, sizes_in, sizes_out)):
        return None
    return {**plan, "scales": [1.0, 1.0] + [float(s) for s in given]}


def _supported(vec: bool, nd: int, kind: str, align: bool):
    def is_supported(node: torch.fx.Node, settings) -> bool:
        return _FLOAT_OK(node, settings) and _plan(node, vec, nd, kind, align) is not None
    return is_supported


def _convert(vec: bool, nd: int, kind: str, align: bool):
    def convert(ctx, node, args, kwargs):
        plan = _plan(node, vec, nd, kind, align)
        x = ctx.cast(args[0], out_dtype(ctx, node), node)
        layer = ctx.network.add_resize(x)
        layer.resize_mode = getattr(trt.InterpolationMode, plan["mode"])
        layer.coordinate_transformation = getattr(trt.ResizeCoordinateTransformation,
                                                  plan["transform"])
        layer.selector_for_single_pixel = getattr(trt.ResizeSelector, plan["selector"])
        layer.nearest_rounding = getattr(trt.ResizeRoundMode, plan["rounding"])
        if plan["mode"] == "CUBIC":
            layer.cubic_coeff = -0.75
            layer.exclude_outside = False
        shape = list(val(node).shape)
        if plan["scales"] is not None:
            layer.scales = plan["scales"]
        elif is_dynamic(shape):
            layer.set_input(1, shape_tensor(ctx, shape, node))
        else:
            layer.shape = tuple(int(d) for d in shape)
        return ctx.finish(layer, node)
    return convert


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    for name, nd, kind, align in _OPS:
        packet = getattr(aten, name)
        for overload in ("default", "vec"):
            vec = overload == "vec"
            yield ConverterSpec(name=f"builtin.{name}.{overload}", target=getattr(packet, overload),
                                convert=_convert(vec, nd, kind, align),
                                is_supported=_supported(vec, nd, kind, align),
                                supports_dynamic_shapes=True)


@hookimpl
def plugtrt_decompositions() -> Iterator[DecompositionSpec]:
    """torch's own decompositions (gathers of computed indices), for the nodes the converters
    above decline; while tracing these ops stay whole (see plugtrt.tracing)."""
    from torch._decomp import decomposition_table

    for name, _nd, _kind, _align in _OPS:
        packet = getattr(aten, name)
        for overload in ("default", "vec"):
            op = getattr(packet, overload)
            if op in decomposition_table:
                yield DecompositionSpec(name=f"builtin.{name}.{overload}", target=op,
                                        fn=decomposition_table[op])
