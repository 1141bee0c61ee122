"""Symbolic sizes inside the network: shape tensors computed from the engine's inputs.

A graph that dynamo made dynamic carries sizes as sympy expressions over its symbols
(``s0``, ``2*s1``, ``s0//2``). Each symbol that is a dim of an engine input is read once from
that input (a SHAPE layer and a slice), and every expression is compiled into elementwise
layers on those one-element int64 tensors, so a reshape, an expand or a slice whose sizes
depend on the input computes them inside the engine, for whatever size the call brings.

These helpers are part of the public conversion API (:mod:`plugtrt.conversion` re-exports
them); a converter that sets a layer's sizes from the node's result uses::

    if is_dynamic(val(node).shape):
        layer.set_input(1, shape_tensor(ctx, val(node).shape, node))
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sympy
import torch
import torch.fx
from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols
from torch.utils._sympy.functions import CeilDiv, FloorDiv, Max, Min, Mod, PythonMod

from plugtrt.errors import ConversionError
from plugtrt.trt_adapter import trt

_INT64 = torch.int64


def is_size_node(node: torch.fx.Node) -> bool:
    """A node that computes a size (``sym_size``, ``s0 // 2``): its value is a ``SymInt``, and
    the interpreter computes it from the symbols instead of calling a converter."""
    return node.op == "call_function" and isinstance(node.meta.get("val"), torch.SymInt)


def is_dynamic(shape: Sequence[Any]) -> bool:
    """Whether any size in ``shape`` is symbolic (a ``SymInt`` that is not a known number)."""
    return any(not isinstance(_concrete(d), int) for d in shape)


def same_shape(a: Sequence[Any], b: Sequence[Any]) -> bool:
    """Whether two shapes are equal size by size, symbols compared as expressions: comparing
    ``SymInt``s with ``==`` would add a guard to dynamo's shape environment."""
    return len(a) == len(b) and all(_concrete(x) == _concrete(y) for x, y in zip(a, b))


def static_dims(shape: Sequence[Any]) -> tuple[int, ...]:
    """``shape`` as TensorRT dims: each symbolic size becomes -1."""
    return tuple(d if isinstance(d, int) else -1 for d in (_concrete(s) for s in shape))


def _concrete(size: Any) -> Any:
    if isinstance(size, torch.SymInt):
        expr = size.node.expr
        return int(expr) if expr.is_number else expr
    return size


def bind_input(ctx: Any, tensor: Any, fake: torch.Tensor, node: torch.fx.Node | None = None) -> None:
    """Make each symbol that is a dim of this network input computable: ``ctx.symbols[s]`` is
    that dim, read by a SHAPE layer, as a one-element int64 tensor."""
    bind_sizes(ctx, tensor, fake.shape, node)


def bind_sizes(ctx: Any, tensor: Any, shape: Sequence[Any], node: torch.fx.Node | None = None) -> None:
    """Make each symbol that is a dim of ``tensor`` (whose sizes are ``shape``, ints or
    ``SymInt``s) computable from that tensor, unless another tensor already gives it: a network
    input's symbols, and a data-dependent size (an unbacked ``u0``), which only the layer that
    produces it knows (the non-zero layer's count of True entries)."""
    shape_of = None
    for dim, size in enumerate(shape):
        expr = _concrete(size)
        if isinstance(expr, sympy.Symbol) and expr not in ctx.symbols:
            if shape_of is None:
                shape_of = ctx.cast(ctx.name(ctx.network.add_shape(tensor), node, "shape").get_output(0),
                                    _INT64, node)
            layer = ctx.network.add_slice(shape_of, (dim,), (1,), (1,))
            ctx.symbols[expr] = ctx.name(layer, node, f"dim{dim}").get_output(0)


def unbacked_symbols(shape: Sequence[Any]) -> set[sympy.Symbol]:
    """The data-dependent symbols (``u0``: a count only known once the values are) in ``shape``."""
    return {s for d in shape if isinstance(d, torch.SymInt)
            for s in free_unbacked_symbols(d.node.expr)}


def size_tensor(ctx: Any, size: Any, node: torch.fx.Node | None = None) -> Any:
    """One size (an int or a ``SymInt``) as a one-element int64 tensor of the network."""
    return _compile(ctx, sympy.sympify(_concrete(size)), node)


def shape_tensor(ctx: Any, shape: Sequence[Any], node: torch.fx.Node | None = None) -> Any:
    """A whole shape as a 1-D int64 tensor (one constant where every size is static)."""
    if not is_dynamic(shape):
        return ctx.constant(torch.tensor([int(d) for d in shape], dtype=_INT64), node, dtype=_INT64)
    parts = [size_tensor(ctx, d, node) for d in shape]
    if len(parts) == 1:
        return parts[0]
    layer = ctx.network.add_concatenation(parts)
    layer.axis = 0
    return ctx.name(layer, node, "shape").get_output(0)


_BINARY = {FloorDiv: "FLOOR_DIV", Max: "MAX", Min: "MIN"}
_COMPILABLE = (sympy.Add, sympy.Mul, FloorDiv, CeilDiv, Max, Min, Mod, PythonMod)
"""The size expressions :func:`size_tensor` turns into layers (with integers and symbols)."""


def sizes_computable(shape: Sequence[Any]) -> bool:
    """Every symbolic size of ``shape`` is an expression :func:`size_tensor` can build, so a
    validator can accept the node knowing its sizes will not fail the conversion."""
    def ok(expr: sympy.Expr) -> bool:
        if expr.is_Integer or isinstance(expr, sympy.Symbol):
            return True
        return isinstance(expr, _COMPILABLE) and all(ok(a) for a in expr.args)
    return all(ok(d.node.expr) for d in shape if isinstance(d, torch.SymInt))


def _compile(ctx: Any, expr: sympy.Expr, node: torch.fx.Node | None) -> Any:
    cached = ctx.symbols.get(expr)
    if cached is not None:
        return cached
    if expr.is_Integer:
        result = ctx.constant(torch.tensor([int(expr)], dtype=_INT64), node, dtype=_INT64)
    elif isinstance(expr, sympy.Symbol):
        raise ConversionError(
            f"size {expr} is not a dim of any input of this engine, so the engine cannot compute "
            f"{'it for ' + str(node.target) if node is not None else 'it'}; it stays in PyTorch")
    elif isinstance(expr, (sympy.Add, sympy.Mul)):
        op = "SUM" if isinstance(expr, sympy.Add) else "PROD"
        terms = [_compile(ctx, term, node) for term in expr.args]
        result = terms[0]
        for term in terms[1:]:
            result = _elementwise(ctx, result, term, op, node)
    elif type(expr) in _BINARY or isinstance(expr, (Max, Min)):
        op = _BINARY.get(type(expr)) or ("MAX" if isinstance(expr, Max) else "MIN")
        terms = [_compile(ctx, term, node) for term in expr.args]
        result = terms[0]
        for term in terms[1:]:
            result = _elementwise(ctx, result, term, op, node)
    elif isinstance(expr, CeilDiv):  # -((-a) // b)
        a, b = (_compile(ctx, term, node) for term in expr.args)
        minus_one = _compile(ctx, sympy.Integer(-1), node)
        negated = _elementwise(ctx, a, minus_one, "PROD", node)
        result = _elementwise(ctx, _elementwise(ctx, negated, b, "FLOOR_DIV", node), minus_one, "PROD", node)
    elif isinstance(expr, (Mod, PythonMod)):  # a - (a // b) * b, for the non-negative sizes here
        a, b = (_compile(ctx, term, node) for term in expr.args)
        quotient = _elementwise(ctx, _elementwise(ctx, a, b, "FLOOR_DIV", node), b, "PROD", node)
        result = _elementwise(ctx, a, quotient, "SUB", node)
    else:
        raise ConversionError(f"size expression {expr} ({type(expr).__name__}) has no shape-tensor form "
                              "in plugtrt yet; the node stays in PyTorch")
    ctx.symbols[expr] = result
    return result


def _elementwise(ctx: Any, a: Any, b: Any, op: str, node: torch.fx.Node | None) -> Any:
    layer = ctx.network.add_elementwise(a, b, getattr(trt.ElementWiseOperation, op))
    return ctx.name(layer, node, f"size_{op.lower()}").get_output(0)


def bounds(shape: Sequence[Any], assignment: dict[sympy.Symbol, int]) -> tuple[int, ...]:
    """``shape`` with every symbol replaced by its value in ``assignment`` (for profiles)."""
    out = []
    for size in shape:
        expr = _concrete(size)
        out.append(expr if isinstance(expr, int) else int(sympy.sympify(expr).xreplace(assignment)))
    return tuple(out)


def reshape_to(ctx: Any, x: Any, shape: Sequence[Any], node: torch.fx.Node | None = None,
               suffix: str = "reshape") -> Any:
    """``x`` reshaped to ``shape`` (ints or ``SymInt``s, typically ``val(node).shape``): a shuffle
    with static dims, or one fed the shape as a tensor when a size is symbolic."""
    if not is_dynamic(shape):
        return ctx.reshape(x, tuple(int(d) for d in shape), node)
    layer = ctx.network.add_shuffle(x)
    layer.set_input(1, shape_tensor(ctx, shape, node))
    layer.zero_is_placeholder = False  # a size that is 0 (an empty x[mask]) means 0, as in torch
    return ctx.name(layer, node, suffix).get_output(0)


def slice_to(ctx: Any, x: Any, starts: Sequence[Any], sizes: Sequence[Any], strides: Sequence[int],
             node: torch.fx.Node | None = None, suffix: str = "slice") -> Any:
    """A slice of ``x`` whose starts and sizes may be symbolic (shape tensors then feed the
    layer's start and size inputs)."""
    dynamic = is_dynamic(starts) or is_dynamic(sizes)
    layer = ctx.network.add_slice(x, static_dims(starts) if not dynamic else (0,) * len(sizes),
                                  static_dims(sizes) if not dynamic else (1,) * len(sizes), tuple(strides))
    if dynamic:
        layer.set_input(1, shape_tensor(ctx, starts, node))
        layer.set_input(2, shape_tensor(ctx, sizes, node))
    return ctx.name(layer, node, suffix).get_output(0)


def lift_rank(ctx: Any, x: Any, rank: int, node: torch.fx.Node | None = None) -> Any:
    """``x`` with leading unit dims up to ``rank`` (what broadcasting layers need); for an input
    with dynamic dims, the new shape is its own shape tensor behind the ones."""
    missing = rank - len(x.shape)
    if missing <= 0:
        return x
    dims = tuple(x.shape)
    if all(d >= 0 for d in dims):
        return reshape_to(ctx, x, (1,) * missing + dims, node, "lift")
    ones = ctx.constant(torch.ones(missing, dtype=_INT64), node, dtype=_INT64)
    own = ctx.cast(ctx.name(ctx.network.add_shape(x), node, "shape").get_output(0), _INT64, node)
    concat = ctx.network.add_concatenation([ones, own])
    concat.axis = 0
    layer = ctx.network.add_shuffle(x)
    layer.set_input(1, ctx.name(concat, node, "lift_shape").get_output(0))
    layer.zero_is_placeholder = False  # x's own sizes, 0 included
    return ctx.name(layer, node, "lift").get_output(0)
