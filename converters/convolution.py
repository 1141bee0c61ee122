"""Built-in converter for ``aten.convolution`` (1d/2d/3d, grouped, dilated, transposed).

Only the kernel and the channel counts must be static: the batch and spatial dims may be
symbolic (``torch.compile(dynamic=True)``, or dynamo's automatic dynamic shapes after a second
image size), since TensorRT's convolution layers take ``-1`` spatial dims and size their output
with torch's formula.

A frozen kernel and bias (constants, the usual case) become the layer's own ``Weights``: one
layer, no constant layers beside it. Computed ones (or bfloat16, which ``Weights`` cannot hold)
are given as tensor inputs 1 and 2 instead. TensorRT convolves 2 or 3 spatial dims; a 1d
convolution runs as 2d with a unit height.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch

from plugtrt.conversion import FLOATS, aten, is_dynamic, typed, val
from plugtrt.hookspecs import hookimpl
from plugtrt.records import ConverterSpec
from plugtrt.trt_adapter import trt


_NAMES = ("input", "weight", "bias", "stride", "padding", "dilation", "transposed",
          "output_padding", "groups")


def _conv_args(args, kwargs) -> tuple:
    """The nine arguments of ``aten.convolution``, positional or keyword."""
    return tuple(list(args) + [kwargs.get(n) for n in _NAMES[len(args):]])


def _expand(values, nd: int) -> tuple[int, ...]:
    values = list(values)
    return tuple(values * nd) if len(values) == 1 else tuple(values)


def _convolution(ctx, node, args, kwargs):
    x, weight, bias, stride, padding, dilation, transposed, output_padding, groups = _conv_args(
        args, kwargs)
    dtype = ctx.engine_dtype(val(node).dtype)
    kernel_shape = tuple(val(node.args[1]).shape)
    nd = len(kernel_shape) - 2
    stride, padding, dilation = (_expand(v, nd) for v in (stride, padding, dilation))
    output_padding = _expand(output_padding, nd)
    x = ctx.cast(x, dtype, node)
    if nd == 1:  # as 2d, height 1
        sizes = val(node.args[0]).shape
        x = ctx.reshape(x, (*sizes[:-1], 1, sizes[-1]), node)
        stride, padding, dilation = (1, *stride), (0, *padding), (1, *dilation)
        output_padding = (0, *output_padding)
    window = (1, kernel_shape[2]) if nd == 1 else kernel_shape[2:]
    as_weights = dtype != torch.bfloat16
    kernel, bias_weights = trt.Weights(), trt.Weights()  # empty: given as inputs below
    if isinstance(weight, torch.Tensor) and as_weights:
        kernel, weight = ctx.weights(weight, dtype), None
    if isinstance(bias, torch.Tensor) and as_weights:
        bias_weights, bias = ctx.weights(bias, dtype), None
    if transposed:
        maps = kernel_shape[1] * groups
        layer = ctx.network.add_deconvolution_nd(x, maps, trt.Dims(window), kernel, bias_weights)
        layer.pre_padding = trt.Dims(padding)
        layer.post_padding = trt.Dims(tuple(p - o for p, o in zip(padding, output_padding)))
    else:
        maps = kernel_shape[0]
        layer = ctx.network.add_convolution_nd(x, maps, trt.Dims(window), kernel, bias_weights)
        layer.padding_nd = trt.Dims(padding)
    layer.stride_nd = trt.Dims(stride)
    layer.dilation_nd = trt.Dims(dilation)
    layer.num_groups = groups
    if weight is not None:
        if isinstance(weight, torch.Tensor):  # a bfloat16 constant
            weight = ctx.constant(weight, node, dtype=dtype)
        weight = ctx.cast(weight, dtype, node)
        if nd == 1:
            weight = ctx.reshape(weight, (*kernel_shape[:2], 1, kernel_shape[2]), node)
        layer.set_input(1, weight)
    if bias is not None:
        if isinstance(bias, torch.Tensor):
            bias = ctx.constant(bias, node, dtype=dtype)
        layer.set_input(2, ctx.cast(bias, dtype, node))
    out = ctx.finish(layer, node)
    if nd == 1:
        out = ctx.reshape(out, tuple(val(node).shape), node)
    return out


def _supported(node: torch.fx.Node, settings) -> bool:
    """Floats, static channels, a static kernel of rank 3 to 5, and for a transposed convolution an
    output padding no larger than the padding (TensorRT has no output padding: it is folded
    into a smaller post-padding, which cannot go negative) and not both stride and dilation."""
    if not typed(FLOATS)(node, settings):
        return False
    _, weight, _, stride, padding, dilation, transposed, output_padding, groups = _conv_args(
        node.args, node.kwargs)
    kernel = val(weight)
    if not isinstance(kernel, torch.Tensor) or kernel.dim() not in (3, 4, 5):
        return False
    nd = kernel.dim() - 2
    x, out = val(node.args[0]), val(node)
    if is_dynamic(kernel.shape) or x.dim() != nd + 2 or is_dynamic((x.shape[1], out.shape[1])):
        return False  # batch and spatial dims may be symbolic, the channels not
    lists = [list(v) for v in (stride, padding, dilation, output_padding)]
    if any(len(v) not in (1, nd) for v in lists) or not isinstance(groups, int) or groups < 1:
        return False
    if transposed:  # TensorRT's builder: "Strided & Dilated Deconv are currently not supported"
        strided, dilated = any(s > 1 for s in stride), any(d > 1 for d in dilation)
        return not (strided and dilated) and all(
            o <= p for o, p in zip(_expand(output_padding, nd), _expand(padding, nd)))
    return True


@hookimpl
def plugtrt_converters() -> Iterator[ConverterSpec]:
    yield ConverterSpec(name="builtin.convolution", target=aten.convolution.default,
                        convert=_convolution, is_supported=_supported, constant_args={1, 2},
                        supports_dynamic_shapes=True)
