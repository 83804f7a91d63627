"""Local-filesystem storage: temp file + fsync + rename, so readers never see half a file."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.to_thread

from amphora.kit.storage.base import (
    DEFAULT_CHUNK_SIZE,
    TMP_DIR_NAME,
    InvalidStorageKey,
    Storage,
    StorageError,
    StorageKeyNotFound,
    StoredObject,
    T,
    _validate_prefix,
    _validate_range,
    validate_key,
)


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

    async def move_file(
        self, key: str, path: Path, *, content_type: str | None = None
    ) -> StoredObject:
        target = await self._path(key)
        return await _io(self._take_over, path, target, key)

    def _take_over(self, source: Path, target: Path, key: str) -> StoredObject:
        """Hash and fsync ``source``, then rename it into place: no copy of the bytes unless
        the storage root is on another file system."""
        hasher = hashlib.sha256()
        size = 0
        with open(source, "rb") as fh:
            while chunk := fh.read(1024 * 1024):
                hasher.update(chunk)
                size += len(chunk)
            os.fsync(fh.fileno())
        self._tmp.mkdir(exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="move-", suffix=".part")
        os.close(fd)
        tmp_path = Path(name)
        try:
            try:
                os.replace(source, tmp_path)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                shutil.copyfile(source, tmp_path)
                with open(tmp_path, "rb") as copied:
                    os.fsync(copied.fileno())
                source.unlink()
            self._publish(tmp_path, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_path)
            raise
        return StoredObject(key=key, size=size, sha256_hex=hasher.hexdigest())

    def _open_temp(self, target: Path) -> tuple[BinaryIO, Path]:
        self._tmp.mkdir(exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="write-", suffix=".part")
        return os.fdopen(fd, "wb"), Path(name)

    def _finish(self, fh: BinaryIO, tmp_path: Path, target: Path) -> None:
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        self._publish(tmp_path, target)

    def _publish(self, tmp_path: Path, target: Path) -> None:
        """A complete, fsynced temp file becomes the object under ``target``."""
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

    async def list_keys(self, prefix: str = "") -> list[str]:
        top = await self._path(_validate_prefix(prefix)) if prefix else self._root
        return await _io(self._list, top)

    def _list(self, top: Path) -> list[str]:
        keys = []
        for dirpath, filenames in _walk_files(top):
            for name in filenames:
                relative = (dirpath / name).relative_to(self._root).as_posix()
                if not relative.startswith(TMP_DIR_NAME + "/"):
                    keys.append(relative)
        return sorted(keys)

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
