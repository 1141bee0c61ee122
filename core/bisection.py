"""Cutting a TensorRT block that failed in two, so that each half can be built on its own.

When TensorRT's builder refuses a block, or a converter raises on one of its ops, the cause is
usually one op (a layer the builder has no kernel for, a converter bug). Cutting the block at
the middle op of its topological order and trying each half again, recursively, finds the
failing ops with about ``2 * log2(ops)`` extra attempts each, and everything else still runs in
engines. The core (:mod:`plugtrt.compiler`) does the trying; this module only cuts.

The cut is made with torch.fx's own ``fuse_by_partitions``: the two halves become submodules
``_piece_0`` and ``_piece_1`` of the block, which then calls them in order, so the block's
caller and the runtime modules see the same calling convention as for a partitioner's block.
A prefix and a suffix of a topological order cannot depend on each other in a cycle, so the
cut is always valid.
"""
from __future__ import annotations

import operator

import torch.fx
from torch.fx.passes.utils.fuser_utils import fuse_by_partitions

from plugtrt.blocks import block_size
from plugtrt.shapes import is_size_node

PIECE_PREFIX = "_piece_"


def split_in_half(block: torch.fx.GraphModule) -> list[torch.fx.Node] | None:
    """Cut ``block`` in place into ``_piece_0`` (the first half of its ops, in graph order) and
    ``_piece_1`` (the rest), and return the two ``call_module`` nodes; None, leaving ``block``
    unchanged, when it has fewer than two ops (as :func:`~plugtrt.blocks.block_size` counts
    them): it is as small as a piece gets.

    So that no half hands the other something an engine cannot return, a ``getitem`` goes with
    the op whose tuple it reads, a size computation with its readers when they all lie in the
    second half, and a constant (``get_attr``) with its readers, copied when both halves read
    it (a constant crossing the cut would become an engine input instead of frozen weights).
    """
    nodes = [n for n in block.graph.nodes if n.op not in ("placeholder", "get_attr", "output")]
    ops = [i for i, n in enumerate(nodes) if block_size([n])]
    if len(ops) < 2:
        return None
    cut = ops[len(ops) // 2]
    half = {n: int(i >= cut) for i, n in enumerate(nodes)}
    for node in nodes:
        if node.target is operator.getitem and node.args[0] in half:
            half[node] = half[node.args[0]]
    for node in reversed(nodes):
        if is_size_node(node) and node.users and all(half.get(u) == 1 for u in node.users):
            half[node] = 1
    for attr in [n for n in block.graph.nodes if n.op == "get_attr"]:
        sides = sorted({half[u] for u in attr.users if u in half}) or [0]
        half[attr] = sides[0]
        if len(sides) == 2:
            with block.graph.inserting_after(attr):
                copy = block.graph.get_attr(attr.target)
            copy.meta = dict(attr.meta)
            attr.replace_all_uses_with(copy, delete_user_cb=lambda user: half.get(user) == 1)
            half[copy] = 1
    parts: list[dict[torch.fx.Node, None]] = [{}, {}]
    for node in block.graph.nodes:  # graph order, which fuse_by_partitions keeps inside a piece
        if node in half:
            parts[half[node]][node] = None
    fuse_by_partitions(block, parts, prefix=PIECE_PREFIX)
    block.recompile()
    return [n for n in block.graph.nodes if n.op == "call_module"]
