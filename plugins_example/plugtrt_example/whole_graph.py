"""A partitioner, chosen by name (``options={"partitioner": "whole_graph"}``): all or nothing.

Where every op of a graph converts, the graph becomes TensorRT blocks as the ``global``
partitioner would make them; where any op does not, the whole graph stays in PyTorch rather
than being split into engines and PyTorch islands (for a deployment that wants a graph either
entirely in TensorRT or not at all, with the coverage report saying why).
"""
from __future__ import annotations

from collections.abc import Iterator

from torch.fx.passes.infra.partitioner import CapabilityBasedPartitioner
from torch.fx.passes.operator_support import create_op_support

import plugtrt
from plugtrt.blocks import name_blocks


def partition(gm, is_supported, settings):
    ops = [n for n in gm.graph.nodes if n.op == "call_function"]
    if not ops or not all(is_supported(n) for n in ops):
        return gm
    support = create_op_support(lambda _submodules, node: is_supported(node))
    partitioner = CapabilityBasedPartitioner(gm, support, allows_single_node_partition=True)
    return name_blocks(partitioner.fuse_partitions(partitioner.propose_partitions()))


@plugtrt.hookimpl
def plugtrt_partitioners() -> Iterator[plugtrt.PartitionerSpec]:
    yield plugtrt.PartitionerSpec(name="whole_graph", partition=partition)
