"""The file-serving core at the ASGI level: headers, ranges, HEAD, 304/416, redirects, and the
byte count reported when a client goes away mid-stream."""

from __future__ import annotations

import gc
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from amphora.delivery.files import (
    CHUNK_SIZE,
    Delivery,
    Representation,
    ServedResponse,
    serve_bytes,
    serve_stored,
)
from amphora.kit.errors import NotFound
from amphora.kit.storage import DEFAULT_CHUNK_SIZE, LocalStorage

REP = Representation("audio/mpeg", "public, max-age=86400", '"abc123"')
DATA = bytes(range(256)) * (4 * CHUNK_SIZE // 256)  # four chunks; offsets distinguishable enough
KEY = "media/show/file.mp3"


class Captured:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.messages[0]["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])

    @property
    def complete(self) -> bool:
        return self.messages[-1]["type"] == "http.response.body" and not self.messages[-1].get(
            "more_body", False
        )


async def call(
    response: ServedResponse,
    *,
    method: str = "GET",
    disconnect_on_chunk: int | None = None,
    raise_on_chunk: int | None = None,
) -> Captured:
    """Run the response as a server would. ``disconnect_on_chunk=k``: the peer vanishes while
    body chunk k (1-based) is being sent, and the server drops it silently (uvicorn, ASGI 2.3);
    ``raise_on_chunk=k``: that send raises OSError (ASGI 2.4 servers)."""
    captured = Captured()
    gone = anyio.Event()
    chunks = 0

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal chunks
        if message["type"] == "http.response.body" and message.get("body"):
            chunks += 1
            if chunks == raise_on_chunk:
                raise OSError("connection reset")
            if chunks == disconnect_on_chunk:
                gone.set()
                return  # dropped, like uvicorn does once the peer is gone
            if gone.is_set():
                return
        captured.messages.append(message)

    scope = {"type": "http", "method": method, "asgi": {"spec_version": "2.3"}}
    await response(scope, receive, send)
    return captured


def recorder() -> tuple[list[Delivery], Any]:
    seen: list[Delivery] = []
    return seen, seen.append


@pytest.fixture
async def storage(tmp_path: Path) -> LocalStorage:
    local = LocalStorage(tmp_path / "media")
    await local.write_bytes(KEY, DATA)
    return local


# --- in-memory bytes ---------------------------------------------------------------------------


async def test_full_response_headers() -> None:
    seen, on_sent = recorder()
    response = serve_bytes(DATA[:100], method="GET", request_headers={}, rep=REP, on_sent=on_sent)
    got = await call(response)
    assert got.status == 200 and got.body == DATA[:100] and got.complete
    assert got.headers == {
        "accept-ranges": "bytes",
        "cache-control": "public, max-age=86400",
        "etag": '"abc123"',
        "content-type": "audio/mpeg",
        "content-length": "100",
    }
    assert seen == [Delivery(200, 100)]


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-1", 0, 1), ("bytes=10-", 10, 99), ("bytes=-7", 93, 99), ("bytes=90-500", 90, 99)],
)
async def test_partial_responses(header: str, start: int, end: int) -> None:
    seen, on_sent = recorder()
    data = DATA[:100]
    response = serve_bytes(
        data, method="GET", request_headers={"range": header}, rep=REP, on_sent=on_sent
    )
    got = await call(response)
    assert got.status == 206
    assert got.headers["content-range"] == f"bytes {start}-{end}/100"
    assert got.headers["content-length"] == str(end - start + 1)
    assert got.body == data[start : end + 1]
    assert seen == [Delivery(206, end - start + 1)]


async def test_unsatisfiable_range_is_416_with_the_error_envelope() -> None:
    seen, on_sent = recorder()
    response = serve_bytes(
        DATA[:100], method="GET", request_headers={"range": "bytes=100-"}, rep=REP, on_sent=on_sent
    )
    got = await call(response)
    assert got.status == 416 and got.headers["content-range"] == "bytes */100"
    assert got.headers["content-type"] == "application/json"
    assert int(got.headers["content-length"]) == len(got.body)
    assert json.loads(got.body)["error"]["code"] == "range_not_satisfiable"
    assert seen == [Delivery(416, 0)]


async def test_head_has_get_headers_and_no_body() -> None:
    for range_header, status, length in ((None, 200, "100"), ("bytes=0-1", 206, "2")):
        seen, on_sent = recorder()
        headers = {"range": range_header} if range_header else {}
        response = serve_bytes(
            DATA[:100], method="HEAD", request_headers=headers, rep=REP, on_sent=on_sent
        )
        got = await call(response, method="HEAD")
        assert got.status == status and got.body == b"" and got.complete
        assert got.headers["content-length"] == length
        assert got.headers["accept-ranges"] == "bytes"
        assert seen == [Delivery(status, 0)]


async def test_if_none_match_and_if_range() -> None:
    response = serve_bytes(
        DATA[:100], method="GET", request_headers={"if-none-match": '"x", "abc123"'}, rep=REP
    )
    got = await call(response)
    assert got.status == 304 and got.body == b"" and got.headers["etag"] == '"abc123"'
    assert "content-length" not in got.headers

    matching = serve_bytes(
        DATA[:100],
        method="GET",
        request_headers={"range": "bytes=0-1", "if-range": '"abc123"'},
        rep=REP,
    )
    assert (await call(matching)).status == 206
    for validator in ('"other"', 'W/"abc123"', "Sat, 15 Jun 2019 10:00:00 GMT"):
        stale = serve_bytes(
            DATA[:100],
            method="GET",
            request_headers={"range": "bytes=0-1", "if-range": validator},
            rep=REP,
        )
        got = await call(stale)
        assert got.status == 200 and len(got.body) == 100


async def test_multiple_ranges_answer_the_whole_file() -> None:
    response = serve_bytes(
        DATA[:100], method="GET", request_headers={"range": "bytes=0-1,5-6"}, rep=REP
    )
    got = await call(response)
    assert got.status == 200 and got.body == DATA[:100] and "content-range" not in got.headers


# --- local files -------------------------------------------------------------------------------


async def test_local_file_streams_in_chunks(storage: LocalStorage) -> None:
    seen, on_sent = recorder()
    response = await serve_stored(
        storage, KEY, method="GET", request_headers={}, rep=REP, on_sent=on_sent
    )
    got = await call(response)
    assert got.status == 200 and got.body == DATA and got.complete
    body_messages = [m for m in got.messages[1:] if m.get("body")]
    assert len(body_messages) == len(DATA) // CHUNK_SIZE
    assert max(len(m["body"]) for m in body_messages) <= CHUNK_SIZE
    assert seen == [Delivery(200, len(DATA))]


async def test_local_file_range_crossing_chunks(storage: LocalStorage) -> None:
    seen, on_sent = recorder()
    start, end = CHUNK_SIZE - 5, 2 * CHUNK_SIZE + 9
    response = await serve_stored(
        storage,
        KEY,
        method="GET",
        request_headers={"range": f"bytes={start}-{end}"},
        rep=REP,
        on_sent=on_sent,
    )
    got = await call(response)
    assert got.status == 206 and got.body == DATA[start : end + 1]
    assert got.headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert seen == [Delivery(206, end - start + 1)]


async def test_disconnect_mid_stream_counts_only_what_was_sent(storage: LocalStorage) -> None:
    seen, on_sent = recorder()
    response = await serve_stored(
        storage, KEY, method="GET", request_headers={}, rep=REP, on_sent=on_sent
    )
    assert response._source is not None
    fd = response._source.fd  # type: ignore[attr-defined]
    got = await call(response, disconnect_on_chunk=3)
    assert len(got.body) == 2 * CHUNK_SIZE and not got.complete
    assert seen == [Delivery(200, 2 * CHUNK_SIZE)]
    with pytest.raises(OSError):
        os.fstat(fd)  # closed


async def test_send_raising_counts_only_what_was_sent(storage: LocalStorage) -> None:
    seen, on_sent = recorder()
    response = await serve_stored(
        storage,
        KEY,
        method="GET",
        request_headers={"range": "bytes=0-"},
        rep=REP,
        on_sent=on_sent,
    )
    got = await call(response, raise_on_chunk=2)
    assert len(got.body) == CHUNK_SIZE
    assert seen == [Delivery(206, CHUNK_SIZE)]


async def test_head_and_416_on_a_file_open_nothing(storage: LocalStorage) -> None:
    for method, headers, status in (("HEAD", {}, 200), ("GET", {"range": "bytes=-0"}, 416)):
        seen, on_sent = recorder()
        response = await serve_stored(
            storage, KEY, method=method, request_headers=headers, rep=REP, on_sent=on_sent
        )
        got = await call(response, method=method)
        assert got.status == status
        assert seen == [Delivery(status, 0)]


async def test_unsent_response_closes_its_file(storage: LocalStorage) -> None:
    response = await serve_stored(storage, KEY, method="GET", request_headers={}, rep=REP)
    fd = response._source.fd  # type: ignore[union-attr]
    os.fstat(fd)
    del response
    gc.collect()
    with pytest.raises(OSError):
        os.fstat(fd)


async def test_missing_file_is_not_found(storage: LocalStorage) -> None:
    with pytest.raises(NotFound):
        await serve_stored(
            storage, "media/show/gone.mp3", method="GET", request_headers={}, rep=REP
        )


# --- other storages ------------------------------------------------------------------------------


class RemoteStorage(LocalStorage):
    """Hands out URLs, like S3."""

    def local_path(self, key: str) -> Path | None:
        return None

    async def url(self, key: str, *, expires_in: int | None = None) -> str | None:
        return f"https://cdn.example.com/{key}?expires={expires_in}"


class OpaqueStorage(LocalStorage):
    """Neither a local path nor a URL: only its own ranged reads."""

    def local_path(self, key: str) -> Path | None:
        return None

    async def url(self, key: str, *, expires_in: int | None = None) -> str | None:
        return None

    def read(
        self, key: str, *, start: int = 0, end: int | None = None, chunk_size: int = 0
    ) -> AsyncIterator[bytes]:
        return super().read(key, start=start, end=end, chunk_size=chunk_size or DEFAULT_CHUNK_SIZE)


async def test_remote_storage_redirects_get_and_head(tmp_path: Path) -> None:
    remote = RemoteStorage(tmp_path / "remote")
    for method in ("GET", "HEAD"):
        seen, on_sent = recorder()
        response = await serve_stored(
            remote,
            KEY,
            method=method,
            request_headers={"range": "bytes=0-1"},
            rep=REP,
            url_lifetime=600,
            on_sent=on_sent,
        )
        got = await call(response, method=method)
        assert got.status == 302
        assert got.headers["location"] == f"https://cdn.example.com/{KEY}?expires=600"
        assert got.headers["cache-control"] == "no-store"
        assert got.body == b""
        assert seen == [Delivery(302, None)]


async def test_storage_without_path_or_url_streams_its_reads(tmp_path: Path) -> None:
    opaque = OpaqueStorage(tmp_path / "opaque")
    await opaque.write_bytes(KEY, DATA)
    seen, on_sent = recorder()
    response = await serve_stored(
        opaque,
        KEY,
        method="GET",
        request_headers={"range": "bytes=-300000"},
        rep=REP,
        on_sent=on_sent,
    )
    got = await call(response)
    assert got.status == 206 and got.body == DATA[-300000:]
    assert seen == [Delivery(206, 300000)]
