"""A real HTTP server on loopback playing "the old host" a show is imported from.

Each path serves a :class:`Resource`: bytes with a type, served with ``Range`` support (206 /
416, as a CDN does), optionally misbehaving the way real hosts and hostile servers do — cutting
the connection after some bytes (once, then behaving), dripping a byte at a time, redirecting,
announcing a huge ``Content-Length``, streaming without end. Every request is recorded with
its headers so tests can assert what the importer asked for (a resumed ``Range``, a conditional
``If-None-Match``).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class Resource:
    body: bytes = b""
    content_type: str = "application/octet-stream"
    status: int = 200
    location: str | None = None  # a redirect
    cut_after: int | None = None  # close the connection after this many body bytes…
    cuts_left: int = 1  # …this many times
    drip_seconds: float | None = None  # one byte, then this pause, and so on
    endless: bool = False  # stream zeros for ever (no Content-Length)
    announced_length: int | None = None  # a Content-Length that is not the body's
    etag: str | None = None


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names


@dataclass
class OldHost:
    base_url: str
    resources: dict[str, Resource] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, path: str, body: bytes | str = b"", **options: Any) -> str:
        """Serve ``body`` at ``path``; returns the absolute URL."""
        data = body.encode() if isinstance(body, str) else body
        with self.lock:
            self.resources[path] = Resource(body=data, **options)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def requests_to(self, path: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.path == path]


def _handler(host: OldHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            headers = {k.lower(): v for k, v in self.headers.items()}
            with host.lock:
                host.seen.append(Seen("GET", path, headers))
                resource = host.resources.get(path)
            if resource is None:
                self._plain(404, b"not found")
                return
            if resource.location is not None:
                self.send_response(resource.status if resource.status != 200 else 302)
                self.send_header("Location", resource.location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if resource.etag and headers.get("if-none-match") == resource.etag:
                self.send_response(304)
                self.send_header("ETag", resource.etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if resource.endless:
                self._endless(resource)
                return
            self._body(resource, headers.get("range"))

        def _plain(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _endless(self, resource: Resource) -> None:
            self.send_response(200)
            self.send_header("Content-Type", resource.content_type)
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"<rss>" + b" " * (1024 * 1024)
            try:
                while True:
                    self.wfile.write(chunk)
            except OSError:
                return

        def _body(self, resource: Resource, range_header: str | None) -> None:
            body, start, status = resource.body, 0, resource.status
            size = len(body)
            match = _RANGE.match(range_header or "")
            if match and status == 200 and (match[1] or match[2]):
                if match[1]:
                    start = int(match[1])
                    end = int(match[2]) if match[2] else size - 1
                else:
                    start, end = max(0, size - int(match[2])), size - 1
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                end = min(end, size - 1)
                body, status = body[start : end + 1], 206
            self.send_response(status)
            self.send_header("Content-Type", resource.content_type)
            self.send_header("Accept-Ranges", "bytes")
            if resource.etag:
                self.send_header("ETag", resource.etag)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{size}")
            length = resource.announced_length or len(body)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            try:
                self._send(resource, body)
            except OSError:
                return

        def _send(self, resource: Resource, body: bytes) -> None:
            with host.lock:
                cut = resource.cut_after if resource.cuts_left > 0 else None
                if cut is not None:
                    resource.cuts_left -= 1
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if resource.drip_seconds is not None:
                for i in range(len(body)):
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(resource.drip_seconds)
                return
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def old_host() -> Iterator[OldHost]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(OldHost("")))
    host = OldHost(f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(host)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield host
    finally:
        server.shutdown()
        server.server_close()
