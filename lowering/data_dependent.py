"""Lowering pass plugin: drop the assertions that are already checked: those on sizes dynamo
guards, and the range assertions on data-dependent counts that the counting op guarantees.

A ``torch._check(x.shape[0] % 2 == 0)`` on a backed size becomes one of dynamo's guards, checked
before the graph runs; tracing still leaves an ``_assert_scalar`` of it in the graph, which would
run in PyTorch and cut the engine around it in two. Every assertion whose condition mentions
only backed sizes (no data-dependent ``u0``) goes.

With ``torch._dynamo.config.capture_dynamic_output_shape_ops``, ``nonzero``, ``x[mask]`` and
``masked_select`` give results whose length is a fresh unbacked symbol (``u0``), and tracing
follows each with runtime assertions of that symbol's range: ``_assert_scalar(u0 >= 0)``,
``_assert_scalar(u0 <= 20)`` (20 being the mask's number of elements), or a
``sym_constrain_range_for_size``. A count of True entries always lies in ``[0, numel]``, so
these checks cannot fail; left in the graph they run in PyTorch and cut the engine around the
op in two. This pass removes each one whose condition holds for every count in that interval,
and nothing else: an assertion about anything more (a user's ``torch._check(u0 <= 5)``, a
relation between two counts) stays, for the converters of symbolic scalar arithmetic or PyTorch.
The ``sym_size`` and comparison nodes that only fed removed assertions are dead afterwards and
go with the dead-code elimination that ends lowering.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import sympy
import torch
import torch.fx
from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols

from plugtrt.hookspecs import hookimpl
from plugtrt.records import LoweringPassSpec
from plugtrt.shapes import unbacked_symbols

aten = torch.ops.aten


def _counted_elements(node: torch.fx.Node) -> sympy.Expr | None:
    """How many elements the count behind ``node``'s data-dependent dim ranges over (the mask's
    or the input's number of elements), for the ops whose result length counts True or
    non-zero entries; None for any other node."""
    def numel(arg: object) -> sympy.Expr | None:
        value = arg.meta.get("val") if isinstance(arg, torch.fx.Node) else None
        if not isinstance(value, torch.Tensor):
            return None
        return sympy.Mul(*[sympy.sympify(d.node.expr if isinstance(d, torch.SymInt) else d)
                           for d in value.shape])
    if node.target in (aten.nonzero.default, aten.masked_select.default):
        if node.target is aten.nonzero.default:
            return numel(node.args[0])
        shapes = [node.args[0].meta.get("val"), node.args[1].meta.get("val")]
        if not all(isinstance(s, torch.Tensor) for s in shapes):
            return None
        ranks = max(s.dim() for s in shapes)
        total = sympy.Integer(1)
        for i in range(ranks):  # the broadcast shape: the larger of each pair of sizes
            sizes = [s.shape[s.dim() - ranks + i] for s in shapes if s.dim() - ranks + i >= 0]
            exprs = [sympy.sympify(d.node.expr if isinstance(d, torch.SymInt) else d) for d in sizes]
            total *= sympy.Max(*exprs)
        return total
    if node.target is aten.index.Tensor:
        masks = [i for i in node.args[1] if isinstance(i, torch.fx.Node)
                 and isinstance(i.meta.get("val"), torch.Tensor) and i.meta["val"].dtype == torch.bool]
        if len(masks) == 1:
            return numel(masks[0])
    return None


def _count_bounds(gm: torch.fx.GraphModule) -> dict[sympy.Symbol, sympy.Expr]:
    """Each data-dependent symbol that is the length of a counting op's result, with the number
    of elements it counts over."""
    found: dict[sympy.Symbol, sympy.Expr] = {}
    for node in gm.graph.nodes:
        value = node.meta.get("val")
        if node.op != "call_function" or not isinstance(value, torch.Tensor):
            continue
        symbols = unbacked_symbols(value.shape)
        if len(symbols) == 1 and (total := _counted_elements(node)) is not None:
            found.setdefault(symbols.pop(), total)
    return found


def _always_true(condition: sympy.Basic, symbol: sympy.Symbol, total: sympy.Expr) -> bool:
    """``condition`` (a relation linear in ``symbol``) holds for ``symbol`` at both ends of
    ``[0, total]``, hence everywhere between them."""
    if condition is sympy.true:
        return True
    if not isinstance(condition, sympy.core.relational.Relational):
        return False
    if condition.free_symbols - {symbol} - total.free_symbols:
        return False
    difference = sympy.expand(condition.lhs - condition.rhs)
    if not difference.is_polynomial(symbol) or sympy.degree(difference, symbol) > 1:
        return False
    return all(bool(condition.subs(symbol, end) is sympy.true) for end in (sympy.Integer(0), total))


def _guaranteed(node: torch.fx.Node, counts: dict[sympy.Symbol, sympy.Expr]) -> bool:
    """``node`` asserts only what the counting ops guarantee."""
    if node.target is aten._assert_scalar.default:
        condition = node.args[0]
        value = condition.meta.get("val") if isinstance(condition, torch.fx.Node) else condition
        if isinstance(value, bool):
            return value
        if not isinstance(value, torch.SymBool):
            return False
        expr = value.node.expr
        if not free_unbacked_symbols(expr):
            return True  # backed sizes only: dynamo's guards check it before every call
        symbols = [s for s in expr.free_symbols if s in counts]
        return len(symbols) == 1 and _always_true(expr, symbols[0], counts[symbols[0]])
    if node.target in (aten.sym_constrain_range_for_size.default, aten.sym_constrain_range.default):
        size = node.args[0]
        value = size.meta.get("val") if isinstance(size, torch.fx.Node) else None
        if not isinstance(value, torch.SymInt) or value.node.expr not in counts:
            return False
        total = counts[value.node.expr]
        low = node.kwargs.get("min", node.args[1] if len(node.args) > 1 else None)
        high = node.kwargs.get("max", node.args[2] if len(node.args) > 2 else None)
        low_ok = low is None or low <= 0
        high_ok = high is None or (total.is_number and int(total) <= high) or high == math.inf
        return low_ok and high_ok
    return False


def drop_checked_assertions(gm: torch.fx.GraphModule, settings) -> torch.fx.GraphModule:
    """Remove the assertions on backed sizes, and those on data-dependent counts that their
    counting op guarantees."""
    counts = _count_bounds(gm)
    for node in list(gm.graph.nodes):
        if node.op == "call_function" and not node.users and _guaranteed(node, counts):
            gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return gm


@hookimpl
def plugtrt_lowering_passes() -> Iterator[LoweringPassSpec]:
    yield LoweringPassSpec(name="builtin.drop_checked_assertions", fn=drop_checked_assertions, order=15)
