"""Helpers the built-in converter families share (not a plugin: registers nothing).

Validators read only the FX node and its ``meta["val"]`` fake tensors; convert helpers take the
:class:`~plugtrt.conversion.ConversionContext` and touch TensorRT only when called.
"""
from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.fx
import torch.utils._pytree as pytree

from plugtrt.conversion import node_tensors
from plugtrt.trt_adapter import trt

aten = torch.ops.aten

FLOATS = frozenset({torch.float32, torch.float16, torch.bfloat16})
INTS = frozenset({torch.int32, torch.int64})
NUMERIC = FLOATS | INTS
Validator = Callable[[torch.fx.Node, Any], bool]


# -- reading nodes (validators) ------------------------------------------------------------
def val(node: Any) -> Any:
    """The fake value recorded for ``node`` (None for a non-node)."""
    return node.meta.get("val") if isinstance(node, torch.fx.Node) else None


def _tensors(value: Any) -> list[torch.Tensor]:
    return [t for t in pytree.tree_leaves(value) if isinstance(t, torch.Tensor)]


def static_shapes(node: torch.fx.Node, *, allow_empty: bool = False) -> bool:
    """Every tensor the node reads or makes has a known, concrete shape (no SymInt), and (unless
    ``allow_empty``) at least one element: the converters here build static-shape networks."""
    tensors = node_tensors(node)
    if not tensors or not all(isinstance(d, int) for t in tensors for d in t.shape):
        return False
    return allow_empty or all(t.numel() > 0 for t in tensors)


def dtypes_ok(node: torch.fx.Node, allowed: Iterable[torch.dtype],
              inputs: Iterable[torch.dtype] | None = None) -> bool:
    """The node's result dtypes are in ``allowed`` and its tensor inputs' in ``inputs``
    (default: ``allowed``)."""
    allowed = frozenset(allowed)
    inputs = allowed if inputs is None else frozenset(inputs)
    results = _tensors(val(node))
    if not results or any(t.dtype not in allowed for t in results):
        return False
    return all(t.dtype in inputs for arg in node.all_input_nodes for t in _tensors(val(arg)))


def only_first_output_used(node: torch.fx.Node) -> bool:
    """Every user of a tuple-returning node reads element 0 (``getitem(node, 0)``)."""
    return all(u.op == "call_function" and u.target is operator.getitem and u.args[1] == 0
               for u in node.users)


def arg(node: torch.fx.Node, index: int, name: str, default: Any = None) -> Any:
    """Argument ``index`` / keyword ``name`` of ``node`` (positional first)."""
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def get(args: Sequence[Any], kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    """The same for a converter's mapped ``args``/``kwargs``."""
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def all_of(*checks: Validator) -> Validator:
    """A validator accepting a node when every check does."""
    def is_supported(node: torch.fx.Node, settings: Any) -> bool:
        return all(check(node, settings) for check in checks)
    return is_supported


def static(allowed: Iterable[torch.dtype] = NUMERIC, inputs: Iterable[torch.dtype] | None = None
           ) -> Validator:
    """Static shapes, results of ``allowed`` dtypes and inputs of ``inputs`` dtypes; float64
    counts as a float where ``truncate_long_and_double`` makes it one inside the engine."""
    allowed = frozenset(allowed)
    inputs = allowed if inputs is None else frozenset(inputs)

    def widen(dtypes: frozenset, settings: Any) -> frozenset:
        truncate = getattr(settings, "truncate_long_and_double", False)
        return dtypes | {torch.float64} if truncate and dtypes & FLOATS else dtypes

    return lambda node, settings: static_shapes(node) and dtypes_ok(
        node, widen(allowed, settings), widen(inputs, settings))


def norm_dim(dim: int, rank: int) -> int:
    """``dim`` in ``[0, rank)`` (a scalar, rank 0, takes dims 0 and -1)."""
    return dim % max(rank, 1)


def out_dtype(ctx: Any, node: torch.fx.Node, index: int | None = None) -> torch.dtype:
    """The engine dtype of the node's result (element ``index`` of a tuple result)."""
    value = val(node)
    if index is not None:
        value = value[index]
    return ctx.engine_dtype(value.dtype)


# -- building layers (converters) ----------------------------------------------------------
def is_tensor(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, torch.Tensor)


def rank_of(*xs: Any) -> int:
    return max((len(x.shape) for x in xs if is_tensor(x)), default=0)


def elementwise(ctx: Any, a: Any, b: Any, op: str, node: torch.fx.Node, dtype: torch.dtype,
                suffix: str = "") -> Any:
    """``a <op> b`` computed in ``dtype`` (``op`` names a ``trt.ElementWiseOperation``)."""
    rank = rank_of(a, b)
    a, b = ctx.operand(a, dtype, rank, node), ctx.operand(b, dtype, rank, node)
    layer = ctx.network.add_elementwise(a, b, getattr(trt.ElementWiseOperation, op))
    return ctx.name(layer, node, suffix or op.lower()).get_output(0)


def unary(ctx: Any, x: Any, op: str, node: torch.fx.Node, suffix: str = "") -> Any:
    """``op(x)`` (``op`` names a ``trt.UnaryOperation``)."""
    layer = ctx.network.add_unary(x, getattr(trt.UnaryOperation, op))
    return ctx.name(layer, node, suffix or op.lower()).get_output(0)


def axes_mask(dims: Iterable[int], rank: int) -> int:
    mask = 0
    for d in dims:
        mask |= 1 << norm_dim(d, rank)
    return mask


def reduce(ctx: Any, x: Any, op: str, dims: Iterable[int], keepdim: bool,
           node: torch.fx.Node, suffix: str = "") -> Any:
    """Reduce ``x`` over ``dims`` with ``trt.ReduceOperation.<op>``."""
    layer = ctx.network.add_reduce(x, getattr(trt.ReduceOperation, op),
                                   axes_mask(dims, len(x.shape)), keepdim)
    return ctx.name(layer, node, suffix or f"reduce_{op.lower()}").get_output(0)


def slice_(ctx: Any, x: Any, start: Sequence[int], shape: Sequence[int], stride: Sequence[int],
           node: torch.fx.Node, suffix: str = "slice") -> Any:
    layer = ctx.network.add_slice(x, tuple(start), tuple(shape), tuple(stride))
    return ctx.name(layer, node, suffix).get_output(0)


def identity(ctx: Any, x: Any, node: torch.fx.Node) -> Any:
    """A fresh tensor equal to ``x`` (so that a converter's result is its own layer's output)."""
    return ctx.finish(ctx.network.add_identity(x), node)
