"""The persistent engine cache: a restarted process reuses its engines, and nothing stale or
corrupt is ever loaded.

The core owns what makes an entry trustworthy; an engine store plugin (hook
``plugtrt_engine_stores``, option ``engine_cache_store``; ``"local"`` is built in) only keeps
bytes under a key:

- the key (:mod:`plugtrt.engine_key`) covers everything that changes the engine, and is
  computed from the FX block before conversion, so a hit skips conversion and the build;
  whole compiled graphs are kept in the same store under their own keys
  (:mod:`plugtrt.graph_cache`), so a hit there skips tracing too;
- an entry is ``MAGIC``, the entry format, the payload's length and its XXH3-128, then the
  payload: a pickle of the key and the content (an :class:`~plugtrt.engine.EngineArtifact` with
  what its runtime reads, a graph entry, or the :class:`BuildFailure` of a block that did not
  build), numpy weights out of band. Pickle is safe here only
  because the checksum and the magic are verified first and the directory is the user's own;
- an entry that fails any check (truncated, a flipped byte, another key's entry) is
  logged as a warning, deleted and rebuilt, never loaded;
- a store that cannot be read or written (read-only or full directory, a failing plugin)
  degrades to building without the cache, with one warning per store location and process,
  never a failed compile;
- entries are encoded and written by one background thread, so the first call does not wait
  for a checksum and a disk write of the engine's weights; the thread is not a daemon, so a
  process finishes its writes before it exits, and :func:`wait_for_writes` waits for them
  sooner (tests, and a process that forks right after compiling).
"""
from __future__ import annotations

import concurrent.futures
import logging
import mmap
import os
import pickle
import struct
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import attrs
import xxhash

from plugtrt.engine import EngineArtifact
from plugtrt.engine_key import EngineKey

logger = logging.getLogger("plugtrt")

Buffer = bytes | mmap.mmap
"""What a store returns for an entry: its bytes, or a read-only map of them."""

MAGIC = b"plugtrt-engine\n"
ENTRY_FORMAT = 2
_HEADER = struct.Struct("<IQ16s")  # format, payload length, xxh3_128(payload)
_TABLE = struct.Struct("<QI")  # pickle length, number of out-of-band buffers (then their lengths)


def default_cache_dir() -> Path:
    """``$PLUGTRT_CACHE_DIR``, else the platform's user cache directory plus ``plugtrt``:
    ``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS,
    ``%LOCALAPPDATA%`` on Windows."""
    explicit = os.environ.get("PLUGTRT_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
        return Path(base) / "plugtrt" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "plugtrt"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "plugtrt"


def cache_dir(settings: Any) -> Path:
    """The directory the ``local`` store uses: the ``engine_cache_dir`` option, else
    :func:`default_cache_dir`."""
    return Path(settings.engine_cache_dir) if settings.engine_cache_dir else default_cache_dir()


@attrs.frozen(kw_only=True)
class CacheStats:
    """What ``python -m plugtrt cache`` shows of a store."""

    location: str
    entries: int
    size_bytes: int
    max_bytes: int
    hits: int
    misses: int


class EngineStore:
    """What an engine store plugin's ``create(settings)`` returns. Every method may raise
    ``OSError`` (or anything else): the cache then warns once and builds without it."""

    location: str
    """Where entries live, for messages (a path, a URL)."""

    def get(self, key: str) -> Buffer | None:
        """The entry stored under ``key`` (bytes, or a read-only buffer such as a file's
        ``mmap``, so that loading reads only the pages it touches), or None; counts a hit or a
        miss."""
        raise NotImplementedError

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically (readers see the old entry, none, or the whole
        new one), then evict least-recently-used entries beyond the size cap."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Remove the entry under ``key``, if any."""
        raise NotImplementedError

    def stats(self) -> CacheStats:
        raise NotImplementedError

    def clear(self) -> None:
        """Remove every entry and reset the counters."""
        raise NotImplementedError


class CorruptEntryError(Exception):
    """An entry failed verification; the message says which check."""


def encode_entry(digest: str, content: Any) -> bytes:
    """``MAGIC``, header (format, payload length, XXH3-128 of the payload: a checksum against
    truncation and flipped bits, at memory speed), then the payload: a table of lengths, the
    pickle of ``{"key": digest, "content": content}``, and the large buffers (numpy weights)
    the pickle refers to out of band, so that loading does not copy them again."""
    buffers: list[pickle.PickleBuffer] = []
    meta = pickle.dumps({"key": digest, "content": content}, protocol=5, buffer_callback=buffers.append)
    raws = [buffer.raw() for buffer in buffers]
    parts = [_TABLE.pack(len(meta), len(raws)), struct.pack(f"<{len(raws)}Q", *(r.nbytes for r in raws)),
             meta, *raws]
    checksum = xxhash.xxh3_128()
    for part in parts:
        checksum.update(part)
    header = _HEADER.pack(ENTRY_FORMAT, sum(memoryview(p).nbytes for p in parts), checksum.digest())
    return b"".join([MAGIC, header, *parts])


def decode_entry(digest: str, data: Buffer, kind: type) -> Any:
    """The ``kind`` object stored under ``digest`` in ``data``, or :class:`CorruptEntryError`
    naming the failed check. Weights are zero-copy views of ``data``."""
    if len(data) < len(MAGIC) + _HEADER.size or data[:len(MAGIC)] != MAGIC:
        raise CorruptEntryError("not a plugtrt cache entry (bad header)")
    entry_format, length, checksum = _HEADER.unpack_from(data, len(MAGIC))
    payload = memoryview(data)[len(MAGIC) + _HEADER.size:]
    if entry_format != ENTRY_FORMAT:
        raise CorruptEntryError(f"entry format {entry_format}, this plugtrt reads {ENTRY_FORMAT}")
    if payload.nbytes != length:
        raise CorruptEntryError(f"truncated: {payload.nbytes} of {length} payload bytes")
    if xxhash.xxh3_128(payload).digest() != checksum:
        raise CorruptEntryError("checksum mismatch")
    try:  # verified bytes that do not parse or unpickle were written by other code
        meta_length, count = _TABLE.unpack_from(payload)
        position = _TABLE.size + 8 * count
        meta = payload[position:position + meta_length]
        position += meta_length
        buffers = []
        for size in struct.unpack_from(f"<{count}Q", payload, _TABLE.size):
            buffers.append(payload[position:position + size])
            position += size
        content = pickle.loads(meta, buffers=buffers)
    except Exception as exc:
        raise CorruptEntryError(f"unreadable payload ({exc!r})") from exc
    if content.get("key") != digest or not isinstance(content.get("content"), kind):
        raise CorruptEntryError("holds another key's entry")
    return content["content"]


@attrs.frozen(kw_only=True)
class BuildFailure:
    """What the cache remembers of a block that failed to convert or build: the error, so that a
    later compile splits the block at once (:mod:`plugtrt.bisection`) instead of trying again."""

    reason: str


def _failure_digest(key: EngineKey) -> str:
    """Where a block's failure is kept: beside, never in place of, the entry its engine would have."""
    return f"failed-{key.digest}"


_warned: set[str] = set()
_unwritable: set[str] = set()


def _warn_once(location: str, action: str, exc: BaseException) -> None:
    """One warning per store location and process, whichever operation failed first: a
    directory that cannot be created fails reads and writes alike."""
    if location in _warned:
        return
    _warned.add(location)
    warnings.warn(
        f"plugtrt: the engine cache at {location} cannot be {action} ({exc!r}); engines are built "
        f"{'and not saved' if action == 'written' else 'without it'} in this process. Set "
        "engine_cache_dir (or PLUGTRT_CACHE_DIR) to a writable directory, or cache_built_engines=False "
        "and reuse_cached_engines=False to turn it off.",
        stacklevel=4)


_writer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="plugtrt-engine-cache")
_pending: list[concurrent.futures.Future] = []
_pending_lock = threading.Lock()


def wait_for_writes() -> None:
    """Return once every entry this process has handed to the cache so far is written (or has
    failed with its warning)."""
    with _pending_lock:
        pending = list(_pending)
    concurrent.futures.wait(pending)
    with _pending_lock:
        _pending[:] = [f for f in _pending if not f.done()]


@attrs.frozen
class EngineCache:
    """One store, read and written as ``reuse_cached_engines`` and ``cache_built_engines`` allow."""

    store: EngineStore
    read: bool
    write: bool

    def load(self, key: EngineKey, name: str) -> EngineArtifact | None:
        """The cached engine of ``key``, renamed ``name``, or None (a miss, or a bad entry that
        has been deleted after a warning)."""
        artifact = self.load_entry(key.digest, EngineArtifact, f"engine {name}")
        if artifact is None:
            return None
        logger.debug("engine %s: loaded from the engine cache (%s)", name, key.digest[:16])
        return attrs.evolve(artifact, name=name, build_seconds=0.0)

    def save(self, key: EngineKey, artifact: EngineArtifact) -> None:
        """Hand ``artifact`` to the background writer (the artifact is immutable)."""
        self.save_entry(key.digest, artifact)

    def load_failure(self, key: EngineKey) -> str | None:
        """The error remembered for the block of ``key`` (:meth:`save_failure`), or None."""
        failure = self.load_entry(_failure_digest(key), BuildFailure, "the block whose failure it held")
        return failure.reason if failure is not None else None

    def save_failure(self, key: EngineKey, reason: str) -> None:
        """Remember that the block of ``key`` failed with ``reason``. The key covers TensorRT's
        version, the converters' sources and the build settings, so after an upgrade or a fixed
        converter the block misses and is tried again."""
        self.save_entry(_failure_digest(key), BuildFailure(reason=reason))

    def load_entry(self, digest: str, kind: type, what: str) -> Any:
        """The ``kind`` object stored under ``digest``, or None: a miss, an unreadable store
        (one warning), or a bad entry, which is deleted after a warning naming ``what`` will be
        rebuilt."""
        if not self.read:
            return None
        location = self.store.location
        try:
            data = self.store.get(digest)
        except Exception as exc:
            _warn_once(location, "read", exc)
            return None
        if data is None:
            return None
        try:
            return decode_entry(digest, data, kind)
        except CorruptEntryError as exc:
            warnings.warn(f"plugtrt: cache entry {digest[:16]} in {location} is corrupt ({exc}); "
                          f"deleted it and rebuilding {what}", stacklevel=4)
            try:
                self.store.delete(digest)
            except Exception as delete_exc:
                _warn_once(location, "written", delete_exc)
            return None

    def save_entry(self, digest: str, content: Any) -> None:
        """Hand ``content`` (immutable) to the background writer, which stores it under
        ``digest``. Entries are written in the order they are handed over."""
        if not self.write or self.store.location in _unwritable:
            return
        with _pending_lock:
            _pending[:] = [f for f in _pending if not f.done()]
            _pending.append(_writer.submit(self._write, digest, content))

    def _write(self, digest: str, content: Any) -> None:
        location = self.store.location
        if location in _unwritable:
            return
        try:
            self.store.put(digest, encode_entry(digest, content))
        except Exception as exc:
            _unwritable.add(location)
            _warn_once(location, "written", exc)


def open_cache(registry: Any, settings: Any) -> EngineCache | None:
    """The engine cache the settings ask for; None when both reading and writing are off, or
    when the default ``local`` store is not registered (a hermetic registry, or a user who
    blocked ``plugtrt.stores.local``). A store named explicitly must exist."""
    if not (settings.reuse_cached_engines or settings.cache_built_engines):
        return None
    if settings.engine_cache_store not in registry.engine_stores and settings.engine_cache_store == "local":
        return None
    spec = registry.pick("engine store", settings.engine_cache_store)
    return EngineCache(store=spec.record.create(settings), read=settings.reuse_cached_engines,
                       write=settings.cache_built_engines)
