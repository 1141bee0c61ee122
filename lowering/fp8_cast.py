"""Lowering pass plugin: FP8 scaled casts become one quantize and one dequantize.

Models (and FP8 recipes) write an FP8 round trip as ``(x / s).to(torch.float8_e4m3fn)`` and
``q.to(torch.float32) * s``. Traced, that is ``div``, ``_to_copy``, ``_to_copy``, ``mul``: cast
layers and elementwise scalings that TensorRT would not treat as quantization. This pass
rewrites ``_to_copy(div(x, s), float8_e4m3fn)`` into ``plugtrt::quantize_fp8(x, s)`` and
``mul(_to_copy(q, float), s)`` into ``plugtrt::dequantize_fp8(q, s, float)``, which convert to
TensorRT's Q and DQ layers with ``s`` as their scale (a constant or a tensor the graph computes).

A ``clamp`` to [-448, 448] or wider between the division and the cast is part of the pattern:
the cast saturates at 448 in torch and in TensorRT alike. The halves are matched separately, so
an FP8 tensor that the model keeps (or returns) stays FP8. The pass runs before constant folding,
so that a weight's scaled cast reaches the converters as a Q/DQ pair on the constant.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.hookspecs import hookimpl
from plugtrt.quantization import FP8, FP8_MAX
from plugtrt.records import LoweringPassSpec

aten = torch.ops.aten
_FLOATS = (torch.float32, torch.float16, torch.bfloat16)
_SCALED = "_fp8_scale_"


def _value(node: object):
    return node.meta.get("val") if isinstance(node, torch.fx.Node) else None


def _cast_to(node: object, dtype_ok) -> bool:
    """``node`` is a plain dtype cast (``_to_copy`` with only ``dtype``) to a dtype ``dtype_ok`` accepts."""
    if not (isinstance(node, torch.fx.Node) and node.op == "call_function"
            and node.target is aten._to_copy.default and len(node.args) == 1):
        return False
    extra = {k: v for k, v in node.kwargs.items() if k != "dtype" and v is not None}
    return not extra and dtype_ok(node.kwargs.get("dtype"))


def _scale(gm: torch.fx.GraphModule, node: torch.fx.Node, value: object) -> torch.fx.Node | None:
    """The scale as a node holding a one-element float tensor; a Python number becomes a
    0-d float32 buffer (the custom ops take a tensor). None for anything else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        name = f"{_SCALED}{len(list(gm.named_buffers()))}"
        gm.register_buffer(name, torch.tensor(float(value)), persistent=False)
        with gm.graph.inserting_before(node):
            attr = gm.graph.get_attr(name)
        attr.meta["val"] = torch.empty((), dtype=torch.float32)
        return attr
    fake = _value(value)
    if isinstance(fake, torch.Tensor) and fake.dtype in _FLOATS and fake.dim() == 0:
        return value
    return None


def _saturation(node: torch.fx.Node) -> torch.fx.Node:
    """Skip a ``clamp`` whose bounds the FP8 cast's saturation already implies."""
    if node.op == "call_function" and node.target is aten.clamp.default and len(node.users) == 1:
        low = node.args[1] if len(node.args) > 1 else node.kwargs.get("min")
        high = node.args[2] if len(node.args) > 2 else node.kwargs.get("max")
        if (isinstance(low, (int, float)) and low <= -FP8_MAX
                and isinstance(high, (int, float)) and high >= FP8_MAX):
            return node.args[0]
    return node


def _quantize(gm: torch.fx.GraphModule, cast: torch.fx.Node) -> bool:
    """``_to_copy(div(x, s), fp8)`` -> ``quantize_fp8(x, s)``."""
    if not _cast_to(cast, lambda d: d == FP8):
        return False
    divide = _saturation(cast.args[0])
    if not (isinstance(divide, torch.fx.Node) and divide.op == "call_function"
            and divide.target is aten.div.Tensor and len(divide.args) == 2 and not divide.kwargs):
        return False
    x = divide.args[0]
    if not isinstance(_value(x), torch.Tensor) or _value(x).dtype not in _FLOATS:
        return False
    if _value(divide).dtype != _value(x).dtype:
        return False  # the division promoted x: not a plain scaling
    scale = _scale(gm, cast, divide.args[1])
    if scale is None:
        return False
    with gm.graph.inserting_before(cast):
        new = gm.graph.call_function(torch.ops.plugtrt.quantize_fp8.default, (x, scale))
    new.meta.update(cast.meta)
    cast.replace_all_uses_with(new)
    return True


def _dequantize(gm: torch.fx.GraphModule, multiply: torch.fx.Node) -> bool:
    """``mul(_to_copy(q, float), s)`` (either order) -> ``dequantize_fp8(q, s, float)``."""
    if not (multiply.op == "call_function" and multiply.target is aten.mul.Tensor
            and len(multiply.args) == 2 and not multiply.kwargs):
        return False
    for cast, scale in (multiply.args, reversed(multiply.args)):
        if not _cast_to(cast, lambda d: d in _FLOATS) or _value(cast.args[0]) is None:
            continue
        if _value(cast.args[0]).dtype != FP8 or _value(multiply).dtype != _value(cast).dtype:
            continue
        scale = _scale(gm, multiply, scale)
        if scale is None:
            continue
        with gm.graph.inserting_before(multiply):
            new = gm.graph.call_function(torch.ops.plugtrt.dequantize_fp8.default,
                                         (cast.args[0], scale, _value(cast).dtype))
        new.meta.update(multiply.meta)
        multiply.replace_all_uses_with(new)
        return True
    return False


def rewrite_fp8_casts(gm: torch.fx.GraphModule, settings) -> torch.fx.GraphModule:
    """Replace every FP8 scaled cast half by its quantize or dequantize op."""
    changed = False
    for node in list(gm.graph.nodes):
        changed |= _quantize(gm, node) or _dequantize(gm, node)
    if changed:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return gm


@hookimpl
def plugtrt_lowering_passes() -> Iterator[LoweringPassSpec]:
    yield LoweringPassSpec(name="builtin.fp8_casts", fn=rewrite_fp8_casts, order=-30)
