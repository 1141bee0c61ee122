"""The ``local`` engine store plugin: one file per entry in a directory on this machine.

The directory is the ``engine_cache_dir`` option, else ``$PLUGTRT_CACHE_DIR``, else the user
cache directory (:func:`plugtrt.engine_cache.default_cache_dir`). Several processes may share
it: an entry is written to a temporary file in the same directory and moved into place with
``os.replace``, so readers see a whole entry or none, and two writers of one key leave one
whole entry. Least-recently-used entries (by modification time, which a hit refreshes) are
evicted beyond ``engine_cache_size``. Hits and misses are counted by appending one byte per
event to ``counters``: appends are atomic, so concurrent processes never lose a count.

The directory may hold other files (a user's ``model.engine``, TensorRT's usual extension):
the store recognises its entries by their header (plugtrt's magic bytes, an entry format it
knows, and a length matching the file's), never by name, and deletes a file (eviction,
``clear``) only after its checksum has been verified too. Every other file is listed apart by
:meth:`LocalDirectoryStore.stats` and never deleted or counted against the size cap.
"""
from __future__ import annotations

import contextlib
import mmap
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from plugtrt.engine_cache import (HEADER_PREFIX_SIZE, MAGIC, Buffer, CacheStats, CorruptEntryError,
                                  cache_dir, entry_size, verify_entry)
from plugtrt.hookspecs import hookimpl
from plugtrt.records import EngineStoreSpec

SUFFIX = ".engine"
_TEMP_PREFIX = ".tmp-"
_STALE_TEMP_SECONDS = 3600  # a temp file this old belongs to a process that died mid-write
_COUNTERS = "counters"


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
            with open(self.root / _COUNTERS, "ab") as counters:
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

    def _entries(self, verify: bool = False) -> tuple[list[tuple[int, int, Path]], list[str]]:
        """(mtime_ns, size, path) of every entry, and a description of every other file. An
        entry has plugtrt's header; with ``verify``, its checksum holds too (a file that fails
        is described as damaged). Files another process removes meanwhile are skipped."""
        found, foreign = [], []
        for path in sorted(self.root.iterdir()):
            try:
                problem = self._problem(path, verify)
                stat = path.stat()
            except FileNotFoundError:
                continue
            except OSError as exc:  # another user's file, say: not ours to judge or delete
                foreign.append(f"{path.name} (unreadable: {exc.strerror or exc})")
                continue
            if problem is None:
                found.append((stat.st_mtime_ns, stat.st_size, path))
            elif problem:
                foreign.append(f"{path.name} ({problem})")
        return found, foreign

    def _problem(self, path: Path, verify: bool) -> str | None:
        """None for an entry; "" for the store's own bookkeeping (counters, a temporary file,
        deleted here once stale); else why ``path`` is not an entry."""
        if path.is_dir():
            return "a directory"
        with open(path, "rb") as file:
            prefix = file.read(HEADER_PREFIX_SIZE)
            size = os.fstat(file.fileno()).st_size
        if path.name == _COUNTERS and not prefix.strip(b"hm"):
            return ""
        if path.name.startswith(_TEMP_PREFIX) and MAGIC.startswith(prefix[:len(MAGIC)]):
            if time.time() - _mtime(path, default=time.time()) > _STALE_TEMP_SECONDS:
                with contextlib.suppress(OSError):
                    path.unlink()
            return ""
        declared = entry_size(prefix)
        if declared is None:
            return "not a plugtrt entry"
        if declared != size:
            return f"damaged plugtrt entry: {size} of {declared} bytes"
        if verify:
            try:
                _verify_file(path)
            except CorruptEntryError as exc:
                return f"damaged plugtrt entry: {exc}"
        return None

    def _delete_entry(self, path: Path) -> None:
        """Delete ``path`` if it is a whole, verified entry; anything else stays."""
        try:
            _verify_file(path)
        except (CorruptEntryError, FileNotFoundError):
            return
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def _evict(self) -> None:
        entries = sorted(self._entries()[0])
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:  # oldest first
            if total <= self.max_bytes:
                break
            self._delete_entry(path)
            total -= size

    def stats(self) -> CacheStats:
        entries, foreign = self._entries(verify=True) if self.root.is_dir() else ([], [])
        try:
            counters = (self.root / _COUNTERS).read_bytes()
        except FileNotFoundError:
            counters = b""
        return CacheStats(location=self.location, entries=len(entries),
                          size_bytes=sum(size for _, size, _ in entries), max_bytes=self.max_bytes,
                          hits=counters.count(b"h"), misses=counters.count(b"m"), foreign=tuple(foreign))

    def clear(self) -> None:
        """Delete every entry and the counters; every other file stays."""
        if not self.root.is_dir():
            return
        for _, _, path in self._entries()[0]:
            self._delete_entry(path)
        counters = self.root / _COUNTERS
        if counters.is_file() and not counters.read_bytes().strip(b"hm"):
            counters.unlink()


def _verify_file(path: Path) -> None:
    """:func:`plugtrt.engine_cache.verify_entry` on a file, through a map (no copy)."""
    with open(path, "rb") as file:
        if not os.fstat(file.fileno()).st_size:
            raise CorruptEntryError("empty")
        # not closed explicitly: a failed check's traceback may still hold views of the map
        verify_entry(mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ))


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
