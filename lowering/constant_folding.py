"""Lowering pass plugin: evaluate subgraphs that read no input, once, at compile time.

``torch.arange``, ``torch.ones(...).tril()`` and the like (causal masks, position ids)
build the same tensor on every call. Folded into constants, they become part of the
engine instead of PyTorch blocks between engines. What depends only on frozen weights
(``t(weight)`` before ``addmm``, a weight's reshape, cast or scaling) is folded too, so the
network holds one constant of the final shape and dtype instead of a constant and the layers
that transform it; the folded tensors are recomputed whenever the model's weights change
(the backend re-traces then). A bare weight stays shared with the model.

Ops that read only the *metadata* of an input (its shape, dtype and device: ``zeros_like(x)``,
``x.new_zeros(...)``, ``x.new_full(...)``) count as input-free when that input's shape is
static, so they fold too, with everything computed from them alone (the shifted-window
attention mask swin builds from ``x.new_zeros`` and slice assignments). With symbolic sizes
they stay, and their converters compute the sizes as shape tensors inside the engine. ``empty``
and its forms fold to zeros (torch leaves their values undefined; zeros keep the folded
constants, and so the engine cache key, deterministic).

Quantize, dequantize and fake-quantize ops never fold: a weight's Q/DQ pair stays on the
constant, so that TensorRT stores the weight quantized.
"""
from __future__ import annotations

import operator
from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.hookspecs import hookimpl
from plugtrt.records import LoweringPassSpec

_FOLDED_PREFIX = "_folded_"
_MAX_ELEMENTS = 1 << 24  # a larger constant costs more memory than recomputing it saves

aten = torch.ops.aten
_METADATA_ONLY = frozenset({
    aten.zeros_like.default, aten.ones_like.default, aten.full_like.default,
    aten.empty_like.default, aten.new_zeros.default, aten.new_ones.default,
    aten.new_full.default, aten.new_empty.default, aten.new_empty_strided.default,
})
"""Ops whose result depends on their first argument's shape, dtype and device only."""
_QUANTIZATION_NAMESPACES = frozenset({"quantized_decomposed", "plugtrt", "tensorrt"})
"""Op namespaces of quantize/dequantize ops: PT2E's, plugtrt's FP8 casts, ModelOpt's."""
_EMPTY = frozenset({
    aten.empty.memory_format, aten.empty_strided.default, aten.empty_like.default,
    aten.new_empty.default, aten.new_empty_strided.default,
})


def _static(value: object) -> bool:
    return isinstance(value, torch.Tensor) and all(isinstance(d, int) for d in value.shape)


def _metadata_source(node: torch.fx.Node) -> torch.fx.Node | None:
    """The input whose metadata alone ``node`` reads, when ``node``'s result has a static shape
    (``x.new_zeros(4)`` of an ``x`` with a dynamic batch has)."""
    if node.target not in _METADATA_ONLY or not node.args or not isinstance(node.args[0], torch.fx.Node):
        return None
    if not _static(node.meta.get("val")) or not isinstance(node.args[0].meta.get("val"), torch.Tensor):
        return None
    return node.args[0]


def _stand_in(source: torch.fx.Node) -> torch.Tensor:
    """A tensor with ``source``'s dtype and device, and its shape and strides where they are
    static (a ``new_*`` op, the one kind folded from a dynamic input, reads neither)."""
    value = source.meta["val"]
    if not _static(value):
        return torch.zeros(0, dtype=value.dtype, device=value.device)
    return torch.empty_strided(tuple(value.shape), tuple(value.stride()), dtype=value.dtype,
                               device=value.device).zero_()


def _quantizes(node: torch.fx.Node) -> bool:
    """A quantize, dequantize or fake quantization: folding one of a weight would hand TensorRT
    a float32 weight, where a Q/DQ pair on the constant lets it store int8 or FP8 (and the
    converters quantize a constant themselves, with torch's rounding)."""
    target = node.target
    namespace = getattr(target, "namespace", None)
    return namespace in _QUANTIZATION_NAMESPACES or "fake_quantize" in getattr(target, "__name__", "")


def _foldable(node: torch.fx.Node, constant: set[torch.fx.Node]) -> bool:
    if node.op != "call_function" or node.is_impure() or _quantizes(node):
        return False
    metadata = _metadata_source(node)
    if any(arg not in constant and arg is not metadata for arg in node.all_input_nodes):
        return False
    tag = getattr(node.target, "tags", ())
    if torch.Tag.nondeterministic_seeded in tag:
        return False  # random: a fresh value per call
    value = node.meta.get("val")
    return isinstance(value, torch.Tensor) and value.numel() <= _MAX_ELEMENTS


def fold_constants(gm: torch.fx.GraphModule, settings) -> torch.fx.GraphModule:
    """Replace every maximal input-free subgraph whose result a non-constant node reads by a
    ``get_attr`` of its value."""
    weights = {n for n in gm.graph.nodes if n.op == "get_attr"}
    constant: set[torch.fx.Node] = set()
    for node in gm.graph.nodes:
        if _foldable(node, constant | weights):
            constant.add(node)
    env: dict[torch.fx.Node, object] = {
        n: operator.attrgetter(n.target)(gm) for n in weights}
    for node in gm.graph.nodes:
        if node not in constant:
            continue
        args, kwargs = torch.fx.node.map_arg(
            (node.args, node.kwargs), lambda n: env[n] if n in env else _stand_in(n))
        env[node] = node.target(*args, **kwargs)
        if node.target in _EMPTY:
            env[node] = env[node].zero_()
        if all(user in constant for user in node.users):
            continue  # an intermediate: only the subgraph's results become constants
        name = f"{_FOLDED_PREFIX}{len([n for n in gm.graph.nodes if n.op == 'get_attr'])}"
        gm.register_buffer(name, env[node], persistent=False)
        with gm.graph.inserting_before(node):
            attr = gm.graph.get_attr(name)
        attr.meta.update(node.meta)
        node.replace_all_uses_with(attr, delete_user_cb=lambda user: user not in constant)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return gm


@hookimpl
def plugtrt_lowering_passes() -> Iterator[LoweringPassSpec]:
    yield LoweringPassSpec(name="builtin.fold_constants", fn=fold_constants, order=-10)
