"""S3-compatible storage through obstore: multipart uploads that appear only when complete."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from obstore import sign_async
from obstore.exceptions import BaseError as ObstoreError
from obstore.store import S3Store

if TYPE_CHECKING:
    from obstore import GetOptions, OffsetRange
    from obstore.store import ClientConfig, S3Config


from amphora.kit.storage.base import (
    _ABORT_TIMEOUT_SECONDS,
    DEFAULT_CHUNK_SIZE,
    S3Options,
    Storage,
    StorageError,
    StorageKeyNotFound,
    StoredObject,
    _validate_prefix,
    _validate_range,
    _WriteAborted,
    validate_key,
)


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

    async def list_keys(self, prefix: str = "") -> list[str]:
        base = _validate_prefix(prefix) + "/" if prefix else None
        keys: list[str] = []
        try:
            async for batch in self._store.list_async(base, chunk_size=1000):
                keys.extend(str(meta["path"]) for meta in batch)
        except ObstoreError as exc:
            raise StorageError(f"S3 listing of {prefix!r} failed: {exc}") from exc
        return sorted(keys)

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
