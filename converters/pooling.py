"""Built-in converters for max, average and adaptive average pooling (2d and 3d; 1d pooling
reaches us as 2d with a unit dim, after tracing).

TensorRT's pooling layer has torch's floor output size (``EXPLICIT_ROUND_DOWN``) and a ceil
size (``EXPLICIT_ROUND_UP``) without torch's rule that the last window must start inside the
input; nodes where that rule changes the size are declined. Batch and spatial dims may be
symbolic (TensorRT sizes the output from the input's runtime shape); in ceil mode a symbolic
size converts only where the rule can never apply (:func:`window_fits`). Adaptive average
pooling converts when each output cell covers an equal, non-overlapping window (a static input
that divides evenly; converters/pooling_extra.py takes the rest, symbolic sizes included).
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import FLOATS, aten, lift_rank, nonempty, only_first_output_used, \
    reshape_to, static_trailing, typed, val
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


def _torch_size(size: int, k: int, s: int, p: int, ceil_mode: bool) -> int:
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
    return tensorrt == _torch_size(size, k, s, pad, ceil_mode) >= 1


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
        if not (_FLOAT_OK(node, settings) and static_trailing(node, nd)):
            return False  # a pooling window: symbolic sizes take pooling_extra's slices
        x = val(node.args[0])
        output = node.args[1] if len(node.args) > 1 else node.kwargs.get("output_size")
        if x.dim() not in (nd + 1, nd + 2) or any(not isinstance(o, int) for o in output):
            return False
        output = _expand(output, nd)
        return len(output) == nd and all(o >= 1 and i % o == 0 for i, o in zip(x.shape[-nd:], output))
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
