"""CSRF protection for cookie-authenticated pages: unsafe requests must come from our origin.

This is the "verify origin with standard headers" defence: browsers always send ``Origin`` (or
at least ``Referer``) on cross-site form posts and fetches, and a page on another site cannot
forge them. Combined with ``SameSite`` session cookies it needs no per-form token.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from amphora.kit.errors import error_body

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


class SameOriginMiddleware:
    def __init__(self, app: ASGIApp, *, allowed_origins: list[str]) -> None:
        self.app = app
        self.allowed = {o for o in (_origin(a) for a in allowed_origins) if o}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        own = {f"{scope.get('scheme', 'http')}://{host}".lower(), *self.allowed}
        claimed = headers.get("origin") or headers.get("referer")
        if claimed and claimed != "null" and _origin(claimed) in own:
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            error_body("csrf_failed", "This form was not sent from this site.")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})
