"""The persistent engine cache: a restarted process reuses its engines, and nothing stale or
corrupt is ever loaded.

The core owns what makes an entry trustworthy; an engine store plugin (hook
``plugtrt_engine_stores``, option ``engine_cache_store``; ``"local"`` is built in) only keeps
bytes under a key:

- the key (:mod:`plugtrt.engine_key`) covers everything that changes the engine, and is
  computed from the FX block before conversion, so a hit skips conversion and the build;
  whole compiled graphs are kept in the same store under their own keys
  (:mod:`plugtrt.graph_cache`), so a hit there skips tracing too;
- an entry is ``MAGIC``, the entry format, the payload's length, its XXH3-128 and an
  HMAC-SHA256 (:mod:`plugtrt.cache_auth`) over the entry's key, format, length and payload,
  then the payload: a pickle of the key and the content (an
  :class:`~plugtrt.engine.EngineArtifact` with what its runtime reads, a graph entry, or the
  :class:`BuildFailure` of a block that did not build), numpy
  weights out of band. Unpickling runs code, so nothing is unpickled before the MAC proves that
  a holder of the user's secret wrote exactly these bytes under exactly this key;
- an entry that fails a check (truncated, a flipped byte, another key's entry) is logged as a
  warning, deleted and rebuilt, never loaded; one whose checksum holds but whose MAC does not
  (written with another secret, or forged) is a miss, with one warning per store location and
  process, and is left for the rebuilt entry to replace (a store shared by users with different
  secrets must not have them delete each other's entries);
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
import hmac
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

from plugtrt import cache_auth
from plugtrt.engine import EngineArtifact
from plugtrt.engine_key import EngineKey

logger = logging.getLogger("plugtrt")

Buffer = bytes | mmap.mmap
"""What a store returns for an entry: its bytes, or a read-only map of them."""

MAGIC = b"plugtrt-engine\n"
ENTRY_FORMAT = 3
_HEADER = struct.Struct(f"<IQ16s{cache_auth.MAC_SIZE}s")  # format, payload length, xxh3_128, MAC
_PREFIX = struct.Struct("<IQ")  # what every format's header starts with: format, payload length
_HEADER_SIZES = {2: 28, ENTRY_FORMAT: _HEADER.size}
"""Header size per entry format that :func:`entry_size` recognises as plugtrt's (format 2 had
no MAC): a store can tell entries of an older plugtrt from foreign files, and clear them."""
HEADER_PREFIX_SIZE = len(MAGIC) + _PREFIX.size
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
    foreign: tuple[str, ...] = ()
    """Files in the store's location that are not its entries (name and why), which it never
    deletes."""


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


class UnauthenticatedEntryError(Exception):
    """An entry's bytes are intact but its MAC does not match: another secret wrote it, or
    someone forged it. It is never unpickled."""


def entry_size(prefix: bytes) -> int | None:
    """The whole size of the entry whose first :data:`HEADER_PREFIX_SIZE` bytes are ``prefix``,
    or None when they are not a plugtrt entry header (``MAGIC`` and a format this code knows).
    A store compares it with the file's size to recognise its own files cheaply."""
    if len(prefix) < HEADER_PREFIX_SIZE or prefix[:len(MAGIC)] != MAGIC:
        return None
    entry_format, length = _PREFIX.unpack_from(prefix, len(MAGIC))
    header = _HEADER_SIZES.get(entry_format)
    return None if header is None else len(MAGIC) + header + length


def verify_entry(data: Buffer) -> None:
    """Raise :class:`CorruptEntryError` unless ``data`` is a whole plugtrt entry of a format
    :func:`entry_size` knows, with its checksum intact. Needs no secret: it tells plugtrt's
    entries from foreign or damaged files."""
    _checked_payload(data, formats=_HEADER_SIZES)


def _checked_payload(data: Buffer, formats: Any) -> memoryview:
    """The payload of ``data`` after checking magic, format (one of ``formats``), length and
    checksum; :class:`CorruptEntryError` naming the first check that fails."""
    if len(data) < HEADER_PREFIX_SIZE or data[:len(MAGIC)] != MAGIC:
        raise CorruptEntryError("not a plugtrt cache entry (bad header)")
    entry_format, length = _PREFIX.unpack_from(data, len(MAGIC))
    if entry_format not in formats:
        raise CorruptEntryError(f"entry format {entry_format}, this plugtrt reads {ENTRY_FORMAT}")
    payload = memoryview(data)[len(MAGIC) + _HEADER_SIZES[entry_format]:]
    if payload.nbytes != length:
        raise CorruptEntryError(f"truncated: {payload.nbytes} of {length} payload bytes")
    checksum = bytes(data[HEADER_PREFIX_SIZE:HEADER_PREFIX_SIZE + 16])  # at this offset in every format
    if xxhash.xxh3_128(payload).digest() != checksum:
        raise CorruptEntryError("checksum mismatch")
    return payload


def _mac_parts(digest: str, length: int, payload_parts: list) -> list:
    """What an entry's MAC covers: its key (an entry moved under another key fails), format and
    length, and every payload byte (XXH3 is no defence against a chosen collision)."""
    return [digest.encode(), _PREFIX.pack(ENTRY_FORMAT, length), *payload_parts]


def encode_entry(digest: str, content: Any) -> bytes:
    """``MAGIC``, header (format, payload length, XXH3-128 of the payload: a checksum against
    truncation and flipped bits, at memory speed; the MAC of :func:`_mac_parts` under
    :func:`plugtrt.cache_auth.secret`), then the payload: a table of lengths, the pickle of
    ``{"key": digest, "content": content}``, and the large buffers (numpy weights) the pickle
    refers to out of band, so that loading does not copy them again."""
    key = cache_auth.secret()  # first: a missing secret fails before any work
    buffers: list[pickle.PickleBuffer] = []
    meta = pickle.dumps({"key": digest, "content": content}, protocol=5, buffer_callback=buffers.append)
    raws = [buffer.raw() for buffer in buffers]
    parts = [_TABLE.pack(len(meta), len(raws)), struct.pack(f"<{len(raws)}Q", *(r.nbytes for r in raws)),
             meta, *raws]
    checksum = xxhash.xxh3_128()
    for part in parts:
        checksum.update(part)
    length = sum(memoryview(p).nbytes for p in parts)
    mac = cache_auth.mac(key, _mac_parts(digest, length, parts))
    header = _HEADER.pack(ENTRY_FORMAT, length, checksum.digest(), mac)
    return b"".join([MAGIC, header, *parts])


def decode_entry(digest: str, data: Buffer, kind: type) -> Any:
    """The ``kind`` object stored under ``digest`` in ``data``; :class:`CorruptEntryError` naming
    the failed check, or :class:`UnauthenticatedEntryError` (checked before anything is
    unpickled). Weights are zero-copy views of ``data``."""
    payload = _checked_payload(data, formats=(ENTRY_FORMAT,))
    *_, mac = _HEADER.unpack_from(data, len(MAGIC))
    if not hmac.compare_digest(mac, cache_auth.mac(cache_auth.secret(),
                                                   _mac_parts(digest, payload.nbytes, [payload]))):
        raise UnauthenticatedEntryError(
            "its MAC does not match this process's cache secret: it was written with another "
            f"{cache_auth.SECRET_ENV} or key file ({cache_auth.key_file()}), or altered")
    try:  # authentic bytes that do not parse or unpickle were written by other code
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
    remedy = (f"{exc}" if isinstance(exc, cache_auth.CacheKeyError) else  # the key file says its own fix
              "Set engine_cache_dir (or PLUGTRT_CACHE_DIR) to a writable directory")
    warnings.warn(
        f"plugtrt: the engine cache at {location} cannot be {action} ({exc!r}); engines are built "
        f"{'and not saved' if action == 'written' else 'without it'} in this process. {remedy}, "
        "or set cache_built_engines=False and reuse_cached_engines=False to turn the cache off.",
        stacklevel=4)


_unauthenticated: set[str] = set()


def _warn_unauthenticated(location: str, digest: str, what: str, exc: BaseException) -> None:
    """One warning per store location and process (a changed secret fails every entry at
    once), then a debug line per entry."""
    if location in _unauthenticated:
        logger.debug("cache entry %s in %s fails authentication; rebuilding %s", digest[:16], location, what)
        return
    _unauthenticated.add(location)
    warnings.warn(
        f"plugtrt: cache entry {digest[:16]} in {location} fails authentication ({exc}); it is not "
        f"loaded, and {what} is rebuilt. Entries written with another secret are rebuilt the same "
        f"way (one warning per process). Users who share a cache must share {cache_auth.SECRET_ENV}.",
        stacklevel=5)


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
        except cache_auth.CacheKeyError as exc:  # no secret to check entries with: as unreadable
            _warn_once(location, "read", exc)
            return None
        except UnauthenticatedEntryError as exc:
            _warn_unauthenticated(location, digest, what, exc)
            return None
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
