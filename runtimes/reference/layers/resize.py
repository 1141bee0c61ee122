"""RESIZE: nearest, linear and cubic interpolation, one axis at a time.

Each resized axis gets an (output x input) interpolation matrix built from TensorRT's
coordinate transformation, rounding and cubic parameters; applying the matrices axis by axis is
what a separable N-d resize means. Nearest resizing gathers instead, so integer tensors stay
exact.
"""
from __future__ import annotations

import math

import torch

from plugtrt.network_snapshot import LayerSnapshot
from plugtrt.runtimes.reference.layers.common import Context, unsupported


def _source_coordinates(layer: LayerSnapshot, out_size: int, in_size: int,
                        scale: float) -> torch.Tensor:
    """Where each output position samples the input, per ResizeCoordinateTransformation."""
    x = torch.arange(out_size, dtype=torch.float64)
    transform = layer.params["coordinate_transformation"]
    if out_size == 1 and layer.params.get("selector_for_single_pixel") == "UPPER":
        return torch.zeros_like(x)  # the upper-left pixel, whatever the transformation
    if transform == "ALIGN_CORNERS":
        return x * ((in_size - 1) / (out_size - 1)) if out_size > 1 else torch.zeros_like(x)
    if transform == "ASYMMETRIC":
        return x / scale
    if transform == "HALF_PIXEL":
        return (x + 0.5) / scale - 0.5
    raise unsupported(layer, f"coordinate transformation {transform}")


def _nearest_index(layer: LayerSnapshot, coords: torch.Tensor, in_size: int) -> torch.Tensor:
    rounding = layer.params["nearest_rounding"]
    if rounding == "HALF_UP":
        index = torch.floor(coords + 0.5)
    elif rounding == "HALF_DOWN":
        index = torch.ceil(coords - 0.5)
    elif rounding == "FLOOR":
        index = torch.floor(coords)
    elif rounding == "CEIL":
        index = torch.ceil(coords)
    else:
        raise unsupported(layer, f"nearest rounding {rounding}")
    return index.clamp(0, in_size - 1).to(torch.int64)


def _cubic_weights(distance: torch.Tensor, a: float) -> torch.Tensor:
    """Keys' cubic convolution kernel with coefficient ``a`` (TensorRT's ``cubic_coeff``)."""
    d = distance.abs()
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return torch.where(d <= 1, near, torch.where(d < 2, far, torch.zeros_like(d)))


def _matrix(layer: LayerSnapshot, coords: torch.Tensor, in_size: int) -> torch.Tensor:
    """The (out, in) interpolation matrix for LINEAR or CUBIC resizing."""
    mode = layer.params["resize_mode"]
    base = torch.floor(coords)
    if mode == "LINEAR":
        coords = coords.clamp(0, in_size - 1)
        base = torch.floor(coords)
        offsets = torch.tensor([0.0, 1.0], dtype=torch.float64)
        taps = base.unsqueeze(1) + offsets
        weights = 1 - (coords.unsqueeze(1) - taps).abs()
    elif mode == "CUBIC":
        offsets = torch.tensor([-1.0, 0.0, 1.0, 2.0], dtype=torch.float64)
        taps = base.unsqueeze(1) + offsets
        weights = _cubic_weights(coords.unsqueeze(1) - taps, layer.params["cubic_coeff"])
        if layer.params["exclude_outside"]:
            weights = torch.where((taps >= 0) & (taps < in_size), weights, torch.zeros_like(weights))
            weights = weights / weights.sum(dim=1, keepdim=True)
    else:
        raise unsupported(layer, f"resize mode {mode}")
    matrix = torch.zeros(coords.shape[0], in_size, dtype=torch.float64)
    matrix.scatter_add_(1, taps.clamp(0, in_size - 1).to(torch.int64), weights)
    return matrix


def _output_plan(layer: LayerSnapshot, inputs: list, x: torch.Tensor) -> tuple[list[int], list[float]]:
    """Output sizes and per-axis scales, from input 1 (sizes or scales) or the parameters."""
    target = inputs[1] if len(inputs) > 1 else None
    if target is not None and target.dtype.is_floating_point:
        scales = [float(s) for s in target.reshape(-1).tolist()]
    elif target is not None:
        sizes = [int(s) for s in target.reshape(-1).tolist()]
        return sizes, [o / i if i else 1.0 for o, i in zip(sizes, x.shape)]
    elif layer.params.get("scales"):
        scales = list(layer.params["scales"])
    elif layer.params.get("shape"):
        sizes = list(layer.params["shape"])
        return sizes, [o / i if i else 1.0 for o, i in zip(sizes, x.shape)]
    else:
        raise unsupported(layer, "a resize without output shape or scales")
    return [math.floor(i * s) for i, s in zip(x.shape, scales)], scales


def resize(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    x = inputs[0]
    sizes, scales = _output_plan(layer, inputs, x)
    for axis, (out_size, scale) in enumerate(zip(sizes, scales)):
        in_size = x.shape[axis]
        if out_size == in_size and scale == 1.0:
            continue
        coords = _source_coordinates(layer, out_size, in_size, scale)
        if layer.params["resize_mode"] == "NEAREST":
            index = _nearest_index(layer, coords, in_size).to(x.device)
            x = x.index_select(axis, index)
            continue
        matrix = _matrix(layer, coords, in_size).to(device=x.device)
        moved = x.movedim(axis, -1).to(torch.float64)
        x = torch.matmul(moved, matrix.t()).movedim(-1, axis).to(x.dtype)
    return [x]


LAYERS = {"RESIZE": resize}
