"""Pointwise layers: ELEMENTWISE, UNARY, ACTIVATION, SELECT, CAST, IDENTITY, PARAMETRIC_RELU,
CONDITIONAL_INPUT.

TensorRT broadcasts elementwise operands of equal rank along dims of size 1; torch's
broadcasting is a superset, and the shape check after each layer catches any disagreement.
Integer division follows TensorRT: DIV truncates toward zero, FLOOR_DIV rounds down.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from plugtrt.network_snapshot import LayerSnapshot
from plugtrt.runtimes.reference.layers.common import Context, out_dtype, unsupported


def _div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.dtype.is_floating_point:
        return a / b
    return torch.div(a, b, rounding_mode="trunc")


def _floor_div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.dtype.is_floating_point:
        return torch.floor(a / b)
    return torch.div(a, b, rounding_mode="floor")


_BINARY = {
    "SUM": torch.add,
    "PROD": torch.mul,
    "MAX": torch.maximum,
    "MIN": torch.minimum,
    "SUB": torch.sub,
    "DIV": _div,
    "POW": torch.pow,
    "FLOOR_DIV": _floor_div,
    "AND": torch.logical_and,
    "OR": torch.logical_or,
    "XOR": torch.logical_xor,
    "EQUAL": torch.eq,
    "GREATER": torch.gt,
    "LESS": torch.lt,
}


def elementwise(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    op = layer.params["op"]
    if op not in _BINARY:
        raise unsupported(layer, f"elementwise op {op}")
    return [_BINARY[op](inputs[0], inputs[1])]


_UNARY = {
    "EXP": torch.exp, "LOG": torch.log, "SQRT": torch.sqrt, "RECIP": torch.reciprocal,
    "ABS": torch.abs, "NEG": torch.neg, "SIN": torch.sin, "COS": torch.cos, "TAN": torch.tan,
    "SINH": torch.sinh, "COSH": torch.cosh, "ASIN": torch.asin, "ACOS": torch.acos,
    "ATAN": torch.atan, "ASINH": torch.asinh, "ACOSH": torch.acosh, "ATANH": torch.atanh,
    "CEIL": torch.ceil, "FLOOR": torch.floor, "ERF": torch.erf, "NOT": torch.logical_not,
    "SIGN": torch.sign, "ROUND": torch.round, "ISINF": torch.isinf, "ISNAN": torch.isnan,
}


def unary(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    op = layer.params["op"]
    if op not in _UNARY:
        raise unsupported(layer, f"unary op {op}")
    return [_UNARY[op](inputs[0])]


def _activation(kind: str, x: torch.Tensor, alpha: float, beta: float) -> torch.Tensor | None:
    """TensorRT's ActivationType formulas (alpha/beta as documented per kind)."""
    if kind == "RELU":
        return torch.relu(x)
    if kind == "SIGMOID":
        return torch.sigmoid(x)
    if kind == "TANH":
        return torch.tanh(x)
    if kind == "LEAKY_RELU":
        return torch.where(x >= 0, x, alpha * x)
    if kind == "ELU":
        return torch.where(x >= 0, x, alpha * torch.expm1(x))
    if kind == "SELU":
        return beta * torch.where(x >= 0, x, alpha * torch.expm1(x))
    if kind == "SOFTSIGN":
        return x / (1 + x.abs())
    if kind == "SOFTPLUS":
        return alpha * F.softplus(beta * x)
    if kind == "CLIP":
        return x.clamp(alpha, beta)
    if kind == "HARD_SIGMOID":
        return (alpha * x + beta).clamp(0, 1)
    if kind == "SCALED_TANH":
        return alpha * torch.tanh(beta * x)
    if kind == "THRESHOLDED_RELU":
        return torch.where(x > alpha, x, torch.zeros_like(x))
    if kind == "GELU_ERF":
        return F.gelu(x)
    if kind == "GELU_TANH":
        return F.gelu(x, approximate="tanh")
    return None


def activation(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    kind = layer.params["type"]
    result = _activation(kind, inputs[0], layer.params["alpha"], layer.params["beta"])
    if result is None:
        raise unsupported(layer, f"activation {kind}")
    return [result.to(inputs[0].dtype)]


def select(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    condition, then, otherwise = inputs
    return [torch.where(condition, then, otherwise)]


def cast(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    x, target = inputs[0], out_dtype(layer)
    if x.dtype.is_floating_point and not target.is_floating_point and target != torch.bool:
        x = torch.trunc(x)  # float -> int truncates toward zero
    return [x.to(target)]


def identity(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    """IDENTITY passes its input through; TensorRT lets it convert the type, as ``.to`` does."""
    return [inputs[0].to(out_dtype(layer))]


def parametric_relu(layer: LayerSnapshot, inputs: list, ctx: Context) -> list[torch.Tensor]:
    x, slope = inputs
    return [torch.where(x >= 0, x, x * slope)]


LAYERS = {
    "ELEMENTWISE": elementwise,
    "UNARY": unary,
    "ACTIVATION": activation,
    "SELECT": select,
    "CAST": cast,
    "IDENTITY": identity,
    "CONDITIONAL_INPUT": identity,
    "PARAMETRIC_RELU": parametric_relu,
}
