"""The graph cache: a compile whose graph, inputs, weights, settings and plugins were compiled
before restores the partitioned module without tracing it, and matches eager.

Each test has its own cache directory (``tests/conftest.py``). A compile's report says whether
it was ``restored``; a restored compile has no ``trace`` stage.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import plugtrt
from plugtrt import RuntimeSpec, hookimpl, trt_adapter
from plugtrt.engine_cache import wait_for_writes
from plugtrt.manager import registry_from
from plugtrt.runtime import EngineModule
from plugtrt.testing import assert_close_to_eager, plugin_registry, run_through_backend

from ..models import seeded_mlp


def _compile(model, x, registry=None, **options):
    """Compile and run once next to eager; returns (run, whether the graph was restored)."""
    run = run_through_backend(model, [x], options, registry)
    wait_for_writes()
    assert_close_to_eager(run, precision=options.get("precision", torch.float32))
    (report,) = run.reports
    assert report.restored == ("trace" not in report.stage_seconds)
    assert run.engines >= 1 and (not report.restored or all(e.cached for e in report.engines))
    return run, report.restored


def test_a_second_compile_restores_the_graph_and_matches_eager(engine_cache_dir):
    x = torch.randn(3, 8)
    first, restored = _compile(seeded_mlp(), x)
    assert not restored and len(list(engine_cache_dir.glob("graph-*.engine"))) == 1
    run, restored = _compile(seeded_mlp(), x)
    assert restored
    (before,), (after,) = first.reports, run.reports
    assert [(e.layers, e.ops, e.converters) for e in after.engines] == \
        [(e.layers, e.ops, e.converters) for e in before.engines]
    assert after.pytorch_ops == before.pytorch_ops and after.coverage == before.coverage


_SCRIPT = textwrap.dedent("""
    import json, torch, plugtrt
    torch.manual_seed(0)  # the weights of seeded_mlp()
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)).eval()
    x = torch.ones(3, 8)
    with torch.no_grad():
        want = model(x)
        got = torch.compile(model, backend="plugtrt", dynamic=False,
                            options={"runtime": "reference", "min_block_size": 1})(x)
    (report,) = plugtrt.compile_reports()
    print(json.dumps({"restored": report.restored, "stages": sorted(report.stage_seconds),
                      "diff": (got - want).abs().max().item()}))
""")


def test_a_new_process_restores_the_graph_without_tracing(engine_cache_dir):
    results = []
    for _ in range(2):  # a fresh process each time, as after a restart
        done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    cold, warm = results
    assert not cold["restored"] and "trace" in cold["stages"] and cold["diff"] <= 1e-5
    assert warm["restored"] and warm["diff"] <= 1e-5
    assert not {"trace", "lower", "partition", "convert", "build"} & set(warm["stages"])


@pytest.mark.parametrize("options", [
    pytest.param({"torch_executed_ops": {"aten.relu.default"}}, id="partition-setting"),
    pytest.param({"min_block_size": 2}, id="min-block-size"),
])
def test_what_changes_the_compiled_graph_misses(options):
    """Settings that change the partition but not an engine miss the graph, and may still hit
    the engine cache. (What changes an engine, tests/core/test_engine_cache.py shows missing
    there, which a graph hit could not: it would bring back the cached engines.)"""
    x = torch.randn(3, 8)
    _compile(seeded_mlp(), x)
    assert _compile(seeded_mlp(), x)[1]
    assert not _compile(seeded_mlp(), x, **options)[1]
    assert _compile(seeded_mlp(), x, **options)[1]


def test_an_input_dtype_misses():
    _compile(seeded_mlp(), torch.randn(3, 8))
    assert not _compile(seeded_mlp().double(), torch.randn(3, 8, dtype=torch.float64),
                        truncate_long_and_double=True)[1]


def test_settings_that_only_show_things_hit():
    x = torch.randn(3, 8)
    _compile(seeded_mlp(), x)
    assert _compile(seeded_mlp(), x, debug=True, progress_bar=False, engine_cache_size=1 << 40)[1]


def test_another_tensorrt_version_misses(monkeypatch):
    x = torch.randn(3, 8)
    _compile(seeded_mlp(), x)
    monkeypatch.setattr(trt_adapter, "version", lambda: "tensorrt_rtx==0.0.0-other")
    assert not _compile(seeded_mlp(), x)[1]


def test_another_plugin_misses():
    """A registry with one more plugin (a lowering pass, a partitioner...) may compile the graph
    differently, even where no converter of it is used."""
    class Extra:
        @hookimpl
        def plugtrt_runtimes(self):
            yield RuntimeSpec(name="extra", create=lambda artifact, settings, registry: None,
                              available=lambda settings: "never")

    x = torch.randn(3, 8)
    _compile(seeded_mlp(), x)
    registry = registry_from(*plugin_registry().plugin_manager.list_name_plugin(), ("acme", Extra()))
    assert not _compile(seeded_mlp(), x, registry)[1]


def test_restored_weights_are_the_models_own_tensors():
    """The restored module reads the model's parameters, as a compiled one does: a part left in
    PyTorch sees even a write the weight check cannot (``.data`` has its own version counter)."""
    model, x = seeded_mlp(), torch.randn(3, 8)
    options = {"torch_executed_ops": {"aten.addmm.default"}}
    _compile(model, x, **options)
    run, restored = _compile(model, x, **options)
    assert restored and run.reports[0].pytorch_ops.count("aten.addmm.default") == 2
    with torch.no_grad():
        model[2].weight.data.mul_(2)
        torch.testing.assert_close(run.compiled(x), model(x))


class _Counter(nn.Module):
    """Writes a buffer: state that stays an engine input, written back after each call."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4, 4)
        self.register_buffer("n", torch.zeros(()))

    def forward(self, x):
        self.n += 1
        return self.lin(x) * self.n


def test_a_restored_graph_still_writes_its_inputs():
    """A restarted process starts from the same state, and restores the graph that writes it."""
    x = torch.randn(2, 4)
    for restored in (False, True):
        model, eager = _Counter().eval(), _Counter().eval()
        torch._dynamo.reset()
        compiled = torch.compile(model, backend="plugtrt", dynamic=False,
                                 options={"runtime": "reference", "min_block_size": 1})
        with torch.no_grad():
            for _ in range(3):
                torch.testing.assert_close(compiled(x), eager(x))
        wait_for_writes()
        assert plugtrt.compile_reports()[-1].restored == restored
        assert plugtrt.compile_reports()[-1].engines and model.n.item() == 3


def test_a_damaged_graph_entry_is_compiled_again_with_a_warning(engine_cache_dir):
    x = torch.randn(3, 8)
    _compile(seeded_mlp(), x)
    (entry,) = engine_cache_dir.glob("graph-*.engine")
    data = entry.read_bytes()
    entry.write_bytes(data[:-10] + bytes([data[-10] ^ 0x01]) + data[-9:])
    with pytest.warns(UserWarning, match=r"cache entry .* is corrupt \(checksum mismatch.*rebuilding graph"):
        assert not _compile(seeded_mlp(), x)[1]
    assert _compile(seeded_mlp(), x)[1]


def test_an_evicted_engine_makes_its_graph_compile_again(engine_cache_dir):
    x = torch.randn(3, 8)
    _compile(seeded_mlp(), x)
    for engine in engine_cache_dir.glob("*.engine"):
        if not engine.name.startswith("graph-"):
            engine.unlink()
    run, restored = _compile(seeded_mlp(), x)
    assert not restored and [e.cached for e in run.reports[0].engines] == [False]


def test_a_restored_engine_failing_at_run_time_runs_the_graph_in_pytorch():
    class Failing(EngineModule):
        calls = 0

        def execute(self, inputs):
            Failing.calls += 1
            if Failing.calls > 1:  # the first compile's call works, the restored one's fails
                raise RuntimeError("CUDA error: an illegal memory access was encountered")
            return [torch.relu(inputs[0] - 1) * 2]

    class FailingRuntime:
        @hookimpl
        def plugtrt_runtimes(self):
            yield RuntimeSpec(name="failing", create=lambda artifact, settings, registry: Failing(artifact),
                              available=lambda settings: None)

    registry = registry_from(*plugin_registry().plugin_manager.list_name_plugin(), ("acme", FailingRuntime()))
    x = torch.randn(3, 4)
    _compile(lambda t: torch.relu(t - 1) * 2, x, registry, runtime="failing")
    with pytest.warns(UserWarning, match=r"failed at run time and the whole graph runs in PyTorch"):
        run, restored = _compile(lambda t: torch.relu(t - 1) * 2, x, registry, runtime="failing")
    assert restored and len(run.reports[0].fallbacks) == 1
    with torch.no_grad():
        torch.testing.assert_close(run.compiled(x), torch.relu(x - 1) * 2)
    assert Failing.calls == 2  # later calls go straight to PyTorch


def test_a_graph_calling_a_function_kept_whole_has_no_graph_entry(engine_cache_dir):
    def double(t):
        return t * 2

    torch._dynamo.allow_in_graph(double)
    try:
        x = torch.randn(3, 4)
        _compile(lambda t: double(torch.relu(t)), x)
        run, restored = _compile(lambda t: double(torch.relu(t)), x)
    finally:
        torch._dynamo.disallow_in_graph(double)
    assert not restored and all(e.cached for e in run.reports[0].engines)
    assert not list(engine_cache_dir.glob("graph-*.engine"))


def test_a_graph_calling_a_custom_operator_has_no_graph_entry(engine_cache_dir):
    """A custom operator's Python implementation can change with nothing in the graph changing."""
    @torch.library.custom_op("plugtrt_test::twice", mutates_args=())
    def twice(t: torch.Tensor) -> torch.Tensor:
        return t * 2

    @twice.register_fake
    def _(t):
        return torch.empty_like(t)

    x = torch.randn(3, 4)
    run, restored = _compile(lambda t: twice(torch.relu(t)) + 1, x)
    assert not restored and not list(engine_cache_dir.glob("graph-*.engine"))


def test_a_partition_made_by_a_plugin_from_the_traced_module_restores():
    """The example package's partitioner keeps make_fx's module class, whose tracer would call
    the engines while unpickling: the entry is re-created with fx's own tracer."""
    registry = plugin_registry(("plugtrt", "plugtrt-example"))
    x = torch.randn(6, 4)
    model = lambda t: torch.sigmoid(torch.relu(t) + 1) * 2  # noqa: E731
    assert not _compile(model, x, registry, partitioner="whole_graph")[1]
    run, restored = _compile(model, x, registry, partitioner="whole_graph")
    assert restored and run.engines == 1
