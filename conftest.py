"""Fixtures every test of the repository gets, plugtrt's and the example plugin package's."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.fixture(autouse=True)
def engine_cache_dir(tmp_path_factory, monkeypatch):
    """Each test gets its own engine cache directory, so the cache stays on (and exercised)
    without touching the user's cache or leaking entries between tests; and its own config
    directory, where the cache's key file is created (:mod:`plugtrt.cache_auth`), never the
    user's. Subprocesses inherit both."""
    from plugtrt.engine_cache import wait_for_writes

    path = tmp_path_factory.mktemp("engine-cache")
    monkeypatch.setenv("PLUGTRT_CACHE_DIR", str(path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
    monkeypatch.delenv("PLUGTRT_CACHE_SECRET", raising=False)
    yield path
    wait_for_writes()  # no write of this test's may land in another test's time
