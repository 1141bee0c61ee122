"""Authenticated cache entries (:mod:`plugtrt.cache_auth`): an entry is loaded only when a
holder of this process's secret wrote it; anything else is a miss with one warning and is
never unpickled. Each test has its own cache and config directories (``conftest.py``)."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch

from plugtrt import cache_auth
from plugtrt.engine_cache import decode_entry, encode_entry, verify_entry, wait_for_writes
from plugtrt.testing import assert_close_to_eager, run_through_backend

from ..models import seeded_mlp

_SCRIPT = textwrap.dedent("""
    import json, torch, warnings
    import plugtrt
    warnings.simplefilter("always")
    torch.manual_seed(0)  # the weights of seeded_mlp()
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)).eval()
    x = torch.ones(3, 8)
    with torch.no_grad():
        compiled = torch.compile(model, backend="plugtrt", dynamic=False,
                                 options={"runtime": "reference", "min_block_size": 1})
        diff = (compiled(x) - model(x)).abs().max().item()
    reports = plugtrt.compile_reports()
    print(json.dumps({"built": sum(not e.cached for r in reports for e in r.engines),
                      "restored": [r.restored for r in reports], "diff": diff}))
""")


def _other_process(secret: str) -> tuple[dict, str]:
    """Compile the seeded MLP in a new process whose cache secret is ``secret``; returns its
    result and its stderr."""
    env = {**os.environ, cache_auth.SECRET_ENV: secret}
    done = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def _compile(model, x):
    run = run_through_backend(model, [x], {})
    wait_for_writes()
    assert_close_to_eager(run)
    return run


def test_a_process_with_another_secret_rebuilds_and_one_with_the_same_secret_loads(monkeypatch):
    monkeypatch.setenv(cache_auth.SECRET_ENV, "team-a")
    assert _compile(seeded_mlp(), torch.ones(3, 8)).engines == 1  # same weights and input as the script
    result, stderr = _other_process("team-b")
    assert result["built"] == 1 and result["restored"] == [False] and result["diff"] <= 1e-5
    # its graph entry and engine entry both fail: one warning
    assert stderr.count("fails authentication") == 1 and cache_auth.SECRET_ENV in stderr
    result, stderr = _other_process("team-b")  # team-b's own entries replaced team-a's
    assert result == {"built": 0, "restored": [True], "diff": result["diff"]} and result["diff"] <= 1e-5
    result, _ = _other_process("team-a")
    assert result["built"] == 1  # and now team-a's are the ones that fail


class _WritesAFile:
    """A pickle that creates ``path`` when it is loaded: what a forged entry could run."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def test_a_forged_entry_with_a_valid_checksum_is_never_unpickled(engine_cache_dir, tmp_path, monkeypatch):
    x = torch.randn(3, 8)
    _compile(seeded_mlp(), x)
    marker = tmp_path / "forged-entry-ran"
    entries = sorted(engine_cache_dir.glob("*.engine"))
    assert len(entries) == 2  # the engine and its graph (plugtrt.graph_cache)
    with monkeypatch.context() as attacker:  # the forger writes well-formed entries, without our secret
        attacker.setenv(cache_auth.SECRET_ENV, "not-the-users-secret")
        forged = {path: encode_entry(path.stem, _WritesAFile(marker)) for path in entries}
    for path, data in forged.items():
        verify_entry(data)  # magic, format, length and checksum all hold
        path.write_bytes(data)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run = _compile(seeded_mlp(), x)
    assert not marker.exists()
    assert [e.cached for e in run.reports[0].engines] == [False] and not run.reports[0].restored
    assert sum("fails authentication" in str(w.message) for w in record) == 1
    # the proof that the payload is live: loading it under the forger's secret runs it
    monkeypatch.setenv(cache_auth.SECRET_ENV, "not-the-users-secret")
    decode_entry(entries[0].stem, forged[entries[0]], object).close()  # the file open() returned
    assert marker.exists()


def test_the_key_file_is_created_once_private_and_shared_by_concurrent_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    script = "from plugtrt import cache_auth; print(cache_auth.secret().hex())"
    processes = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
                 for _ in range(6)]
    keys = {p.communicate(timeout=120)[0].strip() for p in processes}
    assert len(keys) == 1 and len(bytes.fromhex(keys.pop())) == 32
    path = cache_auth.key_file()
    assert path.parent == tmp_path / "plugtrt" and os.listdir(path.parent) == ["cache-key"]  # no temp left
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cache_auth.secret() == path.read_bytes()


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_key_file_others_can_read_disables_the_cache_with_one_warning(engine_cache_dir):
    cache_auth.secret()
    cache_auth.key_file().chmod(0o644)
    with pytest.warns(UserWarning, match=r"cache key file .* has mode -rw-r--r--.*chmod 600") as record:
        run = _compile(seeded_mlp(), torch.randn(3, 8))
    assert run.engines == 1 and len([w for w in record if "cache key file" in str(w.message)]) == 1
    assert not list(engine_cache_dir.glob("*.engine"))


def test_an_uncreatable_key_file_disables_the_cache_with_one_warning(engine_cache_dir, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocker))
    said = rf"cannot create or read the cache key file .*a-file.*{cache_auth.SECRET_ENV}"
    with pytest.warns(UserWarning, match=said):
        assert _compile(seeded_mlp(), torch.randn(3, 8)).engines == 1
    assert not list(engine_cache_dir.glob("*.engine"))
