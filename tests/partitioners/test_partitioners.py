"""Partitioner properties on random graphs of supported and unsupported ops."""
from __future__ import annotations

import operator

import pytest
import torch
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from torch.fx.experimental.proxy_tensor import make_fx

from plugtrt.blocks import PYTORCH_BLOCK_PREFIX, TENSORRT_BLOCK_PREFIX, block_size
from plugtrt import CompilationSettings, ConverterSpec, hookimpl
from plugtrt.manager import registry_from
from plugtrt.partitioners import fast, global_
from plugtrt.support import SupportCheck

aten = torch.ops.aten
UNARY = {"relu": (torch.relu, aten.relu.default), "tanh": (torch.tanh, aten.tanh.default),
         "sigmoid": (torch.sigmoid, aten.sigmoid.default), "neg": (torch.neg, aten.neg.default)}
SUPPORTED = {aten.relu.default, aten.tanh.default, aten.add.Tensor}

# A program is a list of steps; each step reads earlier values by index.
step = st.one_of(
    st.tuples(st.sampled_from(sorted(UNARY)), st.integers(0, 10**6)),
    st.tuples(st.just("add"), st.integers(0, 10**6), st.integers(0, 10**6)),
)


def _build(program):
    def fn(x):
        values = [x]
        for op, *reads in program:
            args = [values[r % len(values)] for r in reads]
            values.append(args[0] + args[1] if op == "add" else UNARY[op][0](args[0]))
        return values[-1], values[len(values) // 2]
    return make_fx(fn, tracing_mode="fake")(torch.randn(3, 4))


def _is_supported(node):
    if node.op != "call_function":
        return False
    if node.target is operator.getitem:
        return _is_supported(node.args[0])
    return node.target in SUPPORTED


def _check_blocks(parted, min_block):
    for name, sub in parted.named_children():
        ops = [n for n in sub.graph.nodes if n.op == "call_function"]
        if name.startswith(TENSORRT_BLOCK_PREFIX):
            assert block_size(ops) >= min_block
            assert all(_is_supported(n) for n in ops), f"{name} holds unsupported ops"


@pytest.mark.parametrize("partitioner", [fast, global_], ids=["fast", "global"])
@hsettings(max_examples=40)
@given(program=st.lists(step, min_size=1, max_size=14), min_block=st.integers(1, 4))
def test_partition_equals_eager_and_respects_min_block_size(partitioner, program, min_block):
    gm = _build(program)  # may hold dead code: partitioners must cope with it
    x = torch.randn(3, 4)
    expected = gm(x)
    supported = sum(1 for n in gm.graph.nodes if _is_supported(n) and n.target is not operator.getitem)
    parted = partitioner.partition(gm, _is_supported, CompilationSettings(min_block_size=min_block))
    _check_blocks(parted, min_block)
    for got, want in zip(parted(x), expected):
        torch.testing.assert_close(got, want)
    acc_ops = sum(block_size(sub.graph.nodes) for name, sub in parted.named_children()
                  if name.startswith(TENSORRT_BLOCK_PREFIX))
    assert acc_ops <= supported


class _Declaring:
    """Converters that accept relu/tanh/add; partitioning never calls ``convert``."""

    @hookimpl
    def plugtrt_converters(self):
        for name, target in [("relu", aten.relu.default), ("tanh", aten.tanh.default),
                             ("add", aten.add.Tensor)]:
            yield ConverterSpec(name=f"test.{name}", target=target, convert=print)


@pytest.mark.parametrize("partitioner", [fast, global_], ids=["fast", "global"])
@hsettings(max_examples=25)
@given(program=st.lists(step, min_size=1, max_size=12),
       executed=st.sets(st.sampled_from(["aten.relu.default", "aten.tanh", "aten.add.Tensor"])))
def test_torch_executed_ops_stay_in_pytorch(partitioner, program, executed):
    gm = _build(program)
    settings = CompilationSettings(min_block_size=1, torch_executed_ops=executed)
    check = SupportCheck(registry_from(("decl", _Declaring())), settings)
    parted = partitioner.partition(gm, check, settings)
    for name, sub in parted.named_children():
        if name.startswith(TENSORRT_BLOCK_PREFIX):
            for node in sub.graph.nodes:
                if node.op == "call_function" and node.target is not operator.getitem:
                    assert str(node.target) not in executed
                    assert str(node.target.overloadpacket) not in executed
    kept = [n for n in gm.graph.nodes if n in check.reasons]
    assert all(check.reasons[n] in ("listed in torch_executed_ops", "no converter is registered")
               for n in kept)


def test_fast_partitioner_names_pytorch_blocks():
    gm = _build([("relu", 0), ("sigmoid", 1), ("relu", 2)])
    parted = fast.partition(gm, _is_supported, CompilationSettings(min_block_size=1))
    names = [name for name, _ in parted.named_children()]
    assert names == [f"{TENSORRT_BLOCK_PREFIX}0", f"{PYTORCH_BLOCK_PREFIX}1", f"{TENSORRT_BLOCK_PREFIX}2"]
