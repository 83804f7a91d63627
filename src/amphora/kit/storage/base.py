"""The storage interface every backend implements, its key rules and its errors."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import anyio

MAX_KEY_LENGTH = 1024
MAX_SEGMENT_LENGTH = 255  # NAME_MAX on common filesystems
TMP_DIR_NAME = ".tmp"
DEFAULT_CHUNK_SIZE = 64 * 1024

T = TypeVar("T")

_ABORT_TIMEOUT_SECONDS = 10.0

_SEGMENT_RE = re.compile(r"[A-Za-z0-9._-]+")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class StorageError(Exception):
    """A storage operation failed (backend unreachable, permission denied, bad config...)."""


class StorageKeyNotFound(StorageError):
    """No object is stored under the requested key."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"no object stored under key {key!r}")


class InvalidStorageKey(StorageError):
    """The key is not a safe relative path (see :func:`validate_key`)."""


class _WriteAborted(Exception):
    """Raised into an S3 upload's source so obstore aborts the multipart upload."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What a completed write produced: the key, its size in bytes and its SHA-256 (hex)."""

    key: str
    size: int
    sha256_hex: str


@dataclass(frozen=True, slots=True)
class S3Options:
    """Connection settings for the S3 backend (the bucket and prefix come from the URL)."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    public_base_url: str | None = None
    """CDN/public base URL; when set, ``url(key)`` is ``public_base_url + "/" + key``."""
    presign_seconds: int = 3600
    allow_http: bool = False
    """Allow a plain ``http://`` endpoint (local MinIO/moto); off by default."""


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe storage key, else raise :class:`InvalidStorageKey`.

    A key is a relative POSIX path of ``[A-Za-z0-9._-]+`` segments (each at most 255
    characters) joined by ``/``, at most 1024 characters in total, without ``.``/``..`` or
    empty segments, and not inside the reserved ``.tmp/`` area.
    """
    if not isinstance(key, str):
        raise InvalidStorageKey(f"storage key must be a string, got {type(key).__name__}")
    if not key:
        raise InvalidStorageKey("storage key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidStorageKey(
            f"storage key is {len(key)} characters long (maximum {MAX_KEY_LENGTH})"
        )
    if _CONTROL_RE.search(key):
        raise InvalidStorageKey(f"storage key {key!r} contains NUL or control characters")
    if "\\" in key:
        raise InvalidStorageKey(f"storage key {key!r} contains a backslash")
    if key.startswith("/"):
        raise InvalidStorageKey(f"storage key {key!r} must be relative, not absolute")
    segments = key.split("/")
    for segment in segments:
        if not segment:
            raise InvalidStorageKey(f"storage key {key!r} contains an empty path segment")
        if segment in (".", ".."):
            raise InvalidStorageKey(f"storage key {key!r} contains a {segment!r} segment")
        if len(segment) > MAX_SEGMENT_LENGTH:
            raise InvalidStorageKey(
                f"storage key has a {len(segment)}-character segment (maximum {MAX_SEGMENT_LENGTH})"
            )
        if not _SEGMENT_RE.fullmatch(segment):
            raise InvalidStorageKey(
                f"storage key {key!r} has segment {segment!r} with characters outside "
                "[A-Za-z0-9._-]"
            )
    if segments[0] == TMP_DIR_NAME:
        raise InvalidStorageKey(f"storage key {key!r} is inside the reserved {TMP_DIR_NAME}/")
    return key


def _validate_prefix(prefix: str) -> str:
    """Validate a ``delete_prefix`` argument; one trailing ``/`` is allowed and dropped."""
    if isinstance(prefix, str) and prefix.endswith("/"):
        prefix = prefix[:-1]
    return validate_key(prefix)


def _validate_range(start: int, end: int | None) -> None:
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    if end is not None and end < start:
        raise ValueError(f"end ({end}) must be >= start ({start})")


async def file_chunks(path: Path, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    """A local file, a chunk at a time (each read in a worker thread)."""
    async with await anyio.open_file(path, "rb") as fh:
        while chunk := await fh.read(size):
            yield chunk


class Storage(ABC):
    """Where media bytes live. Keys are validated relative paths (see :func:`validate_key`)."""

    @abstractmethod
    async def write(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str | None = None
    ) -> StoredObject:
        """Stream ``chunks`` into ``key``; the object appears only once complete.

        If ``chunks`` raises, nothing is left behind and the exception propagates.
        An existing object under ``key`` is replaced.
        """

    async def write_bytes(
        self, key: str, data: bytes, *, content_type: str | None = None
    ) -> StoredObject:
        """Store ``data`` under ``key`` (convenience wrapper around :meth:`write`)."""

        async def once() -> AsyncIterator[bytes]:
            yield data

        return await self.write(key, once(), content_type=content_type)

    async def move_file(
        self, key: str, path: Path, *, content_type: str | None = None
    ) -> StoredObject:
        """Store the local file ``path`` under ``key`` and remove it: staged files that are
        not needed once stored. Backends that can take the file over without copying it do so
        (local storage renames it); on failure ``path`` may be gone, nothing is stored."""
        stored = await self.write(key, file_chunks(path), content_type=content_type)
        await anyio.to_thread.run_sync(partial(path.unlink, missing_ok=True))
        return stored

    @abstractmethod
    def read(
        self,
        key: str,
        *,
        start: int = 0,
        end: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]:
        """Stream bytes ``[start, end)`` of ``key`` (``end=None``: to the end of the object).

        Implemented as an async generator: use ``async for chunk in storage.read(key)``.
        Chunks are at most ``chunk_size`` bytes.
        A range past the end of the object is clamped (and may yield nothing).
        :class:`StorageKeyNotFound` is raised on the first iteration if ``key`` is missing.
        """

    @abstractmethod
    async def size(self, key: str) -> int:
        """Size of the object in bytes; raises :class:`StorageKeyNotFound` if missing."""

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key`` (invalid keys still raise)."""
        try:
            await self.size(key)
        except StorageKeyNotFound:
            return False
        return True

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Delete ``key``; deleting a missing key is not an error."""

    @abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with ``prefix + "/"``; return how many."""

    @abstractmethod
    async def list_keys(self, prefix: str = "") -> list[str]:
        """Every key under ``prefix + "/"`` (all keys when empty), sorted."""

    @abstractmethod
    def local_path(self, key: str) -> Path | None:
        """Filesystem path of ``key`` for local storage (e.g. for sendfile), else ``None``."""

    @abstractmethod
    async def url(self, key: str, *, expires_in: int | None = None) -> str | None:
        """A URL clients can fetch ``key`` from directly, or ``None`` if the app must serve it."""

    @abstractmethod
    async def check(self) -> None:
        """Readiness probe: raise :class:`StorageError` if the backend is not usable."""

    async def close(self) -> None:  # noqa: B027 - intentionally a no-op by default
        """Release resources held by the backend."""


# --------------------------------------------------------------------------- local disk
