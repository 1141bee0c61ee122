"""The no-op removal pass keeps every graph runnable in PyTorch, and removes true no-ops."""
from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.fx.experimental.proxy_tensor import make_fx

from plugtrt import CompilationSettings
from plugtrt.lowering.noops import remove_noops

aten = torch.ops.aten


def _targets(gm):
    return [n.target for n in gm.graph.nodes if n.op == "call_function"]


def test_clone_that_makes_a_tensor_contiguous_stays():
    gm = make_fx(lambda x: x.expand(2, 3).clone().view(6), tracing_mode="fake")(torch.randn(1, 3))
    lowered = remove_noops(gm, CompilationSettings())
    assert aten.clone.default in _targets(lowered)
    x = torch.randn(1, 3)
    torch.testing.assert_close(lowered(x), x.expand(2, 3).reshape(6))


@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.sampled_from([torch.float32, torch.int32]))
def test_copies_of_contiguous_tensors_and_same_dtype_casts_go(shape, dtype):
    def f(x):
        return x.clone().detach().to(dtype) + 1
    gm = make_fx(f, tracing_mode="fake")(torch.zeros(shape, dtype=dtype))
    lowered = remove_noops(gm, CompilationSettings())
    assert set(_targets(lowered)) == {aten.add.Tensor}
    x = torch.ones(shape, dtype=dtype)
    torch.testing.assert_close(lowered(x), f(x))


def test_a_returned_copy_stays_the_callers_own():
    gm = make_fx(lambda x: (x, x.clone()), tracing_mode="fake")(torch.randn(3))
    lowered = remove_noops(gm, CompilationSettings())
    x = torch.randn(3)
    same, copy = lowered(x)
    assert same is x and copy is not x and copy.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()


def test_casts_to_another_dtype_stay():
    gm = make_fx(lambda x: x.to(torch.int32) + 1, tracing_mode="fake")(torch.randn(3))
    assert aten._to_copy.default in _targets(remove_noops(gm, CompilationSettings()))
