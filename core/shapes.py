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
from torch.utils._sympy.functions import (
    CeilDiv,
    CeilToInt,
    FloatPow,
    FloatTrueDiv,
    FloorDiv,
    FloorToInt,
    IntTrueDiv,
    Max,
    Min,
    Mod,
    PowByNatural,
    PythonMod,
    RoundToInt,
    ToFloat,
    TruncToInt,
)

from plugtrt.errors import ConversionError
from plugtrt.trt_adapter import trt

_INT64 = torch.int64
_FLOAT = torch.float32
_SYMBOLIC_SCALARS = (torch.SymInt, torch.SymFloat, torch.SymBool)


def is_size_node(node: torch.fx.Node) -> bool:
    """A node that computes a symbolic scalar from sizes (``sym_size``, ``s0 // 2``,
    ``sym_float(s0) / 2.0``, ``s0 >= 4``): its value is a ``SymInt``, ``SymFloat`` or
    ``SymBool``, and the interpreter computes it from the symbols instead of calling a converter."""
    return node.op == "call_function" and isinstance(node.meta.get("val"), _SYMBOLIC_SCALARS)


def is_dynamic(shape: Sequence[Any]) -> bool:
    """Whether any size in ``shape`` is symbolic (a ``SymInt`` that is not a known number)."""
    return any(not isinstance(_concrete(d), int) for d in shape)


def same_shape(a: Sequence[Any], b: Sequence[Any]) -> bool:
    """Whether two shapes are equal size by size, symbols compared as expressions: comparing
    ``SymInt``s with ``==`` would add a guard to dynamo's shape environment."""
    return len(a) == len(b) and all(_concrete(x) == _concrete(y) for x, y in zip(a, b))


def trt_dims(shape: Sequence[Any]) -> tuple[int, ...]:
    """``shape`` as TensorRT dims: each symbolic size becomes -1."""
    return tuple(d if isinstance(d, int) else -1 for d in (_concrete(s) for s in shape))


def _concrete(size: Any) -> Any:
    if isinstance(size, torch.SymInt):
        expr = size.node.expr
        return int(expr) if expr.is_number else expr
    if isinstance(size, (torch.SymFloat, torch.SymBool)):
        return size.node.expr
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
    """One size or symbolic scalar (an int, float or bool; a ``SymInt``, ``SymFloat`` or
    ``SymBool``) as a one-element tensor of the network: int64, float32 or bool."""
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


_FOLDED = {sympy.Add: "SUM", sympy.Mul: "PROD", Max: "MAX", Min: "MIN"}
"""Expressions of any number of terms folded left by one elementwise operation."""
_PAIRS = {FloorDiv: "FLOOR_DIV", FloatTrueDiv: "DIV", IntTrueDiv: "DIV", FloatPow: "POW",
          sympy.And: "AND", sympy.Or: "OR"}
_ROUNDING = {FloorToInt: ("FLOOR",), CeilToInt: ("CEIL",), RoundToInt: ("ROUND",), TruncToInt: ()}
# a >= b is NOT(a < b): TensorRT compares with GREATER, LESS and EQUAL only
_RELATIONS = {sympy.StrictGreaterThan: ("GREATER", False), sympy.StrictLessThan: ("LESS", False),
              sympy.GreaterThan: ("LESS", True), sympy.LessThan: ("GREATER", True),
              sympy.Equality: ("EQUAL", False), sympy.Unequality: ("EQUAL", True)}
_COMPILABLE = (*_FOLDED, *_PAIRS, *_ROUNDING, *_RELATIONS, CeilDiv, Mod, PythonMod, ToFloat, sympy.Not,
               sympy.Pow, PowByNatural)
"""The expressions :func:`size_tensor` turns into layers (with numbers and symbols)."""


def sizes_computable(shape: Sequence[Any]) -> bool:
    """Every symbolic size of ``shape`` is an expression :func:`size_tensor` can build, so a
    validator can accept the node knowing its sizes will not fail the conversion."""
    return all(_computable(d.node.expr) for d in shape if isinstance(d, torch.SymInt))


def scalar_computable(value: Any) -> bool:
    """``value`` (an argument's fake value) is a symbolic scalar (``SymInt``, ``SymFloat``,
    ``SymBool``) whose expression :func:`size_tensor` can build: an engine computes it from
    its inputs' shapes, and a converter receives it as a one-element tensor (0-d where the op
    takes a Tensor or Scalar)."""
    return isinstance(value, _SYMBOLIC_SCALARS) and _computable(value.node.expr)


def _computable(expr: sympy.Basic) -> bool:
    if expr.is_Number or isinstance(expr, (sympy.Symbol, sympy.logic.boolalg.BooleanAtom)):
        return True
    return isinstance(expr, _COMPILABLE) and all(_computable(a) for a in expr.args)


def _compile(ctx: Any, expr: sympy.Basic, node: torch.fx.Node | None) -> Any:
    cached = ctx.symbols.get(expr)
    if cached is not None:
        return cached
    if isinstance(expr, sympy.Symbol):
        raise ConversionError(
            f"size {expr} is not a dim of any input of this engine, so the engine cannot compute "
            f"{'it for ' + str(node.target) if node is not None else 'it'}; it stays in PyTorch")
    result = _number(ctx, expr, node) if _is_number(expr) else _operation(ctx, expr, node)
    ctx.symbols[expr] = result
    return result


def _is_number(expr: sympy.Basic) -> bool:
    return expr.is_Number or isinstance(expr, sympy.logic.boolalg.BooleanAtom)


def _number(ctx: Any, expr: sympy.Basic, node: torch.fx.Node | None) -> Any:
    if isinstance(expr, sympy.logic.boolalg.BooleanAtom):
        value, dtype = bool(expr), torch.bool
    elif expr.is_Integer:
        value, dtype = int(expr), _INT64
    else:
        value, dtype = float(expr), _FLOAT
    return ctx.constant(torch.tensor([value], dtype=dtype), node, dtype=dtype)


def _operation(ctx: Any, expr: sympy.Basic, node: torch.fx.Node | None) -> Any:
    kind = type(expr)
    terms = [_compile(ctx, term, node) for term in expr.args]
    if kind in _FOLDED or isinstance(expr, (Max, Min)):
        op = _FOLDED.get(kind) or ("MAX" if isinstance(expr, Max) else "MIN")
        result = terms[0]
        for term in terms[1:]:
            result = _elementwise(ctx, result, term, op, node)
        return result
    if kind in _PAIRS:
        a, b = terms
        floats = kind in (FloatTrueDiv, IntTrueDiv, FloatPow)
        return _elementwise(ctx, a, b, _PAIRS[kind], node, _FLOAT if floats else None)
    if kind in (sympy.Pow, PowByNatural):
        base, exponent = expr.args
        if not (exponent.is_Integer and 0 < exponent <= 8 and ctx.dtype(terms[0]) == _INT64):
            return _elementwise(ctx, *terms, "POW", node, _FLOAT)
        result = terms[0]  # an integer power of a size as products: exact in int64
        for _ in range(int(exponent) - 1):
            result = _elementwise(ctx, result, terms[0], "PROD", node)
        return result
    if kind is ToFloat:
        return ctx.cast(terms[0], _FLOAT, node)
    if kind in _ROUNDING:
        return ctx.cast(_round(ctx, ctx.cast(terms[0], _FLOAT, node), _ROUNDING[kind], node), _INT64, node)
    if kind in _RELATIONS:
        op, negate = _RELATIONS[kind]
        result = _elementwise(ctx, *terms, op, node)
        return _unary(ctx, result, "NOT", node) if negate else result
    if kind is sympy.Not:
        return _unary(ctx, terms[0], "NOT", node)
    if kind is CeilDiv:  # -((-a) // b)
        a, b = terms
        minus_one = _compile(ctx, sympy.Integer(-1), node)
        negated = _elementwise(ctx, a, minus_one, "PROD", node)
        return _elementwise(ctx, _elementwise(ctx, negated, b, "FLOOR_DIV", node), minus_one, "PROD", node)
    if kind in (Mod, PythonMod):  # a - (a // b) * b: Python's sign rule, as FLOOR_DIV rounds down
        a, b = terms
        quotient = _elementwise(ctx, _elementwise(ctx, a, b, "FLOOR_DIV", node), b, "PROD", node)
        return _elementwise(ctx, a, quotient, "SUB", node)
    raise ConversionError(f"size expression {expr} ({kind.__name__}) has no shape-tensor form "
                          "in plugtrt yet; the node stays in PyTorch")


def _round(ctx: Any, x: Any, ops: tuple[str, ...], node: torch.fx.Node | None) -> Any:
    """``x`` rounded by a unary op, or toward zero (``sign(x) * floor(|x|)``) for no op."""
    if ops:
        return _unary(ctx, x, ops[0], node)
    magnitude = _unary(ctx, _unary(ctx, x, "ABS", node), "FLOOR", node)
    return _elementwise(ctx, _unary(ctx, x, "SIGN", node), magnitude, "PROD", node)


def _elementwise(ctx: Any, a: Any, b: Any, op: str, node: torch.fx.Node | None,
                 dtype: torch.dtype | None = None) -> Any:
    """``a op b`` on one-element tensors, both first cast to ``dtype``, or to float32 where
    either is (Python's promotion of int and float)."""
    if dtype is None and ctx.dtype(a) != ctx.dtype(b) and _FLOAT in (ctx.dtype(a), ctx.dtype(b)):
        dtype = _FLOAT
    if dtype is not None:
        a, b = ctx.cast(a, dtype, node), ctx.cast(b, dtype, node)
    layer = ctx.network.add_elementwise(a, b, getattr(trt.ElementWiseOperation, op))
    return ctx.name(layer, node, f"size_{op.lower()}").get_output(0)


def _unary(ctx: Any, x: Any, op: str, node: torch.fx.Node | None) -> Any:
    layer = ctx.network.add_unary(x, getattr(trt.UnaryOperation, op))
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
    layer = ctx.network.add_slice(x, trt_dims(starts) if not dynamic else (0,) * len(sizes),
                                  trt_dims(sizes) if not dynamic else (1,) * len(sizes), tuple(strides))
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
