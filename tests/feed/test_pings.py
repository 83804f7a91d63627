"""Pings: each aggregator gets exactly its request, failures retry, secrets stay secret."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr
from sqlalchemy import select

import amphora
from amphora.app import create_app
from amphora.feed.pings import (
    PingTarget,
    defer_pings,
    deliver_ping,
    is_public_url,
    ping_history,
    ping_targets,
    pings_enabled,
    retry_delay,
    send_ping,
)
from amphora.models import FailedJob, PingAttempt, Show, User
from amphora.runtime import Runtime
from amphora.settings import Settings
from tests.fakes.hubs import PODPING_PATH, PUBNOTIFY_PATH, WEBSUB_PATH, FakeHubs
from tests.helpers import eventually, unique_email

FEED = "http://testserver/feeds/lighthouse-hour.xml"


def ping_settings(settings_factory: Any, hubs: FakeHubs, **overrides: Any) -> Settings:
    """Every target pointed at the fake hubs; retries immediate; test feeds may be pinged."""
    values: dict[str, Any] = {
        "websub_hubs": [hubs.websub("a"), hubs.websub("b")],
        "podcastindex_pubnotify_url": hubs.pubnotify,
        "podping_url": hubs.podping,
        "podping_token": hubs.podping_token,
        "ping_local_feeds": True,
        "ping_retry_delay_seconds": 0,
    }
    settings: Settings = settings_factory(**{**values, **overrides})
    return settings


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Runtime]:
    """The app with its job consumer, as `amphora serve` runs it."""
    app = create_app(settings, run_jobs=True)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        runtime: Runtime = app.state.runtime
        yield runtime


async def make_show(runtime: Runtime) -> uuid.UUID:
    async with runtime.db.session() as session:
        owner = User(email=unique_email(), display_name="Host", password_hash="x")
        session.add(owner)
        await session.flush()
        show = Show(owner_id=owner.id, slug=f"show-{uuid.uuid4().hex[:8]}", title="Lighthouse")
        session.add(show)
        await session.flush()
        return show.id


async def ping(runtime: Runtime, show_id: uuid.UUID, **kwargs: Any) -> int:
    async with runtime.db.session() as session:
        return defer_pings(session, runtime.settings, show_id=show_id, **kwargs)


async def attempts(runtime: Runtime, show_id: uuid.UUID) -> list[PingAttempt]:
    """Oldest first."""
    async with runtime.db.session(write=False) as session:
        return list(reversed(await ping_history(session, show_id)))


async def wait_for_attempts(runtime: Runtime, show_id: uuid.UUID, count: int) -> None:
    async def enough() -> bool:
        return len(await attempts(runtime, show_id)) >= count

    await eventually(enough)


async def failed_pings(runtime: Runtime) -> list[FailedJob]:
    async with runtime.db.session(write=False) as session:
        rows = await session.scalars(select(FailedJob).where(FailedJob.task_name == send_ping.name))
        return list(rows)


async def wait_for_failed_ping(runtime: Runtime) -> FailedJob:
    async def recorded() -> bool:
        return bool(await failed_pings(runtime))

    await eventually(recorded)
    return (await failed_pings(runtime))[0]


# --- through the job consumer, on both backends --------------------------------------------------


async def test_each_target_receives_exactly_its_request(
    settings_factory: Any, hubs: FakeHubs
) -> None:
    settings = ping_settings(settings_factory, hubs)
    async with running(settings) as runtime:
        show_id = await make_show(runtime)
        assert await ping(runtime, show_id, feed_url=FEED, reason="live") == 4
        await hubs.wait_for(4)
        await wait_for_attempts(runtime, show_id, 4)
        await anyio.sleep(0.3)  # nothing more arrives
        rows = await attempts(runtime, show_id)

    agent = f"Amphora/{amphora.__version__} (+http://testserver)"
    assert len(hubs.requests) == 4
    assert all(r.headers["user-agent"] == agent for r in hubs.requests)

    websub = sorted(hubs.to(WEBSUB_PATH), key=lambda r: r.path)
    assert [r.path for r in websub] == [f"{WEBSUB_PATH}/a", f"{WEBSUB_PATH}/b"]
    for request in websub:
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        assert request.form == {"hub.mode": ["publish"], "hub.url": [FEED]}
        assert request.query == {}
        assert "authorization" not in request.headers

    [index] = hubs.to(PUBNOTIFY_PATH)
    assert index.method == "GET" and index.query == {"url": [FEED]}
    assert "authorization" not in index.headers

    [podping] = hubs.to(PODPING_PATH)
    assert podping.method == "GET"
    assert podping.query == {"url": [FEED], "reason": ["live"], "medium": ["podcast"]}
    assert podping.headers["authorization"] == hubs.podping_token

    assert len(rows) == 4 and all(row.ok and row.attempt == 1 for row in rows)
    assert all(row.error is None and row.feed_url == FEED and row.reason == "live" for row in rows)
    by_target = sorted((row.target, row.endpoint, row.status_code) for row in rows)
    assert by_target == [
        ("podcastindex", hubs.pubnotify, 200),
        ("podping", hubs.podping, 200),
        ("websub", hubs.websub("a"), 204),
        ("websub", hubs.websub("b"), 204),
    ]


async def test_hub_failing_twice_is_retried_until_it_answers(
    settings_factory: Any, hubs: FakeHubs
) -> None:
    settings = ping_settings(
        settings_factory,
        hubs,
        websub_hubs=[hubs.websub()],
        podcastindex_pubnotify_url="",
        podping_token=None,
    )
    hubs.fail_next(2, 503, path=WEBSUB_PATH)
    async with running(settings) as runtime:
        show_id = await make_show(runtime)
        assert await ping(runtime, show_id, feed_url=FEED) == 1
        await wait_for_attempts(runtime, show_id, 3)
        await anyio.sleep(0.3)
        rows = await attempts(runtime, show_id)
        failed = await failed_pings(runtime)

    assert [(r.attempt, r.status_code, r.ok) for r in rows] == [
        (1, 503, False),
        (2, 503, False),
        (3, 204, True),
    ]
    assert rows[0].error == "HTTP 503: Service Unavailable" and rows[2].error is None
    assert len(hubs.to(WEBSUB_PATH)) == 3
    assert not hubs.to(PODPING_PATH) and not hubs.to(PUBNOTIFY_PATH)  # podping: no token
    assert failed == []


async def test_podping_token_is_sent_but_never_stored_or_logged(
    settings_factory: Any, hubs: FakeHubs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-podping-token-" + uuid.uuid4().hex
    settings = ping_settings(
        settings_factory,
        hubs,
        websub_hubs=[],
        podcastindex_pubnotify_url="",
        podping_token=wrong,
    )
    async with running(settings) as runtime:
        show_id = await make_show(runtime)
        assert await ping(runtime, show_id, feed_url=FEED, reason="liveEnd", medium="music") == 1
        failed = await wait_for_failed_ping(runtime)
        await anyio.sleep(0.3)
        rows = await attempts(runtime, show_id)

    [request] = hubs.requests
    assert request.headers["authorization"] == wrong
    assert request.query == {"url": [FEED], "reason": ["liveEnd"], "medium": ["music"]}
    # A refused token will not be accepted on a retry: one attempt, recorded as failed at once.
    [row] = rows
    assert (row.target, row.status_code, row.ok, row.error) == (
        "podping",
        401,
        False,
        "HTTP 401: Unauthorized",
    )
    assert "401" in failed.error
    assert "failed for good" in caplog.text  # the job side's logs were captured
    for text in (
        caplog.text,
        failed.error,
        repr(failed.args),
        *(repr((r.endpoint, r.feed_url, r.error)) for r in rows),
    ):
        assert wrong not in text


async def test_podcast_index_status_false_is_a_failure(
    settings_factory: Any, hubs: FakeHubs
) -> None:
    settings = ping_settings(
        settings_factory, hubs, websub_hubs=[], podping_token=None, ping_retries=1
    )
    hubs.refused_feeds.add(FEED)
    async with running(settings) as runtime:
        show_id = await make_show(runtime)
        assert await ping(runtime, show_id, feed_url=FEED) == 1
        failed = await wait_for_failed_ping(runtime)
        rows = await attempts(runtime, show_id)

    # 200, but "status": "false": retried like any failure, then recorded as a failed job.
    assert [(r.attempt, r.status_code, r.ok) for r in rows] == [(1, 200, False), (2, 200, False)]
    assert rows[-1].error == 'status "false": Feed not found in the index.'
    assert "Feed not found in the index." in failed.error
    assert len(hubs.to(PUBNOTIFY_PATH)) == 2


async def test_local_feeds_are_not_pinged_unless_allowed(
    settings_factory: Any, hubs: FakeHubs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="amphora.pings")
    settings = ping_settings(
        settings_factory,
        hubs,
        base_url="http://localhost:8000",
        ping_local_feeds=False,
        podping_token=None,
    )
    local_feed = "http://localhost:8000/feeds/lighthouse-hour.xml"
    async with running(settings) as runtime:
        assert not pings_enabled(settings)
        show_id = await make_show(runtime)
        assert await ping(runtime, show_id, feed_url=local_feed) == 0
        assert "no aggregator can fetch it" in caplog.text
        await anyio.sleep(0.5)
        assert hubs.requests == []
        assert await attempts(runtime, show_id) == []

        allowed = settings.model_copy(update={"ping_local_feeds": True})
        assert pings_enabled(allowed)
        async with runtime.db.session() as session:
            count = defer_pings(session, allowed, show_id=show_id, feed_url=local_feed)
        assert count == 3
        await wait_for_attempts(runtime, show_id, 3)
    assert {r.f("hub.url") or r.q("url") for r in hubs.requests} == {local_feed}


async def test_ping_for_a_purged_show_does_nothing(settings_factory: Any, hubs: FakeHubs) -> None:
    settings = ping_settings(settings_factory, hubs)
    async with running(settings) as runtime:
        show_id = await make_show(runtime)
        async with runtime.db.session() as session:
            defer_pings(session, settings, show_id=show_id, feed_url=FEED)
            show = await session.get(Show, show_id)
            await session.delete(show)
        await anyio.sleep(0.8)
        assert await failed_pings(runtime) == []
    assert hubs.requests == []


# --- pure ----------------------------------------------------------------------------------------


def plain_settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


def test_targets_follow_the_settings() -> None:
    defaults = plain_settings()
    assert ping_targets(defaults) == [
        PingTarget("websub", "https://pubsubhubbub.appspot.com/"),
        PingTarget("podcastindex", "https://api.podcastindex.org/api/1.0/hub/pubnotify"),
    ]  # podping only with a token
    with_token = plain_settings(podping_token=SecretStr("t"))
    assert ping_targets(with_token)[-1] == PingTarget("podping", "https://podping.cloud/")
    nothing = plain_settings(websub_hubs=[], podcastindex_pubnotify_url="")
    assert ping_targets(nothing) == []
    assert not pings_enabled(nothing.model_copy(update={"base_url": "https://pods.example.org"}))


def test_hubs_are_read_comma_separated_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AMPHORA_WEBSUB_HUBS", "https://hub.one/, https://hub.two/publish")
    assert plain_settings().websub_hubs == ["https://hub.one/", "https://hub.two/publish"]
    monkeypatch.setenv("AMPHORA_WEBSUB_HUBS", "")
    assert plain_settings().websub_hubs == []
    monkeypatch.setenv("AMPHORA_WEBSUB_HUBS", "hub.one")
    with pytest.raises(ValueError, match="http"):
        plain_settings()


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("https://podcasts.example.org/feed.xml", True),
        ("https://8.8.8.8/feed.xml", True),
        ("http://[2606:4700::1111]/feed", True),
        ("http://localhost:8000/feed.xml", False),
        ("http://app.localhost/feed.xml", False),
        ("http://127.0.0.1/feed.xml", False),
        ("http://10.1.2.3/feed.xml", False),
        ("http://192.168.1.20/feed.xml", False),
        ("http://169.254.10.10/feed.xml", False),
        ("http://[::1]:8000/feed.xml", False),
        ("http://[fe80::1]/feed.xml", False),
        ("http://nas.local/feed.xml", False),
        ("http://amphora.test/feed.xml", False),
        ("http://testserver/feed.xml", False),
        ("not a url", False),
    ],
)
def test_which_feeds_aggregators_could_fetch(url: str, public: bool) -> None:
    assert is_public_url(url) is public


def test_pings_enabled_needs_a_public_base_url_or_the_override() -> None:
    assert pings_enabled(plain_settings(base_url="https://pods.example.org"))
    assert not pings_enabled(plain_settings(base_url="http://localhost:8000"))
    assert pings_enabled(plain_settings(base_url="http://localhost:8000", ping_local_feeds=True))


def test_retries_back_off_exponentially() -> None:
    settings = plain_settings()
    delays = [retry_delay(settings, attempt) for attempt in range(1, settings.ping_retries + 1)]
    assert delays == [30, 60, 120, 240, 480, 960]  # about half an hour in all


def test_unknown_reason_is_refused() -> None:
    with pytest.raises(ValueError, match="reason"):
        defer_pings(None, plain_settings(), show_id=uuid.uuid4(), feed_url=FEED, reason="x")  # type: ignore[arg-type]


async def test_unreachable_and_refusing_endpoints(hubs: FakeHubs) -> None:
    async def websub(endpoint: str) -> Any:
        async with httpx.AsyncClient(timeout=5) as client:
            return await deliver_ping(
                client,
                target="websub",
                endpoint=endpoint,
                feed_url=FEED,
                reason="update",
                medium="podcast",
                podping_token=None,
            )

    down = await websub("http://127.0.0.1:9/")  # nothing listens on the discard port
    assert not down.ok and down.status_code is None and down.retryable
    assert down.error.startswith("ConnectError")
    missing = await websub(f"{hubs.base_url}/nowhere")
    assert (missing.status_code, missing.error, missing.retryable) == (
        404,
        "HTTP 404: Not Found",
        False,  # the same answer every time: not worth half an hour of retries
    )
    hubs.fail_next(1, 429)
    assert (await websub(hubs.websub())).retryable  # "slow down" is worth another try
