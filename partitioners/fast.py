"""The ``fast`` partitioner: one linear sweep with torch.fx's splitter (``_SplitterBase``).

It keeps the graph's topological order and cuts it wherever support changes, so it is
quick on large graphs but may leave more, smaller blocks than ``global``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.fx
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.passes.operator_support import create_op_support
from torch.fx.passes.splitter_base import _SplitterBase, _SplitterSettingBase

from plugtrt.hookspecs import hookimpl
from plugtrt.partitioners.common import PYTORCH_BLOCK_PREFIX, block_size
from plugtrt.records import PartitionerSpec


class _Splitter(_SplitterBase):
    """``_SplitterBase`` without its prints, counting block sizes as ``min_block_size`` does."""

    def __init__(self, gm: torch.fx.GraphModule, support, min_block_size: int):
        # The base class shape-propagates sample inputs through the graph; fake ones cost
        # nothing, and the frozen weights (real tensors) are accepted as constants.
        with FakeTensorMode(allow_non_fake_inputs=True):
            sample = [torch.empty_strided(v.shape, v.stride(), dtype=v.dtype, device=v.device)
                      for v in (n.meta["val"] for n in gm.graph.nodes if n.op == "placeholder")]
            super().__init__(gm, sample, support,
                             _SplitterSettingBase(min_acc_module_size=min_block_size, allow_non_tensor=True),
                             non_acc_submodule_name=PYTORCH_BLOCK_PREFIX)

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
    """Split ``gm`` into ``_run_on_acc_<i>`` (TensorRT) and ``_run_on_gpu_<i>`` (PyTorch) blocks."""
    support = create_op_support(lambda _submodules, node: is_supported(node))
    return _Splitter(gm, support, int(min(settings.min_block_size, 2**31)))()


@hookimpl
def plugtrt_partitioners() -> Iterator[PartitionerSpec]:
    yield PartitionerSpec(name="fast", partition=partition)
