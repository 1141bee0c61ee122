"""A block TensorRT refuses to build is bisected: only the op it refuses runs in PyTorch.

The refused op is real: a plugin converter quantizes a convolution's input and weights to FP4
(``add_quantize`` with ``DataType.FP4``, then ``add_dequantize``), which TensorRT-RTX's builder
rejects on this machine with a Myelin check (cudnn_impl.cpp: no FP4 convolution kernel). Builds
are counted by wrapping plugtrt's build function; the builder itself is never replaced.
"""
from __future__ import annotations

import math
import operator
import warnings

import pytest
import torch
import torchvision
from torch import nn

from plugtrt import ConverterSpec, engine, hookimpl
from plugtrt.conversion import val
from plugtrt.engine_cache import wait_for_writes
from plugtrt.errors import NetworkRejectedError
from plugtrt.manager import registry_from
from plugtrt.testing import assert_close_to_eager, plugin_registry, run_through_backend
from plugtrt.trt_adapter import trt

aten = torch.ops.aten


def _fp4_convolution(ctx, node, args, kwargs):
    """A 2-d convolution whose input and weights pass through FP4 quantize/dequantize layers."""
    x, weight, bias, stride, padding, dilation, _, _, groups = args
    scale = ctx.constant(torch.tensor(0.5), node)

    def fp4(tensor, suffix):
        quantized = ctx.finish(ctx.network.add_quantize(tensor, scale, trt.DataType.FP4), node,
                               suffix=f"{suffix}_fp4")
        return ctx.finish(ctx.network.add_dequantize(quantized, scale, trt.float32), node,
                          suffix=f"{suffix}_dequantize")

    layer = ctx.network.add_convolution_nd(fp4(x, "input"), weight.shape[0], tuple(weight.shape[2:]),
                                           trt.Weights(), ctx.weights(bias, torch.float32))
    layer.set_input(1, fp4(ctx.constant(weight, node), "weight"))
    layer.stride_nd, layer.padding_nd, layer.dilation_nd = tuple(stride), tuple(padding), tuple(dilation)
    layer.num_groups = groups
    return ctx.finish(layer, node)


def _registry(*records: ConverterSpec):
    class Plugin:
        @hookimpl
        def plugtrt_converters(self):
            yield from records

    return registry_from(*plugin_registry().plugin_manager.list_name_plugin(), ("acme", Plugin()))


def _fp4_registry(*weight_shape: int):
    """The built-ins plus ``acme.fp4_conv``, which takes only the convolutions (with a bias) whose
    weights have this shape."""
    def is_supported(node, settings):
        return node.args[2] is not None and tuple(val(node.args[1]).shape) == weight_shape

    return _registry(ConverterSpec(name="acme.fp4_conv", target=aten.convolution.default, priority=10,
                                   convert=_fp4_convolution, is_supported=is_supported,
                                   constant_args=frozenset({1, 2})))


class _Net(nn.Module):
    """14 ops; the third convolution (8 -> 12 channels) is the one ``acme.fp4_conv`` takes."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.fp4 = nn.Conv2d(8, 12, 3, padding=1)
        self.c4, self.c5 = nn.Conv2d(12, 8, 3, padding=1), nn.Conv2d(8, 8, 1)

    def forward(self, x):
        a = torch.relu(self.c1(x))
        b = torch.relu(self.c2(a)) + a
        c = torch.relu(self.fp4(b))  # the op TensorRT refuses: this line is in the warning
        d = torch.relu(self.c4(c)) + b
        return torch.relu(self.c5(d)) * 2 + 1


_FP4_LINE = next(i for i, line in enumerate(open(__file__), 1) if "the op TensorRT refuses" in line)


@pytest.fixture
def builds(monkeypatch):
    """Every call of plugtrt's build function, with whether TensorRT built the engine."""
    calls: list[bool] = []
    real = engine.build

    def counting(*args, **kwargs):
        try:
            artifact = real(*args, **kwargs)
        except NetworkRejectedError:
            calls.append(False)
            raise
        calls.append(True)
        return artifact

    monkeypatch.setattr(engine, "build", counting)
    return calls


def test_the_fp4_convolution_really_does_not_build(builds):
    registry = _fp4_registry(12, 8, 3, 3)
    with pytest.raises(torch._dynamo.exc.BackendCompilerFailed, match=r"MyelinCheckException") as raised:
        run_through_backend(nn.Conv2d(8, 12, 3, padding=1), [torch.randn(1, 8, 8, 8)],
                            {"pass_through_build_failures": True}, registry=registry)
    assert isinstance(raised.value.inner_exception, NetworkRejectedError)
    assert builds == [False]


def _compile_net(registry, x):
    torch.manual_seed(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = run_through_backend(_Net(), [x], {"min_block_size": 1}, registry=registry)
    wait_for_writes()
    return run, [str(w.message) for w in caught if "plugtrt" in str(w.message)]


def test_only_the_refused_convolution_runs_in_pytorch_and_the_rest_in_engines(builds, engine_cache_dir):
    registry, x = _fp4_registry(12, 8, 3, 3), torch.randn(1, 3, 16, 16)
    run, messages = _compile_net(registry, x)

    assert run.pytorch_ops == ["aten.convolution.default"]
    assert sum(e.ops for r in run.reports for e in r.engines) == 13  # every other op
    assert run.engines == 4  # the halves, quarters and eighths that built
    assert_close_to_eager(run)
    # 14 ops, one refused: the whole block, then two halves per level (7, 4, 2, 1 ops) down to it
    assert len(builds) == 1 + 2 * math.ceil(math.log2(14)) == 9
    assert builds.count(False) == 5  # the block, and each piece holding the FP4 convolution
    (message,) = messages
    assert run.fallbacks == [message]
    assert "aten.convolution.default (node 'convolution_2' at test_build_bisection.py:" \
        f"{_FP4_LINE})" in message
    assert "MyelinCheckException" in message and "runs in 4 engine(s)" in message

    # a second compile (its graph entry gone, so it goes through the blocks again) tries no
    # failing build again and finds every engine in the cache: it builds nothing
    for entry in engine_cache_dir.glob("graph-*.engine"):
        entry.unlink()
    builds.clear()
    again, messages = _compile_net(registry, x)
    assert builds == []
    assert again.pytorch_ops == ["aten.convolution.default"] and again.engines == 4
    assert all(e.cached for r in again.reports for e in r.engines)
    assert_close_to_eager(again)
    (message,) = messages
    assert "MyelinCheckException" in message and "remembered by the engine cache" in message

    # a third restores the whole graph, bisected, from the graph cache, and warns the same
    restored, messages = _compile_net(registry, x)
    assert builds == [] and restored.reports[0].restored and restored.engines == 4
    assert messages == again.fallbacks
    assert_close_to_eager(restored)


def test_pass_through_build_failures_still_raises_at_the_first_failure(builds):
    with pytest.raises(torch._dynamo.exc.BackendCompilerFailed,
                       match=r"TensorRT could not build engine '\S+\._run_on_acc_0': .*Myelin") as raised:
        run_through_backend(_Net(), [torch.randn(1, 3, 16, 16)],
                            {"pass_through_build_failures": True}, registry=_fp4_registry(12, 8, 3, 3))
    assert isinstance(raised.value.inner_exception, NetworkRejectedError)
    assert builds == [False]  # the whole block, not split


def test_a_converter_raising_mid_block_is_bisected_the_same_way(builds):
    def explode(ctx, node, args, kwargs):
        raise RuntimeError("unsupported alpha")

    registry = _registry(ConverterSpec(name="acme.sigmoid", target=aten.sigmoid.default, priority=10,
                                       convert=explode))

    def model(x):
        y = torch.relu(x * 2 + 1) - 3
        z = torch.sigmoid(y.abs())  # the converter that raises
        return torch.tanh(z * y + x) / 4 + 1

    with pytest.warns(UserWarning) as caught:
        run = run_through_backend(model, [torch.randn(3, 4)], registry=registry)
    (message,) = [str(w.message) for w in caught if "plugtrt" in str(w.message)]
    assert run.pytorch_ops == ["aten.sigmoid.default"]
    assert sum(e.ops for e in run.reports[0].engines) == 10
    assert "converter 'acme.sigmoid' (plugin 'acme') failed on aten.sigmoid.default" in message
    assert "aten.sigmoid.default (node 'sigmoid' at test_build_bisection.py:" in message
    assert "unsupported alpha" in message
    assert len(builds) == run.engines  # conversion fails before a build: every build succeeded
    assert_close_to_eager(run)


def test_resnet18_with_one_unbuildable_convolution_keeps_every_other_op_in_engines(builds):
    """layer2.0.conv1 is resnet18's only convolution from 64 to 128 channels by 3x3."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    registry = _fp4_registry(128, 64, 3, 3)
    with pytest.warns(UserWarning, match=r"did not build whole; bisected") as caught:
        run = run_through_backend(model, [torch.randn(1, 3, 64, 64)], {"min_block_size": 5},
                                  registry=registry)
    (message,) = [str(w.message) for w in caught if "plugtrt" in str(w.message)]
    assert "MyelinCheckException" in message and "aten.convolution.default" in message
    assert run.pytorch_ops == ["aten.convolution.default"]
    ops = sum(e.ops for r in run.reports for e in r.engines)  # 48 in 6 engines, 13 builds here
    assert builds.count(True) == run.engines
    assert len(builds) <= 1 + 2 * math.ceil(math.log2(ops + 1)), builds
    assert_close_to_eager(run, rtol=1e-3, atol=1e-3)


def test_every_half_has_what_an_engine_returns():
    """A constant read on both sides of the cut is copied into both halves, and a tuple's
    ``getitem`` goes with the op that makes the tuple, however late it is read."""
    from plugtrt.bisection import split_in_half

    model = _TwoSided()
    gm = torch.fx.symbolic_trace(model)
    pieces = split_in_half(gm)
    assert [p.target for p in pieces] == ["_piece_0", "_piece_1"]
    halves = [gm.get_submodule(p.target) for p in pieces]
    for half in halves:  # the weight is frozen in each half, not an input
        assert [n.target for n in half.graph.nodes if n.op == "get_attr"] == ["weight"]
        assert len([n for n in half.graph.nodes if n.op == "placeholder"]) == (1 if half is halves[0] else 2)
    assert sum(n.target is operator.getitem for n in halves[0].graph.nodes) == 2
    x = torch.randn(4, 4)
    torch.testing.assert_close(gm(x), model(x))
    assert split_in_half(torch.fx.symbolic_trace(lambda x: x + 1)) is None


class _TwoSided(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4))

    def forward(self, x):
        parts = torch.split(x * self.weight, 2)
        a = parts[0].sum() * 3 - 1
        return (parts[1] + a) * self.weight  # the cut falls before parts[1] is read
