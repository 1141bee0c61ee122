"""A broken third-party converter never stops a compile: the rest keeps working, and the
message names the plugin."""
from __future__ import annotations

import pytest
import torch

from plugtrt import ConverterSpec, hookimpl
from plugtrt.conversion import unary
from plugtrt.manager import registry_from
from plugtrt.testing import plugin_registry, run_through_backend

aten = torch.ops.aten


def _with(plugin_name: str, *records: ConverterSpec):
    class Plugin:
        @hookimpl
        def plugtrt_converters(self):
            yield from records

    builtins = plugin_registry()
    modules = [(name, plugin) for name, plugin in builtins.plugin_manager.list_name_plugin()]
    return registry_from(*modules, (plugin_name, Plugin()))


def test_raising_is_supported_declines_with_a_warning_naming_the_plugin():
    def broken(node, settings):
        raise KeyError("approximate")

    registry = _with("acme", ConverterSpec(name="acme.erf", target=aten.erf.default, convert=print,
                                           is_supported=broken))
    with pytest.warns(UserWarning, match=r"converter 'acme\.erf' \(plugin 'acme'\) raised KeyError"):
        run = run_through_backend(lambda x: torch.erf(x * 2) + 1, [torch.randn(3, 4)], registry=registry)
    assert run.pytorch_ops == ["aten.erf.default"] and run.engines == 2
    torch.testing.assert_close(run.outputs, run.expected)


@pytest.mark.parametrize("wrong, message", [
    (lambda ctx, node, x: unary(ctx, ctx.cast(x, torch.float16, node), "ABS", node), "dtype torch.float16"),
    (lambda ctx, node, x: unary(ctx, ctx.reshape(x, (12,), node), "ABS", node), r"shape \(12,\)"),
])
def test_converter_result_of_wrong_dtype_or_shape_leaves_only_its_op_in_pytorch_naming_the_converter(
        wrong, message):
    registry = _with("acme", ConverterSpec(name="acme.abs", target=aten.abs.default, priority=5,
                                           convert=lambda ctx, node, args, kwargs: wrong(ctx, node, args[0])))
    with pytest.warns(UserWarning, match=rf"converter 'acme\.abs' \(plugin 'acme'\).*{message}"):
        run = run_through_backend(lambda x: torch.abs(x - 1) * 2, [torch.randn(3, 4)], registry=registry)
    # the block is bisected (tests/core/test_build_bisection.py): sub and mul keep their engines
    assert run.engines == 2 and run.pytorch_ops == ["aten.abs.default"] and len(run.fallbacks) == 1
    torch.testing.assert_close(run.outputs, run.expected)


def test_failing_converter_raises_with_pass_through_build_failures():
    def explode(ctx, node, args, kwargs):
        raise RuntimeError("unsupported alpha")

    registry = _with("acme", ConverterSpec(name="acme.abs", target=aten.abs.default, priority=5,
                                           convert=explode))
    with pytest.raises(Exception, match=r"converter 'acme\.abs' \(plugin 'acme'\) failed on aten\.abs"):
        run_through_backend(lambda x: torch.abs(x - 1) * 2, [torch.randn(3, 4)],
                            {"pass_through_build_failures": True}, registry=registry)


@pytest.mark.parametrize("dtype", [torch.int16, torch.complex64])
def test_dtype_tensorrt_lacks_stays_in_pytorch_and_the_rest_converts(dtype):
    def model(x, y):
        return (x * 2).abs() + 1, (y + y).sum(0)

    run = run_through_backend(model, [torch.randn(3, 4), torch.ones(3, 4, dtype=dtype)])
    assert run.engines == 1 and not run.fallbacks and "aten.add.Tensor" in run.pytorch_ops
    torch.testing.assert_close(run.outputs, run.expected)


def test_engine_failing_at_run_time_falls_back_to_its_block_with_a_warning():
    from plugtrt import RuntimeSpec
    from plugtrt.runtime import EngineModule

    class Failing(EngineModule):
        def execute(self, inputs):
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    class FailingRuntime:
        @hookimpl
        def plugtrt_runtimes(self):
            yield RuntimeSpec(name="failing", create=lambda artifact, settings, registry: Failing(artifact),
                              available=lambda settings: None)

    builtins = plugin_registry()
    registry = registry_from(*builtins.plugin_manager.list_name_plugin(), ("acme", FailingRuntime()))
    with pytest.warns(UserWarning, match=r"failed at run time and runs in PyTorch.*illegal memory access"):
        run = run_through_backend(lambda x: torch.relu(x - 1) * 2, [torch.randn(3, 4)],
                                  {"runtime": "failing"}, registry=registry)
    assert run.engines == 1 and len(run.fallbacks) == 1
    torch.testing.assert_close(run.outputs, run.expected)
