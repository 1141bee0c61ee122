"""The torch.compile backend end to end: entry point, options, recompilation, fallbacks."""
from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import plugtrt
from plugtrt import ConverterSpec, hookimpl
from plugtrt.manager import PluginRegistry, load_entry_points, new_plugin_manager
from plugtrt.testing import assert_close_to_eager, assert_converts, run_through_backend

from .models import SeedModel, mlp, small_cnn

aten = torch.ops.aten


def test_fresh_process_compiles_mlp_and_cnn_into_one_engine_each():
    script = textwrap.dedent("""
        import json, sys, warnings, torch
        sys.path.insert(0, %r)
        from models import mlp, small_cnn
        assert "plugtrt" not in sys.modules
        warnings.simplefilter("ignore")
        out = {}
        for name, model, x in [("mlp", mlp(), torch.randn(8, 16)),
                               ("cnn", small_cnn(), torch.randn(2, 3, 32, 32))]:
            with torch.no_grad():
                want = model(x)
                got = torch.compile(model, backend="plugtrt", dynamic=False)(x)
            report = sys.modules["plugtrt"].compile_reports()[-1]
            out[name] = {"diff": (got - want).abs().max().item(), "engines": len(report.engines),
                         "pytorch_ops": report.pytorch_ops, "fallbacks": report.fallbacks,
                         "layers": [e.layers for e in report.engines]}
        out["flavour"] = sys.modules["plugtrt.trt_adapter"].flavour()
        print(json.dumps(out))
    """) % str(__import__("pathlib").Path(__file__).parent)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    for name in ("mlp", "cnn"):
        assert out[name]["fallbacks"] == [] and out[name]["pytorch_ops"] == []
        assert out[name]["engines"] == 1 and out[name]["layers"][0] > 0
        assert out[name]["diff"] <= 1e-4
    if not torch.cuda.is_available():
        assert out["flavour"] == "tensorrt_rtx"


SEED_OPTIONS = {
    "precision": torch.half,
    "debug": True,
    "workspace_size": 20 << 20,
    "min_block_size": 2,
    "torch_executed_ops": {"torch.ops.aten.sub.Tensor"},
    "pass_through_build_failures": True,
    "max_aux_streams": 2,
    "version_compatible": False,
    "optimization_level": 4,
    "use_python_runtime": False,
    "truncate_long_and_double": True,
    "use_fast_partitioner": True,
    "enable_experimental_decompositions": False,
    "device": "cpu",
    "require_full_compilation": False,
}


def test_seed_custom_settings_snippet_compiles_and_runs():
    inputs = [torch.rand(5, 7).half() for _ in range(3)]
    run = run_through_backend(SeedModel().eval(), inputs, SEED_OPTIONS)
    assert run.engines >= 1 and run.fallbacks == []
    assert "aten.sub.Tensor" in run.pytorch_ops
    assert_close_to_eager(run, precision=torch.half)


def test_seed_snippet_through_the_torch_tensorrt_name():
    inputs = [torch.rand(5, 7) for _ in range(3)]
    model = SeedModel().eval()
    with torch.no_grad():
        got = torch.compile(model, backend="torch_tensorrt", dynamic=False,
                            options={**SEED_OPTIONS, "debug": False, "precision": torch.float32})(*inputs)
        want = model(*inputs)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)


def test_misspelt_option_raises_through_torch_compile():
    with pytest.raises(Exception, match=r"'precison' \(did you mean 'precision'\?\)"):
        torch.compile(mlp(), backend="plugtrt", options={"precison": torch.half})(torch.randn(2, 16))


def _compilations() -> int:
    return plugtrt.compile_count()


def test_recompiles_only_for_new_shapes():
    model = mlp()
    compiled = torch.compile(model, backend="plugtrt", dynamic=False,
                             options={"runtime": "reference", "min_block_size": 1})
    before = _compilations()
    with torch.no_grad():
        for batch, expected_new in [(4, 1), (4, 0), (4, 0), (8, 1), (4, 0), (8, 0)]:
            x = torch.randn(batch, 16)
            start = _compilations()
            torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-4)
            assert _compilations() - start == expected_new, f"batch {batch}"
    assert _compilations() - before == 2


def test_graph_made_dynamic_by_dynamo_compiles_each_shape_once():
    model = mlp()
    compiled = torch.compile(model, backend="plugtrt", options={"runtime": "reference", "min_block_size": 1})
    with torch.no_grad():
        for batch in (4, 8, 4, 16):  # warm up: dynamo turns the graph dynamic at the second shape
            x = torch.randn(batch, 16)
            torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-4)
        warm = _compilations()
        for batch in (16, 4, 8, 8, 4):
            x = torch.randn(batch, 16)
            torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-4)
    assert _compilations() == warm


def test_dry_run_prints_coverage_and_runs_in_pytorch(capsys):
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8)).eval()
    x = torch.randn(2, 8)
    with torch.no_grad():
        got = torch.compile(model, backend="plugtrt", dynamic=False,
                            options={"debug": True, "min_block_size": math.inf})(x)
    torch.testing.assert_close(got, model(x))
    report = plugtrt.compile_reports()[-1]
    assert report.dry_run and report.engines == [] and report.coverage["total"] >= 3
    out = capsys.readouterr().out
    assert "operator coverage" in out and "aten.relu.default" in out


def test_dry_run_names_unsupported_ops_with_reason_and_source(capsys):
    def f(x):
        return torch.erfinv(torch.tanh(torch.relu(x)))
    torch.compile(f, backend="plugtrt", dynamic=False,
                  options={"debug": True, "min_block_size": math.inf})(torch.randn(3, 3))
    out = capsys.readouterr().out
    assert "UNSUPPORTED  aten.erfinv.default" in out and "no converter is registered" in out
    assert "test_backend.py:" in out


class _BrokenRelu:
    """Accepts relu, then fails while converting it."""

    @hookimpl
    def plugtrt_converters(self):
        def convert(ctx, node, args, kwargs):
            raise RuntimeError("deliberately broken")
        yield ConverterSpec(name="broken.relu", target=aten.relu.default, convert=convert, priority=50)


def _registry_with(*plugins) -> PluginRegistry:
    pm = new_plugin_manager()
    load_entry_points(pm)
    for name, plugin in plugins:
        pm.register(plugin, name=name)
    return PluginRegistry(pm)


def test_conversion_failure_leaves_only_that_op_in_pytorch():
    registry = _registry_with(("broken", _BrokenRelu()))
    def f(x):
        return torch.relu(x * 2 + 1)
    with pytest.warns(UserWarning, match=r"(?s)run in PyTorch instead:.*converter 'broken\.relu' .* failed on "
                                         r"aten\.relu\.default \(node 'relu' at test_backend\.py:\d+\): "
                                         r".*deliberately broken.*pass_through_build_failures=True"):
        run = run_through_backend(f, [torch.randn(4, 4)], {"min_block_size": 1}, registry=registry)
    assert_close_to_eager(run)
    assert run.pytorch_ops == ["aten.relu.default"] and run.engines == 2  # mul, then add: bisected


def test_pass_through_build_failures_raises():
    registry = _registry_with(("broken", _BrokenRelu()))
    with pytest.raises(Exception, match="deliberately broken"):
        run_through_backend(lambda x: torch.relu(x), [torch.randn(2)],
                            {"pass_through_build_failures": True}, registry=registry)


def test_require_full_compilation_lists_what_cannot_convert():
    def f(x):
        return torch.erfinv(torch.tanh(torch.relu(x)))
    with pytest.raises(Exception, match=r"(?s)require_full_compilation=True.*UNSUPPORTED  aten\.erfinv\.default.*test_backend\.py:\d+"):
        run_through_backend(f, [torch.randn(3)], {"require_full_compilation": True})


def test_require_full_compilation_converts_small_graphs_whole():
    assert_converts(lambda x: torch.relu(x), [torch.randn(3)],
                    {"require_full_compilation": True, "min_block_size": 10})


def test_torch_executed_ops_and_global_partitioner():
    run = assert_converts(SeedModel().eval(), [torch.rand(5, 7) for _ in range(3)],
                          {"torch_executed_ops": {"aten.sub.Tensor"}, "use_fast_partitioner": False},
                          engines=None, pytorch_ops=["aten.sub.Tensor"])
    assert run.engines >= 1


def test_weights_are_engine_constants_and_in_place_updates_rebuild():
    model = nn.Linear(6, 3).eval()
    compiled = torch.compile(model, backend="plugtrt", dynamic=False,
                             options={"runtime": "reference", "min_block_size": 1})
    x = torch.randn(2, 6)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x))
        report = plugtrt.compile_reports()[-1]
        assert [s for s in report.input_shapes] == [(2, 6)]  # weights are not engine inputs
        model.weight.mul_(2.0)
        before = _compilations()
        torch.testing.assert_close(compiled(x), model(x))
    assert _compilations() == before + 1


def test_debug_logs_every_stage(caplog):
    with caplog.at_level(logging.DEBUG, logger="plugtrt"):
        run_through_backend(mlp(), [torch.randn(2, 16)], {"debug": True})
    text = caplog.text
    for stage in ("aten graph of", "lowered graph of", "partitioned graph of", "layers, built in"):
        assert stage in text


def test_converter_plugin_on_a_fresh_manager_converts_the_model():
    from plugtrt.partitioners import fast
    from plugtrt.runtimes.reference import runtime
    from plugtrt.trt_adapter import trt

    class AcmeTanh:
        @hookimpl
        def plugtrt_converters(self):
            def convert(ctx, node, args, kwargs):
                return ctx.finish(ctx.network.add_activation(args[0], trt.ActivationType.TANH), node)
            yield ConverterSpec(name="acme.tanh", target=aten.tanh.default, convert=convert)

    registry = plugtrt.manager.registry_from(("acme", AcmeTanh()), fast, runtime)
    run = assert_converts(lambda x: torch.tanh(x), [torch.randn(3, 4)], registry=registry)
    assert run.reports[0].engines[0].converters == ("acme.tanh",)


def test_builder_options_reach_the_tensorrt_builder_config():
    from plugtrt import engine
    from plugtrt.trt_adapter import trt

    settings = plugtrt.CompilationSettings.from_options(
        {"workspace_size": 64 << 20, "max_aux_streams": 3, "optimization_level": 2})
    builder, _network = engine.new_network()
    config = engine.builder_config(builder, settings)
    assert config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) == 64 << 20
    assert config.max_aux_streams == 3
    assert config.builder_optimization_level == 2


@pytest.mark.parametrize("options", [{"optimization_level": 0}, {"optimization_level": 5},
                                     {"max_aux_streams": 0, "workspace_size": 64 << 20}])
def test_builder_options_build_engines_that_match_eager(options):
    assert_converts(mlp(), [torch.randn(3, 16)], options)


def test_version_compatible_engines():
    from plugtrt import engine
    from plugtrt.trt_adapter import flavour, trt

    settings = plugtrt.CompilationSettings(version_compatible=True)
    builder, _network = engine.new_network()
    if flavour() == "tensorrt":
        assert engine.builder_config(builder, settings).get_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
        assert_converts(mlp(), [torch.randn(3, 16)], {"version_compatible": True})
        return
    with pytest.warns(UserWarning, match=r"version_compatible=True needs full TensorRT.*plugtrt\[tensorrt\]"):
        run = run_through_backend(mlp(), [torch.randn(3, 16)], {"version_compatible": True})
    assert run.engines == 0
    assert_close_to_eager(run)


class _BrokenDecomposition:
    """A decomposition of erfinv (which no converter takes) that fails while tracing, with a
    kilobytes-long message."""

    @hookimpl
    def plugtrt_decompositions(self):
        def fail(*args, **kwargs):
            raise RuntimeError("cannot decompose this\n" + "detail " * 2000)
        yield plugtrt.DecompositionSpec(name="broken.erfinv", target=aten.erfinv.default, fn=fail)


def test_a_graph_that_fails_to_trace_runs_in_pytorch_with_a_short_warning():
    registry = _registry_with(("broken", _BrokenDecomposition()))
    with pytest.warns(UserWarning) as caught:
        run = run_through_backend(lambda x: torch.erfinv(torch.tanh(x)) + 1, [torch.randn(3)],
                                  registry=registry)
    assert_close_to_eager(run)
    message = next(str(w.message) for w in caught if "could not compile" in str(w.message))
    assert len(message) < 600 and "detail" not in message
    assert "RuntimeError: cannot decompose this." in message and "debug=True" in message
