"""Built-in converters for pooling: max and average (1d, 2d, 3d), adaptive average and max to
any output size, and average pooling with a divisor override.

TensorRT's pooling layer has torch's floor output size (``EXPLICIT_ROUND_DOWN``) and a ceil
size (``EXPLICIT_ROUND_UP``) without torch's rule that the last window must start inside the
input; nodes where that rule changes the size are declined. Batch and spatial dims may be
symbolic (TensorRT sizes the output from the input's runtime shape); in ceil mode a symbolic
size converts only where the rule can never apply (:func:`window_fits`). Adaptive average
pooling converts as one POOLING layer when each output cell covers an equal, non-overlapping
window (a static input that divides evenly); :func:`_any_size` takes the rest.

Adaptive pooling (torch's windows ``[floor(i*in/out), ceil((i+1)*in/out))`` per axis) is
separable: a window is a box, and its mean (max) is the mean (max) along one axis of the means
(maxes) along the others, each partial mean over equally many elements. Each spatial axis is
done on its own:

- ``out == in``: nothing;
- ``in % out == 0``: windows are equal and disjoint: a reshape ``in -> (out, in/out)`` and one
  REDUCE over the new axis;
- otherwise: one SLICE and one REDUCE (keepdim) per output cell, and a CONCATENATION.

Averages accumulate in float32 (reduced-precision inputs are upcast, as other reductions do).
These converters take lower priority than the POOLING-layer ones, which keep the evenly
divisible cases as one layer. ``adaptive_max_pool*`` convert where only their values are read
(the indices output declines). Every dim may be symbolic: to one cell, a symbolic axis is one
REDUCE; to more, the windows' bounds are size expressions computed in the engine.

1d pooling is 2d pooling over a unit height: a reshape, one POOLING layer, a reshape.

``avg_pool2d/3d`` with ``divisor_override`` (which the POOLING-layer converter declines) is the
window sum over the divisor: an AVERAGE pooling that counts padding (every window then has the kernel's
volume, where no window runs past the padded input: ceil sizes that differ from floor ones
are declined) and one ELEMENTWISE product by ``volume / divisor``.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.fx
from torch.utils._sympy.functions import CeilDiv, FloorDiv

from plugtrt.conversion import (
    FLOATS, arg, aten, elementwise, is_dynamic, lift_rank, nonempty, only_first_output_used,
    out_dtype, reduce, reshape_to, sizes_computable, slice_to, static_shapes, typed, val,
)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt


_FLOAT_OK = typed(FLOATS)


def _expand(value, nd: int) -> tuple[int, ...]:
    values = [value] if isinstance(value, int) else list(value)
    return tuple(values * nd) if len(values) == 1 else tuple(values)


def _params(args, kwargs, nd: int, names: tuple[str, ...], defaults: tuple) -> dict:
    """Pooling arguments by name, positional or keyword, with torch's defaults."""
    got = dict(zip(names, defaults))
    got.update(zip(names, args[1:]))
    got.update({k: v for k, v in kwargs.items() if k in got})
    got["kernel_size"] = _expand(got["kernel_size"], nd)
    got["stride"] = _expand(got["stride"], nd) if got["stride"] else got["kernel_size"]
    got["padding"] = _expand(got["padding"], nd)
    if "dilation" in got:
        got["dilation"] = _expand(got["dilation"], nd)
    return got


_MAX = (("kernel_size", "stride", "padding", "dilation", "ceil_mode"), (None, (), 0, 1, False))
_AVG = (("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
        (None, (), 0, False, True, None))


def _pool(ctx, node, x, kind: str, nd: int, window, stride, padding, ceil_mode: bool,
          exclude_padding: bool = False):
    """Pool the last ``nd`` dims of ``x`` (rank nd+1 or nd+2)."""
    x = ctx.cast(x, ctx.engine_dtype(_result(node).dtype), node)
    unbatched = len(x.shape) == nd + 1
    if unbatched:
        x = lift_rank(ctx, x, nd + 2, node)
    layer = ctx.network.add_pooling_nd(x, getattr(trt.PoolingType, kind), trt.Dims(window))
    layer.stride_nd = trt.Dims(stride)
    layer.padding_nd = trt.Dims(padding)
    layer.padding_mode = (trt.PaddingMode.EXPLICIT_ROUND_UP if ceil_mode
                          else trt.PaddingMode.EXPLICIT_ROUND_DOWN)
    if kind == "AVERAGE":
        layer.average_count_excludes_padding = exclude_padding
    out = ctx.finish(layer, node)
    if unbatched:
        out = reshape_to(ctx, out, _result(node).shape, node)
    return out


def _result(node: torch.fx.Node) -> torch.Tensor:
    """The pooled tensor's fake value (element 0 of ``max_pool*_with_indices``)."""
    value = val(node)
    return value[0] if isinstance(value, (tuple, list)) else value


def _max_pool(nd: int, with_indices: bool):
    def convert(ctx, node, args, kwargs):
        p = _params(args, kwargs, nd, *_MAX)
        out = _pool(ctx, node, args[0], "MAX", nd, p["kernel_size"], p["stride"], p["padding"],
                    p["ceil_mode"])
        return (out, None) if with_indices else out
    return convert


def _avg_pool(nd: int):
    def convert(ctx, node, args, kwargs):
        p = _params(args, kwargs, nd, *_AVG)
        return _pool(ctx, node, args[0], "AVERAGE", nd, p["kernel_size"], p["stride"],
                     p["padding"], p["ceil_mode"], exclude_padding=not p["count_include_pad"])
    return convert


def _adaptive_avg_pool(nd: int):
    def convert(ctx, node, args, kwargs):
        spatial = tuple(val(node.args[0]).shape)[-nd:]
        output = _expand(args[1], nd)
        window = tuple(i // o for i, o in zip(spatial, output))
        return _pool(ctx, node, args[0], "AVERAGE", nd, window, window, (0,) * nd, False)
    return convert


def torch_pool_size(size: int, k: int, s: int, p: int, ceil_mode: bool) -> int:
    """torch's pooled size of one axis (dilation 1): its last window must start inside the input."""
    span = size + 2 * p - k
    out = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def window_fits(size, k: int, s: int, pad: int, ceil_mode: bool) -> bool:
    """TensorRT's pooling sizes this axis as torch does (dilation 1). In ceil mode torch drops
    a last window that would start in the right padding, which TensorRT keeps; that can only
    happen where ``k < pad + s`` (the last window then starts past ``size + pad``), so for a
    symbolic ``size`` ceil mode is taken only where it cannot."""
    if k < 1 or s < 1 or pad < 0 or pad > k // 2:
        return False
    if not isinstance(size, int):
        return not ceil_mode or k >= pad + s
    span = size + 2 * pad - k
    tensorrt = (math.ceil(span / s) if ceil_mode else span // s) + 1
    return tensorrt == torch_pool_size(size, k, s, pad, ceil_mode) >= 1


def _window_supported(node: torch.fx.Node, nd: int, p: dict) -> bool:
    """Rank nd+1 or nd+2, torch's argument limits, and TensorRT's output size equal to torch's."""
    x = val(node.args[0])
    if x.dim() not in (nd + 1, nd + 2):
        return False
    dilation = p.get("dilation", (1,) * nd)
    if any(len(v) != nd for v in (p["kernel_size"], p["stride"], p["padding"], dilation)):
        return False
    return all(d == 1 for d in dilation) and all(
        window_fits(size, k, s, pad, p["ceil_mode"])
        for size, k, s, pad in zip(x.shape[-nd:], p["kernel_size"], p["stride"], p["padding"]))


def _max_supported(nd: int, with_indices: bool):
    def is_supported(node, settings) -> bool:
        if with_indices and not only_first_output_used(node):
            return False
        result, x = _result(node), val(node.args[0])
        if not (nonempty(node) and result.dtype in FLOATS and x.dtype == result.dtype):
            return False
        return _window_supported(node, nd, _params(node.args, node.kwargs, nd, *_MAX))
    return is_supported


def _avg_supported(nd: int):
    def is_supported(node, settings) -> bool:
        if not _FLOAT_OK(node, settings):
            return False
        p = _params(node.args, node.kwargs, nd, *_AVG)
        return p["divisor_override"] is None and _window_supported(node, nd, p)
    return is_supported


def _adaptive_supported(nd: int):
    def is_supported(node, settings) -> bool:
        if not (_FLOAT_OK(node, settings) and static_shapes(node, last=nd)):
            return False  # a pooling window: symbolic sizes take _any_size's slices
        x = val(node.args[0])
        output = node.args[1] if len(node.args) > 1 else node.kwargs.get("output_size")
        if x.dim() not in (nd + 1, nd + 2) or any(not isinstance(o, int) for o in output):
            return False
        output = _expand(output, nd)
        return len(output) == nd and all(o >= 1 and i % o == 0 for i, o in zip(x.shape[-nd:], output))
    return is_supported



# -- adaptive pooling to any size ------------------------------------------------------
def _output_size(node: torch.fx.Node, nd: int) -> tuple[int, ...] | None:
    output = arg(node.args, node.kwargs, 1, "output_size")
    output = [output] if isinstance(output, int) else list(output or ())
    if len(output) == 1:
        output = output * nd
    if len(output) != nd or not all(isinstance(o, int) for o in output):
        return None
    return tuple(output)


def _windows(size_in, size_out: int) -> list[tuple[Any, Any]]:
    """Each output cell's ``[start, end)`` along an axis: ints, or size expressions (computed in
    the engine) where ``size_in`` is symbolic."""
    if isinstance(size_in, int):
        return [(i * size_in // size_out, -(-(i + 1) * size_in // size_out)) for i in range(size_out)]
    expr = size_in.node.expr
    return [(FloorDiv(i * expr, size_out), CeilDiv((i + 1) * expr, size_out)) for i in range(size_out)]


def _any_size(nd: int, op: str):
    """``op`` is AVG or MAX; the result is element 0 for the max ops' (values, indices)."""
    def convert(ctx, node, args, kwargs):
        dtype = out_dtype(ctx, node, 0 if op == "MAX" else None)
        x = args[0]
        x = ctx.upcast(x, node) if op == "AVG" else ctx.cast(x, dtype, node)
        shape = list(val(node.args[0]).shape)
        rank = len(shape)
        for axis, size_out in zip(range(rank - nd, rank), _output_size(node, nd)):
            size_in = shape[axis]
            symbolic = not isinstance(size_in, int)
            if symbolic and size_out == 1:
                x = reduce(ctx, x, op, [axis], True, node)
            elif not symbolic and size_out == size_in:
                continue
            elif not symbolic and size_in % size_out == 0:
                split = shape[:axis] + [size_out, size_in // size_out] + shape[axis + 1:]
                x = _reshape(ctx, x, split, node)
                x = reduce(ctx, x, op, [axis + 1], False, node)
            else:
                cells = []
                for start, end in _windows(size_in, size_out):
                    starts = [0] * rank
                    starts[axis] = start
                    sizes = list(shape)
                    sizes[axis] = end - start
                    part = slice_to(ctx, x, starts, sizes, [1] * rank, node)
                    cells.append(reduce(ctx, part, op, [axis], True, node))
                layer = ctx.network.add_concatenation(cells)
                layer.axis = axis
                x = ctx.name(layer, node, "concat").get_output(0)
            shape[axis] = size_out
        out = ctx.cast(x, dtype, node)
        return (out, None) if op == "MAX" else out
    return convert


def _reshape(ctx, x, shape, node):
    """A reshape keeping symbolic leading dims (0 copies the input's dim)."""
    if is_dynamic(shape):
        return reshape_to(ctx, x, shape, node)
    return ctx.reshape(x, shape, node)


def _any_size_supported(nd: int, op: str):
    def is_supported(node: torch.fx.Node, settings) -> bool:
        if op == "MAX" and not only_first_output_used(node):
            return False  # torch's argmax indices are not computed here
        x, result = val(node.args[0]), _result(node)
        if not (nonempty(node) and sizes_computable(x.shape)):
            return False
        if x.dtype not in FLOATS or result.dtype != x.dtype or x.dim() not in (nd + 1, nd + 2):
            return False
        if op == "AVG" and not _FLOAT_OK(node, settings):
            return False
        output = _output_size(node, nd)
        return output is not None and all(o >= 1 for o in output)
    return is_supported


# -- 1d pooling --------------------------------------------------------------------------
def _expand1(value, default) -> int:
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return default
    return int(value[0]) if isinstance(value, (list, tuple)) else int(value)


def _params1d(node_args, node_kwargs, kind: str) -> dict:
    kernel = _expand1(arg(node_args, node_kwargs, 1, "kernel_size"), None)
    p = {"kernel": kernel, "stride": _expand1(arg(node_args, node_kwargs, 2, "stride"), kernel),
         "padding": _expand1(arg(node_args, node_kwargs, 3, "padding"), 0)}
    if kind == "MAX":
        p["dilation"] = _expand1(arg(node_args, node_kwargs, 4, "dilation"), 1)
        p["ceil_mode"] = bool(arg(node_args, node_kwargs, 5, "ceil_mode", False))
    else:
        p["dilation"] = 1
        p["ceil_mode"] = bool(arg(node_args, node_kwargs, 4, "ceil_mode", False))
        p["count_include_pad"] = bool(arg(node_args, node_kwargs, 5, "count_include_pad", True))
    return p


def _pool1d(kind: str, with_indices: bool):
    def convert(ctx, node, args, kwargs):
        p = _params1d(args, kwargs, kind)
        dtype = out_dtype(ctx, node, 0 if with_indices else None)
        x = ctx.cast(args[0], dtype, node)
        shape = list(val(node.args[0]).shape)
        lifted = ([1] * (3 - len(shape)) + shape[:-1]) + [1, shape[-1]]
        x = _reshape(ctx, x, lifted, node)
        layer = ctx.network.add_pooling_nd(x, getattr(trt.PoolingType, kind), trt.Dims((1, p["kernel"])))
        layer.stride_nd = trt.Dims((1, p["stride"]))
        layer.padding_nd = trt.Dims((0, p["padding"]))
        layer.padding_mode = (trt.PaddingMode.EXPLICIT_ROUND_UP if p["ceil_mode"]
                              else trt.PaddingMode.EXPLICIT_ROUND_DOWN)
        if kind == "AVERAGE":
            layer.average_count_excludes_padding = not p["count_include_pad"]
        out = ctx.finish(layer, node)
        out = _reshape(ctx, out, list(_result(node).shape), node)
        return (out, None) if with_indices else out
    return convert


def _pool1d_supported(kind: str, with_indices: bool):
    def is_supported(node: torch.fx.Node, settings) -> bool:
        if with_indices and not only_first_output_used(node):
            return False
        if not nonempty(node):
            return False
        x, result = val(node.args[0]), _result(node)
        if x.dtype not in FLOATS or result.dtype != x.dtype or x.dim() not in (2, 3):
            return False
        if kind == "AVERAGE" and not _FLOAT_OK(node, settings):
            return False
        p = _params1d(node.args, node.kwargs, kind)
        return (p["kernel"] is not None and p["dilation"] == 1
                and window_fits(x.shape[-1], p["kernel"], p["stride"], p["padding"], p["ceil_mode"]))
    return is_supported


# -- avg_pool with divisor_override -------------------------------------------------------
def _expand_or(value, nd: int, default) -> tuple[int, ...]:
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return default
    values = [value] if isinstance(value, int) else list(value)
    return tuple(values * nd) if len(values) == 1 else tuple(values)


def _divisor_params(node_args, node_kwargs, nd: int) -> dict:
    kernel = _expand_or(arg(node_args, node_kwargs, 1, "kernel_size"), nd, None)
    return {"kernel": kernel, "stride": _expand_or(arg(node_args, node_kwargs, 2, "stride"), nd, kernel),
            "padding": _expand_or(arg(node_args, node_kwargs, 3, "padding", 0), nd, (0,) * nd),
            "ceil_mode": bool(arg(node_args, node_kwargs, 4, "ceil_mode", False)),
            "divisor": arg(node_args, node_kwargs, 6, "divisor_override")}


def _avg_divisor(nd: int):
    def convert(ctx, node, args, kwargs):
        p = _divisor_params(args, kwargs, nd)
        dtype = out_dtype(ctx, node)
        x = ctx.cast(args[0], dtype, node)
        shape = list(val(node.args[0]).shape)
        if len(shape) == nd + 1:
            x = _reshape(ctx, x, [1] + shape, node)
        layer = ctx.network.add_pooling_nd(x, trt.PoolingType.AVERAGE, trt.Dims(p["kernel"]))
        layer.stride_nd = trt.Dims(p["stride"])
        layer.padding_nd = trt.Dims(p["padding"])
        layer.padding_mode = trt.PaddingMode.EXPLICIT_ROUND_DOWN
        layer.average_count_excludes_padding = False
        out = ctx.finish(layer, node)
        out = elementwise(ctx, out, math.prod(p["kernel"]) / p["divisor"], "PROD", node, dtype)
        return _reshape(ctx, out, list(val(node).shape), node)
    return convert


def _avg_divisor_supported(nd: int):
    def is_supported(node: torch.fx.Node, settings) -> bool:
        if not _FLOAT_OK(node, settings):
            return False
        x = val(node.args[0])
        p = _divisor_params(node.args, node.kwargs, nd)
        if not isinstance(p["divisor"], int) or p["divisor"] == 0 or x.dim() not in (nd + 1, nd + 2):
            return False
        if p["kernel"] is None or any(len(v) != nd for v in (p["kernel"], p["stride"], p["padding"])):
            return False
        for size, k, s, pad in zip(x.shape[-nd:], p["kernel"], p["stride"], p["padding"]):
            if not window_fits(size, k, s, pad, False):
                return False
            if not isinstance(size, int):  # the ceil size is the floor one for every size only at stride 1
                if p["ceil_mode"] and s != 1:
                    return False
                continue
            floor = torch_pool_size(size, k, s, pad, False)
            if floor < 1 or (p["ceil_mode"] and torch_pool_size(size, k, s, pad, True) != floor):
                return False
        return True
    return is_supported


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    for nd in (2, 3):
        with_indices = getattr(aten, f"max_pool{nd}d_with_indices").default
        yield ConverterSpec(name=f"builtin.max_pool{nd}d_with_indices", target=with_indices,
                            convert=_max_pool(nd, True), is_supported=_max_supported(nd, True),
                            supports_dynamic_shapes=True)
        yield ConverterSpec(name=f"builtin.avg_pool{nd}d", target=getattr(aten, f"avg_pool{nd}d").default,
                            convert=_avg_pool(nd), is_supported=_avg_supported(nd),
                            supports_dynamic_shapes=True)
        yield ConverterSpec(name=f"builtin._adaptive_avg_pool{nd}d",
                            target=getattr(aten, f"_adaptive_avg_pool{nd}d").default,
                            convert=_adaptive_avg_pool(nd), is_supported=_adaptive_supported(nd),
                            supports_dynamic_shapes=True)
        yield ConverterSpec(name=f"builtin.adaptive_avg_pool{nd}d",
                            target=getattr(aten, f"adaptive_avg_pool{nd}d").default,
                            convert=_adaptive_avg_pool(nd), is_supported=_adaptive_supported(nd),
                            supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.max_pool2d", target=aten.max_pool2d.default,
                        convert=_max_pool(2, False), is_supported=_max_supported(2, False),
                        supports_dynamic_shapes=True)
    yield ConverterSpec(name="builtin.max_pool3d", target=aten.max_pool3d.default,
                        convert=_max_pool(3, False), is_supported=_max_supported(3, False),
                        supports_dynamic_shapes=True)
    for nd in (1, 2, 3):
        ops = [(f"adaptive_avg_pool{nd}d", "AVG"), (f"adaptive_max_pool{nd}d", "MAX")]
        if nd > 1:
            ops.append((f"_adaptive_avg_pool{nd}d", "AVG"))
        for name, op in ops:
            # below pooling.py's converters, which take the evenly divisible average cases
            yield ConverterSpec(name=f"builtin.{name}.any_size", target=getattr(aten, name).default,
                                convert=_any_size(nd, op), is_supported=_any_size_supported(nd, op),
                                priority=-1, supports_dynamic_shapes=True)
    for name, kind, with_indices in (("avg_pool1d", "AVERAGE", False), ("max_pool1d", "MAX", False),
                                     ("max_pool1d_with_indices", "MAX", True)):
        yield ConverterSpec(name=f"builtin.{name}", target=getattr(aten, name).default,
                            convert=_pool1d(kind, with_indices),
                            is_supported=_pool1d_supported(kind, with_indices),
                            supports_dynamic_shapes=True)
    for nd in (2, 3):
        # below pooling.py's avg_pool converters, which decline divisor_override
        yield ConverterSpec(name=f"builtin.avg_pool{nd}d.divisor_override",
                            target=getattr(aten, f"avg_pool{nd}d").default,
                            convert=_avg_divisor(nd), is_supported=_avg_divisor_supported(nd),
                            priority=-1, supports_dynamic_shapes=True)
