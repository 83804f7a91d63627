"""One pure-ASGI middleware for every request: request id, body-size cap, access log, metrics.

Written as raw ASGI (not ``BaseHTTPMiddleware``) because it wraps every request, including
streamed media, and must add no buffering.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from amphora.kit.errors import error_body
from amphora.kit.logs import set_request_id

access_log = logging.getLogger("amphora.access")

REQUESTS = Counter("amphora_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "amphora_http_request_duration_seconds",
    "HTTP request duration",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class _BodyTooLarge(HTTPException):
    """An HTTPException so that FastAPI's body parsing re-raises it instead of answering 400."""

    code = "payload_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than the limit of {limit} bytes.")


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        unlimited_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.unlimited = [re.compile(p) for p in unlimited_paths]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        set_request_id(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False
        method = scope["method"]
        path = scope["path"]

        limit = (
            None
            if method in ("GET", "HEAD") or any(p.match(path) for p in self.unlimited)
            else self.max_body_bytes
        )
        if limit is not None:
            declared = headers.get(b"content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                await _reject_too_large(send, request_id, limit)
                self._record(method, scope, path, 413, started, request_id)
                return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if limit is not None and message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            if response_started:
                raise
            status = 413
            await _reject_too_large(send, request_id, limit or 0)
        finally:
            self._record(method, scope, path, status, started, request_id)

    @staticmethod
    def _record(
        method: str, scope: Scope, path: str, status: int, started: float, request_id: str
    ) -> None:
        elapsed = time.perf_counter() - started
        route = getattr(scope.get("route"), "path", None) or scope.get("amphora_route", "unmatched")
        _metric(_COUNTERS, REQUESTS, (method, route, str(status))).inc()
        _metric(_HISTOGRAMS, LATENCY, (method, route)).observe(elapsed)
        access_log.info(
            "%s %s %s %.1fms",
            method,
            path,
            status,
            elapsed * 1000,
            extra={"status": status, "duration_ms": round(elapsed * 1000, 2)},
        )
        set_request_id(None)


# Children of the labelled metrics, looked up once: ``labels()`` takes a lock and builds keys,
# which is a measurable share of a cached feed request.
_COUNTERS: dict[tuple[str, ...], Any] = {}
_HISTOGRAMS: dict[tuple[str, ...], Any] = {}


def _metric(children: dict[tuple[str, ...], Any], metric: Any, labels: tuple[str, ...]) -> Any:
    child = children.get(labels)
    if child is None:
        child = children[labels] = metric.labels(*labels)
    return child


async def _reject_too_large(send: Send, request_id: str, limit: int) -> None:
    set_request_id(request_id)
    body = json.dumps(
        error_body(
            "payload_too_large",
            f"The request body is larger than the limit of {limit} bytes.",
            {"limit": limit},
        )
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
