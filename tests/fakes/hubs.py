"""A real HTTP server on loopback that plays every aggregator Amphora pings, for assertions.

- ``/websub`` (and anything below it, so several hubs can be configured): a WebSub hub. A
  publish ping is a form POST with ``hub.mode=publish`` and ``hub.url``; it answers 204, and 400
  with a text reason otherwise (as pubsubhubbub.appspot.com does).
- ``/api/1.0/hub/pubnotify``: Podcast Index. ``GET ?url=…`` answers 200 with
  ``{"status": "true", "description": "Feed marked for immediate update."}``; without ``url``
  (or ``id``) a 400 with ``status "false"``. Its quirk: a refusal may also come as a 200 whose
  ``status`` is the *string* ``"false"`` — feeds put in ``refused_feeds`` get that.
- ``/podping/``: a podping.cloud server. ``GET ?url=…&reason=…&medium=…`` with the right
  ``Authorization`` token answers 200 ``Success!``; a missing or wrong token, 401.

Every request is recorded, failed ones included. ``fail_next(n)`` makes the next ``n`` requests
(optionally only those to one path prefix) answer 503 (or another status) to exercise retries.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

WEBSUB_PATH = "/websub"
PUBNOTIFY_PATH = "/api/1.0/hub/pubnotify"
PODPING_PATH = "/podping/"
PODPING_TOKEN = "podping-test-token-5f2c9a"


@dataclass(frozen=True)
class HubRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names

    def q(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def f(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None


@dataclass
class _Failure:
    remaining: int
    status: int
    path_prefix: str | None


@dataclass
class FakeHubs:
    base_url: str
    podping_token: str = PODPING_TOKEN
    refused_feeds: set[str] = field(default_factory=set)
    _requests: list[HubRequest] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- URLs to configure Amphora with ---------------------------------------------------------

    def websub(self, name: str = "") -> str:
        return f"{self.base_url}{WEBSUB_PATH}" + (f"/{name}" if name else "")

    @property
    def pubnotify(self) -> str:
        return f"{self.base_url}{PUBNOTIFY_PATH}"

    @property
    def podping(self) -> str:
        return f"{self.base_url}{PODPING_PATH}"

    # --- control and inspection -----------------------------------------------------------------

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._failures.clear()
            self.refused_feeds.clear()

    def fail_next(self, count: int, status: int = 503, *, path: str | None = None) -> None:
        """Answer ``status`` to the next ``count`` requests (to paths starting with ``path``)."""
        with self._lock:
            self._failures.append(_Failure(count, status, path))

    @property
    def requests(self) -> list[HubRequest]:
        with self._lock:
            return list(self._requests)

    def to(self, path_prefix: str) -> list[HubRequest]:
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    async def wait_for(
        self, count: int, *, path: str = "/", timeout: float = 15
    ) -> list[HubRequest]:
        """At least ``count`` requests to ``path…``, waiting for the jobs to send them."""
        import anyio

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(path)
            if len(found) >= count:
                return found
            await anyio.sleep(0.05)
        seen = [(r.method, r.path) for r in self.requests]
        raise AssertionError(f"fewer than {count} requests to {path} in {timeout}s; got {seen}")

    # --- serving (called from the server's threads) ---------------------------------------------

    def _record(self, request: HubRequest) -> int | None:
        """Keep the request; the status of a forced failure, if one is due."""
        with self._lock:
            self._requests.append(request)
            for failure in self._failures:
                if failure.remaining > 0 and (
                    failure.path_prefix is None or request.path.startswith(failure.path_prefix)
                ):
                    failure.remaining -= 1
                    return failure.status
        return None

    def answer(self, request: HubRequest) -> tuple[int, str, bytes]:
        forced = self._record(request)
        if forced is not None:
            return forced, "text/plain", HTTPStatus(forced).phrase.encode()
        if request.path == WEBSUB_PATH or request.path.startswith(WEBSUB_PATH + "/"):
            return self._websub(request)
        if request.path == PUBNOTIFY_PATH:
            return self._pubnotify(request)
        if request.path == PODPING_PATH:
            return self._podping(request)
        return 404, "text/plain", b"Not Found"

    def _websub(self, request: HubRequest) -> tuple[int, str, bytes]:
        if request.method != "POST":
            return 405, "text/plain", b"Method Not Allowed"
        if request.f("hub.mode") != "publish":
            return 400, "text/plain", b"Invalid value for hub.mode"
        url = request.f("hub.url") or ""
        if not url.startswith(("http://", "https://")):
            return 400, "text/plain", b"Invalid value for hub.url"
        return 204, "text/plain", b""

    def _pubnotify(self, request: HubRequest) -> tuple[int, str, bytes]:
        url = request.q("url")
        if request.method != "GET" or not (url or request.q("id")):
            body = {"status": "false", "description": "Feed url or id is required."}
            return 400, "application/json", json.dumps(body).encode()
        if url in self.refused_feeds:
            body = {"status": "false", "description": "Feed not found in the index."}
            return 200, "application/json", json.dumps(body).encode()
        body = {"status": "true", "description": "Feed marked for immediate update."}
        return 200, "application/json", json.dumps(body).encode()

    def _podping(self, request: HubRequest) -> tuple[int, str, bytes]:
        if request.headers.get("authorization") != self.podping_token:
            return 401, "text/plain", b"Unauthorized"
        if request.method != "GET" or not request.q("url"):
            return 400, "text/plain", b"Bad Request"
        return 200, "text/plain", b"Success!"


def _handler(hubs: FakeHubs) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            form: dict[str, list[str]] = {}
            if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                form = parse_qs(body.decode(), keep_blank_values=True)
            request = HubRequest(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                form=form,
                headers={name.lower(): value for name, value in self.headers.items()},
            )
            status, content_type, payload = hubs.answer(request)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload:
                self.wfile.write(payload)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler


@contextmanager
def hubs_server() -> Iterator[FakeHubs]:
    hubs = FakeHubs(base_url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hubs))  # an ephemeral port
    server.daemon_threads = True
    hubs.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-hubs", daemon=True)
    thread.start()
    try:
        yield hubs
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
