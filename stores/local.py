"""The ``local`` engine store plugin: one file per entry in a directory on this machine.

The directory is the ``engine_cache_dir`` option, else ``$PLUGTRT_CACHE_DIR``, else the user
cache directory (:func:`plugtrt.engine_cache.default_cache_dir`). Several processes may share
it: an entry is written to a temporary file in the same directory and moved into place with
``os.replace``, so readers see a whole entry or none, and two writers of one key leave one
whole entry. Least-recently-used entries (by modification time, which a hit refreshes) are
evicted beyond ``engine_cache_size``. Hits and misses are counted by appending one byte per
event to ``counters``: appends are atomic, so concurrent processes never lose a count.
"""
from __future__ import annotations

import contextlib
import mmap
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from plugtrt.engine_cache import Buffer, CacheStats, cache_dir
from plugtrt.hookspecs import hookimpl
from plugtrt.records import EngineStoreSpec

SUFFIX = ".engine"
_TEMP_PREFIX = ".tmp-"
_STALE_TEMP_SECONDS = 3600  # a temp file this old belongs to a process that died mid-write


class LocalDirectoryStore:
    """Entries as ``<key>.engine`` files under ``root``, at most ``max_bytes`` in all."""

    def __init__(self, root: Path, max_bytes: int):
        self.root = root
        self.max_bytes = max_bytes
        self.location = str(root)

    def _path(self, key: str) -> Path:
        return self.root / f"{key}{SUFFIX}"

    def _count(self, event: bytes) -> None:
        with contextlib.suppress(OSError):  # a read-only cache still serves its entries
            self.root.mkdir(parents=True, exist_ok=True)  # the first miss comes before any entry
            with open(self.root / "counters", "ab") as counters:
                counters.write(event)

    def get(self, key: str) -> Buffer | None:
        """A read-only map of the entry's file: loading copies nothing, and an entry replaced or
        evicted meanwhile stays readable (the map holds the old file)."""
        try:
            with open(self._path(key), "rb") as file:
                data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) \
                    if os.fstat(file.fileno()).st_size else b""
        except FileNotFoundError:
            self._count(b"m")
            return None
        with contextlib.suppress(OSError):
            os.utime(self._path(key))  # most recently used: evicted last
        self._count(b"h")
        return data

    def put(self, key: str, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=SUFFIX, dir=self.root)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temp, self._path(key))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        self._evict()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def _entries(self) -> list[tuple[int, int, Path]]:
        """(mtime_ns, size, path) of every entry; entries another process removes meanwhile
        are skipped."""
        found = []
        for path in self.root.glob(f"*{SUFFIX}"):
            if path.name.startswith(_TEMP_PREFIX):
                if time.time() - _mtime(path, default=time.time()) > _STALE_TEMP_SECONDS:
                    with contextlib.suppress(OSError):
                        path.unlink()
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            found.append((stat.st_mtime_ns, stat.st_size, path))
        return found

    def _evict(self) -> None:
        entries = sorted(self._entries())
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:  # oldest first
            if total <= self.max_bytes:
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            total -= size

    def stats(self) -> CacheStats:
        entries = self._entries() if self.root.is_dir() else []
        try:
            counters = (self.root / "counters").read_bytes()
        except FileNotFoundError:
            counters = b""
        return CacheStats(location=self.location, entries=len(entries),
                          size_bytes=sum(size for _, size, _ in entries), max_bytes=self.max_bytes,
                          hits=counters.count(b"h"), misses=counters.count(b"m"))

    def clear(self) -> None:
        if not self.root.is_dir():
            return
        for path in [*self.root.glob(f"*{SUFFIX}"), self.root / "counters"]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _mtime(path: Path, default: float) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return default


def _create(settings) -> LocalDirectoryStore:
    return LocalDirectoryStore(cache_dir(settings), settings.engine_cache_size)


@hookimpl
def plugtrt_engine_stores() -> Iterator[EngineStoreSpec]:
    yield EngineStoreSpec(name="local", create=_create)
