"""Index-driven layers: GATHER (DEFAULT / ELEMENT / ND), SCATTER (ELEMENT / ND), ONE_HOT,
REVERSE_SEQUENCE, NON_ZERO. Negative indices count from the end, as in TensorRT's gather.
"""
from __future__ import annotations

import torch

from plugtrt.network_snapshot import LayerSnapshot
from plugtrt.runtimes.reference.layers.common import Context, out_dtype, to_ints, unsupported


def _wrap(indices: torch.Tensor, extent: int) -> torch.Tensor:
    indices = indices.to(torch.int64)
    return torch.where(indices < 0, indices + extent, indices)


def _gather_nd(data: torch.Tensor, indices: torch.Tensor, batch: int) -> torch.Tensor:
    """out[b..., i...] = data[b..., indices[b..., i..., :]] with ``batch`` leading batch dims."""
    batch_shape = data.shape[:batch]
    depth = indices.shape[-1]
    middle = indices.shape[batch:-1]
    flat_data = data.reshape((-1, *data.shape[batch:]))
    flat_index = indices.reshape(flat_data.shape[0], -1, depth)
    rows = torch.arange(flat_data.shape[0], device=data.device).unsqueeze(1)
    keys = [rows] + [_wrap(flat_index[..., j], flat_data.shape[1 + j]) for j in range(depth)]
    picked = flat_data[tuple(keys)]
    return picked.reshape((*batch_shape, *middle, *data.shape[batch + depth:]))


def gather(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    data, indices = inputs
    mode, axis = layer.params["mode"], layer.params["axis"]
    batch = layer.params["num_elementwise_dims"]
    if mode == "ELEMENT":
        return [torch.gather(data, axis, _wrap(indices, data.shape[axis]))]
    if mode == "ND":
        return [_gather_nd(data, indices, batch)]
    if mode != "DEFAULT" or batch not in (0, 1):
        raise unsupported(layer, f"gather mode {mode} with num_elementwise_dims={batch}")
    index = _wrap(indices, data.shape[axis])
    if batch == 0:
        picked = data.index_select(axis, index.reshape(-1))
        return [picked.reshape((*data.shape[:axis], *index.shape, *data.shape[axis + 1:]))]
    # one elementwise dim: batch b of the output gathers from batch b of the data
    picked = torch.stack([data[b].index_select(axis - 1, index[b].reshape(-1)).reshape(
        (*data.shape[1:axis], *index.shape[1:], *data.shape[axis + 1:])) for b in range(data.shape[0])])
    return [picked]


def scatter(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """A copy of the data with ``updates`` written at ``indices`` (no reduction)."""
    data, indices, updates = inputs
    mode = layer.params["mode"]
    out = data.clone()
    if mode == "ELEMENT":
        axis = layer.params["axis"]
        return [out.scatter(axis, _wrap(indices, data.shape[axis]), updates)]
    if mode == "ND":
        depth = indices.shape[-1]
        keys = tuple(_wrap(indices[..., j], data.shape[j]) for j in range(depth))
        out[keys] = updates
        return [out]
    raise unsupported(layer, f"scatter mode {mode}")


def one_hot(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """values[1] where the position equals the index (negative indices wrap), values[0] elsewhere."""
    indices, values, depth_tensor = inputs
    depth = to_ints(depth_tensor)[0]
    axis = layer.params["axis"]
    rank = indices.dim() + 1
    axis = axis + rank if axis < 0 else axis
    index = _wrap(indices, depth)
    positions = torch.arange(depth, device=indices.device)
    view = [1] * rank
    view[axis] = depth
    hot = index.unsqueeze(axis) == positions.reshape(view)
    off, on = values.reshape(-1)[0], values.reshape(-1)[1]
    return [torch.where(hot, on, off)]


def reverse_sequence(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """Per batch entry b, reverse the first lengths[b] elements along the sequence axis."""
    data, lengths = inputs
    batch_axis, seq_axis = layer.params["batch_axis"], layer.params["sequence_axis"]
    out = data.clone()
    for b, length in enumerate(to_ints(lengths)):
        row = data.select(batch_axis, b)
        axis = seq_axis - (1 if seq_axis > batch_axis else 0)
        head = row.narrow(axis, 0, length).flip(axis)
        out.select(batch_axis, b).narrow(axis, 0, length).copy_(head)
    return [out]


def non_zero(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """Indices of the non-zero elements, one column each: shape [rank, count]."""
    return [torch.nonzero(inputs[0]).t().to(out_dtype(layer))]


LAYERS = {
    "GATHER": gather,
    "SCATTER": scatter,
    "ONE_HOT": one_hot,
    "REVERSE_SEQUENCE": reverse_sequence,
    "NON_ZERO": non_zero,
}
