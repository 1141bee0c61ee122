"""Spatial layers over the trailing dims: CONVOLUTION, DECONVOLUTION, POOLING, LRN, SCALE,
GRID_SAMPLE.

Padding is applied explicitly (pre/post per dim, or computed for SAME_UPPER/SAME_LOWER) so that
asymmetric padding and TensorRT's EXPLICIT_ROUND_UP (ceil) output sizes need no torch options.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from plugtrt.network_snapshot import LayerSnapshot
from plugtrt.runtimes.reference.layers.common import Context, unsupported


def _pads(layer: LayerSnapshot, spatial: tuple[int, ...], window: tuple[int, ...],
          stride: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[list[int], list[int]]:
    """Pre and post padding per spatial dim, as the layer's padding mode defines them."""
    mode = layer.params["padding_mode"]
    pre, post = list(layer.params["pre_padding"]), list(layer.params["post_padding"])
    if mode.startswith("SAME"):
        pre, post = [], []
        for size, k, s, d in zip(spatial, window, stride, dilation):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small, large = total // 2, total - total // 2
            pre.append(large if mode == "SAME_LOWER" else small)
            post.append(small if mode == "SAME_LOWER" else large)
    elif mode == "EXPLICIT_ROUND_UP":
        # ceil output size: pad the end so the last window fits. Unlike ONNX and PyTorch,
        # TensorRT keeps a last window that starts inside the end padding.
        for i, (size, k, s, d) in enumerate(zip(spatial, window, stride, dilation)):
            span = size + pre[i] + post[i] - (k - 1) * d - 1
            out = math.ceil(span / s) + 1
            post[i] += max((out - 1) * s + (k - 1) * d + 1 - (size + pre[i] + post[i]), 0)
    elif mode not in ("EXPLICIT_ROUND_DOWN",):
        raise unsupported(layer, f"padding mode {mode}")
    return pre, post


def _torch_pad(pre: list[int], post: list[int]) -> list[int]:
    """F.pad's order: last dim first, (before, after) pairs."""
    flat = []
    for before, after in zip(reversed(pre), reversed(post)):
        flat += [before, after]
    return flat


def _kernel(layer: LayerSnapshot, inputs: list, ctx: Context, x: torch.Tensor,
            shape: list[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
    kernel = inputs[1] if len(inputs) > 1 and inputs[1] is not None else ctx.weight(
        layer, "kernel", x.dtype)
    bias = inputs[2] if len(inputs) > 2 and inputs[2] is not None else ctx.weight(
        layer, "bias", x.dtype)
    return kernel.reshape(shape), None if bias is None else bias.reshape(-1)


def convolution(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    x = inputs[0]
    p = layer.params
    window, nd = tuple(p["kernel_size_nd"]), len(p["kernel_size_nd"])
    groups = p["num_groups"]
    kernel, bias = _kernel(layer, inputs, ctx, x,
                           [p["num_output_maps"], x.shape[1] // groups, *window])
    stride, dilation = tuple(p["stride_nd"]), tuple(p["dilation_nd"])
    pre, post = _pads(layer, tuple(x.shape[-nd:]), window, stride, dilation)
    conv = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]
    return [conv(F.pad(x, _torch_pad(pre, post)), kernel, bias, stride, 0, dilation, groups)]


def deconvolution(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """Transposed convolution; pre/post padding crop the full result (negative pads extend it)."""
    x = inputs[0]
    p = layer.params
    window, nd = tuple(p["kernel_size_nd"]), len(p["kernel_size_nd"])
    if p["padding_mode"] != "EXPLICIT_ROUND_DOWN":
        raise unsupported(layer, f"deconvolution padding mode {p['padding_mode']}")
    groups = p["num_groups"]
    kernel, bias = _kernel(layer, inputs, ctx, x,
                           [x.shape[1], p["num_output_maps"] // groups, *window])
    conv = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[nd - 1]
    full = conv(x, kernel, bias, tuple(p["stride_nd"]), 0, 0, groups, tuple(p["dilation_nd"]))
    crop = [-v for v in _torch_pad(list(p["pre_padding"]), list(p["post_padding"]))]
    return [F.pad(full, crop)]


def pooling(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """MAX / AVERAGE / MAX_AVERAGE_BLEND; AVERAGE divides by the window's real elements when
    ``average_count_excludes_padding``, else by elements incl. explicit padding."""
    x = inputs[0]
    p = layer.params
    window, nd = tuple(p["window_size_nd"]), len(p["window_size_nd"])
    stride = tuple(p["stride_nd"])
    spatial = tuple(x.shape[-nd:])
    pre, post = _pads(layer, spatial, window, stride, (1,) * nd)
    explicit_pre, explicit_post = list(p["pre_padding"]), list(p["post_padding"])
    batch = x.reshape(-1, 1, *spatial)
    kind = p["type"]
    results = []
    if kind in ("MAX", "MAX_AVERAGE_BLEND"):
        pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[nd - 1]
        padded = F.pad(batch, _torch_pad(pre, post), value=-math.inf)
        results.append(pool(padded, window, stride))
    if kind in ("AVERAGE", "MAX_AVERAGE_BLEND"):
        pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[nd - 1]
        # sums accumulate in float32 (torch's CPU avg_pool3d has no half kernel either)
        wide = batch.float() if batch.dtype in (torch.float16, torch.bfloat16) else batch
        ones = torch.ones_like(wide[:1])
        if p["average_count_excludes_padding"] or p["padding_mode"].startswith("SAME"):
            counted = F.pad(ones, _torch_pad(pre, post))
        else:  # explicit padding counts; the extra end padding of ROUND_UP does not
            counted = F.pad(F.pad(ones, _torch_pad(explicit_pre, explicit_post), value=1.0),
                            _torch_pad([a - b for a, b in zip(pre, explicit_pre)],
                                       [a - b for a, b in zip(post, explicit_post)]))
        total = pool(F.pad(wide, _torch_pad(pre, post)), window, stride)
        results.append((total / pool(counted, window, stride)).to(batch.dtype))
    if not results:
        raise unsupported(layer, f"pooling type {kind}")
    out = results[0] if len(results) == 1 else (
        p["blend_factor"] * results[0] + (1 - p["blend_factor"]) * results[1])
    return [out.reshape((*x.shape[:-nd], *out.shape[-nd:]))]


def lrn(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """Cross-channel LRN: x / (k + alpha / n * sum of squares over n channels) ** beta."""
    p = layer.params
    return [F.local_response_norm(inputs[0], p["window_size"], p["alpha"], p["beta"], p["k"])]


def scale(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """(x * scale + shift) ** power, with UNIFORM, CHANNEL or ELEMENTWISE coefficients."""
    x = inputs[0]
    p = layer.params
    axis = p["channel_axis"]
    shape = {"UNIFORM": [1] * x.dim(),
             "CHANNEL": [x.shape[axis] if i == axis else 1 for i in range(x.dim())],
             "ELEMENTWISE": [x.shape[i] if i >= axis else 1 for i in range(x.dim())]}[p["mode"]]
    work = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    out = work
    for key, apply in (("scale", torch.mul), ("shift", torch.add), ("power", torch.pow)):
        value = ctx.weight(layer, key, work.dtype)
        if value is not None:
            out = apply(out, value.reshape(shape))
    return [out.to(x.dtype)]


_GRID_MODES = {"LINEAR": "bilinear", "NEAREST": "nearest", "CUBIC": "bicubic"}
_GRID_PADDING = {"FILL": "zeros", "CLAMP": "border", "REFLECT": "reflection"}


def grid_sample(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    p = layer.params
    mode, padding = p["interpolation_mode"], p["sample_mode"]
    if mode not in _GRID_MODES or padding not in _GRID_PADDING:
        raise unsupported(layer, f"grid sample {mode} with {padding}")
    return [F.grid_sample(inputs[0], inputs[1], _GRID_MODES[mode], _GRID_PADDING[padding],
                          p["align_corners"])]


LAYERS = {
    "CONVOLUTION": convolution,
    "DECONVOLUTION": deconvolution,
    "POOLING": pooling,
    "LRN": lrn,
    "SCALE": scale,
    "GRID_SAMPLE": grid_sample,
}
