"""The bad-input catalogue (README, "Unusual inputs and outputs"): each case gives eager's
results, with engines built where TensorRT can take part of the graph, or the error eager
PyTorch gives.

Each case is ``(fn, make_inputs, engines)``: ``engines`` is how many engines the compiled run
must build (0 where dynamo itself runs the frame in PyTorch), or an error pattern that both
eager and compiled runs must raise.
"""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.utils._pytree as pytree
from torch import nn

import plugtrt

OPTIONS = {"runtime": "reference", "min_block_size": 1}
_lin = nn.Linear(4, 3).eval()


def _head(x):
    return (_lin(x) * 2).relu()


_half_lin = nn.Linear(4, 3).half().eval()


def _half_head(x):
    return (_half_lin(x) * 2).relu()


def _conv(x):
    return nn.functional.conv2d(x, torch.ones(2, 3, 1, 1)).relu() * 2


def _write_and_read(x):
    x.mul_(2)
    return x.relu() + 1


def _write_through_view(x):
    x[0].add_(1)
    return (x * 3).relu()


def _write_one_of_two(x, y):
    x.add_(y)
    return (x * y).relu()


def _write_one_then_read_the_other(x, row):
    x.add_(1)
    return (row * 2).relu()


def _and_a_row(x):
    return [x, x[0]]


def _quantized():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized tensor creation is deprecated in torch
        return [torch.quantize_per_tensor(torch.randn(2, 4), 0.1, 0, torch.qint8)]


def _sparse_csr():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "Sparse CSR tensor support is in beta state"
        return [torch.randn(2, 4).to_sparse_csr()]


OVERLAP = "more than one element of the written-to tensor refers to a single memory location"

CASES = {
    # dtypes and layouts TensorRT does not take
    "complex": (lambda x: (x * 2 + 1).abs().relu() + 1,
                lambda: [torch.randn(2, 4, dtype=torch.complex64)], 1),
    "complex_viewed_as_real": (lambda x: torch.view_as_real(x).relu() * 2 + 1,
                               lambda: [torch.randn(2, 4, dtype=torch.complex64)], 1),
    "quantized": (lambda x: (x.dequantize() * 2 + 1).relu(), _quantized, 0),
    "sparse_coo": (lambda x: (x.to_dense() * 2 + 1).relu(), lambda: [torch.randn(2, 4).to_sparse()], 0),
    "sparse_csr": (lambda x: (x.to_dense() * 2 + 1).relu(), _sparse_csr, 0),
    # memory layouts
    "non_contiguous": (_head, lambda: [torch.randn(4, 2).t()], 1),
    "expanded_zero_stride": (_head, lambda: [torch.randn(1, 4).expand(3, 4)], 1),
    "as_strided_overlapping": (_head, lambda: [torch.randn(6).as_strided((3, 4), (1, 1))], 1),
    "channels_last": (lambda x: nn.functional.conv2d(x, torch.ones(2, 3, 1, 1)).relu(),
                      lambda: [torch.randn(1, 3, 4, 4).to(memory_format=torch.channels_last)], 1),
    # every op reads the empty input (TensorRT has no empty tensors): PyTorch runs them all
    "zero_sized": (_head, lambda: [torch.randn(0, 4)], 0),
    "zero_dim": (lambda x: (x * 2 + 1).relu(), lambda: [torch.tensor(3.0)], 1),
    # inputs the graph writes
    "written_input": (_write_and_read, lambda: [torch.randn(2, 4)], 1),
    "written_through_a_view": (_write_through_view, lambda: [torch.randn(2, 4)], 1),
    "written_non_contiguous": (_write_and_read, lambda: [torch.randn(4, 2).t()], 1),
    "written_zero_sized": (_write_and_read, lambda: [torch.randn(0, 4)], 0),
    "written_while_aliased": (_write_one_of_two, lambda: [torch.ones(2, 4)] * 2, 1),
    "written_while_a_view_of_it_is_another_input": (_write_one_then_read_the_other,
                                                    lambda: _and_a_row(torch.randn(3, 4)), 1),
    "written_overlapping": (_write_and_read, lambda: [torch.randn(1, 4).expand(3, 4)], OVERLAP),
    # inputs whose shape or strides the graph changes in place
    "resized_input": (lambda x: torch.ops.aten.resize_.default(x, [3]) * 2 + 1,
                      lambda: [torch.randn(5)], 1),
    "resized_input_method": (lambda x: x.resize_(3) * 2 + 1, lambda: [torch.randn(5)], 1),
    "as_strided_input_method": (lambda x: x.as_strided_((2, 2), (1, 2)) * 2 + 1,
                                lambda: [torch.randn(6)], 1),
    "set_input_method": (lambda x, y: x.set_(y) * 2 + 1, lambda: [torch.randn(3), torch.randn(2, 3)], 1),
    # inputs that are not tensors
    "int": (lambda x, n: _head(x) * n, lambda: [torch.randn(2, 4), 3], 1),
    "float": (lambda x, s: _head(x) * s, lambda: [torch.randn(2, 4), 0.5], 1),
    "none": (lambda x, n: _head(x) if n is None else x, lambda: [torch.randn(2, 4), None], 1),
    "list": (lambda xs: _head(xs[0]) + _head(xs[1]), lambda: [[torch.randn(2, 4), torch.randn(2, 4)]], 1),
    "dict": (lambda d: _head(d["x"]) * d["k"], lambda: [{"x": torch.randn(2, 4), "k": 2}], 1),
    # operands of different dtypes: eager refuses, so does the compiled model, with eager's error
    # (an engine would cast one of them and hide the bug)
    "half_input_to_a_float_linear": (_head, lambda: [torch.randn(2, 4).half()], "same dtype"),
    "float_input_to_a_half_linear": (_half_head, lambda: [torch.randn(2, 4)], "same dtype"),
    # (dynamo's fake convolution refuses it first, in its own words)
    "half_input_to_a_float_conv": (_conv, lambda: [torch.randn(1, 3, 4, 4).half()],
                                   "(Half|float16).*(Float|float32)"),
    "matmul_of_half_and_float": (lambda a, b: (a @ b).relu() * 2,
                                 lambda: [torch.randn(2, 4).half(), torch.randn(4, 3)], "same dtype"),
    # wrong device: eager refuses, so does the compiled model
    "wrong_device": (_head, lambda: [torch.randn(2, 4, device="meta")], "device"),
    # outputs that are not (only) tensors
    "returns_int": (lambda x: (_head(x), 3), lambda: [torch.randn(2, 4)], 1),
    "returns_none": (lambda x: (_head(x), None), lambda: [torch.randn(2, 4)], 1),
    "returns_mixed_nested": (lambda x: (_head(x), (1, "a", None), [x.shape[0]], {"y": x + 1}),
                             lambda: [torch.randn(2, 4)], 1),
    "returns_a_view_of_the_input": (lambda x: (_head(x), x.view(-1)), lambda: [torch.randn(2, 4)], 1),
    "returns_the_same_tensor_twice": (lambda x: (_head(x),) * 2, lambda: [torch.randn(2, 4)], 1),
}


def _same(got, want) -> None:
    got_leaves, want_leaves = pytree.tree_leaves(got), pytree.tree_leaves(want)
    assert pytree.tree_structure(got) == pytree.tree_structure(want)
    for g, w in zip(got_leaves, want_leaves):
        if isinstance(w, torch.Tensor):
            assert g.dtype == w.dtype and g.shape == w.shape and g.device == w.device
            g, w = (t.to_dense() if t.layout != torch.strided else t for t in (g, w))
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)
        else:
            assert g == w


@pytest.mark.parametrize("name", list(CASES))
def test_catalogue(name):
    fn, make_inputs, expect = CASES[name]
    torch.manual_seed(0)
    inputs = make_inputs()
    torch.manual_seed(0)
    eager_inputs = make_inputs()  # not deepcopy: sparse CSR tensors cannot be copied so
    compiled = torch.compile(fn, backend="plugtrt", dynamic=False, options=OPTIONS)
    start = plugtrt.compile_count()
    with torch.no_grad():
        if isinstance(expect, str):
            with pytest.raises(Exception, match=expect):
                fn(*eager_inputs)
            with pytest.raises(Exception, match=expect):
                compiled(*inputs)
            return
        want = fn(*eager_inputs)
        got = compiled(*inputs)
    _same(got, want)
    _same(inputs, eager_inputs)  # inputs the graph writes end as eager leaves them
    new = plugtrt.compile_count() - start
    reports = plugtrt.compile_reports()[-new:] if new else []
    assert sum(len(r.engines) for r in reports) == expect
    assert not [f for r in reports for f in r.fallbacks]


def test_batch_norm_in_training_mode_runs_in_pytorch_with_eager_statistics():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).train()
    eager = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).train()
    eager.load_state_dict(model.state_dict())
    compiled = torch.compile(model, backend="plugtrt", dynamic=False, options=OPTIONS)
    with torch.no_grad(), pytest.warns(UserWarning) as caught:
        for _ in range(2):
            x = torch.randn(2, 3, 8, 8)
            torch.testing.assert_close(compiled(x), eager(x))
    messages = [str(w.message) for w in caught if "plugtrt" in str(w.message)]
    assert len(messages) == 1, messages  # once, and no AOT dump
    assert "batch norm" in messages[0] and "training mode" in messages[0] and "model.eval()" in messages[0]
    assert "ViewAndMutationMeta" not in messages[0] and "pass_through_build_failures" not in messages[0]
    assert caught[0].filename == __file__  # attributed to the user's call, not to plugtrt
    for name, value in eager.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value)


@pytest.mark.parametrize("shape", [(2, 3), (3, 3)])
def test_an_input_transposed_in_place_runs_in_pytorch_with_a_reason(shape):
    """Issue 17, item 9: the write-back copied the new value into the input as it was, so a
    graph changing an input's shape or strides in place (t_, as_strided_) crashed; plugtrt
    writes back values (and resize_'s new shape) only, so such a graph runs in PyTorch."""
    def transpose(x):
        return torch.ops.aten.t_.default(x) * 2 + 1

    x = torch.randn(shape)
    eager_x = x.clone()
    compiled = torch.compile(transpose, backend="plugtrt", dynamic=False, options=OPTIONS)
    with torch.no_grad(), pytest.warns(UserWarning, match="changes the shape or strides of input 0"):
        got = compiled(x)
    torch.testing.assert_close(got, transpose(eager_x))
    assert x.shape == eager_x.shape and x.stride() == eager_x.stride()
    torch.testing.assert_close(x, eager_x)
