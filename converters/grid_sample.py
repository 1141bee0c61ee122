"""Built-in converter for ``grid_sampler_2d`` (``F.grid_sample`` on 4-d input): TensorRT's
GRID_SAMPLE layer, whose modes are torch's (and ONNX's GridSample, modelled on torch):

- interpolation 0/1/2 (bilinear, nearest, bicubic) -> LINEAR, NEAREST, CUBIC;
- padding 0/1/2 (zeros, border, reflection) -> FILL, CLAMP, REFLECT;
- ``align_corners`` as is.

TensorRT's layer takes rank 4 only, so ``grid_sampler_3d`` (5-d input) has no converter.
Input and grid share one float dtype; any dim may be dynamic.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.conversion import FLOATS, aten, arg, out_dtype, typed, val
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt

_FLOAT_OK = typed(FLOATS)
_INTERPOLATION = {0: "LINEAR", 1: "NEAREST", 2: "CUBIC"}
_PADDING = {0: "FILL", 1: "CLAMP", 2: "REFLECT"}


def _convert(ctx, node, args, kwargs):
    dtype = out_dtype(ctx, node)
    x, grid = ctx.cast(args[0], dtype, node), ctx.cast(args[1], dtype, node)
    layer = ctx.network.add_grid_sample(x, grid)
    layer.interpolation_mode = getattr(trt.InterpolationMode,
                                       _INTERPOLATION[arg(node.args, node.kwargs, 2, "interpolation_mode")])
    layer.sample_mode = getattr(trt.SampleMode, _PADDING[arg(node.args, node.kwargs, 3, "padding_mode")])
    layer.align_corners = bool(arg(node.args, node.kwargs, 4, "align_corners"))
    return ctx.finish(layer, node)


def _supported(node: torch.fx.Node, settings) -> bool:
    if not _FLOAT_OK(node, settings):
        return False
    x, grid = val(node.args[0]), val(node.args[1])
    return (x.dim() == 4 and grid.dim() == 4 and x.dtype == grid.dtype
            and arg(node.args, node.kwargs, 2, "interpolation_mode") in _INTERPOLATION
            and arg(node.args, node.kwargs, 3, "padding_mode") in _PADDING)


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    yield ConverterSpec(name="builtin.grid_sampler_2d", target=aten.grid_sampler_2d.default,
                        convert=_convert, is_supported=_supported, supports_dynamic_shapes=True)
