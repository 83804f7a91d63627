"""Serving one stored object (or a few bytes made in memory) over HTTP, GET and HEAD alike.

What every answer carries (STANDARDS.md §2): ``Accept-Ranges: bytes``, the exact
``Content-Length``, the ``Content-Type``, a strong ``ETag`` and the ``Cache-Control`` the caller
chose. A single byte range answers ``206`` with ``Content-Range: bytes a-b/N``; an unsatisfiable
one ``416`` with ``Content-Range: bytes */N`` (see :mod:`amphora.delivery.ranges`). HEAD gets
the very headers GET would get (a ``206`` included, as nginx does; RFC 9110 §9.3.2) and no body.

Local files are streamed from disk in chunks read in a worker thread (``os.pread``: one thread
hop per chunk, never the whole file in memory). When the storage hands out URLs (S3, possibly
behind a CDN) the client is redirected there with ``302`` (HEAD too) and ``no-store``, since a
presigned URL expires.

The response reports what it did through ``on_sent`` once it is over: the status and the body
bytes handed to the server. A client that goes away mid-stream is noticed (``http.disconnect``,
or a failing ``send``) and only the chunks sent before are counted. "Handed to the server" is
as close to "received by the client" as an application can see: bytes still in the server's and
the kernel's socket buffers when the peer vanished are counted too (at most a few chunks).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass

import anyio
import anyio.lowlevel
import anyio.to_thread
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from amphora.delivery.ranges import Full, Partial, Unsatisfiable, parse_range
from amphora.kit.errors import NotFound, error_body
from amphora.kit.storage import Storage, StorageError, StorageKeyNotFound

__all__ = [
    "CHUNK_SIZE",
    "Delivery",
    "OnSent",
    "Representation",
    "ServedResponse",
    "serve_bytes",
    "serve_stored",
    "strong_etag",
]

logger = logging.getLogger("amphora.delivery")

# 1 MiB: a typical range is one thread hop (each costs more than the copy); the transport's
# flow control bounds what waits in memory per connection.
CHUNK_SIZE = 1024 * 1024
NO_STORE = "no-store"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a response did: its status and the body bytes sent (None: redirected)."""

    status: int
    bytes_sent: int | None


OnSent = Callable[[Delivery], None]


@dataclass(frozen=True, slots=True)
class Representation:
    """How to describe the bytes: type, caching, and a strong (quoted) ETag if known."""

    content_type: str
    cache_control: str
    etag: str | None = None


def strong_etag(value: str) -> str:
    """A strong entity tag for an opaque value (a content hash or an immutable id)."""
    return f'"{value}"'


# --- the plan: which status, which headers, which bytes -----------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    status: int
    headers: list[tuple[bytes, bytes]]
    start: int = 0  # first byte of the body (of the stored object)
    length: int = 0  # body bytes to send from it (0: none)
    error: bytes | None = None  # a 416 envelope instead of the object's bytes


def _etag_matches(header: str | None, etag: str | None) -> bool:
    """``If-None-Match``: weak comparison, ``*`` matches anything (RFC 9110 §13.1.2)."""
    if header is None or etag is None:
        return False
    if header.strip() == "*":
        return True
    ours = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == ours for tag in header.split(","))


def _plan(request_headers: Mapping[str, str], size: int, rep: Representation) -> _Plan:
    base: list[tuple[bytes, bytes]] = [
        (b"accept-ranges", b"bytes"),
        (b"cache-control", rep.cache_control.encode("latin-1")),
    ]
    if rep.etag is not None:
        base.append((b"etag", rep.etag.encode("latin-1")))
    if _etag_matches(request_headers.get("if-none-match"), rep.etag):
        return _Plan(304, base)
    range_header = request_headers.get("range")
    if_range = request_headers.get("if-range")
    # If-Range (RFC 9110 §13.1.5): the range holds only if the client's validator is our
    # strong ETag; a date or another tag means "send it all". Apple never sends If-Range.
    if range_header is not None and if_range is not None and if_range.strip() != rep.etag:
        range_header = None
    selected = parse_range(range_header, size)
    content_type = (b"content-type", rep.content_type.encode("latin-1"))
    if isinstance(selected, Full):
        return _Plan(200, [*base, content_type, (b"content-length", str(size).encode())], 0, size)
    if isinstance(selected, Partial):
        headers = [
            *base,
            content_type,
            (b"content-range", selected.content_range.encode()),
            (b"content-length", str(selected.length).encode()),
        ]
        return _Plan(206, headers, selected.start, selected.length)
    assert isinstance(selected, Unsatisfiable)
    body = json.dumps(
        error_body(
            "range_not_satisfiable",
            f"The requested range is outside the file ({size} bytes).",
            {"size": size},
        )
    ).encode()
    headers = [
        *base,
        (b"content-type", b"application/json"),
        (b"content-range", selected.content_range.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    return _Plan(416, headers, error=body)


# --- body sources --------------------------------------------------------------------------------


class _Source:
    """Where a streamed body comes from; ``close`` must be safe to call more than once."""

    def chunks(self, start: int, length: int) -> AsyncGenerator[bytes, None]:
        raise NotImplementedError

    def close(self) -> None:
        return None


class _MemorySource(_Source):
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def chunks(self, start: int, length: int) -> AsyncGenerator[bytes, None]:
        view = memoryview(self.data)[start : start + length]
        for offset in range(0, len(view), CHUNK_SIZE):
            yield bytes(view[offset : offset + CHUNK_SIZE])


class _FileSource(_Source):
    """An open file descriptor, read with ``pread`` in a worker thread."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    async def chunks(self, start: int, length: int) -> AsyncGenerator[bytes, None]:
        offset, end = start, start + length
        while offset < end:
            try:
                data = await anyio.to_thread.run_sync(
                    os.pread, self.fd, min(CHUNK_SIZE, end - offset), offset
                )
            except OSError as exc:  # not the client's doing: let it show as a server error
                raise StorageError(f"reading a stored file failed: {exc}") from exc
            if not data:  # the file shrank under us: stop rather than spin
                raise StorageError(f"stored file ended at byte {offset}, expected {end}")
            offset += len(data)
            yield data

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)  # a regular file: closing does not block

    # Closed when the response is over, or when it is dropped without being sent (a failing
    # commit between the route and the response): never leaked.
    __del__ = close


class _StorageSource(_Source):
    """Any backend without a local path or URL: its own ranged read."""

    def __init__(self, storage: Storage, key: str) -> None:
        self.storage = storage
        self.key = key

    async def chunks(self, start: int, length: int) -> AsyncGenerator[bytes, None]:
        async for chunk in self.storage.read(
            self.key, start=start, end=start + length, chunk_size=CHUNK_SIZE
        ):
            yield chunk


def _open_local(storage: Storage, key: str) -> tuple[int, int] | None:
    """``(fd, size)`` of a local object; None when the storage has no local files."""
    path = storage.local_path(key)
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        raise StorageKeyNotFound(key) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StorageKeyNotFound(key)
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


# --- the response --------------------------------------------------------------------------------


class ServedResponse(Response):
    """A response that streams (part of) a source, notices a disconnect and reports what it
    sent through ``on_sent``, exactly once, when it is over."""

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        *,
        head: bool,
        source: _Source | None = None,
        start: int = 0,
        length: int = 0,
        body: bytes = b"",
        redirect: bool = False,
        on_sent: OnSent | None = None,
    ) -> None:
        # Response.__init__ would compute its own Content-Length and Content-Type: ours are
        # set already (and for HEAD describe the body a GET would get).
        self.status_code = status
        self.raw_headers = headers
        self.background = None
        self.body = b""
        self._head = head
        self._source = source
        self._start = start
        self._length = length if source is not None else 0
        self._body = body
        self._redirect = redirect
        self._on_sent = on_sent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent = 0
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            if self._head or (self._source is None and not self._body):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            elif self._source is None:
                await send({"type": "http.response.body", "body": self._body, "more_body": False})
            else:
                sent = await self._stream(receive, send)
        except OSError:
            pass  # the client went away before the body (ASGI 2.4 servers raise on send)
        finally:
            if self._source is not None:
                self._source.close()
            self._report(sent)

    async def _stream(self, receive: Receive, send: Send) -> int:
        assert self._source is not None
        sent = 0
        gone = False
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                nonlocal gone
                while (await receive())["type"] != "http.disconnect":
                    pass
                gone = True
                group.cancel_scope.cancel()

            group.start_soon(watch)
            try:
                async with aclosing(self._source.chunks(self._start, self._length)) as chunks:
                    async for chunk in chunks:
                        try:
                            await send(
                                {"type": "http.response.body", "body": chunk, "more_body": True}
                            )
                        except OSError:  # ASGI 2.4 servers raise on a dead connection
                            return sent
                        # Older servers (uvicorn speaks 2.3) drop the chunk silently instead:
                        # let the watcher report a disconnect before the chunk is counted.
                        await anyio.lowlevel.checkpoint()
                        if gone:
                            return sent
                        sent += len(chunk)
                with contextlib.suppress(OSError):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                group.cancel_scope.cancel()
        return sent

    def _report(self, sent: int) -> None:
        if self._on_sent is None:
            return
        on_sent, self._on_sent = self._on_sent, None
        try:
            on_sent(Delivery(self.status_code, None if self._redirect else sent))
        except Exception:  # recording must never break serving
            logger.exception("on_sent callback failed")


def _redirect(url: str, *, head: bool, on_sent: OnSent | None) -> ServedResponse:
    headers = [
        (b"location", url.encode("latin-1")),
        (b"cache-control", NO_STORE.encode()),
        (b"content-length", b"0"),
    ]
    return ServedResponse(302, headers, head=head, redirect=True, on_sent=on_sent)


def _respond(
    source: _Source,
    size: int,
    *,
    method: str,
    request_headers: Mapping[str, str],
    rep: Representation,
    on_sent: OnSent | None,
) -> ServedResponse:
    head = method == "HEAD"
    plan = _plan(request_headers, size, rep)
    if plan.error is not None:
        source.close()
        return ServedResponse(
            plan.status, plan.headers, head=head, body=plan.error, on_sent=on_sent
        )
    if plan.status == 304 or head:
        source.close()
        return ServedResponse(plan.status, plan.headers, head=True, on_sent=on_sent)
    return ServedResponse(
        plan.status,
        plan.headers,
        head=False,
        source=source,
        start=plan.start,
        length=plan.length,
        on_sent=on_sent,
    )


async def serve_stored(
    storage: Storage,
    key: str,
    *,
    method: str,
    request_headers: Mapping[str, str],
    rep: Representation,
    url_lifetime: int | None = None,
    on_sent: OnSent | None = None,
) -> ServedResponse:
    """Answer a GET or HEAD for the object stored under ``key``.

    Local storage streams the file (Range, HEAD, 416, 304 on ``If-None-Match``); storage with
    URLs answers ``302`` to ``storage.url(key, expires_in=url_lifetime)``. A missing object
    raises :class:`~amphora.kit.errors.NotFound`.
    """
    try:
        opened = await anyio.to_thread.run_sync(_open_local, storage, key)
        source: _Source
        if opened is not None:
            fd, size = opened
            source = _FileSource(fd)
        else:
            url = await storage.url(key, expires_in=url_lifetime)
            if url is not None:
                return _redirect(url, head=method == "HEAD", on_sent=on_sent)
            size = await storage.size(key)
            source = _StorageSource(storage, key)
    except StorageKeyNotFound as exc:
        logger.warning("stored object %r is missing", key)
        raise NotFound("This file is not available.") from exc
    return _respond(
        source, size, method=method, request_headers=request_headers, rep=rep, on_sent=on_sent
    )


def serve_bytes(
    data: bytes,
    *,
    method: str,
    request_headers: Mapping[str, str],
    rep: Representation,
    on_sent: OnSent | None = None,
) -> ServedResponse:
    """Answer a GET or HEAD for bytes made in memory (chapters JSON), with the same rules."""
    return _respond(
        _MemorySource(data),
        len(data),
        method=method,
        request_headers=request_headers,
        rep=rep,
        on_sent=on_sent,
    )
