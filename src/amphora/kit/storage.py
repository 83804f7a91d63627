"""Blob storage for media files: one async interface, a local-disk backend and an S3 backend.

Everything that keeps bytes outside the database (uploaded audio, artwork, exports) goes
through :class:`Storage`. The backend is picked from a URL by :func:`create_storage`:

* ``""`` -> ``<data_dir>/media`` on local disk,
* ``file:///abs/path`` or ``file://relative/to/data_dir`` -> local disk,
* ``s3://bucket[/prefix]`` -> any S3-compatible object store (via obstore).

Guarantees shared by both backends:

* Writes stream (the whole file is never held in memory) and publish atomically: an object
  becomes visible under its key only once it is complete. If the source iterator raises,
  nothing is left behind and the exception propagates unchanged.
* Every key goes through :func:`validate_key` (relative POSIX paths made of
  ``[A-Za-z0-9._-]`` segments); the local backend also checks that the resolved path stays
  inside its root, so ``..`` tricks and symlinks cannot escape it.
* Missing objects raise :class:`StorageKeyNotFound`; other backend failures raise
  :class:`StorageError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import stat
import tempfile
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

import anyio
import anyio.to_thread
from obstore import sign_async
from obstore.exceptions import BaseError as ObstoreError
from obstore.store import S3Store

if TYPE_CHECKING:
    from obstore import GetOptions, OffsetRange
    from obstore.store import ClientConfig, S3Config

__all__ = [
    "InvalidStorageKey",
    "LocalStorage",
    "S3Options",
    "S3Storage",
    "Storage",
    "StorageError",
    "StorageKeyNotFound",
    "StoredObject",
    "create_storage",
    "validate_key",
]

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


class LocalStorage(Storage):
    """Objects are files under ``root``; in-flight writes live in ``root/.tmp``."""

    def __init__(self, root: Path) -> None:
        root = Path(root)
        if not root.is_absolute():
            raise ValueError(f"local storage root must be absolute, got {str(root)!r}")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create storage root {str(root)!r}: {exc}") from exc
        self._root = root.resolve()
        self._tmp = self._root / TMP_DIR_NAME

    @property
    def root(self) -> Path:
        return self._root

    def __repr__(self) -> str:
        return f"LocalStorage(root={str(self._root)!r})"

    def _path_for(self, key: str) -> Path:
        """Validate ``key`` and return its resolved path, refusing anything outside the root."""
        validate_key(key)
        resolved = self._root.joinpath(*key.split("/")).resolve()
        if (
            resolved == self._root
            or not resolved.is_relative_to(self._root)
            or resolved.is_relative_to(self._tmp)
        ):
            raise InvalidStorageKey(f"storage key {key!r} resolves outside the storage root")
        return resolved

    async def _path(self, key: str) -> Path:
        return await anyio.to_thread.run_sync(self._path_for, key)

    def local_path(self, key: str) -> Path | None:
        return self._path_for(key)

    async def write(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str | None = None
    ) -> StoredObject:
        target = await self._path(key)
        fh, tmp_path = await _io(self._open_temp, target)
        hasher = hashlib.sha256()
        size = 0
        published = False
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                hasher.update(chunk)
                size += len(chunk)
                await _io(fh.write, chunk)
            await _io(self._finish, fh, tmp_path, target)
            published = True
        finally:
            if not published:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(_discard, fh, tmp_path)
        return StoredObject(key=key, size=size, sha256_hex=hasher.hexdigest())

    def _open_temp(self, target: Path) -> tuple[BinaryIO, Path]:
        self._tmp.mkdir(exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="write-", suffix=".part")
        return os.fdopen(fd, "wb"), Path(name)

    def _finish(self, fh: BinaryIO, tmp_path: Path, target: Path) -> None:
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.parent.resolve() != target.parent:  # a symlink appeared since _path_for
            raise InvalidStorageKey(f"storage path {str(target)!r} changed while writing")
        os.chmod(tmp_path, 0o644)  # mkstemp creates 0600; media files are meant to be read
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)

    async def read(
        self,
        key: str,
        *,
        start: int = 0,
        end: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]:
        _validate_range(start, end)
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be > 0, got {chunk_size}")
        path = await self._path(key)
        try:
            f = await anyio.open_file(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise StorageKeyNotFound(key) from exc
        except OSError as exc:
            raise StorageError(f"cannot open {key!r}: {exc}") from exc
        async with f:
            if start:
                await f.seek(start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                want = chunk_size if remaining is None else min(chunk_size, remaining)
                data = await f.read(want)
                if not data:
                    break
                if remaining is not None:
                    remaining -= len(data)
                yield data

    async def size(self, key: str) -> int:
        path = await self._path(key)
        try:
            st = await anyio.to_thread.run_sync(os.stat, path)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise StorageKeyNotFound(key) from exc
        except OSError as exc:
            raise StorageError(f"cannot stat {key!r}: {exc}") from exc
        if not stat.S_ISREG(st.st_mode):
            raise StorageKeyNotFound(key)
        return st.st_size

    async def delete(self, key: str) -> None:
        path = await self._path(key)
        try:
            await anyio.to_thread.run_sync(os.unlink, path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return  # missing, or a "directory" that is not an object: nothing to delete
        except OSError as exc:
            raise StorageError(f"cannot delete {key!r}: {exc}") from exc

    async def delete_prefix(self, prefix: str) -> int:
        path = await self._path(_validate_prefix(prefix))
        return await _io(_delete_tree, path)

    async def url(self, key: str, *, expires_in: int | None = None) -> str | None:
        await self._path(key)
        return None

    async def check(self) -> None:
        await _io(self._check)

    def _check(self) -> None:
        if not self._root.is_dir():
            raise StorageError(f"storage root {str(self._root)!r} does not exist")
        self._tmp.mkdir(exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="check-")
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)


async def _io(func: Callable[..., T], *args: object) -> T:
    """Run blocking file I/O in a worker thread, turning OSError into StorageError."""
    try:
        return await anyio.to_thread.run_sync(func, *args)
    except OSError as exc:
        raise StorageError(f"storage I/O failed: {exc}") from exc


def _discard(fh: BinaryIO, tmp_path: Path) -> None:
    with contextlib.suppress(OSError):
        fh.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp_path)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _walk_files(top: Path) -> Iterator[tuple[Path, list[str]]]:
    for dirpath, _dirnames, filenames in os.walk(top, topdown=False, followlinks=False):
        yield Path(dirpath), filenames


def _delete_tree(top: Path) -> int:
    """Delete every file under directory ``top`` (and ``top`` once empty); return the count."""
    if not top.is_dir() or top.is_symlink():
        return 0
    count = 0
    for dirpath, filenames in _walk_files(top):
        for name in filenames:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dirpath / name)
                count += 1
        with contextlib.suppress(OSError):  # not empty (concurrent write) or already gone
            os.rmdir(dirpath)
    return count


# --------------------------------------------------------------------------- S3


class S3Storage(Storage):
    """Objects live in an S3 bucket (optionally under a prefix), accessed through obstore."""

    def __init__(self, bucket: str, prefix: str = "", options: S3Options | None = None) -> None:
        self._options = options or S3Options()
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        if self._prefix:
            validate_key(self._prefix)
        opts = self._options
        config: S3Config = {"region": opts.region}
        if opts.endpoint_url:
            config["endpoint"] = opts.endpoint_url
        if opts.access_key_id:
            config["access_key_id"] = opts.access_key_id
        if opts.secret_access_key:
            config["secret_access_key"] = opts.secret_access_key
        client: ClientConfig = {"allow_http": opts.allow_http}
        try:
            self._store = S3Store(
                bucket, prefix=self._prefix or None, config=config, client_options=client
            )
        except ObstoreError as exc:
            raise StorageError(f"invalid S3 configuration for bucket {bucket!r}: {exc}") from exc

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self._bucket!r}, prefix={self._prefix!r})"

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def prefix(self) -> str:
        return self._prefix

    def local_path(self, key: str) -> Path | None:
        validate_key(key)
        return None

    async def write(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str | None = None
    ) -> StoredObject:
        validate_key(key)
        hasher = hashlib.sha256()
        size = 0
        source_error: BaseException | None = None
        aborting = False

        async def tee() -> AsyncIterator[bytes]:
            nonlocal size, source_error
            try:
                async for chunk in chunks:
                    if aborting:
                        raise _WriteAborted
                    if not chunk:
                        continue
                    hasher.update(chunk)
                    size += len(chunk)
                    yield chunk
                if aborting:
                    raise _WriteAborted
            except _WriteAborted:
                raise
            except BaseException as exc:
                source_error = exc
                raise

        attributes = {"Content-Type": content_type} if content_type else None
        # An async iterable always goes through a multipart upload: S3 only shows the object
        # on CompleteMultipartUpload, and obstore aborts the upload when the source raises.
        # The upload runs in its own task so that if *we* are cancelled we can make the source
        # raise (-> obstore aborts the upload) instead of dropping it and leaving a dangling
        # multipart upload behind.
        upload = asyncio.ensure_future(self._store.put_async(key, tee(), attributes=attributes))
        try:
            await asyncio.shield(upload)
        except asyncio.CancelledError:
            if not upload.done():
                aborting = True
                await asyncio.wait({upload}, timeout=_ABORT_TIMEOUT_SECONDS)
                if not upload.done():  # source stuck: give up (bucket lifecycle rules clean up)
                    upload.cancel()
            if upload.done() and not upload.cancelled():
                upload.exception()  # mark retrieved; we report the cancellation instead
            raise
        except BaseException as exc:
            if source_error is not None:
                if exc is source_error:
                    raise
                raise source_error from exc
            if isinstance(exc, ObstoreError):
                raise StorageError(f"S3 write of {key!r} failed: {exc}") from exc
            raise
        return StoredObject(key=key, size=size, sha256_hex=hasher.hexdigest())

    async def read(
        self,
        key: str,
        *,
        start: int = 0,
        end: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]:
        validate_key(key)
        _validate_range(start, end)
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be > 0, got {chunk_size}")
        if end is not None and end == start:
            await self.size(key)  # still report a missing key
            return
        options: GetOptions | None = None
        if end is not None:
            options = {"range": (start, end)}
        elif start:
            offset: OffsetRange = {"offset": start}
            options = {"range": offset}
        try:
            result = await self._store.get_async(key, options=options)
        except FileNotFoundError as exc:
            raise StorageKeyNotFound(key) from exc
        except ObstoreError as exc:
            # S3 answers 416 when the range starts at/after the end; we clamp to empty.
            if options is not None and start >= await self.size(key):
                return
            raise StorageError(f"S3 read of {key!r} failed: {exc}") from exc
        try:
            async for chunk in result.stream(min_chunk_size=chunk_size):
                # obstore only guarantees a *minimum* size; re-slice to honour the maximum.
                if len(chunk) <= chunk_size:
                    yield chunk
                else:
                    for i in range(0, len(chunk), chunk_size):
                        yield chunk[i : i + chunk_size]
        except ObstoreError as exc:
            raise StorageError(f"S3 read of {key!r} failed mid-stream: {exc}") from exc

    async def size(self, key: str) -> int:
        validate_key(key)
        try:
            meta = await self._store.head_async(key)
        except FileNotFoundError as exc:
            raise StorageKeyNotFound(key) from exc
        except ObstoreError as exc:
            raise StorageError(f"S3 head of {key!r} failed: {exc}") from exc
        return meta["size"]

    async def delete(self, key: str) -> None:
        validate_key(key)
        try:
            await self._store.delete_async(key)
        except FileNotFoundError:
            return
        except ObstoreError as exc:
            raise StorageError(f"S3 delete of {key!r} failed: {exc}") from exc

    async def delete_prefix(self, prefix: str) -> int:
        prefix = _validate_prefix(prefix)
        count = 0
        try:
            async for batch in self._store.list_async(prefix + "/", chunk_size=1000):
                paths = [meta["path"] for meta in batch]
                if paths:
                    await self._store.delete_async(paths)
                    count += len(paths)
        except ObstoreError as exc:
            raise StorageError(f"S3 delete of prefix {prefix!r} failed: {exc}") from exc
        return count

    async def url(self, key: str, *, expires_in: int | None = None) -> str | None:
        validate_key(key)
        if self._options.public_base_url:
            return self._options.public_base_url.rstrip("/") + "/" + key
        seconds = self._options.presign_seconds if expires_in is None else expires_in
        if seconds <= 0:
            raise ValueError(f"expires_in must be > 0 seconds, got {seconds}")
        try:
            return await sign_async(self._store, "GET", key, timedelta(seconds=seconds))
        except ObstoreError as exc:
            raise StorageError(f"cannot presign {key!r}: {exc}") from exc

    async def check(self) -> None:
        try:
            await self._store.list_with_delimiter_async()
        except (ObstoreError, OSError) as exc:
            raise StorageError(f"S3 bucket {self._bucket!r} is not reachable: {exc}") from exc


# --------------------------------------------------------------------------- factory


def create_storage(url: str, *, s3: S3Options | None = None, data_dir: Path) -> Storage:
    """Build the backend named by ``url``.

    * ``""`` -> local storage in ``<data_dir>/media``
    * ``file:///abs/path`` -> local storage at that absolute path
    * ``file://rel/path`` -> local storage at ``<data_dir>/rel/path``
    * ``s3://bucket[/prefix]`` -> S3 storage configured by ``s3`` (defaults if ``None``)
    """
    url = url.strip()
    if not url:
        return LocalStorage(Path(data_dir).absolute() / "media")
    if url.startswith("file://"):
        raw = url[len("file://") :]
        if not raw or raw == "/":
            raise ValueError(f"storage URL {url!r} has no path")
        path = Path(raw)
        if not path.is_absolute():
            path = Path(data_dir).absolute() / path
        return LocalStorage(path)
    if url.startswith("s3://"):
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not _BUCKET_RE.fullmatch(bucket):
            raise ValueError(f"storage URL {url!r} has an invalid S3 bucket name {bucket!r}")
        prefix = prefix.strip("/")
        if prefix:
            try:
                validate_key(prefix)
            except InvalidStorageKey as exc:
                raise ValueError(f"storage URL {url!r} has an invalid prefix: {exc}") from exc
        return S3Storage(bucket, prefix, s3)
    raise ValueError(
        f"unsupported storage URL {url!r}: expected file://... or s3://bucket[/prefix]"
    )
