"""The secret that authenticates cache entries, and the entry MACs made with it.

An entry is a pickle, and unpickling runs code: an entry must prove that a process holding
the user's secret wrote it before anything unpickles it. Each entry carries an
HMAC-SHA256 over its key, its header and its payload (:mod:`plugtrt.engine_cache`).

The secret is ``$PLUGTRT_CACHE_SECRET`` when set (a team sharing one store shares it), else
the contents of a per-user key file, 32 random bytes created on first use with mode 0600 in
the user's *config* directory (:func:`key_file`), never in the cache directory: the cache
directory is the thing that may be shared or written by others, and a key stored there would
be handed to every writer. Deleting the cache therefore keeps the key, and deleting the key
makes every entry a miss (rebuilt once), never a wrong load.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

SECRET_ENV = "PLUGTRT_CACHE_SECRET"
MAC_SIZE = 32
_KEY_BYTES = 32


class CacheKeyError(OSError):
    """The key file cannot be created or read, or is unsafe; the message says how to fix it.
    An ``OSError``, so the cache treats it like an unreadable or unwritable store: one
    warning, then compiling without the cache."""


def key_file() -> Path:
    """Where the per-user key lives: the platform's user config directory plus
    ``plugtrt/cache-key`` (``$XDG_CONFIG_HOME`` or ``~/.config`` on Linux,
    ``~/Library/Application Support`` on macOS, ``%APPDATA%`` on Windows)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "plugtrt" / "cache-key"


def secret() -> bytes:
    """``$PLUGTRT_CACHE_SECRET`` (an empty value counts as unset), else the key file's bytes,
    creating the file first if there is none. Read on every use, not memoised: a changed
    environment or a replaced key file takes effect at once."""
    explicit = os.environ.get(SECRET_ENV)
    if explicit:
        return explicit.encode()
    path = key_file()
    try:
        try:
            return _read_key(path)
        except FileNotFoundError:
            _create_key(path)
            return _read_key(path)
    except CacheKeyError:
        raise
    except OSError as exc:
        raise CacheKeyError(f"cannot create or read the cache key file {path} ({exc.strerror or exc}): "
                            f"make {path.parent} a writable directory, or set {SECRET_ENV}") from exc


def mac(key: bytes, parts: Iterable[bytes | memoryview]) -> bytes:
    """HMAC-SHA256 under ``key`` of ``parts`` concatenated (fed in turn: no copy is made)."""
    digest = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        digest.update(part)
    return digest.digest()


def _read_key(path: Path) -> bytes:
    with open(path, "rb") as file:
        info = os.fstat(file.fileno())
        if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CacheKeyError(
                f"the cache key file {path} has mode {stat.filemode(info.st_mode)}: other users can "
                f"read it and forge cache entries. Run `chmod 600 {path}` (or delete it to get a new "
                f"key), or set {SECRET_ENV}")
        key = file.read()
    if len(key) < _KEY_BYTES:
        raise CacheKeyError(f"the cache key file {path} holds {len(key)} bytes, not {_KEY_BYTES}: "
                            f"delete it to get a new key, or set {SECRET_ENV}")
    return key


def _create_key(path: Path) -> None:
    """Write a new random key to a private temporary file, then hard-link it into place: the
    link fails if another process got there first, so every process ends up with the same,
    complete key (``os.replace`` would let a second process overwrite a key already in use)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".cache-key-", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(_KEY_BYTES))
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process's key won: use it
            os.link(temp, path)
    finally:
        os.unlink(temp)
