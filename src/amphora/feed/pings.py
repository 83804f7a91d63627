"""Telling aggregators that a feed changed: WebSub hubs, Podcast Index and podping.

The feed service calls ``defer_pings`` in the transaction that changed a show; once it commits,
one ``send_ping`` job per target makes one HTTP request and records it as a ``PingAttempt`` row.

Retries are scheduled by the job itself rather than by Huey's ``retries``: the delays come from
the settings (``AMPHORA_PING_RETRY_DELAY_SECONDS``, doubled each time, so tests and operators
can change them), each attempt knows its exact number, and an answer that cannot improve (a
4xx such as a refused podping token) stops at once instead of waiting half an hour. Only the
last attempt raises, so only then does the failed-jobs table get a row.

Pinging is best effort and harmless to repeat: a hub told twice fetches the feed twice.
"""

from __future__ import annotations

import ipaddress
import logging
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.kit.http import blocked_reason, user_agent
from amphora.kit.jobs import job
from amphora.models import PingAttempt, Show
from amphora.settings import Settings

logger = logging.getLogger("amphora.pings")

WEBSUB = "websub"
PODCASTINDEX = "podcastindex"
PODPING = "podping"

REASONS = frozenset({"update", "live", "liveEnd"})
TIMEOUT_SECONDS = 10.0
RETRY_BACKOFF = 2.0
MAX_ERROR_CHARS = 512
# Client errors that say "not now" rather than "never": worth another attempt.
RETRYABLE_4XX = frozenset({408, 425, 429})
# Names no aggregator can resolve: RFC 6761/6762 special-use and common private suffixes.
LOCAL_SUFFIXES = (
    ".localhost",
    ".local",
    ".test",
    ".invalid",
    ".example",
    ".internal",
    ".lan",
    ".home.arpa",
    ".localdomain",
)


class PingFailed(Exception):
    """The last attempt (or one that cannot succeed on a retry) failed; recorded as failed."""


@dataclass(frozen=True)
class PingTarget:
    target: str  # websub | podcastindex | podping
    endpoint: str


@dataclass(frozen=True)
class PingResult:
    ok: bool
    status_code: int | None = None
    error: str | None = None

    @property
    def retryable(self) -> bool:
        code = self.status_code
        return code is None or not (400 <= code < 500) or code in RETRYABLE_4XX


# --- configuration (pure) -----------------------------------------------------------------------


def ping_targets(settings: Settings) -> list[PingTarget]:
    """Every configured aggregator endpoint, podping only when a token is set."""
    targets = [PingTarget(WEBSUB, hub) for hub in settings.websub_hubs]
    if settings.podcastindex_pubnotify_url:
        targets.append(PingTarget(PODCASTINDEX, settings.podcastindex_pubnotify_url))
    if settings.podping_token is not None and settings.podping_url:
        targets.append(PingTarget(PODPING, settings.podping_url))
    return targets


def is_public_url(url: str) -> bool:
    """Whether an aggregator on the internet could fetch ``url`` (judged by its host alone)."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    if not host or host == "localhost" or host.endswith(LOCAL_SUFFIXES):
        return False
    try:
        return blocked_reason(ipaddress.ip_address(host)) is None
    except ValueError:
        pass
    return "." in host  # a single-label name only resolves on its own network


def pings_enabled(settings: Settings) -> bool:
    """Some target is configured and the feeds' base URL is reachable from outside."""
    if not ping_targets(settings):
        return False
    return settings.ping_local_feeds or is_public_url(settings.base_url)


# --- sending ------------------------------------------------------------------------------------


def defer_pings(
    session: AsyncSession,
    settings: Settings,
    *,
    show_id: uuid.UUID,
    feed_url: str,
    reason: str = "update",
    medium: str = "podcast",
) -> int:
    """Send one ``send_ping`` job per target once ``session`` commits; returns how many."""
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {sorted(REASONS)}, not {reason!r}")
    targets = ping_targets(settings)
    if not targets:
        return 0
    if not settings.ping_local_feeds and not is_public_url(feed_url):
        logger.debug("not pinging for %s: no aggregator can fetch it", feed_url)
        return 0
    for target in targets:
        send_ping.defer(
            session, str(show_id), target.target, target.endpoint, feed_url, reason, medium
        )
    return len(targets)


def _excerpt(text: str, limit: int = 200) -> str:
    return " ".join(text.split())[:limit]


def _http_error(response: httpx.Response) -> PingResult:
    if response.is_redirect:  # not followed: a POST must not turn into a GET elsewhere
        detail = f"redirected to {_excerpt(response.headers.get('location', '?'))}"
    else:
        detail = _excerpt(response.text)
    error = f"HTTP {response.status_code}" + (f": {detail}" if detail else "")
    return PingResult(False, response.status_code, error)


def _podcastindex_result(response: httpx.Response) -> PingResult:
    """200 with ``{"status": "true", …}``; a 200 whose status is "false" is still a refusal."""
    if response.status_code != 200:
        return _http_error(response)
    try:
        answer = response.json()
    except ValueError:
        return PingResult(False, 200, f"not JSON: {_excerpt(response.text)}")
    if not isinstance(answer, dict):
        return PingResult(False, 200, f"unexpected answer: {_excerpt(response.text)}")
    status = str(answer.get("status", "")).lower()
    if status == "true":
        return PingResult(True, 200)
    description = str(answer.get("description") or "no description")
    return PingResult(False, 200, f'status "{status or "missing"}": {_excerpt(description)}')


async def deliver_ping(
    client: httpx.AsyncClient,
    *,
    target: str,
    endpoint: str,
    feed_url: str,
    reason: str,
    medium: str,
    podping_token: str | None,
) -> PingResult:
    """Make one request to one aggregator and judge its answer. Never raises for HTTP trouble."""
    try:
        if target == WEBSUB:
            response = await client.post(
                endpoint, data={"hub.mode": "publish", "hub.url": feed_url}
            )
            if response.is_success:  # hubs answer 204 (or 202 when they queue)
                return PingResult(True, response.status_code)
            return _http_error(response)
        if target == PODCASTINDEX:
            response = await client.get(endpoint, params={"url": feed_url})
            return _podcastindex_result(response)
        if target == PODPING:
            if not podping_token:
                return PingResult(False, None, "no podping token configured")
            response = await client.get(
                endpoint,
                params={"url": feed_url, "reason": reason, "medium": medium},
                headers={"Authorization": podping_token},
            )
            if response.status_code == 200:
                return PingResult(True, 200)
            return _http_error(response)
    except httpx.HTTPError as exc:
        return PingResult(False, None, f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc))
    return PingResult(False, None, f"unknown ping target {target!r}")


def _redact(text: str | None, secret: str | None) -> str | None:
    if text is None:
        return None
    if secret:
        text = text.replace(secret, "[redacted]")
    return text[:MAX_ERROR_CHARS]


def _without_userinfo(url: str) -> str:
    """Credentials someone put in an endpoint URL are not kept in rows and logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


async def record_attempt(
    session: AsyncSession,
    *,
    show_id: uuid.UUID,
    target: str,
    endpoint: str,
    feed_url: str,
    reason: str,
    attempt: int,
    result: PingResult,
) -> PingAttempt | None:
    """Store one attempt; ``None`` when the show is gone (its rows went with it)."""
    if await session.get(Show, show_id) is None:
        return None
    row = PingAttempt(
        show_id=show_id,
        target=target,
        endpoint=_without_userinfo(endpoint)[:2048],
        feed_url=feed_url[:2048],
        reason=reason,
        attempt=min(attempt, 32767),
        status_code=result.status_code,
        ok=result.ok,
        error=result.error,
    )
    session.add(row)
    await session.flush()
    return row


async def ping_history(
    session: AsyncSession, show_id: uuid.UUID, limit: int = 50
) -> list[PingAttempt]:
    """A show's latest ping attempts, newest first."""
    rows = await session.scalars(
        select(PingAttempt)
        .where(PingAttempt.show_id == show_id)
        .order_by(PingAttempt.at.desc(), PingAttempt.id.desc())
        .limit(limit)
    )
    return list(rows)


def retry_delay(settings: Settings, attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    return float(settings.ping_retry_delay_seconds * RETRY_BACKOFF ** (attempt - 1))


@job(retries=0)
async def send_ping(
    ctx: Any,
    show_id: str,
    target: str,
    endpoint: str,
    feed_url: str,
    reason: str,
    medium: str,
    attempt: int = 1,
) -> None:
    """One attempt; on failure schedule the next (or, out of attempts, raise to be recorded)."""
    settings: Settings = ctx.settings
    sid = uuid.UUID(show_id)
    async with ctx.db.session(write=False) as session:
        if await session.get(Show, sid) is None:
            return  # purged meanwhile: nobody left to tell about
    token = settings.podping_token.get_secret_value() if settings.podping_token else None
    if target == PODPING and not token:
        logger.info("podping for %s skipped: the token was removed", feed_url)
        return
    headers = {"User-Agent": user_agent(settings)}
    async with httpx.AsyncClient(
        timeout=TIMEOUT_SECONDS, headers=headers, follow_redirects=False
    ) as client:
        result = await deliver_ping(
            client,
            target=target,
            endpoint=endpoint,
            feed_url=feed_url,
            reason=reason,
            medium=medium,
            podping_token=token,
        )
    result = PingResult(result.ok, result.status_code, _redact(result.error, token))
    async with ctx.db.session() as session:
        await record_attempt(
            session,
            show_id=sid,
            target=target,
            endpoint=endpoint,
            feed_url=feed_url,
            reason=reason,
            attempt=attempt,
            result=result,
        )
    where = f"{target} {_without_userinfo(endpoint)} for {feed_url} (attempt {attempt})"
    if result.ok:
        logger.info("pinged %s", where)
        return
    if result.retryable and attempt <= settings.ping_retries:
        delay = retry_delay(settings, attempt)
        logger.warning("ping %s failed: %s; again in %.0f s", where, result.error, delay)
        args = (show_id, target, endpoint, feed_url, reason, medium, attempt + 1)
        await anyio.to_thread.run_sync(
            lambda: ctx.jobs.enqueue(send_ping.name, args, delay=delay or None)
        )
        return
    raise PingFailed(f"ping {where} failed: {result.error}")
