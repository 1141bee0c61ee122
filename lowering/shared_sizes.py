"""Lowering pass plugin: one node per symbolic size, read from the graph's inputs.

Tracing a graph with symbolic sizes reads the same size again and again from intermediate
tensors (``sym_size(view_3, 1)``, ``sym_size(mm_7, 1)``: every ``view`` of a linear layer's
output). Size nodes run in PyTorch (see :mod:`plugtrt.support`), so each one read from an
intermediate sits between two runs of convertible ops and cuts a block in two: a decoder with
a dynamic sequence length came out as five engines, a UNet whose upsampling reads the size of
a convolution's output as two. Sizes are values of the shape environment, so this pass

- keeps one node per expression;
- rebuilds a size read from an intermediate out of the graph inputs' dims, where its
  expression is arithmetic (``+ * // %``, max, min) over symbols the inputs carry;
- moves every size node that then reads only graph inputs (or such sizes) up beside them,

so that no size computation stands between the ops of a block.
"""
from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Any

import sympy
import torch
import torch.fx
from torch.utils._sympy.functions import FloorDiv, Max, Min, Mod, PythonMod

from plugtrt.hookspecs import hookimpl
from plugtrt.records import LoweringPassSpec
from plugtrt.shapes import is_size_node

_OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    sympy.Add: operator.add, sympy.Mul: operator.mul, FloorDiv: operator.floordiv,
    Mod: operator.mod, PythonMod: operator.mod, Max: torch.sym_max, Min: torch.sym_min}


class _Rebuilder:
    """Builds a size expression from ``sym_size`` nodes of the graph's inputs, inserting each
    new node after the last placeholder (or the last node it inserted)."""

    def __init__(self, gm: torch.fx.GraphModule):
        self.graph = gm.graph
        self.placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        self.anchor = self.placeholders[-1] if self.placeholders else None
        self.made: dict[sympy.Expr, torch.fx.Node] = {}
        self.inserted: set[torch.fx.Node] = set()
        """Every node it inserted, partial products of a sum or product included."""
        self.sources: dict[sympy.Symbol, tuple[torch.fx.Node, int]] = {}
        for node in self.placeholders:
            value = node.meta.get("val")
            for dim, size in enumerate(getattr(value, "shape", ())):
                if isinstance(size, torch.SymInt) and isinstance(size.node.expr, sympy.Symbol):
                    self.sources.setdefault(size.node.expr, (node, dim))

    def build(self, expr: sympy.Expr) -> Any:
        """A node (or int) computing ``expr``; None where it is not arithmetic over the inputs' dims."""
        if expr.is_Integer:
            return int(expr)
        if expr in self.made:
            return self.made[expr]
        if isinstance(expr, sympy.Symbol):
            if expr not in self.sources:
                return None
            node = self._insert(torch.ops.aten.sym_size.int, self.sources[expr])
        else:
            fn = next((f for kind, f in _OPERATORS.items() if isinstance(expr, kind)), None)
            terms = [self.build(term) for term in expr.args] if fn is not None else [None]
            if any(term is None for term in terms):
                return None
            node = terms[0]
            for term in terms[1:]:
                node = self._insert(fn, (node, term))
        self.made[expr] = node
        return node

    def _insert(self, fn: Callable, args: tuple) -> torch.fx.Node:
        with self.graph.inserting_after(self.anchor):
            node = self.graph.call_function(fn, args)
        values = [a.meta["val"] if isinstance(a, torch.fx.Node) else a for a in args]
        node.meta["val"] = values[0].shape[values[1]] if fn is torch.ops.aten.sym_size.int else fn(*values)
        self.anchor = node
        self.inserted.add(node)
        return node


def share_sizes(gm: torch.fx.GraphModule, settings) -> torch.fx.GraphModule:
    """Replace every size node by the first one with the same expression, rebuild the sizes
    read from intermediates out of the inputs' dims, then move the size nodes that read only
    placeholders (or moved sizes) right after them."""
    first: dict[object, torch.fx.Node] = {}
    rebuilder = _Rebuilder(gm)
    for node in list(gm.graph.nodes):
        if not is_size_node(node) or node in rebuilder.inserted:
            continue
        expr = node.meta["val"].node.expr
        if expr in first:
            node.replace_all_uses_with(first[expr])
            gm.graph.erase_node(node)
            continue
        reads_inputs = all(arg.op == "placeholder" for arg in node.all_input_nodes)
        rebuilt = None if reads_inputs or not isinstance(node.meta["val"], torch.SymInt) else rebuilder.build(expr)
        if isinstance(rebuilt, torch.fx.Node):
            node.replace_all_uses_with(rebuilt)
            gm.graph.erase_node(node)
            first[expr] = rebuilt
        else:
            first[expr] = node
    top = {n for n in gm.graph.nodes if n.op == "placeholder"} | rebuilder.inserted
    anchor = rebuilder.anchor
    for node in list(gm.graph.nodes):
        if node in top or not is_size_node(node) or not all(a in top for a in node.all_input_nodes):
            continue
        anchor.append(node)
        anchor = node
        top.add(node)
    gm.graph.lint()
    gm.recompile()
    return gm


@hookimpl
def plugtrt_lowering_passes() -> Iterator[LoweringPassSpec]:
    yield LoweringPassSpec(name="builtin.share_sizes", fn=share_sizes, order=20)
