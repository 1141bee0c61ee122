"""What both built-in partitioners share: the block naming contract and block sizes."""
from __future__ import annotations

import operator

import torch.fx

TENSORRT_BLOCK_PREFIX = "_run_on_acc_"
PYTORCH_BLOCK_PREFIX = "_run_on_gpu_"


def block_size(nodes) -> int:
    """Ops in a block, as ``min_block_size`` counts them (``getitem`` is bookkeeping, not an op)."""
    return sum(1 for n in nodes if n.op == "call_function" and n.target is not operator.getitem)


def tensorrt_blocks(gm: torch.fx.GraphModule) -> list[torch.fx.Node]:
    """The ``call_module`` nodes of a partitioned graph that TensorRT is to run."""
    return [n for n in gm.graph.nodes
            if n.op == "call_module" and str(n.target).startswith(TENSORRT_BLOCK_PREFIX)]
