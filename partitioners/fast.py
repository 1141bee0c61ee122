"""The ``fast`` partitioner: one linear sweep with torch.fx's splitter (``_SplitterBase``).

It keeps the graph's topological order and cuts it wherever support changes, so it is
quick on large graphs but may leave more, smaller blocks than ``global``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.fx
from torch.fx.passes.operator_support import create_op_support
from torch.fx.passes.shape_prop import _extract_tensor_metadata
from torch.fx.passes.splitter_base import (
    FxNetAccFusionsFinder,
    FxNetAccNodesFinder,
    _SplitterBase,
    _SplitterSettingBase,
)

from plugtrt.blocks import PYTORCH_BLOCK_PREFIX, block_size
from plugtrt.hookspecs import hookimpl
from plugtrt.records import PartitionerSpec


class _Splitter(_SplitterBase):
    """``_SplitterBase`` without its shape propagation and its prints, counting block sizes
    as ``min_block_size`` does.

    The base constructor runs the graph on sample inputs only to record tensor metadata,
    which tracing already recorded (``meta["val"]``); running it again on fake inputs breaks
    on constants that fake tensor modes treat specially (folded index tensors). So this
    constructor sets up what the base one does, minus that run.
    """

    def __init__(self, gm: torch.fx.GraphModule, support, min_block_size: int):
        for node in gm.graph.nodes:
            value = node.meta.get("val")
            if isinstance(value, torch.Tensor) and "tensor_meta" not in node.meta:
                node.meta["tensor_meta"] = _extract_tensor_metadata(value)
        self.module = gm
        self.settings = _SplitterSettingBase(min_acc_module_size=min_block_size, allow_non_tensor=True)
        self.operator_support = support
        self.sample_input = ()
        self.acc_nodes = FxNetAccNodesFinder(gm, support, allow_non_tensor=True)()
        self.fusions = FxNetAccFusionsFinder(gm, self.acc_nodes)()
        if hasattr(self, "_merge_overlapping_fusions"):  # torch >= 2.12
            self._merge_overlapping_fusions()
        self.deps = self.find_deps()
        self.update_deps_for_fusions()
        self.non_acc_submodule_name = PYTORCH_BLOCK_PREFIX
        self._node_submodule_map = {}
        self._return_tuple = False
        self.tags = []

    def remove_small_acc_subgraphs(self, subgraphs):
        for subgraph in subgraphs:
            if subgraph.is_acc and block_size(subgraph.nodes) < self.settings.min_acc_module_size:
                subgraph.is_acc = False
        merged = []
        for subgraph in subgraphs:
            if merged and merged[-1].is_acc == subgraph.is_acc:
                merged[-1].nodes.extend(subgraph.nodes)
            else:
                merged.append(subgraph)
        return merged

    def __call__(self) -> torch.fx.GraphModule:
        subgraphs = self.remove_small_acc_subgraphs(self.put_nodes_into_subgraphs())
        self.tag(subgraphs)
        return self.split()


def partition(gm: torch.fx.GraphModule, is_supported: Callable[[torch.fx.Node], bool],
              settings) -> torch.fx.GraphModule:
    """Split ``gm`` into ``_run_on_acc_<i>`` (TensorRT) and ``_run_in_pytorch_<i>`` (PyTorch) blocks."""
    support = create_op_support(lambda _submodules, node: is_supported(node))
    return _Splitter(gm, support, int(min(settings.min_block_size, 2**31)))()


@hookimpl
def plugtrt_partitioners() -> Iterator[PartitionerSpec]:
    yield PartitionerSpec(name="fast", partition=partition)
