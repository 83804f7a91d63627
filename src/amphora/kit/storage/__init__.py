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

from pathlib import Path

from amphora.kit.storage.base import (
    _BUCKET_RE,
    DEFAULT_CHUNK_SIZE,
    InvalidStorageKey,
    S3Options,
    Storage,
    StorageError,
    StorageKeyNotFound,
    StoredObject,
    file_chunks,
    validate_key,
)
from amphora.kit.storage.local import LocalStorage

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "InvalidStorageKey",
    "LocalStorage",
    "S3Options",
    "Storage",
    "StorageError",
    "StorageKeyNotFound",
    "StoredObject",
    "create_storage",
    "file_chunks",
    "validate_key",
]


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
        from amphora.kit.storage.s3 import S3Storage  # obstore loads only when S3 is used

        return S3Storage(bucket, prefix, s3)
    raise ValueError(
        f"unsupported storage URL {url!r}: expected file://... or s3://bucket[/prefix]"
    )
