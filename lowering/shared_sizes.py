"""Lowering pass plugin: one node per symbolic size, read from the graph's inputs.

Tracing a graph with symbolic sizes reads the same size again and again from intermediate
tensors (``sym_size(view_3, 1)``, ``sym_size(mm_7, 1)``: every ``view`` of a linear layer's
output). Size nodes run in PyTorch (see :mod:`plugtrt.support`), so each one read from an
intermediate sits between two runs of convertible ops and cuts a block in two: a decoder with
a dynamic sequence length came out as five engines. Sizes are values of the shape
environment, so two size nodes with one expression are one value: this pass keeps the first
and, where a size node reads only graph inputs, moves it up beside them, so that no size
computation stands between the ops of a block.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.fx

from plugtrt.hookspecs import hookimpl
from plugtrt.records import LoweringPassSpec
from plugtrt.shapes import is_size_node


def share_sizes(gm: torch.fx.GraphModule, settings) -> torch.fx.GraphModule:
    """Replace every size node by the first one with the same expression, then move the size
    nodes that read only placeholders right after the last placeholder."""
    first: dict[object, torch.fx.Node] = {}
    for node in list(gm.graph.nodes):
        if not is_size_node(node):
            continue
        expr = node.meta["val"].node.expr
        if expr in first:
            node.replace_all_uses_with(first[expr])
            gm.graph.erase_node(node)
        else:
            first[expr] = node
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if placeholders:
        anchor = placeholders[-1]
        for node in first.values():
            if all(arg.op == "placeholder" for arg in node.all_input_nodes):
                anchor.append(node)
                anchor = node
    gm.graph.lint()
    gm.recompile()
    return gm


@hookimpl
def plugtrt_lowering_passes() -> Iterator[LoweringPassSpec]:
    yield LoweringPassSpec(name="builtin.share_sizes", fn=share_sizes, order=20)
