"""Built-in converters for the pooling that converters/pooling.py leaves: adaptive average and
max pooling to ANY output size, and 1d average and max pooling.

Adaptive pooling (torch's windows ``[floor(i*in/out), ceil((i+1)*in/out))`` per axis) is
separable: a window is a box, and its mean (max) is the mean (max) along one axis of the means
(maxes) along the others, each partial mean over equally many elements. Each spatial axis is
done on its own:

- ``out == in``: nothing;
- ``in % out == 0``: windows are equal and disjoint: a reshape ``in -> (out, in/out)`` and one
  REDUCE over the new axis;
- otherwise: one SLICE and one REDUCE (keepdim) per output cell, and a CONCATENATION.

Averages accumulate in float32 (reduced-precision inputs are upcast, as other reductions do).
These converters take lower priority than pooling.py's, which keep the evenly divisible
cases as one POOLING layer. ``adaptive_max_pool*`` convert where only their values are read
(the indices output declines). Leading (batch, channel) dims may be dynamic.

1d pooling is 2d pooling over a unit height: a reshape, one POOLING layer, a reshape.

``avg_pool2d/3d`` with ``divisor_override`` (which pooling.py declines) is the window sum over
the divisor: an AVERAGE pooling that counts padding (every window then has the kernel's
volume, where no window runs past the padded input: ceil sizes that differ from floor ones
are declined) and one ELEMENTWISE product by ``volume / divisor``.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import FLOATS, aten, arg, elementwise, get, is_dynamic, nonempty, \
    only_first_output_used, out_dtype, reduce, reshape_to, slice_to, static_trailing, typed, val
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt

_FLOAT_OK = typed(FLOATS)


def _result(node: torch.fx.Node) -> torch.Tensor:
    value = val(node)
    return value[0] if isinstance(value, (tuple, list)) else value


def _output_size(node: torch.fx.Node, nd: int) -> tuple[int, ...] | None:
    output = arg(node, 1, "output_size")
    output = [output] if isinstance(output, int) else list(output or ())
    if len(output) == 1:
        output = output * nd
    if len(output) != nd or not all(isinstance(o, int) for o in output):
        return None
    return tuple(output)


def _windows(size_in: int, size_out: int) -> list[tuple[int, int]]:
    return [(i * size_in // size_out, -(-(i + 1) * size_in // size_out)) for i in range(size_out)]


def _adaptive(nd: int, op: str):
    """``op`` is AVG or MAX; the result is element 0 for the max ops' (values, indices)."""
    def convert(ctx, node, args, kwargs):
        dtype = out_dtype(ctx, node, 0 if op == "MAX" else None)
        x = args[0]
        x = ctx.upcast(x, node) if op == "AVG" else ctx.cast(x, dtype, node)
        shape = list(val(node.args[0]).shape)
        rank = len(shape)
        for axis, size_out in zip(range(rank - nd, rank), _output_size(node, nd)):
            size_in = shape[axis]
            if size_out == size_in:
                continue
            if size_in % size_out == 0:
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


def _adaptive_supported(nd: int, op: str):
    def is_supported(node: torch.fx.Node, settings) -> bool:
        if op == "MAX" and not only_first_output_used(node):
            return False  # torch's argmax indices are not computed here
        if not (nonempty(node) and static_trailing(node, nd)):
            return False
        x, result = val(node.args[0]), _result(node)
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
    kernel = _expand1(get(node_args, node_kwargs, 1, "kernel_size"), None)
    p = {"kernel": kernel, "stride": _expand1(get(node_args, node_kwargs, 2, "stride"), kernel),
         "padding": _expand1(get(node_args, node_kwargs, 3, "padding"), 0)}
    if kind == "MAX":
        p["dilation"] = _expand1(get(node_args, node_kwargs, 4, "dilation"), 1)
        p["ceil_mode"] = bool(get(node_args, node_kwargs, 5, "ceil_mode", False))
    else:
        p["dilation"] = 1
        p["ceil_mode"] = bool(get(node_args, node_kwargs, 4, "ceil_mode", False))
        p["count_include_pad"] = bool(get(node_args, node_kwargs, 5, "count_include_pad", True))
    return p


def _torch_size(size: int, k: int, s: int, p: int, ceil_mode: bool) -> int:
    span = size + 2 * p - (k - 1) - 1
    out = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


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
        if not (nonempty(node) and static_trailing(node, 1)):
            return False
        x, result = val(node.args[0]), _result(node)
        if x.dtype not in FLOATS or result.dtype != x.dtype or x.dim() not in (2, 3):
            return False
        if kind == "AVERAGE" and not _FLOAT_OK(node, settings):
            return False
        p = _params1d(node.args, node.kwargs, kind)
        k, s, pad = p["kernel"], p["stride"], p["padding"]
        if k is None or k < 1 or s < 1 or pad < 0 or pad > k // 2 or p["dilation"] != 1:
            return False
        span = x.shape[-1] + 2 * pad - k
        tensorrt = (math.ceil(span / s) if p["ceil_mode"] else span // s) + 1
        return tensorrt == _torch_size(x.shape[-1], k, s, pad, p["ceil_mode"]) >= 1
    return is_supported


# -- avg_pool with divisor_override -------------------------------------------------------
def _expand(value, nd: int, default) -> tuple[int, ...]:
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return default
    values = [value] if isinstance(value, int) else list(value)
    return tuple(values * nd) if len(values) == 1 else tuple(values)


def _divisor_params(node_args, node_kwargs, nd: int) -> dict:
    kernel = _expand(get(node_args, node_kwargs, 1, "kernel_size"), nd, None)
    return {"kernel": kernel, "stride": _expand(get(node_args, node_kwargs, 2, "stride"), nd, kernel),
            "padding": _expand(get(node_args, node_kwargs, 3, "padding", 0), nd, (0,) * nd),
            "ceil_mode": bool(get(node_args, node_kwargs, 4, "ceil_mode", False)),
            "divisor": get(node_args, node_kwargs, 6, "divisor_override")}


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
        if not (_FLOAT_OK(node, settings) and static_trailing(node, nd)):
            return False
        x = val(node.args[0])
        p = _divisor_params(node.args, node.kwargs, nd)
        if not isinstance(p["divisor"], int) or p["divisor"] == 0 or x.dim() not in (nd + 1, nd + 2):
            return False
        if p["kernel"] is None or any(len(v) != nd for v in (p["kernel"], p["stride"], p["padding"])):
            return False
        for size, k, s, pad in zip(x.shape[-nd:], p["kernel"], p["stride"], p["padding"]):
            if k < 1 or s < 1 or pad < 0 or pad > k // 2:
                return False
            floor = _torch_size(size, k, s, pad, False)
            if floor < 1 or (p["ceil_mode"] and _torch_size(size, k, s, pad, True) != floor):
                return False
        return True
    return is_supported


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    for nd in (1, 2, 3):
        ops = [(f"adaptive_avg_pool{nd}d", "AVG"), (f"adaptive_max_pool{nd}d", "MAX")]
        if nd > 1:
            ops.append((f"_adaptive_avg_pool{nd}d", "AVG"))
        for name, op in ops:
            # below pooling.py's converters, which take the evenly divisible average cases
            yield ConverterSpec(name=f"builtin.{name}.any_size", target=getattr(aten, name).default,
                                convert=_adaptive(nd, op), is_supported=_adaptive_supported(nd, op),
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
