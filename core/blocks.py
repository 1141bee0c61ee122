"""The block-naming contract between partitioners and the core.

A partitioner returns a ``GraphModule`` whose ``call_module`` nodes named
``TENSORRT_BLOCK_PREFIX + <i>`` are the blocks the core converts to TensorRT; any other
submodules (``PYTORCH_BLOCK_PREFIX + <i>`` by convention) run in PyTorch. ``min_block_size``
counts ops as :func:`block_size` does.
"""
from __future__ import annotations

import operator

import torch.fx

from plugtrt.shapes import is_size_node

TENSORRT_BLOCK_PREFIX = "_run_on_acc_"
PYTORCH_BLOCK_PREFIX = "_run_in_pytorch_"  # wherever PyTorch runs it: CPU or GPU


def block_size(nodes) -> int:
    """Ops in a block, as ``min_block_size`` counts them (``getitem`` and size computations are
    bookkeeping, not ops)."""
    return sum(1 for n in nodes if n.op == "call_function" and n.target is not operator.getitem
               and not is_size_node(n))


def tensorrt_blocks(gm: torch.fx.GraphModule) -> list[torch.fx.Node]:
    """The ``call_module`` nodes of a partitioned graph that TensorRT is to run."""
    return [n for n in gm.graph.nodes
            if n.op == "call_module" and str(n.target).startswith(TENSORRT_BLOCK_PREFIX)]


def name_blocks(fused: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Rename every ``call_module`` node of ``fused`` (as torch.fx's partitioners name them,
    ``fused_<i>``) to ``TENSORRT_BLOCK_PREFIX + <i>``: what a partitioner built on
    ``CapabilityBasedPartitioner.fuse_partitions`` returns to the core."""
    for index, node in enumerate(n for n in fused.graph.nodes if n.op == "call_module"):
        name = f"{TENSORRT_BLOCK_PREFIX}{index}"
        fused.add_submodule(name, fused.get_submodule(node.target))
        delattr(fused, node.target)
        node.target = name
    fused.recompile()
    return fused
