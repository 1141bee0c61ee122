"""``python -m plugtrt cache`` and the ``local`` store touch only plugtrt's own files: entries
are recognised by their header and checksum, never by extension; bad directories are one-line
errors with exit code 2."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from plugtrt.__main__ import main
from plugtrt.engine_cache import wait_for_writes
from plugtrt.testing import run_through_backend

from ..models import seeded_mlp


def _fill(cache: Path, **options) -> list[Path]:
    """Compile once so ``cache`` holds an engine entry and a graph entry; returns them."""
    run_through_backend(seeded_mlp(), [torch.randn(3, 8)], options)
    wait_for_writes()
    return sorted(cache.glob("*.engine"))


def _foreign(cache: Path, entry: Path | None = None) -> dict[str, bytes]:
    """Files a user might keep beside the cache: a TensorRT plan, notes, a subdirectory's file,
    and with ``entry`` a damaged copy of it (header intact, one payload byte flipped)."""
    files = {"model.engine": os.urandom(4096), "notes.txt": b"my notes\n", "sub/inner.engine": b"x"}
    if entry is not None:
        damaged = bytearray(entry.read_bytes())
        damaged[-10] ^= 0xFF
        files["copy.engine"] = bytes(damaged)
    for name, data in files.items():
        (cache / name).parent.mkdir(exist_ok=True)
        (cache / name).write_bytes(data)
    return files


def _unchanged(cache: Path, files: dict[str, bytes]) -> bool:
    return all((cache / name).read_bytes() == data for name, data in files.items())


def test_clear_deletes_only_plugtrt_entries_and_lists_the_others(engine_cache_dir, capsys):
    entries = _fill(engine_cache_dir)
    files = _foreign(engine_cache_dir, entries[0])
    assert main(["cache", "--dir", str(engine_cache_dir)]) == 0
    shown = capsys.readouterr().out
    assert "entries: 2" in shown and "other files, not plugtrt's (kept): 4" in shown
    assert "model.engine (not a plugtrt entry)" in shown and "sub (a directory)" in shown
    assert "copy.engine (damaged plugtrt entry: checksum mismatch)" in shown
    assert main(["cache", "--clear", "--dir", str(engine_cache_dir)]) == 0
    shown = capsys.readouterr().out
    assert "entries: 0" in shown and "(kept): 4" in shown
    assert not any(path.exists() for path in entries) and _unchanged(engine_cache_dir, files)
    assert not (engine_cache_dir / "counters").exists()


def test_eviction_deletes_only_plugtrt_entries_and_does_not_count_other_files(engine_cache_dir):
    """A damaged copy of an entry would count (it has plugtrt's header and length; only
    deleting verifies checksums), so there is none here."""
    size = sum(p.stat().st_size for p in _fill(engine_cache_dir))
    files = _foreign(engine_cache_dir)
    (engine_cache_dir / "model.engine").write_bytes(os.urandom(4 * size))  # past the cap by itself
    files["model.engine"] = (engine_cache_dir / "model.engine").read_bytes()
    run = run_through_backend(seeded_mlp(1), [torch.randn(3, 8)], {"engine_cache_size": int(size * 2.5)})
    wait_for_writes()
    assert run.engines == 1 and _unchanged(engine_cache_dir, files)
    entries = [p for p in engine_cache_dir.glob("*.engine") if p.name not in files]
    assert len(entries) == 4  # both graphs' entries fit under the cap: the foreign file does not count


@pytest.mark.parametrize("make, said", [
    pytest.param(lambda path: path.write_text("a file"), "is not a directory", id="a-file"),
    pytest.param(lambda path: None, "does not exist", id="missing"),
])
def test_a_dir_that_is_not_a_directory_is_a_one_line_error(tmp_path, capsys, make, said):
    path = tmp_path / "cache"
    make(path)
    assert main(["cache", "--dir", str(path)]) == 2
    assert main(["cache", "--clear", "--dir", str(path)]) == 2
    out, err = capsys.readouterr()
    assert not out and err.splitlines() == [f"plugtrt cache: --dir {path} {said}; give the engine "
                                            "cache's directory"] * 2


@contextlib.contextmanager
def _read_only(path: Path):
    """``path`` made read-only: by its mode, or for root (who may write anywhere) immutable."""
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode:
        pytest.skip("root, and this file system has no immutable flag")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_clear_on_a_read_only_directory_is_a_one_line_error(engine_cache_dir):
    entries = _fill(engine_cache_dir)
    with _read_only(engine_cache_dir):
        done = subprocess.run([sys.executable, "-m", "plugtrt", "cache", "--clear", "--dir",
                               str(engine_cache_dir)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"plugtrt cache: cannot clear {engine_cache_dir}: ") and \
        line.endswith("; check its permissions")
    assert all(path.exists() for path in entries)
