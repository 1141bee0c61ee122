"""Where ``precision=half``/``bfloat16`` must not apply: the regions computed in float32.

Reduced precision is the user's request for speed; it must not change answers that eager
PyTorch gets right. Two kinds of node keep float32 inside an engine:

- **What the model asks for.** A model that runs in half and upcasts explicitly
  (``h = x.float()``, ``.to(torch.float32)``, ``dtype=torch.float32``) computes that region in
  float32 in eager; so does the engine: every float32 value downstream of such an upcast, until
  the model casts back.
- **What overflows or accumulates.** Sums and means of squares (``x.pow(2).mean()``, the
  variance of a norm), reductions, softmax and the elementwise epilogue that consumes their
  statistics (``x * rsqrt(var + eps)``) compute in float32 even when the model is float32 and
  only ``precision`` asks for half: a square of 300 is already past half's 65504.

The interpreter converts the nodes returned by :func:`float32_nodes` with floats kept in
float32, and casts at the region's edges.
"""
from __future__ import annotations

import operator

import torch
import torch.fx

aten = torch.ops.aten
_REDUCED = (torch.float16, torch.bfloat16)
_CASTS = {aten._to_copy.default, aten.to.dtype, torch.ops.prims.convert_element_type.default}
_REDUCTIONS = {aten.mean.dim, aten.mean.default, aten.sum.dim_IntList, aten.sum.default,
               aten.var.correction, aten.var_mean.correction, aten.linalg_vector_norm.default,
               aten._softmax.default, aten._log_softmax.default, aten._safe_softmax.default,
               aten.softmax.int, aten.log_softmax.int}
_SQUARES = {aten.pow.Tensor_Scalar, aten.pow.Tensor_Tensor, aten.mul.Tensor}
# Pointwise and view ops through which a float32 statistic flows into the values it normalises.
_EPILOGUE = {aten.add.Tensor, aten.add.Scalar, aten.sub.Tensor, aten.sub.Scalar, aten.mul.Tensor,
             aten.mul.Scalar, aten.div.Tensor, aten.div.Scalar, aten.rsqrt.default, aten.sqrt.default,
             aten.reciprocal.default, aten.exp.default, aten.log.default, aten.neg.default,
             aten.expand.default, aten.view.default, aten._unsafe_view.default, aten.reshape.default,
             aten.unsqueeze.default, aten.squeeze.dim, aten.squeeze.dims, aten.squeeze.default,
             aten.as_strided.default, aten.permute.default, aten.transpose.int, aten.clone.default,
             aten.clamp.default, aten.clamp_min.default, operator.getitem}
_TAG = "plugtrt_float32"
"""Node meta key: set on the whole graph before partitioning, so a region that a partition
boundary cuts (statistics computed in one engine, applied in the next) stays float32."""


def _dtype(node: object) -> torch.dtype | None:
    value = node.meta.get("val") if isinstance(node, torch.fx.Node) else None
    return value.dtype if isinstance(value, torch.Tensor) else None


def _is_upcast(node: torch.fx.Node) -> bool:
    source = node.args[0] if node.args else None
    return node.target in _CASTS and _dtype(node) == torch.float32 and _dtype(source) in _REDUCED


def _feeds_reduction(node: torch.fx.Node) -> bool:
    if node.target is aten.mul.Tensor and node.args[0] is not node.args[1]:
        return False  # only a square, x * x, grows like pow(x, 2)
    return any(user.target in _REDUCTIONS for user in node.users)


def mark_float32(gm: torch.fx.GraphModule, precision: torch.dtype) -> None:
    """Tag the nodes of the whole (lowered, unpartitioned) graph that compute in float32; the
    blocks' nodes inherit the tag."""
    for node in float32_nodes(gm, precision):
        node.meta[_TAG] = True


def float32_nodes(gm: torch.fx.GraphModule, precision: torch.dtype) -> frozenset[torch.fx.Node]:
    """The call_function nodes of ``gm`` that compute in float32 under ``precision``: those
    tagged by :func:`mark_float32` on the whole graph, and those found in ``gm`` itself."""
    if precision not in _REDUCED:
        return frozenset()
    keep: set[torch.fx.Node] = {n for n in gm.graph.nodes if n.meta.get(_TAG)}
    explicit: set[torch.fx.Node] = set()
    for node in gm.graph.nodes:
        if node.op != "call_function":
            continue
        inputs = node.all_input_nodes
        if _is_upcast(node) or (_dtype(node) == torch.float32 and any(i in explicit for i in inputs)):
            explicit.add(node)
            keep.add(node)
        elif node.target in _REDUCTIONS or (node.target in _SQUARES and _feeds_reduction(node)):
            keep.add(node)
        elif node.target in _EPILOGUE and any(i in keep for i in inputs) and (
                _dtype(node) in (torch.float32, *_REDUCED) or node.target is operator.getitem):
            keep.add(node)
    return frozenset(keep)
