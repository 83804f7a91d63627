"""Behaviour of amphora.kit.storage on both backends (local disk and S3 via a real moto server)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import shutil
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from amphora.kit.storage import (
    InvalidStorageKey,
    LocalStorage,
    S3Options,
    Storage,
    StorageError,
    StorageKeyNotFound,
    create_storage,
    validate_key,
)
from amphora.kit.storage.s3 import S3Storage
from tests.fakes.s3 import MotoS3

pytestmark = pytest.mark.asyncio

MiB = 1024 * 1024
CHUNK = 64 * 1024


class Boom(Exception):
    pass


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest_asyncio.fixture(params=["local", "s3"])
async def storage(
    request: pytest.FixtureRequest, data_dir: Path, moto_s3: MotoS3
) -> AsyncIterator[Storage]:
    if request.param == "local":
        store = create_storage("file://root", data_dir=data_dir)
    else:
        bucket = moto_s3.create_bucket()
        store = create_storage(f"s3://{bucket}/media", s3=moto_s3.options(), data_dir=data_dir)
    try:
        yield store
    finally:
        await store.close()


def leftovers(storage: Storage, moto_s3: MotoS3) -> list[str]:
    """Everything physically stored by the backend (temp files and pending uploads included)."""
    if isinstance(storage, LocalStorage):
        return sorted(
            str(p.relative_to(storage.root)) for p in storage.root.rglob("*") if not p.is_dir()
        )
    assert isinstance(storage, S3Storage)
    return moto_s3.list_keys(storage.bucket) + [
        f"upload:{key}" for key in moto_s3.list_multipart_uploads(storage.bucket)
    ]


async def chunked(data: bytes, size: int = CHUNK) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def read_all(
    storage: Storage, key: str, *, start: int = 0, end: int | None = None, chunk_size: int = CHUNK
) -> bytes:
    stream = storage.read(key, start=start, end=end, chunk_size=chunk_size)
    return b"".join([chunk async for chunk in stream])


def payload(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


# --------------------------------------------------------------------------- round trips


async def test_streamed_write_and_read_round_trip(storage: Storage) -> None:
    data = payload(3 * MiB)
    stored = await storage.write("shows/1/episode.mp3", chunked(data), content_type="audio/mpeg")

    assert stored.key == "shows/1/episode.mp3"
    assert stored.size == len(data)
    assert stored.sha256_hex == hashlib.sha256(data).hexdigest()

    chunks = [c async for c in storage.read("shows/1/episode.mp3")]
    assert len(chunks) > 1  # streamed, not one big blob
    assert max(len(c) for c in chunks) <= CHUNK
    assert b"".join(chunks) == data
    assert await storage.size("shows/1/episode.mp3") == len(data)
    assert await storage.exists("shows/1/episode.mp3")


async def test_s3_write_sets_content_type(data_dir: Path, moto_s3: MotoS3) -> None:
    bucket = moto_s3.create_bucket()
    storage = create_storage(f"s3://{bucket}/pre/fix", s3=moto_s3.options(), data_dir=data_dir)
    await storage.write_bytes("a/b.mp3", b"ID3", content_type="audio/mpeg")
    assert moto_s3.list_keys(bucket) == ["pre/fix/a/b.mp3"]
    assert moto_s3.head(bucket, "pre/fix/a/b.mp3")["ContentType"] == "audio/mpeg"


async def test_write_bytes_and_overwrite(storage: Storage) -> None:
    first = await storage.write_bytes("k.txt", b"first version")
    assert (first.size, first.sha256_hex) == (13, hashlib.sha256(b"first version").hexdigest())
    await storage.write_bytes("k.txt", b"second")
    assert await read_all(storage, "k.txt") == b"second"
    assert await storage.size("k.txt") == 6


async def test_empty_object(storage: Storage) -> None:
    stored = await storage.write_bytes("empty.bin", b"")
    assert stored.size == 0
    assert stored.sha256_hex == hashlib.sha256(b"").hexdigest()
    assert await storage.exists("empty.bin")
    assert await storage.size("empty.bin") == 0
    assert await read_all(storage, "empty.bin") == b""


# --------------------------------------------------------------------------- ranges

RANGE_SIZE = 200_000


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, None),
        (12_345, None),  # start only
        (10, 20),  # start + end
        (RANGE_SIZE - 1, None),  # last byte, open end
        (RANGE_SIZE - 1, RANGE_SIZE),  # last byte, explicit end
        (0, 1),  # first byte
        (1000, RANGE_SIZE + 5000),  # end past the object: clamped
        (5, 5),  # empty range
        (RANGE_SIZE, None),  # starts exactly at the end: empty
        (RANGE_SIZE + 10, RANGE_SIZE + 20),  # entirely past the end: empty
    ],
)
async def test_ranged_reads(storage: Storage, start: int, end: int | None) -> None:
    data = payload(RANGE_SIZE, seed=7)
    await storage.write_bytes("r.bin", data)
    got = await read_all(storage, "r.bin", start=start, end=end, chunk_size=4096)
    assert got == data[start:end]


async def test_ranged_read_is_chunked(storage: Storage) -> None:
    data = payload(RANGE_SIZE, seed=3)
    await storage.write_bytes("r.bin", data)
    chunks = [c async for c in storage.read("r.bin", start=100, end=50_100, chunk_size=8192)]
    assert b"".join(chunks) == data[100:50_100]
    assert len(chunks) >= 2


@pytest.mark.parametrize(("start", "end"), [(-1, None), (10, 5)])
async def test_invalid_range_is_refused(storage: Storage, start: int, end: int | None) -> None:
    await storage.write_bytes("r.bin", b"0123456789abcdef")
    with pytest.raises(ValueError):
        await read_all(storage, "r.bin", start=start, end=end)


# --------------------------------------------------------------------------- missing / delete


async def test_missing_key(storage: Storage) -> None:
    with pytest.raises(StorageKeyNotFound):
        await read_all(storage, "nope/missing.mp3")
    with pytest.raises(StorageKeyNotFound):
        await read_all(storage, "nope/missing.mp3", start=3, end=10)
    with pytest.raises(StorageKeyNotFound):
        await read_all(storage, "nope/missing.mp3", start=3, end=3)
    with pytest.raises(StorageKeyNotFound):
        await storage.size("nope/missing.mp3")
    assert not await storage.exists("nope/missing.mp3")
    assert issubclass(StorageKeyNotFound, StorageError)


async def test_directory_like_prefix_is_not_an_object(storage: Storage) -> None:
    await storage.write_bytes("dir/file", b"x")
    assert not await storage.exists("dir")
    with pytest.raises(StorageKeyNotFound):
        await storage.size("dir")
    with pytest.raises(StorageKeyNotFound):
        await read_all(storage, "dir")
    await storage.delete("dir")  # not an object: a no-op
    assert await read_all(storage, "dir/file") == b"x"


async def test_delete_is_idempotent(storage: Storage, moto_s3: MotoS3) -> None:
    await storage.write_bytes("a/b/c.txt", b"hello")
    await storage.delete("a/b/c.txt")
    assert not await storage.exists("a/b/c.txt")
    with pytest.raises(StorageKeyNotFound):
        await read_all(storage, "a/b/c.txt")
    await storage.delete("a/b/c.txt")  # again: fine
    await storage.delete("never/existed")  # never there: fine
    assert leftovers(storage, moto_s3) == []


async def test_delete_prefix(storage: Storage) -> None:
    for key in ["show/1.mp3", "show/2.mp3", "show/art/cover.jpg", "showcase/x.mp3", "other.txt"]:
        await storage.write_bytes(key, key.encode())

    assert await storage.delete_prefix("show") == 3
    for key in ["show/1.mp3", "show/2.mp3", "show/art/cover.jpg"]:
        assert not await storage.exists(key)
    assert await read_all(storage, "showcase/x.mp3") == b"showcase/x.mp3"
    assert await read_all(storage, "other.txt") == b"other.txt"

    assert await storage.delete_prefix("show/") == 0
    assert await storage.delete_prefix("nothing/here") == 0
    assert await storage.delete_prefix("showcase/") == 1
    assert await storage.exists("other.txt")


async def test_delete_prefix_refuses_bad_prefixes(storage: Storage) -> None:
    await storage.write_bytes("keep.txt", b"x")
    for prefix in ["", "/", "..", "../", "a/../..", ".tmp"]:
        with pytest.raises(InvalidStorageKey):
            await storage.delete_prefix(prefix)
    assert await storage.exists("keep.txt")


# --------------------------------------------------------------------------- atomicity


async def test_failing_writer_leaves_nothing(storage: Storage, moto_s3: MotoS3) -> None:
    async def broken() -> AsyncIterator[bytes]:
        for i in range(40):  # ~2.5 MiB before failing
            if i == 39:
                raise Boom("source died")
            yield payload(CHUNK, seed=i)

    with pytest.raises(Boom, match="source died"):
        await storage.write("uploads/partial.mp3", broken())

    assert not await storage.exists("uploads/partial.mp3")
    assert leftovers(storage, moto_s3) == []


async def test_failing_overwrite_keeps_previous_version(storage: Storage, moto_s3: MotoS3) -> None:
    await storage.write_bytes("ep.mp3", b"good old bytes")

    async def broken() -> AsyncIterator[bytes]:
        yield b"new partial data" * 1000
        raise Boom

    with pytest.raises(Boom):
        await storage.write("ep.mp3", broken())
    assert await read_all(storage, "ep.mp3") == b"good old bytes"
    assert [name for name in leftovers(storage, moto_s3) if "ep.mp3" not in name] == []


async def test_cancelled_write_leaves_nothing(storage: Storage, moto_s3: MotoS3) -> None:
    started = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"z" * CHUNK
            started.set()
            await asyncio.sleep(0.01)

    writer = asyncio.create_task(storage.write("cancelled.mp3", endless()))
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.sleep(0.05)
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    assert not await storage.exists("cancelled.mp3")
    assert leftovers(storage, moto_s3) == []


async def test_object_invisible_until_write_completes(storage: Storage) -> None:
    await storage.write_bytes("live.mp3", b"v1")
    halfway = asyncio.Event()
    resume = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"a" * CHUNK
        halfway.set()
        await resume.wait()
        yield b"b" * CHUNK

    writer = asyncio.create_task(storage.write("live.mp3", slow()))
    await asyncio.wait_for(halfway.wait(), 5)
    await asyncio.sleep(0.05)
    assert await read_all(storage, "live.mp3") == b"v1"
    assert await storage.size("live.mp3") == 2
    resume.set()
    stored = await asyncio.wait_for(writer, 10)
    assert stored.size == 2 * CHUNK
    assert await read_all(storage, "live.mp3") == b"a" * CHUNK + b"b" * CHUNK


async def test_local_write_uses_tmp_dir_and_cleans_it(data_dir: Path) -> None:
    storage = create_storage("", data_dir=data_dir)
    assert isinstance(storage, LocalStorage)
    assert storage.root == (data_dir / "media").resolve()
    seen: list[str] = []

    async def spy() -> AsyncIterator[bytes]:
        yield b"x" * 10
        seen.extend(p.name for p in (storage.root / ".tmp").iterdir())
        yield b"y" * 10

    await storage.write("f.bin", spy())
    assert len(seen) == 1 and seen[0].endswith(".part")
    assert list((storage.root / ".tmp").iterdir()) == []
    assert (storage.root / "f.bin").read_bytes() == b"x" * 10 + b"y" * 10


async def test_move_file_stores_and_removes_the_staged_file(
    storage: Storage, tmp_path: Path, moto_s3: MotoS3
) -> None:
    data = payload(3 * MiB + 17)
    staged = tmp_path / "staged.part"
    staged.write_bytes(data)
    stored = await storage.move_file("media/s/ep.mp3", staged, content_type="audio/mpeg")
    assert (stored.size, stored.sha256_hex) == (len(data), hashlib.sha256(data).hexdigest())
    assert await read_all(storage, "media/s/ep.mp3") == data
    assert not staged.exists()
    assert leftovers(storage, moto_s3) == [
        "media/s/ep.mp3" if isinstance(storage, LocalStorage) else "media/media/s/ep.mp3"
    ]


async def test_local_move_file_renames_without_copying(data_dir: Path) -> None:
    storage = create_storage("", data_dir=data_dir)
    assert isinstance(storage, LocalStorage)
    staged = data_dir / "staged.part"
    staged.write_bytes(b"audio" * 1000)
    inode = staged.stat().st_ino
    await storage.move_file("media/a.mp3", staged)
    target = storage.root / "media" / "a.mp3"
    assert target.stat().st_ino == inode  # the same file, renamed: no second copy written
    assert target.stat().st_mode & 0o777 == 0o644
    assert list((storage.root / ".tmp").iterdir()) == []


async def test_move_file_refuses_bad_keys_and_keeps_the_file(data_dir: Path) -> None:
    storage = create_storage("", data_dir=data_dir)
    staged = data_dir / "staged.part"
    staged.write_bytes(b"x")
    with pytest.raises(InvalidStorageKey):
        await storage.move_file("../escape.mp3", staged)
    assert staged.read_bytes() == b"x"


# --------------------------------------------------------------------------- key safety

BAD_KEYS = [
    "",
    "/",
    "/etc/passwd",
    "../outside.txt",
    "a/../../outside.txt",
    "..",
    ".",
    "a/./b",
    "a/..",
    "a//b",
    "a/",
    "a\\b",
    "..\\outside.txt",
    "a\x00b",
    "a\nb",
    "tab\there",
    "del\x7f",
    "x" * 1025,
    "y" * 256,
    ".tmp/x",
    ".tmp",
    "sp ace",
    "pct%2e%2e",
    "colon:x",
    "caf\u00e9",
    "~user",
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=[repr(k)[:30] for k in BAD_KEYS])
async def test_validate_key_refuses(key: str) -> None:
    with pytest.raises(InvalidStorageKey):
        validate_key(key)


async def test_bad_keys_are_refused_everywhere(storage: Storage, moto_s3: MotoS3) -> None:
    for key in BAD_KEYS:
        with pytest.raises(InvalidStorageKey):
            await storage.write_bytes(key, b"x")
        with pytest.raises(InvalidStorageKey):
            await storage.write(key, chunked(b"x"))
        with pytest.raises(InvalidStorageKey):
            await read_all(storage, key)
        with pytest.raises(InvalidStorageKey):
            await storage.size(key)
        with pytest.raises(InvalidStorageKey):
            await storage.exists(key)
        with pytest.raises(InvalidStorageKey):
            await storage.delete(key)
        with pytest.raises(InvalidStorageKey):
            await storage.url(key)
        with pytest.raises(InvalidStorageKey):
            storage.local_path(key)
    assert leftovers(storage, moto_s3) == []


@pytest.mark.parametrize(
    "key", ["a", "A-Z_0.9", "...", "a/b/c/d.mp3", ".hidden", "a..b/.c", ("abcdefg/" * 128)[:-1]]
)
async def test_good_keys_are_accepted(storage: Storage, key: str) -> None:
    assert validate_key(key) == key
    stored = await storage.write_bytes(key, b"ok")
    assert stored.key == key
    assert await read_all(storage, key) == b"ok"


async def test_dotdot_cannot_touch_file_outside_root(tmp_path: Path, moto_s3: MotoS3) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"secret")
    local = create_storage(f"file://{tmp_path / 'root'}", data_dir=tmp_path)
    bucket = moto_s3.create_bucket()
    s3 = create_storage(f"s3://{bucket}/root", s3=moto_s3.options(), data_dir=tmp_path)
    for storage in (local, s3):
        for key in ["../outside.txt", "a/../../outside.txt", "..\\outside.txt"]:
            with pytest.raises(InvalidStorageKey):
                await storage.write_bytes(key, b"pwned")
            with pytest.raises(InvalidStorageKey):
                await read_all(storage, key)
            with pytest.raises(InvalidStorageKey):
                await storage.delete(key)
            with pytest.raises(InvalidStorageKey):
                await storage.size(key)
        with pytest.raises(InvalidStorageKey):
            await storage.delete_prefix("..")
    assert outside.read_bytes() == b"secret"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside.txt", "root"]
    assert moto_s3.list_keys(bucket) == []


async def test_symlink_out_of_local_root_is_refused(tmp_path: Path) -> None:
    storage = create_storage(f"file://{tmp_path / 'root'}", data_dir=tmp_path)
    assert isinstance(storage, LocalStorage)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.txt").write_bytes(b"secret")
    os.symlink(elsewhere, storage.root / "link")
    os.symlink(elsewhere / "secret.txt", storage.root / "file-link")
    os.symlink(storage.root / ".tmp", storage.root / "into-tmp")

    for key in ["link/secret.txt", "link/new.txt", "file-link", "into-tmp/x"]:
        with pytest.raises(InvalidStorageKey, match="outside the storage root"):
            await storage.write_bytes(key, b"pwned")
        with pytest.raises(InvalidStorageKey):
            await read_all(storage, key)
        with pytest.raises(InvalidStorageKey):
            await storage.delete(key)
        with pytest.raises(InvalidStorageKey):
            await storage.exists(key)
        with pytest.raises(InvalidStorageKey):
            storage.local_path(key)
    with pytest.raises(InvalidStorageKey):
        await storage.delete_prefix("link")
    assert sorted(p.name for p in elsewhere.iterdir()) == ["secret.txt"]
    assert (elsewhere / "secret.txt").read_bytes() == b"secret"


async def test_symlink_inside_root_is_allowed(tmp_path: Path) -> None:
    storage = create_storage(f"file://{tmp_path / 'root'}", data_dir=tmp_path)
    await storage.write_bytes("real/a.txt", b"hi")
    assert isinstance(storage, LocalStorage)
    os.symlink(storage.root / "real", storage.root / "alias")
    assert await read_all(storage, "alias/a.txt") == b"hi"


# --------------------------------------------------------------------------- paths and URLs


async def test_local_path(storage: Storage) -> None:
    await storage.write_bytes("p/q.bin", b"bytes on disk")
    path = storage.local_path("p/q.bin")
    if isinstance(storage, LocalStorage):
        assert path == storage.root / "p" / "q.bin"
        assert path.read_bytes() == b"bytes on disk"
    else:
        assert path is None


async def test_url(storage: Storage) -> None:
    data = payload(50_000, seed=9)
    await storage.write_bytes("ep/1.mp3", data)
    url = await storage.url("ep/1.mp3")
    if isinstance(storage, LocalStorage):
        assert url is None
        return
    assert url is not None
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=3600" in url
    assert "/media/ep/1.mp3?" in url
    with urllib.request.urlopen(url, timeout=5) as resp:  # a plain client, no credentials
        assert resp.read() == data
    short = await storage.url("ep/1.mp3", expires_in=60)
    assert short is not None and "X-Amz-Expires=60" in short


async def test_s3_presign_default_from_options(data_dir: Path, moto_s3: MotoS3) -> None:
    bucket = moto_s3.create_bucket()
    opts = moto_s3.options(presign_seconds=120)
    storage = create_storage(f"s3://{bucket}", s3=opts, data_dir=data_dir)
    url = await storage.url("x.mp3")
    assert url is not None and "X-Amz-Expires=120" in url


async def test_s3_public_base_url(data_dir: Path, moto_s3: MotoS3) -> None:
    bucket = moto_s3.create_bucket()
    opts = moto_s3.options(public_base_url="https://cdn.example.com/media/")
    storage = create_storage(f"s3://{bucket}/media", s3=opts, data_dir=data_dir)
    assert await storage.url("ep/1.mp3") == "https://cdn.example.com/media/ep/1.mp3"
    assert await storage.url("ep/1.mp3", expires_in=5) == "https://cdn.example.com/media/ep/1.mp3"


# --------------------------------------------------------------------------- readiness


async def test_check_passes(storage: Storage) -> None:
    await storage.check()


async def test_check_fails_for_missing_bucket(data_dir: Path, moto_s3: MotoS3) -> None:
    storage = create_storage("s3://no-such-bucket-here", s3=moto_s3.options(), data_dir=data_dir)
    with pytest.raises(StorageError, match="no-such-bucket-here"):
        await storage.check()


async def test_check_fails_when_local_root_is_gone(tmp_path: Path) -> None:
    storage = create_storage(f"file://{tmp_path / 'gone'}", data_dir=tmp_path)
    await storage.check()
    shutil.rmtree(tmp_path / "gone")
    with pytest.raises(StorageError, match="does not exist"):
        await storage.check()


# --------------------------------------------------------------------------- factory


async def test_create_storage_urls(tmp_path: Path) -> None:
    default = create_storage("", data_dir=tmp_path)
    assert isinstance(default, LocalStorage) and default.root == (tmp_path / "media").resolve()

    absolute = create_storage(f"file://{tmp_path}/abs/store", data_dir=Path("/nonexistent"))
    assert isinstance(absolute, LocalStorage)
    assert absolute.root == (tmp_path / "abs" / "store").resolve()

    relative = create_storage("file://rel/store", data_dir=tmp_path)
    assert isinstance(relative, LocalStorage)
    assert relative.root == (tmp_path / "rel" / "store").resolve()
    assert relative.root.is_dir()

    s3 = create_storage("s3://my-bucket/some/prefix/", s3=S3Options(), data_dir=tmp_path)
    assert isinstance(s3, S3Storage)
    assert (s3.bucket, s3.prefix) == ("my-bucket", "some/prefix")

    bare = create_storage("s3://my-bucket", data_dir=tmp_path)
    assert isinstance(bare, S3Storage) and bare.prefix == ""


@pytest.mark.parametrize(
    "url", ["http://example.com/x", "s3://", "s3://Bad_Bucket", "s3://ok-bucket/../x", "file://"]
)
async def test_create_storage_rejects_bad_urls(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError):
        create_storage(url, data_dir=tmp_path)


async def test_s3_options_defaults() -> None:
    opts = S3Options()
    assert opts.region == "us-east-1"
    assert opts.presign_seconds == 3600
    assert opts.allow_http is False
    assert opts.endpoint_url is opts.public_base_url is None
    with pytest.raises(AttributeError):
        opts.region = "eu-west-1"  # type: ignore[misc]


async def test_list_keys(storage: Storage) -> None:
    for key in ("a/1.mp3", "a/b/2.mp3", "c/3.mp3"):
        await storage.write_bytes(key, b"x")
    assert await storage.list_keys() == ["a/1.mp3", "a/b/2.mp3", "c/3.mp3"]
    assert await storage.list_keys("a") == ["a/1.mp3", "a/b/2.mp3"]
    assert await storage.list_keys("missing") == []
