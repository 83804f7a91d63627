"""Public feed routes: RSS, JSON Feed and subscribers' private RSS, with validators, 304s,
compression and the redirects of moved and renamed shows."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from amphora.deps import RuntimeDep
from amphora.feed.service import (
    Format,
    Served,
    choose_encoding,
    peek_feed,
    resolve_subscriber,
    serve_feed,
)
from amphora.kit.openapi import errors, get_and_head
from amphora.runtime import Runtime

router = APIRouter(tags=["feeds"])

SlugPath = Annotated[str, Path(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")]
TokenPath = Annotated[str, Path(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
MEDIA_TYPES = {
    Format.rss: "application/rss+xml; charset=utf-8",
    Format.json: "application/feed+json; charset=utf-8",
}
# Stored by caches, but revalidated every time: a 304 costs little and the feed is never stale.
CACHE_CONTROL = "public, no-cache"
FEED_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/rss+xml": {}}, "description": "The feed."},
    301: {"description": "The show moved (new feed URL) or was renamed."},
    304: {"description": "Not modified since the validators given."},
    **errors(404, 410, 503),
}


def _not_modified(header: Callable[[str], str | None], served: Served) -> bool:
    if_none_match = header("if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        # Weak comparison (RFC 9110 §13.1.2): any coding of this document matches.
        base = served.rendered.etag[:-1]
        return "*" in tags or any(tag.startswith(base) for tag in tags)
    since = header("if-modified-since")
    if since:
        try:
            when = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        if when.tzinfo is None:
            return False
        return served.rendered.last_modified.replace(microsecond=0) <= when
    return False


def feed_reply(
    method: str, header: Callable[[str], str | None], served: Served, fmt: Format
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body for a served feed: validators, 304, 301, HEAD."""
    rendered = served.rendered
    if rendered.location is not None and not rendered.body:  # renamed: nothing to show
        return 301, {"Location": rendered.location, "Content-Length": "0"}, b""
    links = [f'<{hub}>; rel="hub"' for hub in rendered.hubs]
    if rendered.self_url:
        links.append(f'<{rendered.self_url}>; rel="self"')
    headers = {
        "ETag": served.etag,
        "Last-Modified": format_datetime(rendered.last_modified, usegmt=True),
        "Cache-Control": CACHE_CONTROL,
        "Vary": "Accept-Encoding",
    }
    if links:
        headers["Link"] = ", ".join(links)
    status = 200
    if rendered.location is not None:  # moved away: 301, the feed as the body
        status = 301
        headers["Location"] = rendered.location
    elif _not_modified(header, served):
        return 304, headers, b""
    headers["Content-Type"] = MEDIA_TYPES[fmt]
    if served.encoding != "identity":
        headers["Content-Encoding"] = served.encoding
    headers["Content-Length"] = str(len(served.body))
    return status, headers, b"" if method == "HEAD" else served.body


def feed_response(request: Request, served: Served, fmt: Format) -> Response:
    status, headers, body = feed_reply(request.method, request.headers.get, served, fmt)
    return Response(body, status_code=status, headers=headers)


class FeedFastPath:
    """Answers public feed requests that the process-local cache can answer fresh (the
    overwhelming majority: apps poll) before the framework's routing and dependencies run.
    Everything else (a miss, a stale copy, a private feed) goes on to the regular route."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            match = _PUBLIC_FEED.match(scope["path"])
            if match:
                raw = dict(scope["headers"])

                def header(name: str) -> str | None:
                    value = raw.get(name.encode())
                    return value.decode("latin-1") if value is not None else None

                fmt = Format.json if match[2] == "json" else Format.rss
                served = peek_feed(
                    self.runtime.cache,
                    slug=match[1],
                    fmt=fmt,
                    encoding=choose_encoding(header("accept-encoding")),
                )
                if served is not None:
                    scope["amphora_route"] = f"/feeds/{{slug}}.{match[2]}"  # for the metrics
                    status, headers, body = feed_reply(scope["method"], header, served, fmt)
                    await send(
                        {
                            "type": "http.response.start",
                            "status": status,
                            "headers": [
                                (k.lower().encode(), v.encode("latin-1"))
                                for k, v in headers.items()
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)


_PUBLIC_FEED = re.compile(r"^/feeds/([a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?)\.(xml|json)$")


async def _public(request: Request, runtime: Runtime, slug: str, fmt: Format) -> Response:
    served = await serve_feed(
        runtime,
        slug=slug,
        fmt=fmt,
        encoding=choose_encoding(request.headers.get("accept-encoding")),
    )
    return feed_response(request, served, fmt)


@get_and_head(router, "/feeds/{slug}.xml", responses=FEED_RESPONSES)
async def rss_feed(slug: SlugPath, request: Request, runtime: RuntimeDep) -> Response:
    """The show's public RSS feed (Apple, PSP-1 and Podcasting 2.0)."""
    return await _public(request, runtime, slug, Format.rss)


@get_and_head(router, "/feeds/{slug}.json", responses=errors(404, 410, 503))
async def json_feed(slug: SlugPath, request: Request, runtime: RuntimeDep) -> Response:
    """The show's public feed as JSON Feed 1.1."""
    return await _public(request, runtime, slug, Format.json)


@get_and_head(router, "/feeds/{slug}/private/{token}.xml", responses=errors(404, 503))
async def private_feed(
    slug: SlugPath, token: TokenPath, request: Request, runtime: RuntimeDep
) -> Response:
    """A subscriber's feed: public and premium episodes, hidden from directories."""
    target = await resolve_subscriber(runtime, slug, token)
    served = await serve_feed(
        runtime,
        target=target,
        fmt=Format.rss,
        slug=slug,
        encoding=choose_encoding(request.headers.get("accept-encoding")),
    )
    return feed_response(request, served, Format.rss)
