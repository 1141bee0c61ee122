"""The ``global`` partitioner: torch.fx's ``CapabilityBasedPartitioner``.

It merges supported nodes across the whole graph (not only neighbours in program order),
so it finds the fewest, largest TensorRT blocks, at a cost that grows with graph size.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch.fx
from torch.fx.passes.infra.partitioner import CapabilityBasedPartitioner
from torch.fx.passes.operator_support import create_op_support

from plugtrt.blocks import block_size, name_blocks
from plugtrt.hookspecs import hookimpl
from plugtrt.records import PartitionerSpec


def partition(gm: torch.fx.GraphModule, is_supported: Callable[[torch.fx.Node], bool],
              settings) -> torch.fx.GraphModule:
    """Fuse each supported region of at least ``min_block_size`` ops into ``_run_on_acc_<i>``."""
    support = create_op_support(lambda _submodules, node: is_supported(node))
    partitioner = CapabilityBasedPartitioner(gm, support, allows_single_node_partition=True)
    blocks = [p for p in partitioner.propose_partitions()
              if block_size(p.nodes) >= settings.min_block_size and _has_outputs(p.nodes)]
    return name_blocks(partitioner.fuse_partitions(blocks))


def _has_outputs(nodes) -> bool:
    """Whether anything outside the block reads it: a dead block has nothing to return, and
    torch < 2.14 cannot fuse one."""
    return any(user not in nodes for node in nodes for user in node.users)


@hookimpl
def plugtrt_partitioners() -> Iterator[PartitionerSpec]:
    yield PartitionerSpec(name="global", partition=partition)
