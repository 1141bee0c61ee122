"""The persistent engine cache, through the whole backend with real engine builds.

Every test runs with the per-test cache directory of ``tests/conftest.py``; "built" and
"cached" are read from the compile reports, outputs are compared with eager.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from plugtrt import EngineStoreSpec, hookimpl, trt_adapter
from plugtrt.__main__ import main
from plugtrt.engine_cache import default_cache_dir, wait_for_writes
from plugtrt.manager import PluginRegistry, load_entry_points, new_plugin_manager
from plugtrt.testing import assert_close_to_eager, run_through_backend

from ..models import Scaled, seeded_mlp


def _compile(model, x, registry=None, **options):
    """Compile and run once; returns (run, [cached flag per engine])."""
    run = run_through_backend(model, [x], options, registry)
    wait_for_writes()  # entries are written in the background
    assert not run.fallbacks, run.fallbacks
    assert_close_to_eager(run)
    return run, [e.cached for r in run.reports for e in r.engines]


def _entries(cache: Path) -> list[Path]:
    """The engine entries (graph entries, :mod:`plugtrt.graph_cache`, are named ``graph-*``)."""
    return sorted(p for p in cache.glob("*.engine") if not p.name.startswith("graph-"))


def test_second_compile_loads_the_engine_and_matches_eager(engine_cache_dir):
    x = torch.randn(3, 8)
    built, cached = _compile(seeded_mlp(), x)
    assert cached == [False]
    assert len(_entries(engine_cache_dir)) == 1
    run, cached = _compile(seeded_mlp(), x)
    assert cached == [True]
    assert "convert" not in run.reports[0].stage_seconds and "build" not in run.reports[0].stage_seconds
    converters = run.reports[0].engines[0].converters  # as the build recorded them
    assert converters == built.reports[0].engines[0].converters and "builtin.addmm" in converters


_SCRIPT = textwrap.dedent("""
    import json, os, sys, time, torch
    import plugtrt
    ready, barrier = sys.argv[1], sys.argv[2:]
    torch.manual_seed(0)  # the weights of seeded_mlp()
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)).eval()
    x = torch.ones(3, 8)
    with torch.no_grad():
        want = model(x)
        compiled = torch.compile(model, backend="plugtrt", dynamic=False,
                                 options={"runtime": "reference", "min_block_size": 1})
        open(ready, "w").close()
        deadline = time.time() + 120
        while not all(os.path.exists(p) for p in barrier) and time.time() < deadline:
            time.sleep(0.01)
        got = compiled(x)
    engines = [e.cached for r in plugtrt.compile_reports() for e in r.engines]
    print(json.dumps({"cached": engines, "diff": (got - want).abs().max().item()}))
""")


def _spawn(ready: Path, *barrier: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _SCRIPT, str(ready), *map(str, barrier)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_a_new_process_builds_no_engine(engine_cache_dir, tmp_path):
    _compile(seeded_mlp(), torch.ones(3, 8))  # same weights and shapes as the script's
    result = _result(_spawn(tmp_path / "ready"))
    assert result["cached"] == [True] and result["diff"] <= 1e-5


def test_two_processes_compiling_at_once_both_succeed_and_leave_one_entry(engine_cache_dir, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    processes = [_spawn(a, a, b), _spawn(b, a, b)]  # both compile once both are ready
    results = [_result(p) for p in processes]
    assert all(r["diff"] <= 1e-5 for r in results)
    entries = _entries(engine_cache_dir)
    graphs = list(engine_cache_dir.glob("graph-*.engine"))
    assert len(entries) == 1 and len(graphs) == 1  # one entry each, and no temporary file beside them
    assert {p.name for p in engine_cache_dir.iterdir()} == {entries[0].name, graphs[0].name, "counters"}
    run, cached = _compile(seeded_mlp(), torch.ones(3, 8))  # and it is a valid one: nothing built
    # a restored graph reports its engines as the process that wrote the entry saw them, and
    # which of the two wrote last is a race: either the graph was restored or its engine loaded
    assert all(r.restored for r in run.reports) or cached == [True]


_MLP = (seeded_mlp, (3, 8), {})
_SCALED = (lambda: Scaled((6, 4), 2.0), (2, 12), {})


@pytest.mark.parametrize("base, variant", [
    pytest.param(_MLP, (lambda: seeded_mlp(nudge=1e-3), (3, 8), {}), id="weight"),
    pytest.param(_SCALED, (lambda: Scaled((4, 6), 2.0), (2, 12), {}), id="reshape-argument"),
    pytest.param(_SCALED, (lambda: Scaled((6, 4), 3.0), (2, 12), {}), id="scalar-argument"),
    pytest.param(_MLP, (seeded_mlp, (3, 8), {"optimization_level": 2}), id="build-setting"),
    pytest.param(_MLP, (seeded_mlp, (3, 8), {"precision": torch.half}), id="precision"),
    pytest.param(_MLP, (seeded_mlp, (5, 8), {}), id="input-shape"),
])
def test_what_changes_the_engine_misses(base, variant):
    make, shape, options = base
    assert _compile(make(), torch.randn(shape), **options)[1] == [False]
    assert _compile(make(), torch.randn(shape), **options)[1] == [True]
    make, shape, options = variant
    run = run_through_backend(make(), [torch.randn(shape)], options)
    assert [e.cached for e in run.reports[0].engines] == [False]
    assert_close_to_eager(run, precision=options.get("precision", torch.float32))


def test_settings_that_do_not_change_the_engine_hit():
    x = torch.randn(3, 8)
    _compile(seeded_mlp(), x)
    assert _compile(seeded_mlp(), x, debug=True, min_block_size=2, engine_cache_size=1 << 40)[1] == [True]


def test_another_tensorrt_version_misses(monkeypatch):
    x = torch.randn(3, 8)
    _compile(seeded_mlp(), x)
    monkeypatch.setattr(trt_adapter, "version", lambda: "tensorrt_rtx==0.0.0-other")
    assert _compile(seeded_mlp(), x)[1] == [False]


_ACME_RELU = """
    import torch
    from plugtrt import ConverterSpec, hookimpl
    from plugtrt.trt_adapter import trt

    def _relu(ctx, node, args, kwargs):
        return ctx.finish(ctx.network.add_activation(args[0], trt.ActivationType.RELU), node)

    @hookimpl
    def plugtrt_converters():
        yield ConverterSpec(name="acme.relu", target=torch.ops.aten.relu.default, convert=_relu,
                            priority=10)
"""


def test_another_converter_plugin_version_misses(fake_distribution):
    fake_distribution("acme-trt", {"acme_trt.relu": _ACME_RELU}, version="0.1")

    def registry() -> PluginRegistry:
        pm = new_plugin_manager()
        load_entry_points(pm, strict=True)
        return PluginRegistry(pm)

    x = torch.randn(3, 8)
    run, cached = _compile(seeded_mlp(), x, registry())
    assert cached == [False] and "acme.relu" in run.reports[0].engines[0].converters
    assert _compile(seeded_mlp(), x, registry())[1] == [True]
    fake_distribution("acme-trt", {"acme_trt.relu": _ACME_RELU}, version="0.2")
    assert _compile(seeded_mlp(), x, registry())[1] == [False]


@pytest.mark.parametrize("damage, reason", [
    pytest.param(lambda data: data[: len(data) // 2], "truncated", id="truncated"),
    pytest.param(lambda data: data[:-100] + bytes([data[-100] ^ 0x01]) + data[-99:],
                 "checksum mismatch", id="flipped-byte"),
    pytest.param(lambda data: b"garbage" + data[7:], "not a plugtrt cache entry", id="header"),
])
def test_a_damaged_entry_is_rebuilt_with_a_warning(engine_cache_dir, damage, reason):
    x = torch.randn(3, 8)
    _compile(seeded_mlp(), x)
    (entry,) = _entries(engine_cache_dir)
    entry.write_bytes(damage(entry.read_bytes()))
    with pytest.warns(UserWarning, match=rf"cache entry .* is corrupt \({reason}.*rebuilding engine"):
        assert _compile(seeded_mlp(), x)[1] == [False]
    assert _compile(seeded_mlp(), x)[1] == [True]  # the rebuilt entry replaced the damaged one


def _cache_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "engine cache at" in str(w.message)]


def test_an_unwritable_cache_dir_degrades_to_no_caching_with_one_warning(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("PLUGTRT_CACHE_DIR", str(blocker / "cache"))
    with pytest.warns(UserWarning) as record:
        assert _compile(seeded_mlp(), torch.randn(3, 8))[1] == [False]
        assert _compile(Scaled((6, 4), 2.0), torch.randn(2, 12))[1] == [False]
    (message,) = _cache_warnings(record)
    assert str(blocker / "cache") in message and "PLUGTRT_CACHE_DIR" in message


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root writes into read-only directories")
def test_a_read_only_cache_dir_degrades_to_no_caching_with_one_warning(engine_cache_dir):
    engine_cache_dir.chmod(0o555)
    try:
        with pytest.warns(UserWarning) as record:
            assert _compile(seeded_mlp(), torch.randn(3, 8))[1] == [False]
            assert _compile(Scaled((6, 4), 2.0), torch.randn(2, 12))[1] == [False]
    finally:
        engine_cache_dir.chmod(0o755)
    assert len(_cache_warnings(record)) == 1 and not _entries(engine_cache_dir)


def test_reading_and_writing_can_each_be_turned_off(engine_cache_dir):
    x = torch.randn(3, 8)
    _compile(seeded_mlp(), x, cache_built_engines=False)
    assert not _entries(engine_cache_dir)
    _compile(seeded_mlp(), x)
    assert _compile(seeded_mlp(), x, reuse_cached_engines=False)[1] == [False]


def test_least_recently_used_entries_are_evicted_beyond_the_cap(engine_cache_dir):
    x = torch.randn(3, 8)
    _compile(seeded_mlp(0), x)
    size = sum(p.stat().st_size for p in engine_cache_dir.glob("*.engine"))  # its engine and graph
    cap = {"engine_cache_size": int(size * 2.5)}
    _compile(seeded_mlp(1), x, **cap)
    assert _compile(seeded_mlp(0), x, **cap)[1] == [True]  # seed 0 is now more recent than seed 1
    _compile(seeded_mlp(2), x, **cap)
    entries = _entries(engine_cache_dir)
    assert len(entries) == 2 and sum(p.stat().st_size for p in entries) <= cap["engine_cache_size"]
    assert _compile(seeded_mlp(0), x, **cap)[1] == [True]
    assert _compile(seeded_mlp(1), x, **cap)[1] == [False]


def test_cache_command_shows_and_clears(engine_cache_dir, capsys):
    x = torch.randn(3, 8)
    _compile(seeded_mlp(), x)
    _compile(seeded_mlp(), x)
    assert main(["cache"]) == 0
    shown = capsys.readouterr().out
    # an engine entry and its graph's entry (plugtrt.graph_cache), each missed once and hit once
    assert str(engine_cache_dir) in shown and "entries: 2" in shown and "hits: 2" in shown
    assert main(["cache", "--clear"]) == 0
    assert "entries: 0" in capsys.readouterr().out and not _entries(engine_cache_dir)


class MemoryStorePlugin:
    """A third-party store: entries in a dict."""

    def __init__(self):
        self.entries: dict[str, bytes] = {}

    @hookimpl
    def plugtrt_engine_stores(self):
        plugin = self

        class Store:
            location = "memory"

            def get(self, key):
                return plugin.entries.get(key)

            def put(self, key, data):
                plugin.entries[key] = data

            def delete(self, key):
                plugin.entries.pop(key, None)

        yield EngineStoreSpec(name="memory", create=lambda settings: Store())


def test_an_engine_store_plugin_is_chosen_by_name(engine_cache_dir):
    pm = new_plugin_manager()
    load_entry_points(pm, strict=True)
    plugin = MemoryStorePlugin()
    pm.register(plugin, name="acme.memory")
    registry = PluginRegistry(pm)
    x = torch.randn(3, 8)
    assert _compile(seeded_mlp(), x, registry, engine_cache_store="memory")[1] == [False]
    assert _compile(seeded_mlp(), x, registry, engine_cache_store="memory")[1] == [True]
    assert len(plugin.entries) == 2 and not list(engine_cache_dir.glob("*.engine"))  # engine and graph
    with pytest.raises(Exception, match=r"no engine store named 'redis'.*installed: local, memory"):
        _compile(seeded_mlp(), x, registry, engine_cache_store="redis")


def test_default_cache_dir_follows_the_platform_convention(monkeypatch, tmp_path):
    monkeypatch.delenv("PLUGTRT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if sys.platform.startswith("linux"):
        assert default_cache_dir() == tmp_path / "plugtrt"
    monkeypatch.setenv("PLUGTRT_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"


def test_a_built_artifact_pickles_and_deep_copies_with_its_plan():
    """After a build the plan is a view of TensorRT's memory (no copy); ``torch.save`` and
    ``copy.deepcopy`` of a compiled module still work, with the plan's bytes."""
    import copy
    import pickle

    from plugtrt import engine
    from plugtrt.engine import BoundarySpec
    from plugtrt.settings import CompilationSettings
    from plugtrt.trt_adapter import trt

    builder, network = engine.new_network()
    x = network.add_input("x", trt.float32, (2, 3))
    y = network.add_activation(x, trt.ActivationType.RELU).get_output(0)
    y.name = "y"
    network.mark_output(y)
    spec = {"shape": (2, 3), "model_dtype": torch.float32, "engine_dtype": torch.float32}
    artifact = engine.build("relu", builder, network, CompilationSettings(),
                            (BoundarySpec(name="x", **spec),), (BoundarySpec(name="y", **spec),))
    plan = bytes(artifact.plan)
    for copied in (copy.deepcopy(artifact), pickle.loads(pickle.dumps(artifact))):
        assert bytes(copied.plan) == plan and copied.layer_types == {"ACTIVATION": 1}
