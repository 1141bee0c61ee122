"""Shared fixtures: hermetic plugin managers, a fake-distribution factory, the gpu marker, a
per-test engine cache directory."""
from __future__ import annotations

import os
import textwrap

import pluggy
import pytest
import torch
from hypothesis import settings as hypothesis_settings

from plugtrt.manager import new_plugin_manager

# CI replays the same examples on every run, so a red build is reproducible and not flaky;
# local runs draw fresh examples (more bugs found over time) and print the seed/blob to
# reproduce a failure with @reproduce_failure.
hypothesis_settings.register_profile("ci", deadline=None, print_blob=True, derandomize=True)
hypothesis_settings.register_profile("dev", deadline=None, print_blob=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU that runs TensorRT engines")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def pm() -> pluggy.PluginManager:
    """A bare plugin manager: plugtrt's hook specs, no plugins, no entry points."""
    return new_plugin_manager()


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.fixture(autouse=True)
def engine_cache_dir(tmp_path_factory, monkeypatch):
    """Each test gets its own engine cache directory, so the cache stays on (and exercised)
    without touching the user's cache or leaking entries between tests."""
    from plugtrt.engine_cache import wait_for_writes

    path = tmp_path_factory.mktemp("engine-cache")
    monkeypatch.setenv("PLUGTRT_CACHE_DIR", str(path))
    yield path
    wait_for_writes()  # no write of this test's may land in another test's time


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """``make(dist, {entry_point_name: module_source}, version="0.1")``: an installed-looking
    distribution whose ``plugtrt`` entry points are modules written to ``tmp_path``; calling it
    again for the same distribution changes its version (an upgrade)."""

    def make(dist: str, modules: dict[str, str], version: str = "0.1") -> None:
        info = tmp_path / f"{dist}-0.1.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = ["[plugtrt]"]
        for name, source in modules.items():
            module = name.replace(".", "_")
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
            lines.append(f"{name} = {module}")
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")

    monkeypatch.syspath_prepend(str(tmp_path))
    return make


@pytest.fixture(scope="session")
def corpus_results():
    """The converter corpus, converted and built once per session (fp32 and fp16)."""
    from tests.converters.corpus import CORPUS, run_entry

    return [run_entry(i, p) for i in range(len(CORPUS)) for p in (torch.float32, torch.float16)]
