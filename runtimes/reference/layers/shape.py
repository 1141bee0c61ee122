"""Layers that move data without arithmetic: SHUFFLE, SQUEEZE, UNSQUEEZE, SHAPE, CONCATENATION,
SLICE, CONSTANT, FILL.

TensorRT's ONNX importer computes shapes with ordinary layers on INT64 shape tensors, so these
layers carry most of every network, not just the visible reshapes.
"""
from __future__ import annotations

import torch

from plugtrt.network_snapshot import LayerSnapshot
from plugtrt.runtimes.reference.layers.common import Context, out_dtype, param, to_ints, unsupported


def _reshape_dims(dims: list[int], source: tuple[int, ...], zero_is_placeholder: bool) -> list[int]:
    """Resolve 0 (copy the source dim, when a placeholder) and a single -1 (inferred)."""
    dims = [source[i] if d == 0 and zero_is_placeholder else d for i, d in enumerate(dims)]
    if -1 in dims:
        known = 1
        for d in dims:
            known *= d if d != -1 else 1
        total = 1
        for d in source:
            total *= d
        dims[dims.index(-1)] = total // known if known else 0
    return dims


def shuffle(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """first transpose, then reshape (dims from input 1 or the parameter), then second transpose."""
    x = inputs[0]
    x = x.permute(layer.params["first_transpose"][: x.dim()])
    if len(inputs) > 1 and inputs[1] is not None:
        dims = to_ints(inputs[1])
    else:
        dims = layer.params.get("reshape_dims")
    if dims is not None:
        x = x.reshape(_reshape_dims(list(dims), tuple(x.shape), layer.params["zero_is_placeholder"]))
    x = x.permute(layer.params["second_transpose"][: x.dim()])
    return [x]


def _axes(value, rank: int) -> list[int]:
    return sorted(a + rank if a < 0 else a for a in to_ints(value))


def squeeze(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """Remove the axes given by input 1; without it, every axis of extent 1."""
    x = inputs[0]
    if len(inputs) > 1 and inputs[1] is not None:
        axes = _axes(inputs[1], x.dim())
    else:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    return [x.reshape([d for i, d in enumerate(x.shape) if i not in axes])]


def unsqueeze(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    x = inputs[0]
    axes = _axes(inputs[1], x.dim() + len(to_ints(inputs[1])))
    for axis in axes:
        x = x.unsqueeze(axis)
    return [x]


def shape(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    return [torch.tensor(inputs[0].shape, dtype=out_dtype(layer), device=ctx.device)]


def concatenation(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    return [torch.cat(inputs, dim=layer.params["axis"])]


def constant(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    dims = list(param(layer, "shape"))
    dtype = out_dtype(layer)
    flat = ctx.weight(layer, "weights", dtype)
    if flat is None:
        flat = torch.zeros(0, dtype=dtype, device=ctx.device)
    return [flat.reshape(dims)]


def _slice_indices(start: int, size: int, stride: int, extent: int, mode: str,
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Source indices along one axis and, for FILL, the mask of in-bounds positions."""
    index = start + stride * torch.arange(size, device=device)
    if mode == "WRAP":
        return index.remainder(max(extent, 1)), None
    if mode == "CLAMP":
        return index.clamp(0, max(extent - 1, 0)), None
    if mode == "REFLECT":
        if extent == 1:
            return torch.zeros_like(index), None
        period = 2 * (extent - 1)
        folded = index.remainder(period)
        return torch.where(folded < extent, folded, period - folded), None
    if mode == "FILL":
        valid = (index >= 0) & (index < extent)
        return index.clamp(0, max(extent - 1, 0)), valid
    return index, None  # STRICT_BOUNDS: TensorRT guarantees in-bounds indices


def slice_(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """ISliceLayer: start/size/stride from inputs 1-3 or parameters, on all or the given axes."""
    x = inputs[0]
    padded = list(inputs) + [None] * (6 - len(inputs))
    start, size, stride = (to_ints(padded[i]) if padded[i] is not None
                           else list(param(layer, name))
                           for i, name in ((1, "start"), (2, "shape"), (3, "stride")))
    axes_value = padded[5] if padded[5] is not None else layer.params.get("axes")
    axes = list(range(x.dim())) if axes_value is None else [
        a + x.dim() if a < 0 else a for a in to_ints(axes_value)]
    mode = layer.params["mode"]
    fill = padded[4]
    masks = []
    for axis, s, n, st in zip(axes, start, size, stride):
        index, valid = _slice_indices(s, n, st, x.shape[axis], mode, ctx.device)
        x = x.index_select(axis, index)
        if valid is not None:
            view = [1] * x.dim()
            view[axis] = n
            masks.append(valid.reshape(view))
    if masks:
        keep = masks[0]
        for mask in masks[1:]:
            keep = keep & mask
        value = fill.reshape(()) if fill is not None else torch.zeros((), dtype=x.dtype, device=x.device)
        x = torch.where(keep, x, value.to(x.dtype))
    return [x]


def fill(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """IFillLayer LINSPACE: value = alpha + sum_k beta[k] * index_k; RANDOM_* draw from torch."""
    padded = list(inputs) + [None] * (3 - len(inputs))
    dims = to_ints(padded[0]) if padded[0] is not None else list(param(layer, "shape"))
    dtype = out_dtype(layer)
    operation = layer.params["operation"]
    work = torch.float64 if dtype.is_floating_point else torch.int64
    alpha = padded[1].to(work) if padded[1] is not None else torch.tensor(
        layer.params["alpha"], dtype=work, device=ctx.device)
    if operation == "LINSPACE":
        beta = padded[2].to(work) if padded[2] is not None else torch.full(
            (len(dims),), layer.params["beta"], dtype=work, device=ctx.device)
        value = alpha.reshape(()).expand(dims).clone()
        for axis, extent in enumerate(dims):
            view = [1] * len(dims)
            view[axis] = extent
            value = value + beta[axis] * torch.arange(extent, dtype=work, device=ctx.device).reshape(view)
        return [value.to(dtype)]
    beta = padded[2].to(work) if padded[2] is not None else torch.tensor(
        layer.params["beta"], dtype=work, device=ctx.device)
    if operation == "RANDOM_UNIFORM":
        return [(alpha + (beta - alpha) * torch.rand(dims, dtype=work, device=ctx.device)).to(dtype)]
    if operation == "RANDOM_NORMAL":
        return [(alpha + beta * torch.randn(dims, dtype=work, device=ctx.device)).to(dtype)]
    raise unsupported(layer, f"fill operation {operation}")


LAYERS = {
    "SHUFFLE": shuffle,
    "SQUEEZE": squeeze,
    "UNSQUEEZE": unsqueeze,
    "SHAPE": shape,
    "CONCATENATION": concatenation,
    "SLICE": slice_,
    "CONSTANT": constant,
    "FILL": fill,
}
